//! Failpoints: named places inside multi-step changes where a test kills luavirt.
//!
//! `LUAVIRT_FAILPOINT=NAME` makes the process send itself SIGKILL when it reaches the
//! failpoint `NAME`, exactly as an OOM killer or a power cut would stop it: no destructor,
//! no error path, no flush. The crash tests run each operation once per failpoint and check
//! that the next call finds everything consistent. Unset (always, outside tests), a failpoint
//! costs one comparison with a cached `None`.

use std::sync::OnceLock;

/// The environment variable that arms one failpoint.
pub const ENV: &str = "LUAVIRT_FAILPOINT";

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var(ENV).ok().filter(|n| !n.is_empty())).as_deref()
}

/// Kills this process with SIGKILL if `name` is the armed failpoint.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("luavirt: failpoint {name}: killed");
        // SAFETY: kill has no memory effects; SIGKILL cannot be caught, so it never returns.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
