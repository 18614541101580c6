//! Per-domain locks held across a read-modify-write (a disk-set change, a define), so two
//! luavirt processes changing the same domain never lose each other's change.

use super::Connection;
use crate::error::{Error, Result};
use luavirt_plugin_api::fsutil::{LockGuard, lock_exclusive};

impl Connection {
    /// Waits for and takes the lock on domain `name` for this connection. A dry run writes
    /// nothing, so it takes no lock (and creates no lock file).
    pub(crate) fn lock_domain(&self, name: &str) -> Result<Option<LockGuard>> {
        luavirt_plugin_api::domain::check_domain_name(name).map_err(Error::InvalidArg)?;
        if self.is_dry_run() {
            return Ok(None);
        }
        let path = self.lock_dir().join(format!("{name}.lock"));
        lock_exclusive(&path).map(Some).map_err(|source| Error::Io { doing: "lock", path, source })
    }
}
