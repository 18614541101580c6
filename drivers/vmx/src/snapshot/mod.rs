//! Snapshots of `.vmx` domains, kept as ESX and Workstation keep them: a delta VMDK per
//! persistent disk ([`delta`]), the `.vmx` pointed at the newest deltas, and the `.vmsd`
//! ([`crate::vmsd`]) recording each snapshot's point-in-time images.
//!
//! - [`create`] takes a snapshot; [`revert`] puts fresh deltas on a snapshot's images;
//!   [`delete`] merges a snapshot's images away (`qemu-img commit`) or drops its record;
//!   [`record`] shows snapshots as `<domainsnapshot>` XML.
//! - What ESX refuses is refused first ([`request`]); a `.vmsd` that disagrees with the `.vmx`
//!   or the disk files is an error before anything is written ([`check`], [`chain`]).
//! - The `.vmx` and the `.vmsd` change together or not at all ([`files`]), and every change
//!   is recorded first so that a killed luavirt's change is finished or undone by the next
//!   call ([`intent`]).

mod chain;
mod check;
mod create;
mod delete;
mod delta;
mod files;
pub(crate) mod intent;
mod record;
mod request;
mod revert;

use crate::VmxDriver;
use crate::datastore::Datastores;
use crate::devices::Device;
use crate::vm::{Vm, vmx_error};
use crate::vmsd::{Snapshot, Vmsd};
use luavirt_plugin_api::fsutil::LockGuard;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::PathBuf;

/// A domain with its snapshot database, locked against other luavirt processes while held.
pub(crate) struct Loaded {
    /// The domain name.
    pub name: String,
    /// Its `.vmx`.
    pub vm: Vm,
    /// Its devices.
    pub devices: Vec<Device>,
    /// Its `.vmsd` (empty when it has none yet).
    pub vmsd: Vmsd,
    _lock: Option<LockGuard>,
}

/// Reads the `.vmsd` of `vm`; a VM without one gets an empty database in its `.vmx`'s
/// encoding and line ending.
fn read_vmsd(vm: &Vm) -> DriverResult<Vmsd> {
    let path = Vmsd::path_for(&vm.path);
    match std::fs::read(&path) {
        Ok(bytes) => Vmsd::parse(&bytes, &path).map_err(vmx_error),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Vmsd::empty(&path, vm.vmx.encoding(), &vm.vmx.usual_ending()))
        }
        Err(e) => Err(DriverError::io("read", &path, e)),
    }
}

/// The device at `node` (`scsi0:0`, any case) of `devices`.
fn device_at<'a>(devices: &'a [Device], node: &str) -> Option<&'a Device> {
    let node = node.trim().to_ascii_lowercase();
    devices.iter().find(|d| d.id() == node)
}

impl Loaded {
    /// Every image a snapshot recorded, resolved (once per snapshot that recorded it).
    fn recorded_images(&self, ds: &Datastores) -> Vec<PathBuf> {
        let dir = self.vm.dir();
        self.vmsd.snapshots().iter().flat_map(|s| &s.disks).filter_map(|d| ds.resolve(dir, &d.file).ok()).collect()
    }

    /// The snapshot called `snap`.
    fn snapshot(&self, snap: &str) -> DriverResult<&Snapshot> {
        self.vmsd.by_name(snap).ok_or_else(|| {
            DriverError::new(
                ErrorCode::NoSnapshot,
                format!("Domain '{}' has no snapshot '{snap}' ({})", self.name, self.vmsd.path().display()),
            )
        })
    }
}

impl VmxDriver {
    /// Domain `name` and its snapshots, locked for a change (after a change a killed call
    /// left is settled).
    fn load_snapshots(&self, name: &str, call: &mut Call) -> DriverResult<Loaded> {
        let found = self.find(name)?;
        let lock = self.lock_for_change(name, &found.path, call)?;
        // Read again under the lock: another luavirt may have changed it meanwhile.
        let vm = Vm::load(&found.path)?;
        let devices = vm.devices()?;
        let vmsd = read_vmsd(&vm)?;
        Ok(Loaded { name: name.to_string(), vm, devices, vmsd, _lock: Some(lock) })
    }

    /// Domain `name` and its snapshots, to read (no lock: a read writes nothing).
    fn read_snapshots(&self, name: &str) -> DriverResult<Loaded> {
        let vm = self.find(name)?;
        let devices = vm.devices()?;
        let vmsd = read_vmsd(&vm)?;
        Ok(Loaded { name: name.to_string(), vm, devices, vmsd, _lock: None })
    }
}

#[cfg(test)]
mod tests;
