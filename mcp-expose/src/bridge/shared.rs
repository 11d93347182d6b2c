//! The shared model: one child for every session. Request ids and progress tokens are
//! rewritten per session and mapped back, so each session sees only its own answers;
//! requests from the child (sampling, elicitation, roots) go to the session whose call is in
//! flight; `list_changed` and other notifications without an owner go to everyone; the
//! child's `initialize` result is cached and replayed to later sessions.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, atomic::Ordering},
};

use tokio::sync::mpsc;

use super::{
    ChildSpec,
    child::{BridgeHealth, Crashes, Down, MAX_QUEUED, Outlet},
    envelope::{self, Message},
    process::{Output, Process, launch, next_output},
};

enum Event {
    Attach(u64, Outlet),
    Detach(u64),
    FromClient(u64, Vec<u8>),
    Restart,
}

/// The shared child.
#[derive(Debug, Clone)]
pub(crate) struct SharedChild {
    events: mpsc::UnboundedSender<Event>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

/// One session's attachment to the shared child; dropping it detaches the session.
#[derive(Debug)]
pub(crate) struct SharedLink {
    session: u64,
    events: mpsc::UnboundedSender<Event>,
}

impl Drop for SharedLink {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Detach(self.session));
    }
}

impl SharedLink {
    pub(crate) async fn send(&self, frame: Vec<u8>) -> bool {
        self.events
            .send(Event::FromClient(self.session, frame))
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
        let actor = Actor {
            spec,
            health,
            events: Some(tx.downgrade()),
            ..Actor::default()
        };
        tokio::spawn(actor.run(rx));
        Self {
            events: tx,
            next: Arc::default(),
        }
    }

    pub(crate) fn attach(&self, out: Outlet) -> SharedLink {
        let session = self.next.fetch_add(1, Ordering::Relaxed);
        let _ = self.events.send(Event::Attach(session, out));
        SharedLink {
            session,
            events: self.events.clone(),
        }
    }
}

/// A request forwarded to the child: whose it is, and its original id.
struct Forwarded {
    session: u64,
    id: String,
    token: Option<String>,
}

#[derive(Default)]
struct Actor {
    spec: Arc<ChildSpec>,
    health: Arc<BridgeHealth>,
    events: Option<mpsc::WeakUnboundedSender<Event>>,
    sessions: HashMap<u64, Outlet>,
    child: Option<Process>,
    counter: u64,
    /// Child-side request id -> the session's request.
    requests: HashMap<String, Forwarded>,
    /// Child-side progress token -> (session, original token).
    tokens: HashMap<String, (u64, String)>,
    /// Id sent to a session for a child's request -> (session, the child's id).
    from_child: HashMap<String, (u64, String)>,
    /// The session whose request was forwarded last: the likely cause of a child's request.
    last_active: Option<u64>,
    init_frame: Option<Vec<u8>>,
    initialized_frame: Option<Vec<u8>>,
    init_result: Option<String>,
    /// The child-side id of the `initialize` in flight, and who waits for its result.
    init_pending: Option<String>,
    init_waiting: Vec<(u64, String)>,
    /// A replayed `initialize` after a restart: its answer is swallowed.
    replay: Option<String>,
    queue: VecDeque<Vec<u8>>,
    crashes: Crashes,
    down: Option<Down>,
    failed: Option<String>,
}

impl Actor {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::Attach(session, tx)) => {
                        self.sessions.insert(session, tx);
                        self.health.sessions.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Event::Detach(session)) => {
                        if self.sessions.remove(&session).is_some() {
                            self.health.sessions.fetch_sub(1, Ordering::Relaxed);
                        }
                        self.requests.retain(|_, r| r.session != session);
                        self.tokens.retain(|_, (s, _)| *s != session);
                        self.from_child.retain(|_, (s, _)| *s != session);
                    }
                    Some(Event::FromClient(session, frame)) => self.on_client(session, frame).await,
                    Some(Event::Restart) => self.spawn().await,
                    None => break,
                },
                output = next_output(&mut self.child) => match output {
                    Output::Line(line) => self.on_child(line).await,
                    Output::Exited(why) => self.exited(why).await,
                },
            }
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("\"mx{prefix}{}\"", self.counter)
    }

    async fn send_to(&self, session: u64, line: String) {
        if let Some(out) = self.sessions.get(&session) {
            out.send(line).await;
        }
    }

    async fn send_child(&mut self, frame: Vec<u8>) {
        if self.child.is_none() && self.down.is_none() && self.failed.is_none() {
            self.spawn().await;
        }
        match &mut self.child {
            Some(process) if self.replay.is_none() => {
                process.send(&frame);
            }
            _ if self.queue.len() < MAX_QUEUED => self.queue.push_back(frame),
            _ => tracing::warn!("shared child: queue full while restarting; dropped a message"),
        }
    }

    async fn on_client(&mut self, session: u64, frame: Vec<u8>) {
        let message = match envelope::parse(&frame) {
            Ok(message) => message,
            Err((code, text)) => {
                return self
                    .send_to(session, envelope::error("null", code, &text))
                    .await;
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
                    return self
                        .send_to(session, envelope::error(id, -32000, &text))
                        .await;
                }
                if method == "initialize" {
                    let id = id.to_owned();
                    return self.initialize(session, id, frame).await;
                }
                let child_id = self.next_id("");
                let mut forwarded = envelope::with_id(text.as_bytes(), &child_id);
                let mut token = None;
                if let Some(original) = progress_token {
                    let child_token = self.next_id("t");
                    forwarded = forwarded.and_then(|f| {
                        envelope::with_param(&f, "_meta.progressToken", &child_token)
                    });
                    self.tokens
                        .insert(child_token.clone(), (session, original.to_owned()));
                    token = Some(child_token);
                }
                let Some(forwarded) = forwarded else {
                    return self
                        .send_to(session, envelope::error(id, -32600, "Invalid Request"))
                        .await;
                };
                let id = id.to_owned();
                self.requests
                    .insert(child_id, Forwarded { session, id, token });
                self.last_active = Some(session);
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
                        .and_then(|p| envelope::member(p, "requestId"));
                    let child_id = original.and_then(|original| {
                        self.requests
                            .iter()
                            .find(|(_, r)| r.session == session && r.id == original)
                            .map(|(c, _)| c.clone())
                    });
                    if let Some(rewritten) =
                        child_id.and_then(|c| envelope::with_param(&text, "requestId", &c))
                    {
                        self.send_child(rewritten.into_bytes()).await;
                    }
                }
                _ => self.send_child(frame).await,
            },
            Message::Response { id } => {
                // A session answering the child's request (sampling, elicitation, roots).
                if let Some((_, child_id)) = self.from_child.remove(id)
                    && let Some(rewritten) = envelope::with_id(&frame, &child_id)
                {
                    self.send_child(rewritten.into_bytes()).await;
                }
            }
        }
    }

    async fn initialize(&mut self, session: u64, id: String, frame: Vec<u8>) {
        if let Some(result) = &self.init_result {
            let reply = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#);
            return self.send_to(session, reply).await;
        }
        self.init_waiting.push((session, id));
        if self.init_pending.is_some() {
            return;
        }
        let child_id = self.next_id("init");
        if let Some(forwarded) = envelope::with_id(&frame, &child_id) {
            self.init_frame = Some(frame);
            self.init_pending = Some(child_id);
            self.send_child(forwarded.into_bytes()).await;
        }
    }

    async fn on_child(&mut self, text: String) {
        match envelope::parse(text.as_bytes()) {
            Ok(Message::Response { id }) => {
                if self.replay.as_deref() == Some(id) {
                    self.replay = None;
                    if let (Some(process), Some(initialized)) =
                        (&mut self.child, &self.initialized_frame)
                    {
                        process.send(initialized);
                    }
                    self.flush_queue().await;
                } else if self.init_pending.as_deref() == Some(id) {
                    self.init_pending = None;
                    self.init_result = envelope::member(&text, "result").map(str::to_owned);
                    for (session, original) in std::mem::take(&mut self.init_waiting) {
                        if let Some(reply) = envelope::with_id(text.as_bytes(), &original) {
                            self.send_to(session, reply).await;
                        }
                    }
                } else if let Some(request) = self.requests.remove(id) {
                    if let Some(token) = &request.token {
                        self.tokens.remove(token);
                    }
                    if let Some(reply) = envelope::with_id(text.as_bytes(), &request.id) {
                        self.send_to(request.session, reply).await;
                    }
                }
            }
            Ok(Message::Request { id, .. }) => {
                let active = self
                    .last_active
                    .filter(|s| self.requests.values().any(|r| r.session == *s));
                let session = active.or_else(|| self.requests.values().next().map(|r| r.session));
                let Some(session) = session.filter(|s| self.sessions.contains_key(s)) else {
                    let reply =
                        envelope::error(id, -32603, "no client session is waiting on this server");
                    if let Some(process) = &mut self.child {
                        process.send(reply.as_bytes());
                    }
                    return;
                };
                let session_id = self.next_id("s");
                if let Some(forwarded) = envelope::with_id(text.as_bytes(), &session_id) {
                    self.from_child.insert(session_id, (session, id.to_owned()));
                    self.send_to(session, forwarded).await;
                }
            }
            Ok(Message::Notification {
                method,
                progress_token,
            }) => {
                if method == "notifications/progress"
                    && let Some((session, original)) =
                        progress_token.and_then(|t| self.tokens.get(t).cloned())
                {
                    if let Some(rewritten) = envelope::with_param(&text, "progressToken", &original)
                    {
                        self.send_to(session, rewritten).await;
                    }
                    return;
                }
                for out in self.sessions.values() {
                    out.send(text.clone()).await;
                }
            }
            Err(_) => tracing::warn!("shared child wrote something that is not a JSON-RPC message"),
        }
    }

    async fn flush_queue(&mut self) {
        let Some(process) = &mut self.child else {
            return;
        };
        while let Some(frame) = self.queue.pop_front() {
            process.send(&frame);
        }
    }

    async fn exited(&mut self, why: String) {
        self.child = None;
        self.replay = None;
        tracing::warn!("shared MCP server {why}");
        let text = format!("the MCP server {why} before answering; it is being restarted");
        for (_, request) in std::mem::take(&mut self.requests) {
            self.send_to(request.session, envelope::error(&request.id, -32000, &text))
                .await;
        }
        for (session, id) in std::mem::take(&mut self.init_waiting) {
            self.send_to(session, envelope::error(&id, -32000, &text))
                .await;
        }
        self.init_pending = None;
        self.tokens.clear();
        self.from_child.clear();
        let Some(delay) = self.crashes.record() else {
            let failure = format!(
                "it exited {} times within a minute ({why}); not restarting",
                self.crashes.count()
            );
            tracing::error!("shared MCP server unavailable: {failure}");
            self.health.set_failure(Some(failure.clone()));
            self.failed = Some(failure);
            self.queue.clear();
            return;
        };
        self.down = Some(Down::new(&self.health));
        let events = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(events) = events.and_then(|e| e.upgrade()) {
                let _ = events.send(Event::Restart);
            }
        });
    }

    async fn spawn(&mut self) {
        let restart = self.down.is_some();
        let process = match launch(&self.spec, "shared") {
            Ok(launched) => launched,
            Err(e) => {
                let failure = format!("cannot start `{}`: {e}", self.spec.program);
                tracing::error!("{failure}");
                self.health.set_failure(Some(failure.clone()));
                self.failed = Some(failure);
                return;
            }
        };
        self.down = None;
        self.child = Some(process);
        if restart {
            self.health.restarts.fetch_add(1, Ordering::Relaxed);
            let replay = self.next_id("replay");
            if let (Some(frame), Some(process)) = (
                self.init_frame
                    .as_ref()
                    .and_then(|f| envelope::with_id(f, &replay)),
                &mut self.child,
            ) {
                self.replay = Some(replay);
                process.send(frame.as_bytes());
                return;
            }
        }
        self.flush_queue().await;
    }
}
