//! Tools a driver runs within one call (`qemu-img`): they end with the process that runs
//! them. Otherwise a killed luavirt leaves a `qemu-img create` or `commit` writing while the
//! next call settles the change it was part of, and the files change behind its back.

use crate::kit::{Level, log};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

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

/// Runs `cmd` to the end and returns its output, writing the command line and how it ended
/// to the host's log at debug level (`luavirt -vv` shows them), so a failure can be followed.
pub fn output(cmd: &mut Command) -> std::io::Result<Output> {
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| shell_word(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    log(Level::Debug, &format!("running {line}"));
    let result = cmd.output();
    match &result {
        Ok(o) if o.status.success() => log(Level::Debug, &format!("{line}: exit 0")),
        Ok(o) => {
            log(Level::Debug, &format!("{line}: {}; stderr: {}", o.status, String::from_utf8_lossy(&o.stderr).trim()))
        }
        Err(e) => log(Level::Debug, &format!("{line}: cannot run: {e}")),
    }
    result
}

/// `word` as a shell reads it back: bare when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
