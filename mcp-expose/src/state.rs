//! Server state: the registry and identity every session shares, the limits on tool calls and
//! the calls in flight (for those limits and a graceful shutdown), the open sessions and the
//! resource subscriptions. The [`Handler`](crate::handler::Handler) dispatches over it; a
//! [`Context`](crate::Context) sees only the [`Subscriptions`], through a weak handle.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use rmcp::{RoleServer, model::ServerCapabilities, service::Peer};

use crate::{
    registry::Registry,
    session::{InFlight, InFlightGuard, Session, SessionCount, Subscriptions},
};

/// Who the server says it is in `initialize`.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) instructions: Option<String>,
}

/// State shared by all sessions.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) registry: Registry,
    pub(crate) identity: Identity,
    pub(crate) capabilities: ServerCapabilities,
    pub(crate) inflight: Arc<InFlight>,
    /// Sessions that subscribed to some resource; a [`Context`](crate::Context) holds it weakly.
    pub(crate) subscriptions: Arc<Subscriptions>,
    pub(crate) limits: Limits,
    /// Set on shutdown: new calls are refused while in-flight ones finish.
    pub(crate) draining: Arc<AtomicBool>,
    /// Open sessions, for the session cap.
    pub(crate) sessions: Arc<SessionCount>,
    /// Signs and checks the `requestState` of input-required results (MCP 2026-07-28).
    pub(crate) sealer: crate::context::input::Sealer,
    /// The tasks of task-supporting tools (the tasks extension).
    pub(crate) tasks: Arc<crate::task::run::Tasks>,
    /// `--protocol 2026-07-28`: `initialize` is refused.
    pub(crate) latest_only: AtomicBool,
}

impl ServerState {
    pub(crate) fn new(
        registry: Registry,
        identity: Identity,
        capabilities: ServerCapabilities,
        limits: Limits,
        sealer: crate::context::input::Sealer,
        tasks: Arc<crate::task::run::Tasks>,
    ) -> Self {
        Self {
            sealer,
            tasks,
            registry,
            identity,
            capabilities,
            inflight: Arc::default(),
            subscriptions: Arc::default(),
            limits,
            draining: Arc::default(),
            sessions: Arc::default(),
            latest_only: AtomicBool::new(false),
        }
    }

    /// Takes a place for one tool call of `session`, or says which limit it is over: over a
    /// limit, a call is refused at once, as queueing would only hide the overload.
    pub(crate) fn admit(&self, session: &Session) -> Result<CallSlot, String> {
        let limits = &self.limits;
        if self.draining.load(Ordering::Relaxed) {
            return Err("server is shutting down; retry on another instance".to_owned());
        }
        if session.calls().count() >= limits.per_session {
            return Err(format!(
                "too many tool calls in flight on this session (limit {}); retry later",
                limits.per_session
            ));
        }
        if self.inflight.count() >= limits.total {
            return Err(format!(
                "server busy: {} tool calls in flight; retry later",
                limits.total
            ));
        }
        Ok(CallSlot {
            _server: self.inflight.enter(),
            _session: session.calls().enter(),
        })
    }

    /// Subscribes `session` to `uri`, keeping its peer to notify it of updates.
    pub(crate) fn subscribe(&self, session: &Arc<Session>, uri: String, peer: Peer<RoleServer>) {
        self.subscriptions.subscribe(session, uri, peer);
    }

    /// Sends `notifications/resources/updated` to every session subscribed to `uri`.
    pub(crate) async fn notify_resource_updated(&self, uri: &str) {
        self.subscriptions.notify_resource_updated(uri).await;
    }
}

/// Bounds on tool calls.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Calls one session may have in flight; more are refused, not queued.
    pub(crate) per_session: usize,
    /// Calls all sessions together may have in flight.
    pub(crate) total: usize,
    /// A call running longer is cancelled and answered with an error.
    pub(crate) tool_timeout: Option<std::time::Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_session: 64,
            total: 1024,
            tool_timeout: None,
        }
    }
}

/// A tool call's place among the server's and its session's calls in flight, given back on drop.
pub(crate) struct CallSlot {
    // Dropped in this order, as the two guards were when they were locals.
    _session: InFlightGuard,
    _server: InFlightGuard,
}
