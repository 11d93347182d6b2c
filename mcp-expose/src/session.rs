#![allow(deprecated)] // logging is deprecated by the 2026-07-28 revision; older clients set a level
//! Server and session state: the registry and identity every session shares, the tool calls
//! in flight (for limits and a graceful shutdown), the open sessions, and each session's log
//! level and subscriptions. The [`Handler`](crate::handler::Handler) dispatches over it;
//! a [`Context`](crate::Context) sees it through the session it runs for.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
    },
};

use rmcp::{
    RoleServer,
    model::{LoggingLevel, ServerCapabilities},
    service::Peer,
};

use crate::{
    registry::Registry,
    security::sessions::{SessionCount, SessionSlot},
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
    /// Sessions that subscribed to some resource.
    subscribers: Mutex<Vec<Weak<Session>>>,
    pub(crate) limits: Limits,
    /// Set on shutdown: new calls are refused while in-flight ones finish.
    pub(crate) draining: Arc<AtomicBool>,
    /// Open sessions, for the session cap.
    pub(crate) sessions: Arc<SessionCount>,
}

impl ServerState {
    pub(crate) fn new(
        registry: Registry,
        identity: Identity,
        capabilities: ServerCapabilities,
        limits: Limits,
    ) -> Self {
        Self {
            registry,
            identity,
            capabilities,
            inflight: Arc::default(),
            subscribers: Mutex::default(),
            limits,
            draining: Arc::default(),
            sessions: Arc::default(),
        }
    }

    /// Takes a place for one tool call of `session`, or says which limit it is over: over a
    /// limit, a call is refused at once, as queueing would only hide the overload.
    pub(crate) fn admit(&self, session: &Session) -> Result<CallSlot, String> {
        let limits = &self.limits;
        if self.draining.load(Ordering::Relaxed) {
            return Err("server is shutting down; retry on another instance".to_owned());
        }
        if session.calls.count() >= limits.per_session {
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
            _session: session.calls.enter(),
        })
    }

    /// Subscribes `session` to `uri`, keeping its peer to notify it of updates.
    pub(crate) fn subscribe(&self, session: &Arc<Session>, uri: String, peer: Peer<RoleServer>) {
        session
            .subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uri);
        if session.peer.set(peer).is_ok() {
            let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
            subscribers.push(Arc::downgrade(session));
        }
    }

    /// Sends `notifications/resources/updated` to every session subscribed to `uri`.
    pub(crate) async fn notify_resource_updated(&self, uri: &str) {
        let sessions: Vec<Arc<Session>> = {
            let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
            subscribers.retain(|s| s.strong_count() > 0);
            subscribers.iter().filter_map(Weak::upgrade).collect()
        };
        for session in sessions {
            let subscribed = session
                .subscriptions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(uri);
            if let (true, Some(peer)) = (subscribed, session.peer.get()) {
                let params = rmcp::model::ResourceUpdatedNotificationParam::new(uri);
                if let Err(e) = peer.notify_resource_updated(params).await {
                    tracing::debug!(error = %e, "resource update not delivered");
                }
            }
        }
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

/// Counts tool calls in progress, so that shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.clone())
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Completes when no call is in progress.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct InFlightGuard(Arc<InFlight>);

/// A tool call's place among the server's and its session's calls in flight, given back on drop.
pub(crate) struct CallSlot {
    // Dropped in this order, as the two guards were when they were locals.
    _session: InFlightGuard,
    _server: InFlightGuard,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Per-session state: the log level the client chose, its resource subscriptions, and (for a
/// WebSocket) the headers of the upgrade request.
#[derive(Debug)]
pub(crate) struct Session {
    log_level: AtomicU8,
    subscriptions: Mutex<HashSet<String>>,
    /// `stdio`, `http` or `ws`, for metrics.
    pub(crate) transport: &'static str,
    /// Tool calls of this session in flight.
    calls: Arc<InFlight>,
    /// The client, kept once it subscribes, to notify it of updates.
    peer: OnceLock<Peer<RoleServer>>,
    pub(crate) headers: Option<http::HeaderMap>,
    /// The caller the WebSocket upgrade's token named.
    pub(crate) caller: Option<Arc<crate::Caller>>,
    /// The WebSocket client's address.
    pub(crate) client: Option<std::net::IpAddr>,
    _slot: Option<SessionSlot>,
}

impl Drop for Session {
    fn drop(&mut self) {
        crate::observe::metrics::session(self.transport, -1.0);
    }
}

impl Session {
    pub(crate) fn new(
        transport: &'static str,
        headers: Option<http::HeaderMap>,
        caller: Option<Arc<crate::Caller>>,
        client: Option<std::net::IpAddr>,
        slot: Option<SessionSlot>,
    ) -> Self {
        crate::observe::metrics::session(transport, 1.0);
        Self {
            transport,
            log_level: AtomicU8::new(level_rank(LoggingLevel::Info)),
            subscriptions: Mutex::default(),
            calls: Arc::default(),
            peer: OnceLock::new(),
            headers,
            caller,
            client,
            _slot: slot,
        }
    }

    pub(crate) fn log_enabled(&self, level: LoggingLevel) -> bool {
        level_rank(level) >= self.log_level.load(Ordering::Relaxed)
    }

    /// `logging/setLevel`: the least severe level sent to this session from now on.
    pub(crate) fn set_log_level(&self, level: LoggingLevel) {
        self.log_level.store(level_rank(level), Ordering::Relaxed);
    }

    /// `resources/unsubscribe`.
    pub(crate) fn unsubscribe(&self, uri: &str) {
        self.subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uri);
    }
}

fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}
