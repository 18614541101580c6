//! Disk modes by their ESX names (`persistent`, `independent-persistent`,
//! `independent-nonpersistent`), stored as `snapshot=` and `<transient/>` in the domain XML.
//!
//! A mode lives in the definition. Whether a disk takes part in snapshots is read from there
//! when a snapshot is planned, so that part applies at once, running or not. Whether its
//! writes are kept is decided when the domain starts (QEMU runs a non-persistent disk on a
//! throw-away overlay, ESX on a redo log), so on a running domain that part applies at the
//! next start, and cannot be asked live.

use super::Connection;
use crate::driver::client::Affect;
use crate::error::{Error, Result};
use luavirt_plugin_api::domain::DiskMode;
use serde::Serialize;

/// When a new disk mode takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModeApplies {
    /// Now (the domain is shut off, or only snapshot participation changed).
    Now,
    /// At the domain's next start (it runs with the disk as it started).
    NextStart,
}

impl Connection {
    /// The mode of a disk (target or source path).
    pub fn disk_mode(&self, domain: &str, disk: &str) -> Result<DiskMode> {
        self.with_domain(domain, |dom| {
            let target = super::diskset::resolve(domain, &dom.disks(), disk)?;
            Ok(dom.disk_mode(&target).expect("resolved disks exist"))
        })?
    }

    /// Sets the mode of a disk; returns false when it already had that mode (nothing written).
    pub fn set_disk_mode(&self, domain: &str, disk: &str, mode: DiskMode) -> Result<bool> {
        Ok(self.set_disk_mode_as(domain, disk, mode, Affect::default())?.0)
    }

    /// Sets the mode of a disk in the definition, with virsh's `--live`/`--config`: `live`
    /// asks that the running domain use it now too, which is refused when whether the disk's
    /// writes are kept would change. Returns whether it changed and when it applies.
    pub fn set_disk_mode_as(
        &self,
        domain: &str,
        disk: &str,
        mode: DiskMode,
        want: Affect,
    ) -> Result<(bool, ModeApplies)> {
        if want.live && !want.config {
            return Err(Error::InvalidArg(format!(
                "Domain '{domain}': a disk's mode lives in the domain's definition, where snapshots read it; «live» goes with «config»"
            )));
        }
        let _lock = self.lock_domain(domain)?;
        let read = self.read_domain_to_change(domain)?;
        let target = super::diskset::resolve(domain, &read.dom.disks(), disk)?;
        let was = read.dom.disk_mode(&target).expect("resolved disks exist");
        let running = self.domain_state(domain)?.0.is_active();
        if want.live && !running {
            return Err(Error::InvalidArg(format!("Domain '{domain}' is not running: drop «live»")));
        }
        let persistence_changes = was.persistent() != mode.persistent();
        if want.live && persistence_changes {
            return Err(Error::InvalidArg(format!(
                "Disk {target} of running domain '{domain}' cannot change from {was} to {mode} live: whether its writes are kept is set when the domain starts. Drop «live»: the definition changes now and the mode applies at the next start"
            )));
        }
        let applies = if running && persistence_changes { ModeApplies::NextStart } else { ModeApplies::Now };
        if was == mode {
            self.unchanged(read);
            return Ok((false, applies));
        }
        let mut dom = read.dom;
        dom.set_disk_mode(&target, mode)
            .map_err(|m| Error::InvalidArg(format!("Disk {target} of domain '{domain}': {m}")))?;
        self.redefine(dom, || format!("disk {target}: mode {was} -> {mode}"))?;
        Ok((true, applies))
    }
}
