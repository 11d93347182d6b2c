//! What a component serves behind `serve`'s listeners in place of the server's own MCP
//! endpoints. A bridged stdio server is one (`mcp-expose bridge`; a gateway mounts several,
//! each under `/NAME`): `serve` composes mounts without knowing what is behind them, and puts
//! them behind the same host policy, token, rate limit and session cap as its own endpoints.

use std::sync::Arc;

use axum::{Router, extract::ws::WebSocketUpgrade, response::Response};

use crate::session::{Caller, SessionCount};

/// Accepts a WebSocket session at a listener's `/`.
pub(crate) type RootSocket =
    Box<dyn Fn(WebSocketUpgrade, Option<Arc<Caller>>) -> Response + Send + Sync>;

/// A server behind the listeners.
pub(crate) struct Mount {
    /// Its name, for the landing page, `/health`, the 404 and printed client configs.
    pub(crate) name: String,
    /// The path prefix of its `/mcp` and `/ws`: empty for a single server, `/NAME` in a
    /// gateway.
    pub(crate) prefix: String,
    /// Its MCP routes (`/mcp`, `/ws`, relative to the prefix) for a listener that serves
    /// streamable HTTP, WebSocket, or both.
    pub(crate) routes: Box<dyn Fn(bool, bool) -> Router + Send + Sync>,
    /// Its WebSocket session at `/`, for a single server (a gateway has none there).
    pub(crate) root_socket: Option<RootSocket>,
    /// Its open sessions, counted against `--max-sessions`.
    pub(crate) sessions: Arc<SessionCount>,
    /// Its health, for `/health`, `/ready` and `/metrics`.
    pub(crate) health: Arc<dyn Health>,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// How a mounted server is doing.
pub(crate) trait Health: Send + Sync {
    /// Whether it can serve now (`/ready` and `/health` answer 503 while it cannot).
    fn healthy(&self) -> bool;
    /// Its entry on `/health`; `detailed` when the visitor may read failure text.
    fn describe(&self, detailed: bool) -> serde_json::Value;
    /// Records what is not counted as it happens, just before `/metrics` renders.
    fn record(&self, prefix: &str);
}
