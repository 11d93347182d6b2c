//! The cloudflared process: spawned in its own process group with a parent-death signal, its
//! output drained line by line for its whole life, stopped with SIGTERM then SIGKILL.

use std::{path::Path, process::Stdio};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use super::output::{self, Event};

/// Starts `program args...` with `env` added to its environment.
pub(crate) fn spawn(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
) -> std::io::Result<(Child, mpsc::UnboundedReceiver<Event>)> {
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own group, so that a terminal's Ctrl-C reaches us (we stop it in order) and so that
    // a stop reaches anything it might start.
    crate::process::contain(&mut command);
    let mut child = command.spawn()?;
    let (tx, rx) = mpsc::unbounded_channel();
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(drain(stdout, "stdout", tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(drain(stderr, "stderr", tx));
    }
    Ok((child, rx))
}

/// Reads lines until the pipe closes; a full pipe would block cloudflared's logging.
async fn drain(
    pipe: impl AsyncRead + Unpin,
    stream: &'static str,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut lines = BufReader::new(pipe).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                // cloudflared's own levels overstate an offline start (ERR and WRN lines for
                // features, ICMP, DNS): its lines stay at debug, and the supervisor says in
                // one line what is wrong.
                tracing::debug!(target: "cloudflared", stream, "{line}");
                if let Some(event) = output::parse(&line) {
                    let _ = events.send(event);
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(target: "cloudflared", stream, error = %e, "cannot read output");
                return;
            }
        }
    }
}
