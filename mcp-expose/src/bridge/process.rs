//! Launching a child MCP server: stdin fed from a queue (flushed when it drains), stdout split
//! into lines by its owner (memchr, one reused buffer), stderr logged with the session's tag,
//! exit reported after the last line.

use std::{process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter},
    process::{ChildStdout, Command},
    sync::{mpsc, oneshot},
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

/// A running child: its stdin, its stdout (read by its owner, no task in between), and a stop
/// switch (dropping the process stops the child too).
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) stdin: mpsc::Sender<Vec<u8>>,
    pub(crate) pid: Option<u32>,
    stdout: Option<LineReader<ChildStdout>>,
    exit: oneshot::Receiver<String>,
    /// Why it exited, and until when its remaining output is still read.
    exited: Option<(String, Instant)>,
    _stop: oneshot::Sender<()>,
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
    crate::process::contain(&mut command);
    let mut child = command.spawn()?;
    let pid = child.id();
    let (stdin_tx, mut stdin_rx) = mpsc::channel::<Vec<u8>>(256);
    if let Some(stdin) = child.stdin.take() {
        tokio::spawn(async move {
            let mut writer = BufWriter::new(stdin);
            while let Some(frame) = stdin_rx.recv().await {
                let mut next = Some(frame);
                while let Some(frame) = next {
                    crate::observe::metrics::bytes("bridge", "out", frame.len() + 1);
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
        stdin: stdin_tx,
        pid,
        stdout,
        exit: exit_rx,
        exited: None,
        _stop: stop_tx,
    })
}

impl Process {
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
