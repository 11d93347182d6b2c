//! Child processes we supervise (cloudflared, bridged MCP servers): their own process group, a
//! parent-death signal on Linux, and a stop that escalates from SIGTERM to SIGKILL.

use std::time::Duration;

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::process::{Child, Command};

/// Puts the child in its own process group and, on Linux, has it killed when we die.
pub(crate) fn contain(command: &mut Command) {
    command.process_group(0).kill_on_drop(true);
    set_parent_death_signal(command);
}

/// On Linux, the child gets SIGKILL when our process dies, even by SIGKILL.
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
                    "parent exited before the child started",
                ));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_: &mut Command) {}

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
            "child did not exit within {grace:?} of SIGTERM; killing it"
        );
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.kill().await;
    }
    let _ = child.wait().await;
}
