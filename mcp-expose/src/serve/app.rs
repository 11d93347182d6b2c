//! What the routes share: the handler, the mounted servers, the tunnel, and the addresses
//! and names the landing page, `/health` and the 404 show; the `/health` document.

use std::{net::SocketAddr, sync::Arc};

use tokio_util::sync::CancellationToken;

use super::tunneling::Tunneling;
use crate::{handler::Handler, mount::Mount, transport::ws::WsSettings};

/// What the routes share; behind an `Arc` because axum clones a handler's state for every
/// request.
pub(super) type AppState = Arc<App>;

pub(super) struct App {
    pub(super) handler: Handler,
    pub(super) auth_required: bool,
    pub(super) tunnel: Tunneling,
    /// The servers mounted in place of this one's own endpoints (a bridge's, a gateway's).
    pub(super) mounts: Vec<Mount>,
    pub(super) ws: WsSettings,
    pub(super) sessions: CancellationToken,
    pub(super) health: Arc<serde_json::Value>,
    /// The servers behind the listeners, for the landing page and the 404.
    pub(super) servers: Vec<ServedAt>,
    pub(super) http_addr: Option<SocketAddr>,
    pub(super) ws_addr: Option<SocketAddr>,
    /// The hostname a named tunnel or proxy run by someone else serves this server at.
    pub(super) public_hostname: Option<String>,
    /// `--state redis://..`: the Redis replicas share, for `/ready`.
    #[cfg(feature = "redis")]
    pub(super) shared: Option<crate::store::Redis>,
}

/// A server as the listener serves it: its name, and the path prefix of its `/mcp` and `/ws`
/// (empty for a single server, `/NAME` for each of a gateway's).
#[derive(Debug, Clone)]
pub(super) struct ServedAt {
    pub(super) name: String,
    pub(super) prefix: String,
    /// A mounted server (a bridged stdio server), whose tools only it knows.
    pub(super) mounted: bool,
}

/// The `/health` document's fixed part: the server's name and version and where each server
/// is served (`transports` for a single server, `servers` for a gateway's).
pub(super) fn health_document(
    identity: &crate::state::Identity,
    served: &[ServedAt],
    http_addr: Option<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    stdio: bool,
) -> serde_json::Value {
    let url = |scheme: &str, addr: Option<SocketAddr>, prefix: &str, path: &str| {
        addr.map(|a| format!("{scheme}://{a}{prefix}{path}"))
    };
    match served {
        [single] if single.prefix.is_empty() => serde_json::json!({
            "status": "ok",
            "name": identity.name,
            "version": identity.version,
            "transports": {
                "http": url("http", http_addr, "", "/mcp"),
                "ws": url("ws", ws_addr, "", "/ws"),
                "sse": url("http", http_addr, "", "/sse"),
                "stdio": stdio,
            },
        }),
        // A gateway: no /mcp of its own; each server's URLs under `servers`.
        several => serde_json::json!({
            "status": "ok",
            "name": identity.name,
            "version": identity.version,
            "transports": { "stdio": false },
            "servers": several
                .iter()
                .map(|s| (s.name.clone(), serde_json::json!({
                    "http": url("http", http_addr, &s.prefix, "/mcp"),
                    "ws": url("ws", ws_addr, &s.prefix, "/ws"),
                    "sse": url("http", http_addr, &s.prefix, "/sse"),
                })))
                .collect::<serde_json::Map<_, _>>(),
        }),
    }
}
