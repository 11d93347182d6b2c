//! Launching a child MCP server: stdin written by its owner (at once when the pipe has room,
//! the rest while it waits for output), stdout split into lines by its owner (memchr, one
//! reused buffer), stderr logged with the session's tag, exit reported after the last line;
//! the child's whole process group dies with it.

use std::{
    io::IoSlice,
    pin::Pin,
    process::Stdio,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWrite, BufReader},
    process::{ChildStdin, ChildStdout, Command},
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

/// How long output still read after the child exited may take: a grandchild may hold its
/// stdout open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(50);

/// A stdin buffer that grew past this is given back once it drains.
const KEEP_UNSENT: usize = 64 * 1024;

/// A running child: its stdin and stdout (both used by its owner, no task in between), and a
/// stop switch (dropping the process stops the child too).
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) pid: Option<u32>,
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
    let stdin = child.stdin.take();
    let stdout = child
        .stdout
        .take()
        .map(|stdout| LineReader::new(stdout, 32 * 1024, usize::MAX));
    if let Some(stderr) = child.stderr.take() {
        let tag = tag.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "mcp_expose::bridge::child", session = %tag, "{line}");
            }
        });
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
        input: Input {
            stdin,
            unsent: Vec::new(),
            sent: 0,
        },
        output: Reader {
            stdout,
            exit: exit_rx,
            exited: None,
        },
        _stop: stop_tx,
    })
}

impl Process {
    /// Sends one message to the child: written at once as far as the pipe takes it, the rest
    /// while [`next_output`] waits (so a child that writes before it reads never deadlocks with
    /// us). Messages for a child whose stdin is closed are dropped; its exit is reported.
    pub(crate) fn send(&mut self, frame: &[u8]) {
        crate::observe::metrics::bytes("bridge", "out", frame.len() + 1);
        self.input.send(frame);
    }

    /// The child's next line, or its exit once what it wrote before dying was read; queued
    /// stdin is written meanwhile. Cancel-safe.
    async fn next(&mut self) -> Output {
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
    /// The child's next line, or its exit once what it wrote before dying was read.
    /// Cancel-safe.
    async fn next(&mut self) -> Output {
        loop {
            let Self {
                stdout,
                exit,
                exited,
                ..
            } = self;
            if let Some((why, deadline)) = exited {
                let line = match stdout {
                    Some(reader) => tokio::time::timeout_at(*deadline, reader.next()).await,
                    None => Ok(Ok(None)),
                };
                match line {
                    Ok(Ok(Some(Line::Frame(frame)))) => {
                        if let Some(line) = text(frame) {
                            return Output::Line(line);
                        }
                    }
                    Ok(Ok(Some(Line::TooLong))) => {}
                    _ => return Output::Exited(why.clone()),
                }
                continue;
            }
            let step = tokio::select! {
                line = read(stdout) => match line {
                    Some(Line::Frame(frame)) => text(frame).map_or(Step::Skip, Step::Line),
                    Some(Line::TooLong) => Step::Skip,
                    None => Step::Closed,
                },
                why = exit => Step::Exited(why.unwrap_or_else(|_| "could not be waited for".to_owned())),
            };
            match step {
                Step::Line(line) => return Output::Line(line),
                Step::Skip => {}
                Step::Closed => *stdout = None,
                Step::Exited(why) => *exited = Some((why, Instant::now() + DRAIN_AFTER_EXIT)),
            }
        }
    }
}

enum Step {
    Line(String),
    Skip,
    Closed,
    Exited(String),
}

/// The next line of `stdout`; `None` at its end; never completes once it is gone.
async fn read(stdout: &mut Option<LineReader<ChildStdout>>) -> Option<Line<'_>> {
    match stdout {
        Some(reader) => reader.next().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

fn text(frame: &[u8]) -> Option<String> {
    crate::observe::metrics::bytes("bridge", "in", frame.len() + 1);
    match std::str::from_utf8(frame) {
        Ok(text) => Some(text.to_owned()),
        Err(_) => {
            tracing::warn!("dropped a child message that is not UTF-8");
            None
        }
    }
}

/// The next output of `child`; never completes while there is no child.
pub(crate) async fn next_output(child: &mut Option<Process>) -> Output {
    match child {
        Some(process) => process.next().await,
        None => std::future::pending().await,
    }
}
