//! Redefining a `.vmx` domain from domain XML. The `.vmx` stays the VMware client's file:
//! luavirt writes back only what it manages, disk modes (one `.mode` line per disk changed)
//! and disk sets (the sidecar). Any other difference from the current view is refused with a
//! message naming it, and so is a disk kept in snapshots whose changes are discarded, which ESX
//! cannot do. Nothing is written unless the whole request is acceptable.

use crate::devices::Device;
use crate::vm::{Vm, vmx_error};
use luavirt_plugin_api::domain::{DISKMODES_NS, DISKSETS_NS, DiskMode, DiskSets, DomainXml};
use luavirt_plugin_api::xml::diff::first_difference;
use luavirt_plugin_api::{DriverError, ErrorCode};

/// What a redefinition changes.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// `(index into the devices, new mode)` for each disk whose mode changes.
    pub modes: Vec<(usize, DiskMode)>,
    /// The disk sets as the XML gives them.
    pub sets: DiskSets,
}

/// What may change, for refusals.
const WHAT_CHANGES: &str = "through luavirt a .vmx domain changes only its disk modes (snapshot='no', <transient/>) and disk sets; change anything else with the VMware client or in the .vmx itself";

/// A copy without what luavirt manages: disk modes, seed attributes, luavirt's metadata, and
/// (when the `.vmx` has none) the UUID the host adds to definitions without one.
fn unmanaged(dom: &DomainXml, drop_uuid: bool) -> DomainXml {
    let mut d = dom.clone();
    d.set_metadata_element(DISKSETS_NS, None);
    d.set_metadata_element(DISKMODES_NS, None);
    let root = &mut d.document_mut().root;
    if drop_uuid && let Some(i) = root.position(|e| e.name() == "uuid") {
        root.remove_element(i);
    }
    if let Some(devices) = root.child_mut("devices") {
        for disk in devices.elements_mut().filter(|e| e.name() == "disk") {
            disk.remove_attr("snapshot");
            disk.remove_attr("selected");
            while let Some(i) = disk.position(|e| e.name() == "transient") {
                disk.remove_element(i);
            }
        }
    }
    d
}

/// Checks `given` against `view` (the current XML of `vm`, whose devices are `devices`) and
/// says what to write.
pub fn plan(vm: &Vm, devices: &[Device], view: &DomainXml, given: &DomainXml) -> Result<Plan, DriverError> {
    let name = view.name();
    let nothing = "(nothing was written)";
    for disk in given.disks() {
        if disk.transient && disk.snapshot.as_deref() != Some("no") {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "Disk {} of domain '{name}': ESX cannot keep a disk in snapshots and discard its changes (<transient/> without snapshot='no'); use independent-nonpersistent (snapshot='no' with <transient/>) or remove <transient/> {nothing}",
                    disk.target
                ),
            ));
        }
    }
    let current = unmanaged(view, false);
    let wanted = unmanaged(given, view.uuid().is_none());
    if let Some(diff) = first_difference(&current.document().root, &wanted.document().root, "the .vmx") {
        return Err(DriverError::new(
            ErrorCode::Unsupported,
            format!("Domain '{name}' ({}): {diff}; {WHAT_CHANGES} {nothing}", vm.path.display()),
        ));
    }
    let mut modes = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let new = given.disk_mode(&d.target).unwrap_or(d.mode);
        if new == d.mode {
            continue;
        }
        if d.mode == DiskMode::Unknown {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "{}; change it in the VMware client or on that line {nothing}",
                    d.unknown_mode(&vm.path, &name)
                ),
            ));
        }
        if !d.is_disk() {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "Disk {} of domain '{name}' is a CD-ROM drive; disk modes apply to hard disks only {nothing}",
                    d.target
                ),
            ));
        }
        if !new.settable() {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "Disk {} of domain '{name}': '{new}' is ESX's old mode and can only be read; use persistent, independent-persistent or independent-nonpersistent {nothing}",
                    d.target
                ),
            ));
        }
        modes.push((i, new));
    }
    Ok(Plan { modes, sets: given.disk_sets() })
}

/// Applies the mode changes of `plan` to the `.vmx` of `vm`: one line rewritten per disk, or
/// one line added right after the disk's other keys. Returns the new bytes, or `None` when
/// nothing changes.
pub fn apply_modes(vm: &Vm, devices: &[Device], plan: &Plan) -> Result<Option<Vec<u8>>, DriverError> {
    let mut vmx = vm.vmx.clone();
    let mut edits: Vec<(&Device, DiskMode)> = plan.modes.iter().map(|(i, m)| (&devices[*i], *m)).collect();
    // From the bottom up, so an added line never moves the place of the next edit.
    edits.sort_by_key(|(d, _)| std::cmp::Reverse(d.last_line));
    for (d, mode) in edits {
        let key = format!("{}.mode", d.node);
        if d.mode_line.is_some() {
            vmx.set(&key, mode.name()).map_err(vmx_error)?;
        } else if mode != DiskMode::Persistent {
            vmx.insert_after(d.last_line, &key, mode.name()).map_err(vmx_error)?;
        }
    }
    let bytes = vmx.to_bytes();
    Ok((bytes != vm.bytes).then_some(bytes))
}
