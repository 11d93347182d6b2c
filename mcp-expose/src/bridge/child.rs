//! The per-session model: one supervised child behind one client session. Requests are
//! forwarded as raw lines; answers are matched to them by the id's value (a child may
//! re-serialise it) and carry the client's id back as the client wrote it; a call not answered
//! in time, or whose answer was too long, is answered with an error. A dead child's pending
//! requests are answered at once, and the child is restarted with backoff (its `initialize`
//! replayed) until it crash-loops, which ends this session's child only.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use super::{
    envelope::{self, Message},
    health::{BridgeHealth, Crashes, Down},
    process::{Next, Process, launch, next},
};
use crate::jsonrpc::{self, IdKey};

/// How to start the child server.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ChildSpec {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub cwd: Option<PathBuf>,
    /// The longest line read from its stdout (0: no limit); set by the bridge from
    /// `--max-message-size`.
    pub(crate) max_message: usize,
}

impl ChildSpec {
    /// Checks, before serving, that the program can be started: it exists (in `PATH` when it is
    /// a bare name; the child's own `PATH` when `env` sets one) and is executable, and the
    /// working directory exists. A bridge that starts anyway would claim health and fail every
    /// session.
    pub(crate) fn check(&self) -> crate::error::Result<()> {
        use crate::error::{Error, ErrorKind};
        let cwd = match &self.cwd {
            Some(dir) if !dir.is_dir() => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "the child's working directory {} does not exist",
                        dir.display()
                    ),
                )
                .hint("fix --cwd"));
            }
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_default(),
        };
        let path = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| std::ffi::OsString::from(v))
            .or_else(|| std::env::var_os("PATH"));
        which::which_in(&self.program, path, cwd)
            .map(drop)
            .map_err(|_| {
                let what = if self.program.contains('/') {
                    "does not exist or is not an executable file"
                } else {
                    "is not found in PATH"
                };
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "cannot start the bridged command: `{}` {what}",
                        self.program
                    ),
                )
                .hint("check the command after `--` (a full path always works)")
            })
    }
}

/// Frames held for a child while it (re)starts or replays `initialize`; more are not queued.
pub(crate) const MAX_QUEUED: usize = 1024;

/// Where a session's messages from its child go: a channel to its socket's writer
/// (WebSocket), or straight into its HTTP response streams (no task in between).
pub(crate) enum Outlet {
    Channel(mpsc::Sender<String>),
    Http(Arc<Mutex<super::routes::Routes>>),
}

impl Outlet {
    pub(crate) async fn send(&self, line: String) {
        match self {
            Outlet::Channel(tx) => {
                let _ = tx.send(line).await;
            }
            Outlet::Http(routes) => super::routes::route(routes, line),
        }
    }
}

enum Event {
    FromClient(Vec<u8>),
    Restart,
}

/// A request the child has not answered yet.
#[derive(Debug)]
struct Pending {
    /// The id as the client wrote it, raw JSON.
    raw: String,
    deadline: Instant,
}

/// A client session's link to its own child. Dropping every clone stops the child.
#[derive(Debug, Clone)]
pub(crate) struct ChildSession {
    events: mpsc::Sender<Event>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Event")
    }
}

impl ChildSession {
    /// Starts a session; the child's messages (and synthesized errors) go to `out`.
    pub(crate) fn start(
        spec: Arc<ChildSpec>,
        tag: String,
        health: Arc<BridgeHealth>,
        out: Outlet,
        timeout: Duration,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::channel(256);
        health.sessions.fetch_add(1, Ordering::Relaxed);
        let actor = Actor {
            spec,
            tag,
            health,
            events: events_tx.downgrade(),
            out,
            spawned: false,
            child: None,
            timeout,
            pending: HashMap::new(),
            init: None,
            initialized: None,
            replay: None,
            queue: VecDeque::new(),
            crashes: Crashes::default(),
            failed: None,
            down: None,
            starting: None,
            started: false,
            set_failure: None,
        };
        tokio::spawn(actor.run(events_rx));
        Self { events: events_tx }
    }

    /// Forwards one message from the client.
    pub(crate) async fn send(&self, frame: Vec<u8>) -> bool {
        self.events.send(Event::FromClient(frame)).await.is_ok()
    }
}

struct Actor {
    spec: Arc<ChildSpec>,
    tag: String,
    health: Arc<BridgeHealth>,
    events: mpsc::WeakSender<Event>,
    out: Outlet,
    spawned: bool,
    child: Option<Process>,
    /// How long a request may wait for its answer.
    timeout: Duration,
    pending: HashMap<IdKey, Pending>,
    init: Option<Vec<u8>>,
    initialized: Option<Vec<u8>>,
    /// The id of a replayed `initialize` whose answer the client must not see.
    replay: Option<IdKey>,
    queue: VecDeque<Vec<u8>>,
    crashes: Crashes,
    failed: Option<String>,
    down: Option<Down>,
    /// The id of the `initialize` (the client's, or a replay) the current child has not
    /// answered yet: its start is not known to have succeeded.
    starting: Option<IdKey>,
    /// A child of this session answered its `initialize` once.
    started: bool,
    /// The bridge-wide failure this session reported, while it stands.
    set_failure: Option<String>,
}

impl Actor {
    async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        loop {
            let deadline = self.pending.values().map(|p| p.deadline).min();
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::FromClient(frame)) => self.on_client(frame).await,
                    Some(Event::Restart) => self.spawn().await,
                    // Every sender is gone: the client left.
                    None => break,
                },
                output = next(&mut self.child) => match output {
                    Next::Line(line) => self.on_child(line).await,
                    Next::TooLong => self.too_long().await,
                    Next::Exited(why) => self.exited(why).await,
                },
                () = sleep_until(deadline) => self.expire().await,
            }
        }
        // Dropping the process stops it.
        self.child = None;
        self.health.sessions.fetch_sub(1, Ordering::Relaxed);
    }

    async fn reply(&self, line: String) {
        self.out.send(line).await;
    }

    async fn on_client(&mut self, frame: Vec<u8>) {
        let message = match envelope::parse(&frame) {
            Ok(message) => message,
            Err((code, text)) => return self.reply(jsonrpc::error("null", code, &text)).await,
        };
        let request = match &message {
            Message::Request { id, method, .. } => {
                if let Some(failure) = &self.failed {
                    let text = format!("the MCP server is unavailable: {failure}");
                    return self
                        .reply(jsonrpc::error(id, jsonrpc::SERVER_UNAVAILABLE, &text))
                        .await;
                }
                if method == "initialize" {
                    self.init = Some(frame.clone());
                    self.starting = Some(IdKey::of(id));
                }
                let pending = Pending {
                    raw: (*id).to_owned(),
                    deadline: Instant::now() + self.timeout,
                };
                self.pending.insert(IdKey::of(id), pending);
                Some(IdKey::of(id))
            }
            Message::Notification { method, .. } if method == "notifications/initialized" => {
                self.initialized = Some(frame.clone());
                None
            }
            _ => None,
        };
        if !self.spawned {
            self.spawned = true;
            self.spawn().await;
        }
        match &mut self.child {
            Some(process) if self.replay.is_none() => {
                process.send(&frame);
            }
            _ if self.queue.len() < MAX_QUEUED && self.failed.is_none() => {
                self.queue.push_back(frame)
            }
            _ => {
                if let Some(pending) = request.and_then(|id| self.pending.remove(&id)) {
                    self.reply(jsonrpc::error(
                        &pending.raw,
                        jsonrpc::SERVER_UNAVAILABLE,
                        "the MCP server is not running",
                    ))
                    .await;
                }
            }
        }
    }

    async fn on_child(&mut self, line: String) {
        let id = match envelope::parse(line.as_bytes()) {
            Ok(Message::Response { id }) => id,
            // The envelope reads `"id": null` as no id: an answer to a request it could not read.
            Err(_) => "null",
            Ok(_) => return self.reply(line).await,
        };
        let key = IdKey::of(id);
        if self.starting.as_ref() == Some(&key) {
            self.start_succeeded();
        }
        if self.replay.as_ref() == Some(&key) {
            // The restarted child is initialized: resume the session where it was.
            self.replay = None;
            if let (Some(process), Some(initialized)) = (&mut self.child, &self.initialized) {
                process.send(initialized);
            }
            self.flush_queue().await;
            return;
        }
        let Some(pending) = self.answered(&key) else {
            tracing::debug!(session = %self.tag, "dropped an answer to no pending request ({id})");
            return;
        };
        if pending.raw == id {
            return self.reply(line).await;
        }
        // The client's own id, as it wrote it: its streams and its client match it as text.
        let line = envelope::with_id(line.as_bytes(), &pending.raw).unwrap_or(line);
        self.reply(line).await;
    }

    /// The pending request an answer with id `key` is for: the same value, else the same
    /// number as a float (a child that keeps numbers as floats), else the one request in
    /// flight when the id is `null` (a child that could not read the id).
    fn answered(&mut self, key: &IdKey) -> Option<Pending> {
        if let Some(pending) = self.pending.remove(key) {
            return Some(pending);
        }
        let matched = match key.float() {
            Some(float) => self
                .pending
                .keys()
                .find(|k| k.float() == Some(float))
                .cloned(),
            None if *key == IdKey::Other("null".to_owned()) && self.pending.len() == 1 => {
                self.pending.keys().next().cloned()
            }
            None => None,
        };
        self.pending.remove(&matched?)
    }

    /// A child answered its `initialize`: children can be started, whatever failed before.
    fn start_succeeded(&mut self) {
        self.starting = None;
        self.started = true;
        self.set_failure = None;
        self.health.set_failure(None);
    }

    /// Children cannot be started (as far as this session knows): no new session can be
    /// served until one is.
    fn start_failed(&mut self, failure: String) {
        self.health.set_failure(Some(failure.clone()));
        self.set_failure = Some(failure);
    }

    /// Answers every request past its deadline with an error.
    async fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<IdKey> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let text = format!(
            "the MCP server did not answer within {} s",
            self.timeout.as_secs()
        );
        for key in expired {
            if let Some(pending) = self.pending.remove(&key) {
                tracing::warn!(session = %self.tag, id = %pending.raw, "{text}");
                self.reply(jsonrpc::error(
                    &pending.raw,
                    jsonrpc::REQUEST_TIMEOUT,
                    &text,
                ))
                .await;
            }
        }
    }

    /// The child wrote a line over the message size limit (skipped up to its newline): the
    /// calls in flight cannot get their answer, and learn why at once.
    async fn too_long(&mut self) {
        let max = self.child.as_ref().map_or(usize::MAX, |p| p.max_line);
        let text = format!(
            "the MCP server sent a message larger than the limit of {max} bytes (--max-message-size)"
        );
        tracing::warn!(session = %self.tag, "{text}");
        for (_, pending) in std::mem::take(&mut self.pending) {
            self.reply(jsonrpc::error(
                &pending.raw,
                jsonrpc::SERVER_UNAVAILABLE,
                &text,
            ))
            .await;
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
        tracing::warn!(session = %self.tag, "MCP server {why}");
        if self.starting.take().is_some() {
            self.start_failed(format!("the MCP server {why} before answering initialize"));
        }
        let text = format!("the MCP server {why} before answering; it is being restarted");
        for (_, pending) in std::mem::take(&mut self.pending) {
            self.reply(jsonrpc::error(
                &pending.raw,
                jsonrpc::SERVER_UNAVAILABLE,
                &text,
            ))
            .await;
        }
        let Some(delay) = self.crashes.record() else {
            let failure = format!(
                "it exited {} times within a minute ({why}); not restarting",
                self.crashes.count()
            );
            return self.fail(failure).await;
        };
        self.down = Some(Down::session(&self.health));
        let events = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(events) = events.upgrade() {
                let _ = events.send(Event::Restart).await;
            }
        });
    }

    /// This session's child is given up on; the bridge serves other sessions on.
    async fn fail(&mut self, failure: String) {
        tracing::error!(session = %self.tag, "MCP server unavailable: {failure}");
        self.down = None;
        if !self.started {
            // It never got through `initialize`: neither would a new session's child.
            self.start_failed(failure.clone());
        } else if self.set_failure.is_some() && self.set_failure == self.health.failure() {
            // This session's own crash loop (it started fine before) counts for it alone.
            self.health.set_failure(None);
        }
        self.queue.clear();
        let text = format!("the MCP server is unavailable: {failure}");
        for (_, pending) in std::mem::take(&mut self.pending) {
            self.reply(jsonrpc::error(
                &pending.raw,
                jsonrpc::SERVER_UNAVAILABLE,
                &text,
            ))
            .await;
        }
        self.failed = Some(failure);
    }

    async fn spawn(&mut self) {
        let restart = self.child.is_none() && self.down.is_some();
        let process = match launch(&self.spec, &self.tag) {
            Ok(launched) => launched,
            Err(e) => {
                let failure = format!("cannot start `{}`: {e}", self.spec.program);
                self.fail(failure.clone()).await;
                // Nor would a new session's child start.
                return self.start_failed(failure);
            }
        };
        self.down = None;
        if restart {
            self.health.restarts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(session = %self.tag, pid = process.pid, "restarted the MCP server");
        }
        self.child = Some(process);
        if restart && let Some(init) = &self.init {
            let replay = format!(
                "\"mcp-expose-replay-{}\"",
                self.health.restarts.load(Ordering::Relaxed)
            );
            if let (Some(frame), Some(process)) =
                (envelope::with_id(init, &replay), &mut self.child)
            {
                self.replay = Some(IdKey::of(&replay));
                self.starting = self.replay.clone();
                process.send(frame.as_bytes());
                return;
            }
        }
        self.flush_queue().await;
    }
}

/// Sleeps until `deadline`; forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
