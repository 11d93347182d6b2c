//! `mcp-expose bridge -- CMD ARGS...`: any stdio MCP server on the network, over the same
//! streamable HTTP, WebSocket, security and tunnel as `serve()`.
//!
//! Each remote session gets its own child process (`--child per-session`): no state leaks
//! between users and no response reaches anyone but its caller. Messages are forwarded as raw
//! lines with only their envelope parsed. When a child dies, its pending requests are answered
//! with an error at once and it is restarted with backoff (its `initialize` replayed), until it
//! crash-loops, which ends that session's child only; `/health` answers 503 while no new child
//! can be started (or a shared one crash-loops). Each child runs in its own process group,
//! which dies with it or with the bridge, however the bridge ends.
//!
//! It is the `mcp-expose` binary's (`cargo install mcp-expose --features cli`):
//!
//! ```sh
//! # one server, a child per remote session (the default)
//! mcp-expose bridge --http 8000 --ws 8000 -- npx -y @modelcontextprotocol/server-everything
//! # one child shared by every session, for stateless servers that are slow to start
//! mcp-expose bridge --child shared --http 8000 -- python3 my_server.py
//! # several servers under one port: /github/mcp, /github/ws, /db/mcp, ... behind a tunnel
//! mcp-expose gateway servers.toml --http 8000 --tunnel
//! ```
//!
//! where `servers.toml` names each server's command (also `env`, `cwd`, `child`,
//! `max_message_size`):
//!
//! ```toml
//! [servers.github]
//! command = ["npx", "-y", "@modelcontextprotocol/server-github"]
//!
//! [servers.db]
//! command = ["python3", "db_server.py"]
//! child = "shared"
//! ```
//!
//! `mcp-expose bridge --help` lists the rest: the serving options of [`Server::serve`]
//! (auth, limits, `--tunnel`) apply unchanged. The commands themselves are in
//! [`cli`](crate::cli); this module is what they serve: a mount per bridged server.
//!
//! [`Server::serve`]: crate::Server::serve

mod child;
/// Also reached by the fuzz targets and, through `__bench`, the criterion benches.
pub(crate) mod envelope;
mod health;
mod http;
mod metrics;
mod process;
mod routes;
pub(crate) mod scan;
mod shared;
mod sse;
mod stateless;
mod stream;
mod ws;

use std::{sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    extract::{Request, ws::WebSocketUpgrade},
    routing::{any, get, post},
};

pub use child::ChildSpec;
pub(crate) use health::BridgeHealth;

use crate::mount::{Health, Mount, RootSocket};

/// How long a per-session child may take to answer a request, unless `--request-timeout` says.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Sessions a per-session bridge holds when `--max-sessions` is not given: each is a process.
pub(crate) const PER_SESSION_MAX_SESSIONS: usize = 256;

/// How remote sessions map to child processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum ChildModel {
    /// A child per remote session.
    PerSession,
    /// One child shared by all sessions, ids rewritten per session.
    Shared,
}

/// A session's link to its child, in either model; it holds one of the bridge's session slots.
#[derive(Debug)]
pub(crate) struct Link {
    kind: LinkKind,
    _slot: crate::session::SessionSlot,
}

#[derive(Debug)]
enum LinkKind {
    Own(child::ChildSession),
    Shared(shared::SharedLink),
}

impl Link {
    pub(crate) async fn send(&self, frame: Vec<u8>) -> bool {
        match &self.kind {
            LinkKind::Own(session) => session.send(frame).await,
            LinkKind::Shared(link) => link.send(frame).await,
        }
    }
}

/// The bridge: how to start children, their health, and the HTTP sessions.
#[derive(Debug)]
pub(crate) struct Bridge {
    pub(crate) spec: Arc<ChildSpec>,
    pub(crate) health: Arc<BridgeHealth>,
    pub(crate) http: http::Sessions,
    pub(crate) max_message: usize,
    /// How long a per-session child may take to answer a request.
    pub(crate) request_timeout: Duration,
    /// Open sessions, for the session cap.
    pub(crate) sessions: Arc<crate::session::SessionCount>,
    /// Legacy HTTP+SSE sessions, by the id their stream announced.
    sse: Arc<sse::Sessions>,
    /// How often a quiet legacy SSE stream gets a keep-alive comment.
    keep_alive: Duration,
    shared: Option<shared::SharedChild>,
    /// The child MCP 2026-07-28 (sessionless) requests go to, once one came (and until it is
    /// gone for good).
    stateless: tokio::sync::Mutex<Option<Arc<stateless::Stateless>>>,
    /// This replica's id, which starts every session id it makes (`{replica}.{random}`), so
    /// that a load balancer sends a session's requests to the replica that holds its child.
    replica: Option<Arc<str>>,
}

impl Bridge {
    pub(crate) fn new(
        spec: Arc<ChildSpec>,
        health: Arc<BridgeHealth>,
        model: ChildModel,
        max_message: usize,
    ) -> Self {
        let mut spec = Arc::unwrap_or_clone(spec);
        spec.max_message = max_message;
        let spec = Arc::new(spec);
        let shared = (model == ChildModel::Shared)
            .then(|| shared::SharedChild::start(spec.clone(), health.clone()));
        Self {
            spec,
            health,
            http: http::Sessions::default(),
            max_message,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            sessions: Arc::default(),
            sse: Arc::default(),
            keep_alive: Duration::from_secs(15),
            shared,
            stateless: tokio::sync::Mutex::default(),
            replica: None,
        }
    }

    /// Opens a session: its link to a child; the child's messages for it go to `out`.
    pub(crate) fn open(&self, tag: String, out: child::Outlet) -> Link {
        let kind = match &self.shared {
            Some(shared) => LinkKind::Shared(shared.attach(out)),
            None => LinkKind::Own(child::ChildSession::start(
                self.spec.clone(),
                tag,
                self.health.clone(),
                out,
                self.request_timeout,
            )),
        };
        Link {
            kind,
            _slot: self.sessions.open(),
        }
    }
}

/// The bridge's `/mcp`, `/sse` and `/messages` (legacy HTTP+SSE), and `/ws` routes, for any
/// router state (`/` is the listener's).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(
    bridge: &Arc<Bridge>,
    serves_http: bool,
    serves_ws: bool,
) -> Router<S> {
    let mut router = Router::new();
    if serves_http {
        let (b1, b2, b3) = (bridge.clone(), bridge.clone(), bridge.clone());
        router = router.route(
            "/mcp",
            // The request whole, not `HeaderMap` (whose extractor clones the map per request).
            post(move |request: Request| http::post(b1, request))
                .get(move |request: Request| http::get(b2, request))
                .delete(move |request: Request| http::delete(b3, request)),
        );
        let (b1, b2) = (bridge.clone(), bridge.clone());
        router = router
            .route("/sse", get(move |request: Request| sse::open(b1, request)))
            .route(
                "/messages",
                post(move |request: Request| sse::message(b2, request)),
            );
    }
    if serves_ws {
        let bridge = bridge.clone();
        let upgrade = move |caller: Option<Extension<Arc<crate::session::Caller>>>,
                            upgrade: WebSocketUpgrade| {
            let bridge = bridge.clone();
            async move { accept_ws(bridge, upgrade, caller.map(|Extension(c)| c)) }
        };
        // `/` is the listener's: the landing page for a browser, this upgrade for a client.
        router = router.route("/ws", any(upgrade));
    }
    router
}

/// Accepts a WebSocket session with the bridge's child (at `/ws`, and at `/` of a single
/// bridge's listener).
pub(crate) fn accept_ws(
    bridge: Arc<Bridge>,
    upgrade: WebSocketUpgrade,
    caller: Option<Arc<crate::session::Caller>>,
) -> axum::response::Response {
    let tag = format!("ws:{:08x}", rand_tag());
    let limit = bridge.max_message.saturating_add(1);
    upgrade
        .protocols(["mcp"])
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(limit)
        .max_frame_size(limit)
        .max_write_buffer_size(crate::transport::ws::write_buffer_limit(bridge.max_message))
        .on_upgrade(move |socket| ws::serve_socket(socket, bridge, tag, caller))
}

fn rand_tag() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// Ends HTTP sessions idle longer than `idle`, until the bridge is gone.
pub(crate) fn spawn_reaper(bridge: &Arc<Bridge>, idle: Duration) {
    let bridge = Arc::downgrade(bridge);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(idle.min(Duration::from_secs(30)));
        loop {
            tick.tick().await;
            let Some(bridge) = bridge.upgrade() else {
                return;
            };
            bridge.http.reap(idle);
        }
    });
}

impl Bridge {
    /// Starts every session id with `replica` (see `--replica-id`).
    pub(crate) fn with_replica(mut self, replica: Option<String>) -> Self {
        self.replica = replica.map(Into::into);
        self
    }

    /// A new session id: 128 random bits in hex, after this replica's id when it has one.
    pub(crate) fn new_session_id(&self) -> String {
        let mut bytes = [0u8; 16];
        let _ = getrandom::fill(&mut bytes);
        let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match &self.replica {
            Some(replica) => format!("{replica}.{random}"),
            None => random,
        }
    }

    /// How long a child may take to answer a request (`initialize` included).
    pub(crate) fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        if let Some(shared) = &self.shared {
            shared.timeout_secs.store(
                timeout.as_secs().max(1),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        self
    }

    /// How often a quiet legacy SSE stream gets a keep-alive comment (`--sse-keep-alive`).
    pub(crate) fn with_keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval.max(Duration::from_millis(100));
        self
    }
}

/// The bridge as `serve` mounts it: `name`, at `prefix` (empty for a single server, which
/// also takes WebSocket sessions at `/`).
pub(crate) fn mount(bridge: Arc<Bridge>, name: String, prefix: String) -> Mount {
    let root_socket = prefix.is_empty().then(|| {
        let bridge = bridge.clone();
        Box::new(move |upgrade, caller| accept_ws(bridge.clone(), upgrade, caller)) as RootSocket
    });
    let sessions = bridge.sessions.clone();
    let health = bridge.health.clone();
    Mount {
        name,
        prefix,
        routes: Box::new(move |serves_http, serves_ws| routes(&bridge, serves_http, serves_ws)),
        root_socket,
        sessions,
        health,
    }
}

impl Health for BridgeHealth {
    fn healthy(&self) -> bool {
        BridgeHealth::healthy(self)
    }

    fn describe(&self, detailed: bool) -> serde_json::Value {
        use std::sync::atomic::Ordering;
        serde_json::json!({
            "healthy": self.healthy(),
            "sessions": self.sessions.load(Ordering::Relaxed),
            "down": self.down.load(Ordering::Relaxed),
            "restarts": self.restarts.load(Ordering::Relaxed),
            "failure": self
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .filter(|_| detailed),
        })
    }

    fn record(&self, prefix: &str) {
        self.record_metrics(prefix);
    }
}
