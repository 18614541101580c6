//! Connections to other hosts over SSH: `qemu+ssh://[user@]host[:port]/session?...` (and
//! `vmx+ssh://`, `libxl+ssh://`). luavirt runs the system's OpenSSH to start
//! `luavirt serve --stdio` on the other host and speaks a framed, versioned protocol over
//! that pipe. No daemon, no listening socket, no authentication of its own: ssh's.
//!
//! The boundary is the typed driver client: a remote connection's [`crate::driver::client::DriverConn`]
//! sends each driver call ([`crate::driver::request::Call`]) to the server, which runs it with
//! the drivers of its host and sends back what the call emitted, or its error with its code.
//! Everything above the client (the host API: disk sets, plans, dry runs, hooks, migration)
//! runs where the command runs, written once for both. Host-level domain locks are taken and
//! held by the server for the client. Progress comes back as frames while a call runs; a
//! cancel goes as a frame that the server turns into the call's cancel flag.
//!
//! - [`target`]: what a remote URI names, and the URI opened there;
//! - [`ssh`]: the ssh process, its connection master and socket forwards;
//! - [`frame`] and [`protocol`]: the bytes and the messages;
//! - [`link`]: the client; [`server`]: `luavirt serve --stdio`.

pub mod frame;
pub mod link;
pub mod protocol;
pub mod server;
pub mod ssh;
pub mod target;

pub use link::{Delivery, RemoteLink};
pub use protocol::HostFacts;
pub use target::SshTarget;

use std::io;
use std::path::{Path, PathBuf};

/// This machine's identity: `/etc/machine-id`, else the kernel's boot id. Two connections
/// with the same identity and state folder are the same host.
pub fn machine_id() -> String {
    ["/etc/machine-id", "/proc/sys/kernel/random/boot_id"]
        .iter()
        .find_map(|f| std::fs::read_to_string(f).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .unwrap_or_default()
}

/// A new folder `PREFIX-PID-N` in `parent` with mode 0700, that did not exist before.
pub(crate) fn fresh_private_dir(parent: &Path, prefix: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    loop {
        let dir = parent.join(format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                // The umask may have taken bits off: set the mode exactly.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}
