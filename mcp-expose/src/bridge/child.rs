//! The per-session model: one supervised child behind one client session. Requests are
//! forwarded as raw lines; a dead child's pending requests are answered at once, and the child
//! is restarted with backoff (its `initialize` replayed) until it crash-loops.

use std::{
    collections::{HashSet, VecDeque},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use super::{
    envelope::{self, Message},
    process::{Output, Process, launch, next_output},
};

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
}

impl ChildSpec {
    /// Checks, before serving, that the program can be started: it exists (in `PATH` when it is
    /// a bare name; the child's own `PATH` when `env` sets one) and is executable, and the
    /// working directory exists. A bridge that starts anyway would claim health and fail every
    /// session.
    pub(crate) fn check(&self) -> crate::Result<()> {
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

/// Counters the health endpoint reports.
#[derive(Debug, Default)]
pub(crate) struct BridgeHealth {
    pub(crate) sessions: AtomicUsize,
    /// Children that are dead and not yet restarted.
    pub(crate) down: AtomicUsize,
    pub(crate) restarts: AtomicU64,
    pub(crate) failure: Mutex<Option<String>>,
}

impl BridgeHealth {
    pub(crate) fn healthy(&self) -> bool {
        self.down.load(Ordering::Relaxed) == 0
            && self.failure.lock().map(|f| f.is_none()).unwrap_or(false)
    }

    pub(crate) fn set_failure(&self, failure: Option<String>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = failure;
    }
}

const CRASH_WINDOW: Duration = Duration::from_secs(60);
const MAX_CRASHES: usize = 5;
pub(crate) const MAX_QUEUED: usize = 1024;

/// Exits within the last minute: the restart delay, or the verdict that the child crash-loops.
#[derive(Debug, Default)]
pub(crate) struct Crashes(VecDeque<Instant>);

impl Crashes {
    /// Records an exit; `None` means: stop restarting.
    pub(crate) fn record(&mut self) -> Option<Duration> {
        let now = Instant::now();
        self.0.push_back(now);
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            self.0.pop_front();
        }
        if self.0.len() >= MAX_CRASHES {
            return None;
        }
        let step = Duration::from_millis(100).saturating_mul(1 << (self.0.len() - 1));
        Some(step.min(Duration::from_secs(5)))
    }

    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }
}

/// Marks a child down in the health counters while it lives.
#[derive(Debug)]
pub(crate) struct Down(Arc<BridgeHealth>);

impl Down {
    pub(crate) fn new(health: &Arc<BridgeHealth>) -> Self {
        health.down.fetch_add(1, Ordering::Relaxed);
        Self(health.clone())
    }
}

impl Drop for Down {
    fn drop(&mut self) {
        self.0.down.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where a session's messages from its child go: a channel to its socket's writer
/// (WebSocket), or straight into its HTTP response streams (no task in between).
pub(crate) enum Outlet {
    Channel(mpsc::Sender<String>),
    Http(Arc<Mutex<super::http::Routes>>),
}

impl Outlet {
    pub(crate) async fn send(&self, line: String) {
        match self {
            Outlet::Channel(tx) => {
                let _ = tx.send(line).await;
            }
            Outlet::Http(routes) => super::http::route(routes, line),
        }
    }
}

enum Event {
    FromClient(Vec<u8>),
    Restart,
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
    ) -> Self {
        let (events_tx, events_rx) = mpsc::channel(256);
        health.sessions.fetch_add(1, Ordering::Relaxed);
        let actor = Actor {
            spec,
            tag,
            health,
            events: events_tx.downgrade(),
            out,
            started: false,
            child: None,
            pending: HashSet::new(),
            init: None,
            initialized: None,
            replay: None,
            queue: VecDeque::new(),
            crashes: Crashes::default(),
            failed: None,
            down: None,
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
    started: bool,
    child: Option<Process>,
    pending: HashSet<String>,
    init: Option<Vec<u8>>,
    initialized: Option<Vec<u8>>,
    /// The id of a replayed `initialize` whose answer the client must not see.
    replay: Option<String>,
    queue: VecDeque<Vec<u8>>,
    crashes: Crashes,
    failed: Option<String>,
    down: Option<Down>,
}

impl Actor {
    async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::FromClient(frame)) => self.on_client(frame).await,
                    Some(Event::Restart) => self.spawn().await,
                    // Every sender is gone: the client left.
                    None => break,
                },
                output = next_output(&mut self.child) => match output {
                    Output::Line(line) => self.on_child(line).await,
                    Output::Exited(why) => self.exited(why).await,
                },
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
            Err((code, text)) => return self.reply(envelope::error("null", code, &text)).await,
        };
        let request = match &message {
            Message::Request { id, method, .. } => {
                if let Some(failure) = &self.failed {
                    let text = format!("the MCP server is unavailable: {failure}");
                    return self.reply(envelope::error(id, -32000, &text)).await;
                }
                if method == "initialize" {
                    self.init = Some(frame.clone());
                }
                self.pending.insert((*id).to_owned());
                Some((*id).to_owned())
            }
            Message::Notification { method, .. } if method == "notifications/initialized" => {
                self.initialized = Some(frame.clone());
                None
            }
            _ => None,
        };
        if !self.started {
            self.started = true;
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
                if let Some(id) = request {
                    self.pending.remove(&id);
                    self.reply(envelope::error(
                        &id,
                        -32000,
                        "the MCP server is not running",
                    ))
                    .await;
                }
            }
        }
    }

    async fn on_child(&mut self, line: String) {
        if let Ok(Message::Response { id }) = envelope::parse(line.as_bytes()) {
            if self.replay.as_deref() == Some(id) {
                // The restarted child is initialized: resume the session where it was.
                self.replay = None;
                if let (Some(process), Some(initialized)) = (&mut self.child, &self.initialized) {
                    process.send(initialized);
                }
                self.flush_queue().await;
                return;
            }
            self.pending.remove(id);
        }
        self.reply(line).await;
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
        let text = format!("the MCP server {why} before answering; it is being restarted");
        for id in std::mem::take(&mut self.pending) {
            self.reply(envelope::error(&id, -32000, &text)).await;
        }
        let Some(delay) = self.crashes.record() else {
            let failure = format!(
                "it exited {} times within a minute ({why}); not restarting",
                self.crashes.count()
            );
            return self.fail(failure).await;
        };
        self.down = Some(Down::new(&self.health));
        let events = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(events) = events.upgrade() {
                let _ = events.send(Event::Restart).await;
            }
        });
    }

    async fn fail(&mut self, failure: String) {
        tracing::error!(session = %self.tag, "MCP server unavailable: {failure}");
        self.health.set_failure(Some(failure.clone()));
        self.down = None;
        let text = format!("the MCP server is unavailable: {failure}");
        for frame in std::mem::take(&mut self.queue) {
            if let Ok(Message::Request { id, .. }) = envelope::parse(&frame) {
                self.pending.remove(id);
                self.reply(envelope::error(id, -32000, &text)).await;
            }
        }
        for id in std::mem::take(&mut self.pending) {
            self.reply(envelope::error(&id, -32000, &text)).await;
        }
        self.failed = Some(failure);
    }

    async fn spawn(&mut self) {
        let restart = self.child.is_none() && self.down.is_some();
        let process = match launch(&self.spec, &self.tag) {
            Ok(launched) => launched,
            Err(e) => {
                return self
                    .fail(format!("cannot start `{}`: {e}", self.spec.program))
                    .await;
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
                self.replay = Some(replay);
                process.send(frame.as_bytes());
                return;
            }
        }
        self.flush_queue().await;
    }
}
