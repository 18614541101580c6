//! QEMU processes: started detached (own session, output to a log) with the monitor socket
//! handed over as fd 3, recognized later by pid and start time, waited for through a pidfd.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The fd number QEMU finds its first monitor socket on (`-chardev socket,fd=3`); the
/// others follow.
pub const FIRST_MONITOR_FD: RawFd = 3;

/// Starts `argv` in a session of its own, so it outlives luavirt and the terminal, with
/// stdout and stderr appended to `log` and `listeners` as fds 3, 4, ...
pub fn spawn(argv: &[String], listeners: &[UnixListener], log: &File) -> io::Result<Child> {
    let fds: Vec<RawFd> = listeners.iter().map(|l| l.as_raw_fd()).collect();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log.try_clone()?);
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
    cmd.spawn()
}

/// Start time of process `pid` (field 22 of /proc/PID/stat), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let after = &stat[stat.rfind(')')? + 2..];
    // `after` starts at field 3; field 22 is the 20th from there.
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None; // a zombie has exited
    }
    fields.get(19)?.parse().ok()
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
