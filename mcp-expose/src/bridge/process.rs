//! Launching a child MCP server: stdin fed from a queue (flushed when it drains), stdout read
//! line by line, stderr logged with the session's tag, exit reported after the last line.

use std::{process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter},
    process::Command,
    sync::{mpsc, oneshot},
};

use super::ChildSpec;

/// What a running child produces.
#[derive(Debug)]
pub(crate) enum Output {
    Line(Vec<u8>),
    Exited(String),
}

/// A running child: its stdin, and a stop switch (dropping it stops the child too).
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) stdin: mpsc::Sender<Vec<u8>>,
    pub(crate) pid: Option<u32>,
    _stop: oneshot::Sender<()>,
}

pub(crate) fn launch(
    spec: &ChildSpec,
    tag: &str,
) -> std::io::Result<(Process, mpsc::Receiver<Output>)> {
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
    let (out_tx, out_rx) = mpsc::channel(256);
    let stdout = child.stdout.take();
    let lines_tx = out_tx.clone();
    let reader = tokio::spawn(async move {
        if let Some(stdout) = stdout {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if lines_tx
                    .send(Output::Line(line.into_bytes()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
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
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status,
            // Stop requested, or the owner (which holds the sender) is gone.
            _ = stop_rx => {
                crate::process::stop(&mut child, Duration::from_secs(2)).await;
                return;
            }
        };
        // Deliver what the child wrote before it died ahead of the exit, but do not wait long:
        // a grandchild may hold its stdout open.
        let _ = tokio::time::timeout(Duration::from_millis(50), reader).await;
        let why = match status {
            Ok(status) => match status.code() {
                Some(code) => format!("exited with code {code}"),
                None => format!("was killed ({status})"),
            },
            Err(e) => format!("could not be waited for ({e})"),
        };
        let _ = out_tx.send(Output::Exited(why)).await;
    });
    Ok((
        Process {
            stdin: stdin_tx,
            pid,
            _stop: stop_tx,
        },
        out_rx,
    ))
}

/// The next output of `child`; never completes while there is no child.
pub(crate) async fn next_output(
    child: &mut Option<(Process, mpsc::Receiver<Output>)>,
) -> Option<Output> {
    match child {
        Some((_, output)) => output.recv().await,
        None => std::future::pending().await,
    }
}
