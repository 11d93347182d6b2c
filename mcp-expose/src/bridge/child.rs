//! One supervised child MCP server behind one client session: requests are forwarded as raw
//! lines, a dead child's pending requests are answered at once, and the child is restarted
//! with backoff (its `initialize` replayed) until it crash-loops.

use std::{
    collections::{HashSet, VecDeque},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter},
    process::Command,
    sync::{mpsc, oneshot},
};

use super::envelope::{self, Message};

/// How to start the child server.
#[derive(Debug, Clone)]
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

/// Counters the health endpoint reports.
#[derive(Debug, Default)]
pub(crate) struct BridgeHealth {
    pub(crate) sessions: AtomicUsize,
    /// Sessions whose child is dead and not yet restarted.
    pub(crate) down: AtomicUsize,
    pub(crate) restarts: AtomicU64,
    pub(crate) failure: Mutex<Option<String>>,
}

impl BridgeHealth {
    pub(crate) fn healthy(&self) -> bool {
        self.down.load(Ordering::Relaxed) == 0
            && self.failure.lock().map(|f| f.is_none()).unwrap_or(false)
    }
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CRASH_WINDOW: Duration = Duration::from_secs(60);
const MAX_CRASHES: usize = 5;
const MAX_QUEUED: usize = 1024;

enum Event {
    FromClient(Vec<u8>),
    Line(u64, Vec<u8>),
    Exited(u64, String),
    Restart(u64),
}

/// A client session's link to its child. Dropping it stops the child.
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
    /// Starts a session; the child's messages (and synthesized errors) arrive on the receiver.
    pub(crate) fn start(
        spec: Arc<ChildSpec>,
        tag: String,
        health: Arc<BridgeHealth>,
    ) -> (Self, mpsc::Receiver<String>) {
        let (events_tx, events_rx) = mpsc::channel(256);
        let (out_tx, out_rx) = mpsc::channel(1024);
        health.sessions.fetch_add(1, Ordering::Relaxed);
        let actor = Actor {
            spec,
            tag,
            health,
            events: events_tx.downgrade(),
            out: out_tx,
            generation: 0,
            child: None,
            pending: HashSet::new(),
            init: None,
            initialized: None,
            replay: None,
            queue: VecDeque::new(),
            crashes: VecDeque::new(),
            failed: None,
            down: false,
        };
        tokio::spawn(actor.run(events_rx));
        (Self { events: events_tx }, out_rx)
    }

    /// Forwards one message from the client.
    pub(crate) async fn send(&self, frame: Vec<u8>) -> bool {
        self.events.send(Event::FromClient(frame)).await.is_ok()
    }
}

struct Running {
    stdin: mpsc::Sender<Vec<u8>>,
    stop: Option<oneshot::Sender<()>>,
}

struct Actor {
    spec: Arc<ChildSpec>,
    tag: String,
    health: Arc<BridgeHealth>,
    events: mpsc::WeakSender<Event>,
    out: mpsc::Sender<String>,
    generation: u64,
    child: Option<Running>,
    pending: HashSet<String>,
    init: Option<Vec<u8>>,
    initialized: Option<Vec<u8>>,
    /// The id of a replayed `initialize` whose answer the client must not see.
    replay: Option<String>,
    queue: VecDeque<Vec<u8>>,
    crashes: VecDeque<Instant>,
    failed: Option<String>,
    down: bool,
}

impl Actor {
    async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        while let Some(event) = events.recv().await {
            match event {
                Event::FromClient(frame) => self.from_client(frame).await,
                Event::Line(generation, line) if generation == self.generation => {
                    self.from_child(line).await
                }
                Event::Exited(generation, why) if generation == self.generation => {
                    self.exited(why).await
                }
                Event::Restart(generation) if generation == self.generation => self.spawn().await,
                _ => {}
            }
        }
        // Every sender is gone: the client left.
        self.stop_child();
        self.set_down(false);
        self.health.sessions.fetch_sub(1, Ordering::Relaxed);
    }

    async fn reply(&self, line: String) {
        let _ = self.out.send(line).await;
    }

    async fn from_client(&mut self, frame: Vec<u8>) {
        let message = match envelope::parse(&frame) {
            Ok(message) => message,
            Err((code, text)) => return self.reply(envelope::error("null", code, &text)).await,
        };
        match &message {
            Message::Request { id, method, .. } => {
                if let Some(failure) = &self.failed {
                    let text = format!("the MCP server is unavailable: {failure}");
                    return self.reply(envelope::error(id, -32000, &text)).await;
                }
                if method == "initialize" {
                    self.init = Some(frame.clone());
                }
                self.pending.insert(id.clone());
            }
            Message::Notification { method, .. } if method == "notifications/initialized" => {
                self.initialized = Some(frame.clone());
            }
            _ => {}
        }
        if self.child.is_none() && !self.down && self.generation == 0 {
            self.spawn().await;
        }
        match &self.child {
            Some(child) if self.replay.is_none() => {
                let _ = child.stdin.send(frame).await;
            }
            _ if self.queue.len() < MAX_QUEUED => self.queue.push_back(frame),
            _ => {
                if let Message::Request { id, .. } = message {
                    self.pending.remove(&id);
                    self.reply(envelope::error(
                        &id,
                        -32000,
                        "the MCP server is restarting and too many messages are queued",
                    ))
                    .await;
                }
            }
        }
    }

    async fn from_child(&mut self, line: Vec<u8>) {
        if let Ok(Message::Response { id }) = envelope::parse(&line) {
            if self.replay.as_ref() == Some(&id) {
                // The restarted child is initialized: resume the session where it was.
                self.replay = None;
                if let (Some(child), Some(initialized)) = (&self.child, &self.initialized) {
                    let _ = child.stdin.send(initialized.clone()).await;
                }
                self.flush_queue().await;
                return;
            }
            self.pending.remove(&id);
        }
        match String::from_utf8(line) {
            Ok(text) => self.reply(text).await,
            Err(_) => {
                tracing::warn!(session = %self.tag, "dropped a child message that is not UTF-8")
            }
        }
    }

    async fn flush_queue(&mut self) {
        let Some(child) = &self.child else { return };
        while let Some(frame) = self.queue.pop_front() {
            let _ = child.stdin.send(frame).await;
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
        let now = Instant::now();
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() >= MAX_CRASHES {
            self.fail(format!(
                "it exited {} times within {CRASH_WINDOW:?} ({why}); not restarting",
                self.crashes.len()
            ))
            .await;
            return;
        }
        self.set_down(true);
        let delay = INITIAL_BACKOFF
            .saturating_mul(1 << (self.crashes.len() - 1))
            .min(MAX_BACKOFF);
        let (events, generation) = (self.events.clone(), self.generation);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(events) = events.upgrade() {
                let _ = events.send(Event::Restart(generation)).await;
            }
        });
    }

    async fn fail(&mut self, failure: String) {
        tracing::error!(session = %self.tag, "MCP server unavailable: {failure}");
        *self
            .health
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(failure.clone());
        self.set_down(false);
        for frame in std::mem::take(&mut self.queue) {
            if let Ok(Message::Request { id, .. }) = envelope::parse(&frame) {
                self.reply(envelope::error(
                    &id,
                    -32000,
                    &format!("the MCP server is unavailable: {failure}"),
                ))
                .await;
            }
        }
        for id in std::mem::take(&mut self.pending) {
            self.reply(envelope::error(
                &id,
                -32000,
                &format!("the MCP server is unavailable: {failure}"),
            ))
            .await;
        }
        self.failed = Some(failure);
    }

    fn set_down(&mut self, down: bool) {
        if self.down != down {
            self.down = down;
            if down {
                self.health.down.fetch_add(1, Ordering::Relaxed);
            } else {
                self.health.down.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn stop_child(&mut self) {
        if let Some(mut child) = self.child.take()
            && let Some(stop) = child.stop.take()
        {
            let _ = stop.send(());
        }
    }

    async fn spawn(&mut self) {
        let restart = self.generation > 0;
        self.generation += 1;
        let generation = self.generation;
        let mut command = Command::new(&self.spec.program);
        command
            .args(&self.spec.args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &self.spec.cwd {
            command.current_dir(cwd);
        }
        crate::process::contain(&mut command);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return self
                    .fail(format!("cannot start `{}`: {e}", self.spec.program))
                    .await;
            }
        };
        if restart {
            self.health.restarts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(session = %self.tag, pid = child.id(), "restarted the MCP server");
        }
        self.set_down(false);
        let (stdin_tx, mut stdin_rx) = mpsc::channel::<Vec<u8>>(256);
        if let Some(stdin) = child.stdin.take() {
            tokio::spawn(async move {
                let mut writer = BufWriter::new(stdin);
                while let Some(frame) = stdin_rx.recv().await {
                    let mut next = Some(frame);
                    while let Some(frame) = next {
                        if writer.write_all(&frame).await.is_err()
                            || writer.write_all(b"\n").await.is_err()
                        {
                            return;
                        }
                        next = stdin_rx.try_recv().ok();
                    }
                    if writer.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
        let events = self.events.clone();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let tag = self.tag.clone();
        let (stop_tx, stop_rx) = oneshot::channel();
        let reader = tokio::spawn(async move {
            if let Some(stdout) = stdout {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Some(events) = events.upgrade() else {
                        return;
                    };
                    if events
                        .send(Event::Line(generation, line.into_bytes()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        if let Some(stderr) = stderr {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(target: "mcp_expose::bridge::child", session = %tag, "{line}");
                }
            });
        }
        let events = self.events.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                // Stop requested, or the session (which holds the sender) is gone.
                _ = stop_rx => {
                    crate::process::stop(&mut child, Duration::from_secs(2)).await;
                    return;
                }
            };
            // Deliver what the child wrote before it died ahead of the exit, but do not wait
            // long: a grandchild may hold its stdout open.
            let _ = tokio::time::timeout(Duration::from_millis(50), reader).await;
            let why = match status {
                Ok(status) => match status.code() {
                    Some(code) => format!("exited with code {code}"),
                    None => format!("was killed ({status})"),
                },
                Err(e) => format!("could not be waited for ({e})"),
            };
            if let Some(events) = events.upgrade() {
                let _ = events.send(Event::Exited(generation, why)).await;
            }
        });
        self.child = Some(Running {
            stdin: stdin_tx,
            stop: Some(stop_tx),
        });
        if restart && let Some(init) = &self.init {
            let replay = format!("\"mcp-expose-replay-{generation}\"");
            if let (Some(frame), Some(child)) = (envelope::with_id(init, &replay), &self.child) {
                self.replay = Some(replay);
                let _ = child.stdin.send(frame.into_bytes()).await;
                return;
            }
        }
        self.flush_queue().await;
    }
}
