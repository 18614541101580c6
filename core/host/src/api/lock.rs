//! Per-domain locks held across a read-modify-write (a disk-set change, a define), so two
//! luavirt processes changing the same domain never lose each other's change; and the
//! reconcile that finishes or undoes a change a killed luavirt left half-way, before anyone
//! reads the domain to change it.

use super::Connection;
use crate::error::{Error, Result};
use luavirt_plugin_api::fsutil::{LockGuard, lock_exclusive};

impl Connection {
    /// Waits for and takes the lock on domain `name` for this connection, then has the driver
    /// reconcile any change left unfinished. A dry run writes nothing, so it takes no lock
    /// (and creates no lock file) and repairs nothing.
    pub(crate) fn lock_domain(&self, name: &str) -> Result<Option<LockGuard>> {
        luavirt_plugin_api::domain::check_domain_name(name).map_err(Error::InvalidArg)?;
        if self.is_dry_run() {
            return Ok(None);
        }
        let path = self.lock_dir().join(format!("{name}.lock"));
        let guard = lock_exclusive(&path).map_err(|source| Error::Io { doing: "lock", path, source })?;
        self.reconcile(name)?;
        Ok(Some(guard))
    }

    /// Finishes or undoes a change to domain `name` that a killed luavirt left unfinished;
    /// the driver says on standard error what it repaired. Nothing to do for a driver that
    /// has no multi-step changes, or a domain that does not exist.
    fn reconcile(&self, name: &str) -> Result<()> {
        self.client.reconcile(name)
    }
}
