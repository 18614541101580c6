//! QEMU processes: started detached (own session, output to a log) with the monitor sockets
//! handed over as fds 3, 4, ..., recognized later by pid and start time, waited for through a
//! pidfd.
//!
//! A QEMU takes its image locks as soon as it runs, so it must never run before its pid is
//! recorded: [`spawn`] starts a shell that waits at a gate (a pipe) and only then becomes
//! QEMU (`exec` keeps the pid and start time). The caller records the pid, then opens the
//! gate with [`Gated::open`]. If the caller dies first, the pipe closes and the shell exits
//! without ever running QEMU.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The fd number QEMU finds its first monitor socket on (`-chardev socket,fd=3`); the
/// others follow.
pub const FIRST_MONITOR_FD: RawFd = 3;

/// The shell script at the gate: wait for one line, then become the program with stdin on
/// /dev/null; on end of file (the caller died) exit without running it.
const GATE: &str = "read -r go || exit 70; exec \"$@\" </dev/null";

/// A process waiting at its gate, then running.
pub struct Gated {
    /// The process (the shell, then the program: the same pid).
    pub child: Child,
}

impl Gated {
    /// Lets the process become the program.
    pub fn open(&mut self) -> io::Result<()> {
        let mut gate = self.child.stdin.take().ok_or_else(|| io::Error::other("the gate was opened already"))?;
        gate.write_all(b"go\n")
    }
}

/// Starts `argv` behind a gate, in a session of its own, so it outlives luavirt and the
/// terminal, with stdout and stderr appended to `log` and `listeners` as fds 3, 4, ...
pub fn spawn(argv: &[String], listeners: &[UnixListener], log: &File) -> io::Result<Gated> {
    let fds: Vec<RawFd> = listeners.iter().map(|l| l.as_raw_fd()).collect();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", GATE, "luavirt-gate"])
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);
    // SAFETY: only async-signal-safe calls (setsid, fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            // Move every listener above the target range first, so no dup2 overwrites one
            // not yet moved.
            let mut high = [0; 16];
            for (k, fd) in fds.iter().enumerate() {
                high[k] = libc::fcntl(*fd, libc::F_DUPFD, 64);
                if high[k] < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (k, fd) in high.iter().take(fds.len()).enumerate() {
                let target = FIRST_MONITOR_FD + k as RawFd;
                // dup2 leaves the copy without close-on-exec, so QEMU inherits it.
                if libc::dup2(*fd, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(Gated { child: cmd.spawn()? })
}

/// Start time of process `pid` (field 22 of /proc/PID/stat), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    luavirt_plugin_api::intent::process_start(u32::try_from(pid).ok()?)
}

/// Whether the process `pid` that started at `started` still runs.
pub fn is_alive(pid: i32, started: u64) -> bool {
    start_time(pid) == Some(started)
}

/// Waits up to `timeout` for process `pid` to exit; true once it has.
pub fn wait_exit(pid: i32, timeout: Duration) -> bool {
    // SAFETY: plain syscalls on an owned fd.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as RawFd;
        if pidfd < 0 {
            // ESRCH: no such process, so it is gone.
            return io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        }
        let mut pfd = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let ready = loop {
            let r = libc::poll(&mut pfd, 1, ms);
            if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break r > 0;
            }
        };
        libc::close(pidfd);
        ready
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: i32, signal: i32) {
    // SAFETY: kill has no memory effects.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Stops `pid` for sure: SIGTERM, then SIGKILL if it is still there after `grace`.
pub fn terminate(pid: i32, grace: Duration) -> bool {
    signal(pid, libc::SIGTERM);
    if wait_exit(pid, grace) {
        return true;
    }
    signal(pid, libc::SIGKILL);
    wait_exit(pid, Duration::from_secs(10))
}
