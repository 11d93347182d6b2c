//! Launching a child MCP server: stdin written by its owner (at once when the pipe has room,
//! the rest while it waits for output), stdout split into lines by its owner (memchr, one
//! reused buffer, lines capped at the message size limit, anything but a JSON-RPC message
//! dropped), stderr logged with the session's tag (lines capped, rate-limited), exit reported
//! after the last line; the child's whole process group dies with it.

use crate::observe::metrics::{Direction, TransportKind};
use std::{
    io::IoSlice,
    pin::Pin,
    process::Stdio,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::AsyncWrite,
    process::{ChildStderr, ChildStdin, ChildStdout, Command},
    sync::oneshot,
    time::Instant,
};

use super::ChildSpec;
use crate::transport::lines::{Line, LineReader};

/// What a running child produces.
#[derive(Debug)]
pub(crate) enum Output {
    Line(String),
    Exited(String),
}

/// What a running child produces, a stdout line over the limit (skipped) included.
#[derive(Debug)]
pub(crate) enum Next {
    Line(String),
    TooLong,
    Exited(String),
}

/// How long output still read after the child exited may take: a grandchild may hold its
/// stdout open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(50);

/// A stdin buffer that grew past this is given back once it drains.
const KEEP_UNSENT: usize = 64 * 1024;

/// A stderr line longer than this is dropped (and counted).
const MAX_STDERR_LINE: usize = 8 * 1024;

/// A running child: its stdin and stdout (both used by its owner, no task in between), and a
/// stop switch (dropping the process stops the child too).
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) pid: Option<u32>,
    /// The longest stdout line passed on.
    pub(crate) max_line: usize,
    input: Input,
    output: Reader,
    _stop: oneshot::Sender<()>,
}

#[derive(Debug)]
struct Input {
    stdin: Option<ChildStdin>,
    /// What the pipe did not take yet, in order; `unsent[sent..]` is still to go.
    unsent: Vec<u8>,
    sent: usize,
}

#[derive(Debug)]
struct Reader {
    stdout: Option<LineReader<ChildStdout>>,
    exit: oneshot::Receiver<String>,
    /// Why it exited, and until when its remaining output is still read.
    exited: Option<(String, Instant)>,
    /// Lines not passed on: over the limit, or not a JSON-RPC message.
    dropped: Dropped,
}

pub(crate) fn launch(spec: &ChildSpec, tag: &str) -> std::io::Result<Process> {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    let mut group = crate::process::contain_group(&mut command)?;
    let mut child = command.spawn()?;
    group.spawned();
    let pid = child.id();
    let max_line = match spec.max_message {
        0 => usize::MAX,
        max => max,
    };
    let stdin = child.stdin.take();
    let stdout = child
        .stdout
        .take()
        .map(|stdout| LineReader::new(stdout, 32 * 1024, max_line));
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(log_stderr(stderr, tag.to_owned()));
    }
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (exit_tx, exit_rx) = oneshot::channel();
    tokio::spawn(async move {
        // Dropped when this task ends, once the child is gone: what it left in its group goes.
        let _group = group;
        let status = tokio::select! {
            status = child.wait() => status,
            // Stop requested, or the owner (which holds the sender) is gone.
            _ = stop_rx => {
                crate::process::stop(&mut child, Duration::from_secs(2)).await;
                return;
            }
        };
        let why = match status {
            Ok(status) => match status.code() {
                Some(code) => format!("exited with code {code}"),
                None => format!("was killed ({status})"),
            },
            Err(e) => format!("could not be waited for ({e})"),
        };
        let _ = exit_tx.send(why);
    });
    Ok(Process {
        pid,
        max_line,
        input: Input {
            stdin,
            unsent: Vec::new(),
            sent: 0,
        },
        output: Reader {
            stdout,
            exit: exit_rx,
            exited: None,
            dropped: Dropped::new("stdout", tag.to_owned()),
        },
        _stop: stop_tx,
    })
}

/// Logs the child's stderr line by line, each line capped and at most a burst of lines at a
/// time: a child flooding stderr costs a counter, not the log.
async fn log_stderr(stderr: ChildStderr, tag: String) {
    let mut lines = LineReader::new(stderr, 1024, MAX_STDERR_LINE);
    let mut dropped = Dropped::new("stderr", tag);
    while let Ok(Some(line)) = lines.next().await {
        match line {
            Line::Frame(bytes) if dropped.allow() => {
                let line = String::from_utf8_lossy(bytes);
                tracing::info!(target: "mcp_expose::bridge::child", session = %dropped.tag, "{line}");
            }
            _ => dropped.count(),
        }
    }
    dropped.report();
}

/// Lines of a child's output not passed on, counted (a metric, and a log line at most every
/// few seconds), and the budget of lines that may be logged.
#[derive(Debug)]
struct Dropped {
    stream: &'static str,
    tag: String,
    /// Lines that may still be logged now; refilled over time.
    budget: f64,
    refilled: Instant,
    unreported: u64,
    reported: Instant,
}

impl Dropped {
    const BURST: f64 = 200.0;
    const PER_SECOND: f64 = 50.0;
    const REPORT_EVERY: Duration = Duration::from_secs(5);

    fn new(stream: &'static str, tag: String) -> Self {
        let now = Instant::now();
        Self {
            stream,
            tag,
            budget: Self::BURST,
            refilled: now,
            unreported: 0,
            reported: now.checked_sub(Self::REPORT_EVERY).unwrap_or(now),
        }
    }

    /// Whether one more line may be logged now.
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.refilled).as_secs_f64() * Self::PER_SECOND;
        self.budget = (self.budget + refill).min(Self::BURST);
        self.refilled = now;
        let allowed = self.budget >= 1.0;
        if allowed {
            self.budget -= 1.0;
        }
        allowed
    }

    fn count(&mut self) {
        metrics::counter!("mcp_bridge_child_lines_dropped_total", "stream" => self.stream)
            .increment(1);
        self.unreported += 1;
        if self.reported.elapsed() >= Self::REPORT_EVERY {
            self.report();
        }
    }

    fn report(&mut self) {
        if self.unreported > 0 {
            tracing::warn!(
                target: "mcp_expose::bridge::child",
                session = %self.tag,
                "dropped {} lines of the MCP server's {} (too long, too many, or not JSON-RPC)",
                self.unreported,
                self.stream,
            );
        }
        self.unreported = 0;
        self.reported = Instant::now();
    }
}

impl Process {
    /// Sends one message to the child: written at once as far as the pipe takes it, the rest
    /// while [`next_output`] waits (so a child that writes before it reads never deadlocks with
    /// us). Messages for a child whose stdin is closed are dropped; its exit is reported.
    pub(crate) fn send(&mut self, frame: &[u8]) {
        crate::observe::metrics::bytes(TransportKind::Bridge, Direction::Out, frame.len() + 1);
        self.input.send(frame);
    }

    /// The child's next message, or its exit once what it wrote before dying was read; queued
    /// stdin is written meanwhile. Cancel-safe.
    async fn next(&mut self) -> Next {
        let Self { input, output, .. } = self;
        while input.pending() {
            tokio::select! {
                () = std::future::poll_fn(|cx| input.poll_unsent(cx)) => {}
                line = output.next() => return line,
            }
        }
        output.next().await
    }
}

impl Input {
    fn pending(&self) -> bool {
        self.sent < self.unsent.len()
    }

    fn send(&mut self, frame: &[u8]) {
        let Some(stdin) = &mut self.stdin else {
            return;
        };
        let mut frame = frame;
        let mut newline: &[u8] = b"\n";
        if self.unsent.is_empty() {
            // Nothing queued: straight from the caller's buffer, one system call.
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let slices = [IoSlice::new(frame), IoSlice::new(newline)];
            match Pin::new(&mut *stdin).poll_write_vectored(&mut cx, &slices) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    let taken = n.min(frame.len());
                    frame = &frame[taken..];
                    newline = &newline[n - taken..];
                }
                Poll::Ready(_) => return self.close_stdin(),
                Poll::Pending => {}
            }
        }
        self.unsent.extend_from_slice(frame);
        self.unsent.extend_from_slice(newline);
        if self.pending() {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let _ = self.poll_unsent(&mut cx);
        }
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
        self.unsent = Vec::new();
        self.sent = 0;
    }

    /// Writes what is queued for stdin; ready once it is all written (or stdin is gone).
    fn poll_unsent(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.sent < self.unsent.len() {
            let Some(stdin) = &mut self.stdin else {
                return Poll::Ready(());
            };
            match Pin::new(stdin).poll_write(cx, &self.unsent[self.sent..]) {
                Poll::Ready(Ok(n)) if n > 0 => self.sent += n,
                Poll::Ready(_) => {
                    self.close_stdin();
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        self.sent = 0;
        if self.unsent.capacity() > KEEP_UNSENT {
            self.unsent = Vec::new();
        } else {
            self.unsent.clear();
        }
        Poll::Ready(())
    }
}

impl Reader {
    /// The child's next message, or its exit once what it wrote before dying was read.
    /// Cancel-safe.
    async fn next(&mut self) -> Next {
        loop {
            let Self {
                stdout,
                exit,
                exited,
                dropped,
            } = self;
            let line = if let Some((why, deadline)) = exited {
                let line = match stdout {
                    Some(reader) => tokio::time::timeout_at(*deadline, reader.next()).await,
                    None => Ok(Ok(None)),
                };
                match line {
                    Ok(Ok(Some(line))) => line,
                    _ => return Next::Exited(why.clone()),
                }
            } else {
                tokio::select! {
                    line = read(stdout) => match line {
                        Some(line) => line,
                        None => {
                            *stdout = None;
                            continue;
                        }
                    },
                    why = exit => {
                        let why = why.unwrap_or_else(|_| "could not be waited for".to_owned());
                        *exited = Some((why, Instant::now() + DRAIN_AFTER_EXIT));
                        continue;
                    }
                }
            };
            match line {
                Line::Frame(frame) => match message(frame) {
                    Some(line) => return Next::Line(line),
                    None => dropped.count(),
                },
                Line::TooLong => {
                    dropped.count();
                    return Next::TooLong;
                }
            }
        }
    }
}

/// The next line of `stdout`; `None` at its end; never completes once it is gone.
async fn read(stdout: &mut Option<LineReader<ChildStdout>>) -> Option<Line<'_>> {
    match stdout {
        Some(reader) => reader.next().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// The line as text when it is a JSON-RPC message: anything else a child prints (a banner, a
/// stray debug line) is never passed on.
fn message(frame: &[u8]) -> Option<String> {
    crate::observe::metrics::bytes(TransportKind::Bridge, Direction::In, frame.len() + 1);
    let text = std::str::from_utf8(frame).ok()?;
    // The envelope reads `"id": null` as no id; such an answer (to a request the child could
    // not read) is still a message.
    if super::envelope::parse(frame).is_err() && super::envelope::member(text, "id") != Some("null")
    {
        return None;
    }
    Some(text.to_owned())
}

/// The next output of `child`, lines over the limit skipped; never completes while there is
/// no child.
pub(crate) async fn next_output(child: &mut Option<Process>) -> Output {
    loop {
        match next(child).await {
            Next::Line(line) => return Output::Line(line),
            Next::TooLong => {}
            Next::Exited(why) => return Output::Exited(why),
        }
    }
}

/// The next output of `child`, a line over the limit included; never completes while there is
/// no child.
pub(crate) async fn next(child: &mut Option<Process>) -> Next {
    match child {
        Some(process) => process.next().await,
        None => std::future::pending().await,
    }
}
