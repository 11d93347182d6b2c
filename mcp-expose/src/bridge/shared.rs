//! The shared model: one child for every session, which must not let one session reach into
//! another. Each client frame reaches the child as exactly one line, every request under an id
//! of the bridge's own (random per process, never the client's), and only an answer to an id the
//! bridge issued and still awaits goes back, by value, to the session that asked. What the child
//! sends unasked goes only where it can be attributed: progress by its token, `resources/updated`
//! to the sessions subscribed, `list_changed` to everyone, a log line or a request (sampling,
//! elicitation, roots) to the one session with calls in flight and, for a request, the
//! capability it needs; a request that cannot be attributed is refused, anything else dropped.
//! The child's `initialize` result is cached and replayed to later sessions. Each session's
//! messages go through a queue bounded in bytes ([`outbox`]), so no session can stall the rest.

mod capabilities;
mod ids;
mod outbox;
mod supervise;

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use tokio::sync::mpsc;

use super::{
    ChildSpec,
    child::Outlet,
    envelope::{self, Message},
    health::{BridgeHealth, Crashes, Down},
    process::{Output, Process, next_output},
};
use crate::jsonrpc::{self, IdKey};
use capabilities::Capabilities;
use ids::Ids;
use outbox::Outbox;

/// The client capabilities the shared child is initialized with: whichever session a request
/// of these kinds belongs to, the bridge either forwards it there (when that session declared
/// the capability) or refuses it, so the child can rely on an answer.
const CAPABILITIES: &str = r#"{"sampling":{},"elicitation":{},"roots":{}}"#;

enum Event {
    Attach(u64, Outlet, Arc<AtomicBool>),
    Detach(u64),
    /// A client frame, holding its share of the session's budget until the child has it.
    FromClient(u64, Vec<u8>, tokio::sync::OwnedSemaphorePermit),
    Restart,
    /// Once a second: fail the calls the child has not answered within the request timeout.
    Expire,
}

/// The shared child.
#[derive(Debug, Clone)]
pub(crate) struct SharedChild {
    events: mpsc::UnboundedSender<Event>,
    next: Arc<AtomicU64>,
    /// Seconds a call may wait for the child's answer (the bridge's --request-timeout).
    pub(crate) timeout_secs: Arc<AtomicU64>,
}

/// One session's attachment to the shared child; dropping it detaches the session.
#[derive(Debug)]
pub(crate) struct SharedLink {
    session: u64,
    events: mpsc::UnboundedSender<Event>,
    /// Set once the bridge dropped the session (it fell behind): its socket should close.
    dropped: Arc<AtomicBool>,
    /// KiB it may have queued for the child: a fast client waits, the bridge does not grow.
    budget: Arc<tokio::sync::Semaphore>,
}

const CLIENT_BUDGET_KIB: u32 = 4 * 1024;

impl Drop for SharedLink {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Detach(self.session));
    }
}

impl SharedLink {
    /// Forwards one client frame; `false` once the session is over.
    pub(crate) async fn send(&self, frame: Vec<u8>) -> bool {
        let kib = u32::try_from(frame.len() / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(CLIENT_BUDGET_KIB);
        let Ok(permit) = self.budget.clone().acquire_many_owned(kib).await else {
            return false;
        };
        !self.dropped.load(Ordering::Acquire)
            && self
                .events
                .send(Event::FromClient(self.session, frame, permit))
                .is_ok()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Event")
    }
}

impl SharedChild {
    pub(crate) fn start(spec: Arc<ChildSpec>, health: Arc<BridgeHealth>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let timeout_secs = Arc::new(AtomicU64::new(
            crate::bridge::DEFAULT_REQUEST_TIMEOUT.as_secs(),
        ));
        let actor = Actor {
            spec,
            health,
            events: Some(tx.downgrade()),
            ids: Ids::new(),
            timeout_secs: timeout_secs.clone(),
            ..Actor::default()
        };
        supervise::tick(tx.downgrade());
        tokio::spawn(actor.run(rx));
        Self {
            events: tx,
            next: Arc::default(),
            timeout_secs,
        }
    }

    pub(crate) fn attach(&self, out: Outlet) -> SharedLink {
        let session = self.next.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::<AtomicBool>::default();
        let _ = self
            .events
            .send(Event::Attach(session, out, dropped.clone()));
        SharedLink {
            session,
            events: self.events.clone(),
            dropped,
            budget: Arc::new(tokio::sync::Semaphore::new(CLIENT_BUDGET_KIB as usize)),
        }
    }
}

/// A request forwarded to the child: whose it is, its original id, and the id it has there.
struct Forwarded {
    session: u64,
    /// The client's id, raw, and by value.
    id: String,
    key: IdKey,
    /// The child-side id, raw.
    child_id: String,
    token: Option<IdKey>,
    /// A `resources/subscribe`'s URI (by value): the session subscribes once the child agrees.
    subscribes: Option<IdKey>,
    sent: std::time::Instant,
}

struct Member {
    outbox: Outbox,
    capabilities: Capabilities,
    dropped: Arc<AtomicBool>,
}

#[derive(Default)]
struct Actor {
    spec: Arc<ChildSpec>,
    health: Arc<BridgeHealth>,
    events: Option<mpsc::WeakUnboundedSender<Event>>,
    sessions: HashMap<u64, Member>,
    child: Option<Process>,
    ids: Ids,
    /// Child-side request id -> the session's request.
    requests: HashMap<IdKey, Forwarded>,
    /// Child-side progress token -> (session, original token).
    tokens: HashMap<IdKey, (u64, String)>,
    /// Id sent to a session for a child's request -> (session, the child's id, the id sent).
    from_child: HashMap<IdKey, (u64, String, String)>,
    /// Resource URI (by value) -> the sessions subscribed to it.
    subscribed: HashMap<IdKey, Vec<u64>>,
    init_frame: Option<Vec<u8>>,
    initialized_frame: Option<Vec<u8>>,
    init_result: Option<String>,
    /// The child-side id of the `initialize` in flight, and who waits for its result.
    init_pending: Option<IdKey>,
    /// When that `initialize` went to the child (it too gets --request-timeout).
    init_since: Option<std::time::Instant>,
    init_waiting: Vec<(u64, String)>,
    /// A replayed `initialize` after a restart: its answer is swallowed.
    replay: Option<IdKey>,
    queue: VecDeque<Vec<u8>>,
    crashes: Crashes,
    down: Option<Down>,
    failed: Option<String>,
    timeout_secs: Arc<AtomicU64>,
}

impl Actor {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::Attach(session, out, dropped)) => self.attach(session, out, dropped),
                    Some(Event::Detach(session)) => self.detach(session),
                    Some(Event::FromClient(session, frame, _kib)) => self.on_client(session, frame).await,
                    Some(Event::Restart) => self.spawn().await,
                    Some(Event::Expire) => self.expire(),
                    None => break,
                },
                output = next_output(&mut self.child) => match output {
                    Output::Line(line) => self.on_child(line).await,
                    Output::Exited(why) => self.exited(why).await,
                },
            }
        }
    }

    fn attach(&mut self, session: u64, out: Outlet, dropped: Arc<AtomicBool>) {
        let events = self.events.clone();
        let stalled = move || {
            tracing::warn!("dropped a shared-child session whose client stopped reading");
            if let Some(events) = events.and_then(|e| e.upgrade()) {
                let _ = events.send(Event::Detach(session));
            }
        };
        let member = Member {
            outbox: Outbox::new(out, stalled),
            capabilities: Capabilities::default(),
            dropped,
        };
        self.sessions.insert(session, member);
        self.health.sessions.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends a session: its calls are forgotten, the child's requests to it refused.
    fn detach(&mut self, session: u64) {
        let Some(member) = self.sessions.remove(&session) else {
            return;
        };
        member.dropped.store(true, Ordering::Release);
        self.health.sessions.fetch_sub(1, Ordering::Relaxed);
        self.requests.retain(|_, r| r.session != session);
        self.tokens.retain(|_, (s, _)| *s != session);
        self.init_waiting.retain(|(s, _)| *s != session);
        for subscribers in self.subscribed.values_mut() {
            subscribers.retain(|s| *s != session);
        }
        self.subscribed
            .retain(|_, subscribers| !subscribers.is_empty());
        let refused: Vec<String> = self
            .from_child
            .extract_if(|_, (s, _, _)| *s == session)
            .map(|(_, (_, id, _))| id)
            .collect();
        for id in refused {
            self.answer_child(jsonrpc::error(
                &id,
                jsonrpc::SERVER_UNAVAILABLE,
                "the client session ended",
            ));
        }
    }

    /// Hands `line` to `session`'s queue; a session past its bound is dropped.
    fn send_to(&mut self, session: u64, line: String) {
        let Some(member) = self.sessions.get(&session) else {
            return;
        };
        if !member.outbox.push(line) {
            tracing::warn!(
                "dropped a shared-child session more than {} bytes behind",
                outbox::QUEUE_BYTES
            );
            self.detach(session);
        }
    }

    /// Writes an answer to the running child's own request, at once.
    fn answer_child(&mut self, line: String) {
        if let Some(process) = &mut self.child {
            process.send(line.as_bytes());
        }
    }

    async fn on_client(&mut self, session: u64, frame: Vec<u8>) {
        if !self.sessions.contains_key(&session) {
            return;
        }
        // Never more than one line: a frame with raw newlines between its tokens must not become
        // several messages (newlines anywhere else make it no JSON, refused below).
        let frame =
            if memchr::memchr2(b'\n', b'\r', &frame).is_some() && envelope::parse(&frame).is_ok() {
                envelope::one_line(frame)
            } else {
                frame
            };
        let message = match envelope::parse(&frame) {
            Ok(message) => message,
            Err((code, text)) => {
                return self.send_to(session, jsonrpc::error("null", code, &text));
            }
        };
        let text = String::from_utf8_lossy(&frame);
        match message {
            Message::Request {
                id,
                method,
                progress_token,
            } => {
                if let Some(failure) = &self.failed {
                    let text = format!("the MCP server is unavailable: {failure}");
                    return self.send_to(
                        session,
                        jsonrpc::error(id, jsonrpc::SERVER_UNAVAILABLE, &text),
                    );
                }
                if method == "initialize" {
                    if let Some(member) = self.sessions.get_mut(&session) {
                        member.capabilities = Capabilities::read(&text);
                    }
                    let id = id.to_owned();
                    return self.initialize(session, id, &text).await;
                }
                let uri = || {
                    envelope::member(&text, "params")
                        .and_then(|p| envelope::member(p, "uri"))
                        .map(IdKey::of)
                };
                let subscribes = (method == "resources/subscribe").then(uri).flatten();
                if method == "resources/unsubscribe"
                    && let Some(uri) = uri()
                    && let Some(subscribers) = self.subscribed.get_mut(&uri)
                {
                    subscribers.retain(|s| *s != session);
                }
                let child_id = self.ids.next("");
                let mut forwarded = envelope::with_id(text.as_bytes(), &child_id);
                let mut token = None;
                if let Some(original) = progress_token {
                    let child_token = self.ids.next("t");
                    forwarded = forwarded.and_then(|f| {
                        envelope::with_param(&f, "_meta.progressToken", &child_token)
                    });
                    let key = IdKey::of(&child_token);
                    self.tokens
                        .insert(key.clone(), (session, original.to_owned()));
                    token = Some(key);
                }
                let Some(forwarded) = forwarded else {
                    return self.send_to(
                        session,
                        jsonrpc::error(id, jsonrpc::INVALID_REQUEST, "Invalid Request"),
                    );
                };
                let request = Forwarded {
                    session,
                    id: id.to_owned(),
                    key: IdKey::of(id),
                    child_id: child_id.clone(),
                    token,
                    subscribes,
                    sent: std::time::Instant::now(),
                };
                self.requests.insert(IdKey::of(&child_id), request);
                self.send_child(forwarded.into_bytes()).await;
            }
            Message::Notification { method, .. } => match method.as_ref() {
                "notifications/initialized" => {
                    // The child is initialized once; later sessions' notifications are absorbed.
                    if self.initialized_frame.is_none() {
                        self.initialized_frame = Some(frame.clone());
                        self.send_child(frame).await;
                    }
                }
                "notifications/cancelled" => {
                    let original = envelope::member(&text, "params")
                        .and_then(|p| envelope::member(p, "requestId"))
                        .map(IdKey::of);
                    // A cancelled request is not answered: it no longer counts as in flight
                    // (which would leave what the child sends unattributable).
                    let cancelled = original.and_then(|original| {
                        self.requests
                            .iter()
                            .find(|(_, r)| r.session == session && r.key == original)
                            .map(|(key, _)| key.clone())
                    });
                    let child_id = cancelled
                        .and_then(|key| self.requests.remove(&key))
                        .map(|r| {
                            if let Some(token) = &r.token {
                                self.tokens.remove(token);
                            }
                            r.child_id
                        });
                    if let Some(rewritten) =
                        child_id.and_then(|c| envelope::with_param(&text, "requestId", &c))
                    {
                        self.send_child(rewritten.into_bytes()).await;
                    }
                }
                // One session's roots are not everyone's: the child was not offered this.
                "notifications/roots/list_changed" => {}
                _ => self.send_child(frame).await,
            },
            Message::Response { id } => {
                // A session answering the child's request (sampling, elicitation, roots): only
                // the session it was sent to may.
                let key = IdKey::of(id);
                let Some((owner, child_id, _)) = self.from_child.get(&key) else {
                    return tracing::debug!("dropped a client's answer to no request of its own");
                };
                if *owner != session {
                    return tracing::warn!(
                        "dropped a client's answer to another session's request"
                    );
                }
                let rewritten = envelope::with_id(&frame, child_id);
                self.from_child.remove(&key);
                if let Some(rewritten) = rewritten {
                    self.send_child(rewritten.into_bytes()).await;
                }
            }
        }
    }

    async fn initialize(&mut self, session: u64, id: String, frame: &str) {
        if let Some(result) = &self.init_result {
            let reply = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#);
            return self.send_to(session, reply);
        }
        self.init_waiting.push((session, id));
        if self.init_pending.is_some() {
            return;
        }
        let child_id = self.ids.next("init");
        let frame = envelope::with_param(frame, "capabilities", CAPABILITIES)
            .unwrap_or_else(|| frame.to_owned());
        if let Some(forwarded) = envelope::with_id(frame.as_bytes(), &child_id) {
            self.init_frame = Some(frame.into_bytes());
            self.init_pending = Some(IdKey::of(&child_id));
            self.init_since = Some(std::time::Instant::now());
            self.send_child(forwarded.into_bytes()).await;
        }
    }

    /// The session whose calls are the only ones in flight: the one a message the child sends
    /// unasked can be attributed to.
    fn only_caller(&self) -> Option<u64> {
        let mut callers = self.requests.values().map(|r| r.session);
        let first = callers.next()?;
        callers.all(|s| s == first).then_some(first)
    }

    async fn on_child(&mut self, line: String) {
        // A raw carriage return (between tokens) would split an event-stream line.
        let text = if line.contains('\r') && envelope::parse(line.as_bytes()).is_ok() {
            line.replace('\r', " ")
        } else {
            line
        };
        match envelope::parse(text.as_bytes()) {
            Ok(Message::Response { id }) => self.on_child_response(&IdKey::of(id), &text).await,
            Ok(Message::Request { id, method, .. }) => {
                let (id, method) = (id.to_owned(), method.into_owned());
                self.on_child_request(&id, &method, &text);
            }
            Ok(Message::Notification {
                method,
                progress_token,
            }) => {
                // MCP 2026-07-28: what a `subscriptions/listen` streams goes to its listener.
                let listen = envelope::subscription(&text).map(IdKey::of);
                if let Some(request) = listen.and_then(|key| self.requests.get(&key)) {
                    let tag = envelope::SUBSCRIPTION_ID;
                    if let Some(rewritten) = envelope::with_param(&text, tag, &request.id) {
                        self.send_to(request.session, rewritten);
                    }
                    return;
                }
                let targets: Vec<u64> = if method == "notifications/progress" {
                    let token = progress_token.map(IdKey::of);
                    match token.and_then(|t| self.tokens.get(&t).cloned()) {
                        Some((session, original)) => {
                            if let Some(rewritten) =
                                envelope::with_param(&text, "progressToken", &original)
                            {
                                self.send_to(session, rewritten);
                            }
                            return;
                        }
                        None => Vec::new(),
                    }
                } else if method.ends_with("/list_changed") {
                    self.sessions.keys().copied().collect()
                } else if method == "notifications/resources/updated" {
                    let uri = envelope::member(&text, "params")
                        .and_then(|p| envelope::member(p, "uri"))
                        .map(IdKey::of);
                    uri.and_then(|u| self.subscribed.get(&u).cloned())
                        .unwrap_or_default()
                } else if method == "notifications/cancelled" {
                    return self.on_child_cancelled(&text);
                } else {
                    self.only_caller().into_iter().collect()
                };
                if targets.is_empty() {
                    tracing::debug!(%method, "dropped a shared child's notification no session owns");
                }
                for session in targets {
                    self.send_to(session, text.clone());
                }
            }
            Err(_) => tracing::warn!("shared child wrote something that is not a JSON-RPC message"),
        }
    }

    async fn on_child_response(&mut self, key: &IdKey, text: &str) {
        if self.replay.as_ref() == Some(key) {
            self.replay = None;
            if let (Some(process), Some(initialized)) = (&mut self.child, &self.initialized_frame) {
                process.send(initialized);
            }
            self.flush_queue().await;
        } else if self.init_pending.as_ref() == Some(key) {
            self.init_pending = None;
            self.init_result = envelope::member(text, "result").map(str::to_owned);
            for (session, original) in std::mem::take(&mut self.init_waiting) {
                if let Some(reply) = envelope::with_id(text.as_bytes(), &original) {
                    self.send_to(session, reply);
                }
            }
        } else if let Some(request) = self.requests.remove(key) {
            if let Some(token) = &request.token {
                self.tokens.remove(token);
            }
            if let Some(uri) = request.subscribes
                && envelope::member(text, "result").is_some()
            {
                let subscribers = self.subscribed.entry(uri).or_default();
                if !subscribers.contains(&request.session) {
                    subscribers.push(request.session);
                }
            }
            if let Some(reply) = envelope::with_id(text.as_bytes(), &request.id) {
                self.send_to(request.session, reply);
            }
        } else {
            tracing::debug!("dropped a shared child's answer to no request the bridge awaits");
        }
    }

    /// A request from the child goes to the one session it can belong to, if that session
    /// declared the capability it needs; otherwise the child gets an error at once.
    fn on_child_request(&mut self, id: &str, method: &str, text: &str) {
        if method == "ping" {
            return self.answer_child(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#));
        }
        let Some(session) = self.only_caller() else {
            let refusal = "the request cannot be attributed to one client session";
            return self.answer_child(jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, refusal));
        };
        let capabilities = self.sessions.get(&session).map(|m| m.capabilities);
        if let Some(lacking) = capabilities.unwrap_or_default().lacks(method) {
            let refusal = format!("the client session did not declare the `{lacking}` capability");
            return self.answer_child(jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, &refusal));
        }
        let session_id = Ids::for_session();
        if let Some(forwarded) = envelope::with_id(text.as_bytes(), &session_id) {
            let key = IdKey::of(&session_id);
            self.from_child
                .insert(key, (session, id.to_owned(), session_id));
            self.send_to(session, forwarded);
        }
    }

    /// The child withdrew one of its requests: only the session that has it hears of it.
    fn on_child_cancelled(&mut self, text: &str) {
        let withdrawn = envelope::member(text, "params")
            .and_then(|p| envelope::member(p, "requestId"))
            .map(IdKey::of);
        let Some(withdrawn) = withdrawn else {
            return;
        };
        let found = self
            .from_child
            .iter()
            .find(|(_, (_, child_id, _))| IdKey::of(child_id) == withdrawn)
            .map(|(key, (session, _, sent))| (key.clone(), *session, sent.clone()));
        if let Some((key, session, sent)) = found {
            self.from_child.remove(&key);
            if let Some(rewritten) = envelope::with_param(text, "requestId", &sent) {
                self.send_to(session, rewritten);
            }
        }
    }
}
