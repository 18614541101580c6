//! Per-domain locks held across a read-modify-write (a disk-set change, a define), so two
//! luavirt processes changing the same domain never lose each other's change.

use super::Connection;
use crate::error::{Error, Result};
use luavirt_plugin_api::fsutil::{LockGuard, lock_exclusive};

impl Connection {
    /// Waits for and takes the lock on domain `name` for this connection.
    pub(crate) fn lock_domain(&self, name: &str) -> Result<LockGuard> {
        luavirt_plugin_api::domain::check_domain_name(name).map_err(Error::InvalidArg)?;
        let path = self.lock_dir().join(format!("{name}.lock"));
        lock_exclusive(&path).map_err(|source| Error::Io { doing: "lock", path, source })
    }
}
