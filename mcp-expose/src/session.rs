#![allow(deprecated)] // logging is deprecated by the 2026-07-28 revision; older clients set a level
//! Session state: each session's log level, subscriptions, caller and tool calls in flight; the
//! count of open sessions (for the session cap); and the [`Subscriptions`] that tell sessions a
//! resource changed. It knows no registry and no server: the [`state`](crate::state) above
//! builds on it.

use crate::observe::metrics::TransportKind;
use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use rmcp::{
    RoleServer,
    model::LoggingLevel,
    service::{Peer, SubscriptionSink},
};

/// The caller a verified access token names: see [`Context::caller`](crate::Context::caller).
///
/// Only what the server checked is here: the token itself never reaches a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// Who issued the token (`iss`): an `--oauth-issuer`, or the Cloudflare Access team.
    pub issuer: String,
    /// The user or client the token was issued to (`sub`).
    pub subject: Option<String>,
    /// The user's email (`email`), which Cloudflare Access tokens carry.
    pub email: Option<String>,
    /// The scopes granted (`scope`, or `scp`).
    pub scopes: Vec<String>,
    /// When the token expires (`exp`). A WebSocket session or an HTTP event stream opened with
    /// it ends then (plus the 30 s allowed for clock skew); other requests are checked each.
    pub expires_at: Option<std::time::SystemTime>,
}

impl Caller {
    /// True if the token granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// When a session opened with this token must end: its expiry plus the clock skew the
    /// token check allows (from then on the token is refused).
    pub(crate) fn deadline(&self) -> Option<tokio::time::Instant> {
        let expires = self.expires_at? + Duration::from_secs(TOKEN_LEEWAY_SECS);
        let left = expires
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        Some(tokio::time::Instant::now() + left)
    }
}

/// Clock skew allowed on a token's `exp` and `nbf`, in seconds.
pub(crate) const TOKEN_LEEWAY_SECS: u64 = 30;

/// The sessions subscribed to resources, to notify them of updates. The server state owns it;
/// a [`Context`](crate::Context) holds it weakly, to send updates from a tool.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    subscribers: Mutex<Vec<Weak<Session>>>,
    /// Open `subscriptions/listen` streams (MCP 2026-07-28), by a number of their own.
    listeners: Mutex<Vec<(u64, SubscriptionSink)>>,
    next_listener: AtomicU64,
    /// With replicas (`--state redis://..`): the Redis that carries updates to the others.
    #[cfg(feature = "redis")]
    shared: OnceLock<crate::store::Redis>,
}

/// The channel on which replicas tell each other of resource updates: `{origin}\n{uri}`.
#[cfg(feature = "redis")]
const UPDATES: &str = "resource-updates";

/// An open `subscriptions/listen` stream; dropping it stops its notifications.
#[derive(Debug)]
pub(crate) struct Listening {
    subscriptions: Arc<Subscriptions>,
    id: u64,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut listeners = self
            .subscriptions
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        listeners.retain(|(id, _)| *id != self.id);
    }
}

impl Subscriptions {
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

    /// Notifies `sink` (a `subscriptions/listen` stream) of updates to the resources it
    /// accepted, until the returned guard is dropped.
    pub(crate) fn listen(self: &Arc<Self>, sink: SubscriptionSink) -> Listening {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.push((id, sink));
        Listening {
            subscriptions: self.clone(),
            id,
        }
    }

    /// Shares updates with the other replicas on `redis` until `stop`: what a tool or the
    /// application announces here reaches the sessions and listen streams they hold (a
    /// subscription lives on the replica that took it), and theirs reach those held here.
    #[cfg(feature = "redis")]
    pub(crate) fn share(
        self: &Arc<Self>,
        redis: crate::store::Redis,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let origin = Arc::clone(redis.origin());
        if self.shared.set(redis.clone()).is_err() {
            return;
        }
        let mut updates = redis.subscribe(UPDATES, "resource updates");
        let subscriptions = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let payload = tokio::select! {
                    payload = updates.recv() => payload,
                    () = stop.cancelled() => None,
                };
                let (Some(payload), Some(subscriptions)) = (payload, subscriptions.upgrade())
                else {
                    return;
                };
                let text = String::from_utf8_lossy(&payload);
                if let Some((from, uri)) = text.split_once('\n')
                    && from != &*origin
                {
                    subscriptions.notify_here(uri).await;
                }
            }
        });
    }

    /// Sends `notifications/resources/updated` to every listen stream that accepted `uri` and
    /// every session subscribed to it, on this replica and (with `--state redis://..`) on
    /// the others.
    pub(crate) async fn notify_resource_updated(&self, uri: &str) {
        self.notify_here(uri).await;
        #[cfg(feature = "redis")]
        if let Some(redis) = self.shared.get() {
            let mut publish = redis::cmd("PUBLISH");
            publish
                .arg(redis.key(UPDATES))
                .arg(format!("{}\n{uri}", redis.origin()));
            if let Err(failure) = redis.query::<i64>(&publish).await {
                tracing::warn!(%uri, "a resource update did not reach the other replicas: {failure}");
            }
        }
    }

    /// [`notify_resource_updated`](Self::notify_resource_updated) on this replica alone.
    async fn notify_here(&self, uri: &str) {
        let sinks: Vec<SubscriptionSink> = {
            let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            listeners
                .iter()
                .map(|(_, sink)| sink)
                .filter(|sink| {
                    let accepted = &sink.accepted().resource_subscriptions;
                    accepted
                        .as_ref()
                        .is_some_and(|uris| uris.iter().any(|u| u == uri))
                })
                .cloned()
                .collect()
        };
        for sink in sinks {
            let params = rmcp::model::ResourceUpdatedNotificationParam::new(uri);
            let update = rmcp::model::ServerNotification::ResourceUpdatedNotification(
                rmcp::model::ResourceUpdatedNotification::new(params),
            );
            if let Err(e) = sink.send(update).await {
                tracing::debug!(error = %e, "resource update not delivered to a listen stream");
            }
        }
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

/// Open sessions of one server or bridge.
#[derive(Debug, Default)]
pub(crate) struct SessionCount(AtomicUsize);

impl SessionCount {
    /// Counts a session until the returned slot is dropped.
    pub(crate) fn open(self: &Arc<Self>) -> SessionSlot {
        self.0.fetch_add(1, Ordering::AcqRel);
        SessionSlot(self.clone())
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One open session; dropping it closes the slot.
#[derive(Debug)]
pub(crate) struct SessionSlot(Arc<SessionCount>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts tool calls in progress, so that shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlight {
    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
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

/// Held while a call is in flight; dropping it counts the call out.
pub(crate) struct InFlightGuard(Arc<InFlight>);

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
    pub(crate) transport: TransportKind,
    /// Tool calls of this session in flight.
    calls: Arc<InFlight>,
    /// The client, kept once it subscribes, to notify it of updates.
    peer: OnceLock<Peer<RoleServer>>,
    pub(crate) headers: Option<http::HeaderMap>,
    /// The caller the WebSocket upgrade's token named.
    pub(crate) caller: Option<Arc<Caller>>,
    /// The WebSocket client's address.
    pub(crate) client: Option<std::net::IpAddr>,
    /// One HTTP request served without a session (`--stateless`): the client's answer to a
    /// request of ours would have nowhere to go.
    pub(crate) stateless: bool,
    _slot: Option<SessionSlot>,
}

impl Drop for Session {
    fn drop(&mut self) {
        crate::observe::metrics::session(self.transport, -1.0);
    }
}

impl Session {
    pub(crate) fn new(
        transport: TransportKind,
        headers: Option<http::HeaderMap>,
        caller: Option<Arc<Caller>>,
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
            stateless: false,
            _slot: slot,
        }
    }

    /// Tool calls of this session in flight.
    pub(crate) fn calls(&self) -> &Arc<InFlight> {
        &self.calls
    }

    pub(crate) fn log_enabled(&self, level: LoggingLevel) -> bool {
        level_rank(level) >= self.log_level.load(Ordering::Relaxed)
    }

    /// Whether `level` is at least `least` (a 2026-07-28 request's own `logLevel`).
    pub(crate) fn at_least(level: LoggingLevel, least: LoggingLevel) -> bool {
        level_rank(level) >= level_rank(least)
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

/// The sessions whose tools wait for the client's answer to a request of theirs (sampling,
/// elicitation, roots), with how many wait: a replica that gets an answer for a session that
/// waits for nothing here hands it on to the others (`--state redis://..`).
static ASKING: std::sync::LazyLock<Mutex<std::collections::HashMap<String, usize>>> =
    std::sync::LazyLock::new(Mutex::default);

fn asking_sessions() -> std::sync::MutexGuard<'static, std::collections::HashMap<String, usize>> {
    ASKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a tool of `session` waits for the client's answer in this process.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn asking(session: &str) -> bool {
    asking_sessions().contains_key(session)
}

/// Marks a tool of `session` as waiting for the client's answer, until dropped.
#[derive(Debug)]
pub(crate) struct Asking(Option<String>);

impl Asking {
    pub(crate) fn start(session: Option<&str>) -> Self {
        if let Some(session) = session {
            *asking_sessions().entry(session.to_owned()).or_default() += 1;
        }
        Self(session.map(str::to_owned))
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        let Some(session) = self.0.take() else {
            return;
        };
        let mut sessions = asking_sessions();
        if let Some(count) = sessions.get_mut(&session) {
            *count -= 1;
            if *count == 0 {
                sessions.remove(&session);
            }
        }
    }
}
