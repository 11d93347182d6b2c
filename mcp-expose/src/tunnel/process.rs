//! The cloudflared process: spawned in its own process group with a parent-death signal, its
//! output drained line by line for its whole life, stopped with SIGTERM then SIGKILL.

use std::{path::Path, process::Stdio, time::Duration};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
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
        .stderr(Stdio::piped())
        // Its own group, so that a terminal's Ctrl-C reaches us (we stop it in order) and so
        // that a stop reaches anything it might start.
        .process_group(0)
        .kill_on_drop(true);
    set_parent_death_signal(&mut command);
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

/// On Linux, cloudflared gets SIGKILL when our process dies, even by SIGKILL.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_parent_death_signal(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only makes two
    // async-signal-safe system calls (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl: then nothing would signal us.
            if nix::unistd::getppid().as_raw() != parent as i32 {
                return Err(std::io::Error::other(
                    "parent exited before cloudflared started",
                ));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_: &mut Command) {}

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
                match output::level(&line) {
                    tracing::Level::ERROR => {
                        tracing::error!(target: "cloudflared", stream, "{line}")
                    }
                    tracing::Level::WARN => tracing::warn!(target: "cloudflared", stream, "{line}"),
                    tracing::Level::DEBUG => {
                        tracing::debug!(target: "cloudflared", stream, "{line}")
                    }
                    _ => tracing::info!(target: "cloudflared", stream, "{line}"),
                }
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

/// SIGTERM to the process group, up to `grace` to exit, then SIGKILL; always reaped.
pub(crate) async fn stop(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else { return };
    let group = Pid::from_raw(pid as i32);
    if killpg(group, Signal::SIGTERM).is_err() {
        let _ = child.start_kill();
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(
            pid,
            "cloudflared did not exit within {grace:?} of SIGTERM; killing it"
        );
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.kill().await;
    }
    let _ = child.wait().await;
}
