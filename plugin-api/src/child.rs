//! Tools a driver runs within one call (`qemu-img`): they end with the process that runs
//! them. Otherwise a killed luavirt leaves a `qemu-img create` or `commit` writing while the
//! next call settles the change it was part of, and the files change behind its back.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// A command for `program` that is killed (SIGKILL) if the calling thread's process dies
/// before it ends.
pub fn tool(program: &str) -> Command {
    let mut cmd = Command::new(program);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(70);
            }
            Ok(())
        });
    }
    cmd
}
