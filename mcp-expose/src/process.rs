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
    // async-signal-safe system calls (prctl, getppid); it allocates nothing, on the error
    // paths too (an `io::Error` from a raw OS error is not boxed).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl: then nothing would signal us.
            if nix::unistd::getppid().as_raw() != parent as i32 {
                // The parent exited before the child started: no such process to serve.
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
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

#[cfg(feature = "bridge")]
/// Kills a child's whole process group when dropped, or when this process dies by any means
/// (SIGKILL included): the grandchildren a child leaves behind (`sh -c 'worker & exec
/// server'`) go with it. Hold it until the child has been waited for.
///
/// Linux: a watchdog in the child's group (a `/bin/sh` reading a pipe only we write to) sees
/// end-of-file when the pipe's last writer is gone, whether we dropped it or died, and
/// SIGKILLs its group. The parent-death signal alone reaches the child but not what it spawned.
#[derive(Debug)]
pub(crate) struct GroupGuard {
    #[cfg(target_os = "linux")]
    _writer: std::os::fd::OwnedFd,
    /// The watchdog's end, open until the child is spawned.
    #[cfg(target_os = "linux")]
    reader: Option<std::os::fd::OwnedFd>,
}

#[cfg(feature = "bridge")]
impl GroupGuard {
    /// The child is spawned (its watchdog has the pipe's read end): close ours.
    pub(crate) fn spawned(&mut self) {
        #[cfg(target_os = "linux")]
        self.reader.take();
    }
}

#[cfg(feature = "bridge")]
/// Like [`contain`], and the child's group dies with the returned guard (see [`GroupGuard`]).
pub(crate) fn contain_group(command: &mut Command) -> std::io::Result<GroupGuard> {
    contain(command);
    group_watchdog(command)
}

#[cfg(feature = "bridge")]
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn group_watchdog(command: &mut Command) -> std::io::Result<GroupGuard> {
    use std::{
        ffi::CString,
        os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    };

    use nix::libc;

    let mut fds = [0; 2];
    // SAFETY: `pipe2` fills `fds` with two new descriptors, which we then own.
    let (reader, writer) = unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    let sh = CString::new("/bin/sh").map_err(std::io::Error::other)?;
    let dash_c = CString::new("-c").map_err(std::io::Error::other)?;
    // `read` returns at end of file; signals ignored before exec stay ignored in `sh`, so the
    // group's SIGTERM on a graceful stop leaves the watchdog to finish the job.
    let script = CString::new("read x; kill -9 0").map_err(std::io::Error::other)?;
    let null = CString::new("/dev/null").map_err(std::io::Error::other)?;
    // SAFETY: the closure runs in the forked child before exec. It allocates nothing and makes
    // only raw system calls (clone, waitpid, signal, open, dup2, close_range, execve, read,
    // kill, _exit); the forks are raw clones, so no atfork handler runs in a child of a
    // multi-threaded process.
    unsafe {
        let read_fd = reader.as_raw_fd();
        command.pre_exec(move || {
            let fork = || libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0);
            let middle = fork();
            if middle < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if middle == 0 {
                // Forked twice, so the server never sees the watchdog as its child.
                if fork() == 0 {
                    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
                        libc::signal(signal, libc::SIG_IGN);
                    }
                    libc::dup2(read_fd, 0);
                    let null = libc::open(null.as_ptr(), libc::O_RDWR);
                    if null >= 0 {
                        libc::dup2(null, 1);
                        libc::dup2(null, 2);
                    }
                    // The child's pipes and anything else inherited must not be held open.
                    libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, 0);
                    let argv = [
                        sh.as_ptr(),
                        dash_c.as_ptr(),
                        script.as_ptr(),
                        std::ptr::null(),
                    ];
                    let envp = [std::ptr::null()];
                    libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr());
                    // No shell: wait for end of file here (nothing is ever written; a read
                    // interrupted by a signal is retried, anything else ends the wait).
                    let mut byte = 0u8;
                    while libc::read(0, (&raw mut byte).cast(), 1) < 0
                        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                    {
                    }
                    libc::kill(0, libc::SIGKILL);
                }
                libc::_exit(0);
            }
            let mut status = 0;
            libc::waitpid(middle as libc::pid_t, &mut status, 0);
            Ok(())
        });
    }
    Ok(GroupGuard {
        _writer: writer,
        reader: Some(reader),
    })
}

#[cfg(feature = "bridge")]
#[cfg(not(target_os = "linux"))]
fn group_watchdog(_: &mut Command) -> std::io::Result<GroupGuard> {
    Ok(GroupGuard {})
}
