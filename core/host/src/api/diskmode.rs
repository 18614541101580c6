//! Disk modes by their ESX names (`persistent`, `independent-persistent`,
//! `independent-nonpersistent`), stored as `snapshot=` and `<transient/>` in the domain XML.

use super::Connection;
use crate::error::{Error, Result};
use luavirt_plugin_api::domain::DiskMode;

impl Connection {
    /// The mode of a disk (target or source path).
    pub fn disk_mode(&self, domain: &str, disk: &str) -> Result<DiskMode> {
        let dom = self.read_domain(domain)?;
        let target = super::diskset::resolve(domain, &dom.disks(), disk)?;
        Ok(dom.disk_mode(&target).expect("resolved disks exist"))
    }

    /// Sets the mode of a disk; returns false when it already had that mode (nothing written).
    pub fn set_disk_mode(&self, domain: &str, disk: &str, mode: DiskMode) -> Result<bool> {
        let _lock = self.lock_domain(domain)?;
        let mut dom = self.read_domain(domain)?;
        let target = super::diskset::resolve(domain, &dom.disks(), disk)?;
        let was = dom.disk_mode(&target).expect("resolved disks exist");
        if was == mode {
            return Ok(false);
        }
        dom.set_disk_mode(&target, mode)
            .map_err(|m| Error::InvalidArg(format!("Disk {target} of domain '{domain}': {m}")))?;
        self.redefine(&dom, || format!("disk {target}: mode {was} -> {mode}"))?;
        Ok(true)
    }
}
