//! Failpoints: named places inside multi-step changes where a test kills luavirt.
//!
//! `LUAVIRT_FAILPOINT=NAME` makes the process send itself SIGKILL when it reaches the
//! failpoint `NAME`, exactly as an OOM killer or a power cut would stop it: no destructor,
//! no error path, no flush. The crash tests run each operation once per failpoint and check
//! that the next call finds everything consistent. Unset (always, outside tests), a failpoint
//! costs one comparison with a cached `None`.
//!
//! With `LUAVIRT_FAILPOINT_ACTION=stop` the process stops itself (SIGSTOP) there instead, so
//! that a test can change the world at that very point (end the ssh connection a remote call
//! runs over) and then let it go on with SIGCONT, or kill it.

use std::sync::OnceLock;

/// The environment variable that arms one failpoint.
pub const ENV: &str = "LUAVIRT_FAILPOINT";

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var(ENV).ok().filter(|n| !n.is_empty())).as_deref()
}

/// The environment variable that makes an armed failpoint stop the process instead.
pub const ACTION_ENV: &str = "LUAVIRT_FAILPOINT_ACTION";

/// Kills this process with SIGKILL if `name` is the armed failpoint (or stops it, see
/// [`ACTION_ENV`]).
pub fn hit(name: &str) {
    if armed() != Some(name) {
        return;
    }
    if std::env::var(ACTION_ENV).is_ok_and(|a| a == "stop") {
        eprintln!("luavirt: failpoint {name}: stopped");
        // SAFETY: kill has no memory effects; the process goes on here once continued.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGSTOP);
        }
        return;
    }
    eprintln!("luavirt: failpoint {name}: killed");
    // SAFETY: kill has no memory effects; SIGKILL cannot be caught, so it never returns.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}
