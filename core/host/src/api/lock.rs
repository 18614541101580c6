//! Per-domain locks held across a read-modify-write (a disk-set change, a define), so two
//! luavirt processes changing the same domain never lose each other's change; and the
//! reconcile that finishes or undoes a change a killed luavirt left half-way, before anyone
//! reads the domain to change it.

use super::Connection;
use crate::error::{Error, Result};
use crate::remote::RemoteLink;
use luavirt_plugin_api::fsutil::{LockGuard, lock_exclusive};
use std::rc::Rc;

/// A host-level lock on a domain: a lock file here, or one the remote host's server holds
/// for this connection. Released when dropped.
pub(crate) enum DomainLock {
    /// A lock file of this host.
    Local(#[allow(dead_code)] LockGuard),
    /// A lock the server holds.
    Remote(Rc<RemoteLink>, u64),
}

impl Drop for DomainLock {
    fn drop(&mut self) {
        if let DomainLock::Remote(link, lock) = self {
            link.unlock(*lock);
        }
    }
}

impl Connection {
    /// Waits for and takes the lock on domain `name` for this connection, then has the driver
    /// reconcile any change left unfinished. A dry run writes nothing, so it takes no lock
    /// (and creates no lock file) and repairs nothing.
    pub(crate) fn lock_domain(&self, name: &str) -> Result<Option<DomainLock>> {
        luavirt_plugin_api::domain::check_domain_name(name).map_err(Error::InvalidArg)?;
        if self.is_dry_run() {
            return Ok(None);
        }
        let lock = match self.client.remote_link() {
            Some(link) => DomainLock::Remote(link.clone(), link.lock(name)?),
            None => DomainLock::Local(self.lock_file(name)?),
        };
        self.reconcile(name)?;
        Ok(Some(lock))
    }

    /// Waits for and takes the lock file of domain `name` on this host (a remote client's
    /// server takes it for the client).
    pub(crate) fn lock_file(&self, name: &str) -> Result<LockGuard> {
        luavirt_plugin_api::domain::check_domain_name(name).map_err(Error::InvalidArg)?;
        let path = self.lock_dir().join(format!("{name}.lock"));
        lock_exclusive(&path).map_err(|source| Error::Io { doing: "lock", path, source })
    }

    /// Finishes or undoes a change to domain `name` that a killed luavirt left unfinished;
    /// the driver says on standard error what it repaired. Nothing to do for a driver that
    /// has no multi-step changes, or a domain that does not exist.
    fn reconcile(&self, name: &str) -> Result<()> {
        self.client.reconcile(name)
    }
}
