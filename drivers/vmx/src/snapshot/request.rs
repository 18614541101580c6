//! What ESX would accept of a snapshot request. The host has resolved every disk; ESX has no
//! per-snapshot choice: every persistent disk goes into a delta, no independent disk does,
//! and deltas are VMDKs it names itself. A request that differs is refused, saying what to
//! change. Memory, and anything that needs the VM running, needs an ESX host.

use crate::devices::Device;
use crate::needs_esx;
use luavirt_plugin_api::abi::{
    LV_SNAPSHOT_CREATE_HALT, LV_SNAPSHOT_CREATE_LIVE, LV_SNAPSHOT_CREATE_NO_METADATA, LV_SNAPSHOT_CREATE_REUSE_EXT,
};
use luavirt_plugin_api::domain::DiskMode;
use luavirt_plugin_api::snapshot::SnapshotXml;
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

const NOTHING: &str = "(nothing was changed)";

/// The devices (indexes into `devices`) whose disks the snapshot `req` of domain `name`
/// takes, or why ESX would refuse it.
pub fn disks_taken(
    name: &str,
    req: &SnapshotXml,
    flags: u32,
    devices: &[Device],
    vmx: &Path,
) -> Result<Vec<usize>, DriverError> {
    let snap = req.name.as_deref().unwrap_or("");
    if req.memory.as_ref().is_some_and(|m| m.snapshot != "no") {
        return Err(needs_esx(
            &format!("Saving the memory of domain '{name}' in snapshot '{snap}'"),
            "take a disk-only snapshot («disk_only»), or take this one in the VMware client",
        ));
    }
    if flags & (LV_SNAPSHOT_CREATE_HALT | LV_SNAPSHOT_CREATE_LIVE) != 0 {
        return Err(needs_esx(
            &format!("Snapshot '{snap}' with «halt» or «live» of domain '{name}'"),
            "drop the flag: every .vmx domain here is shut off",
        ));
    }
    let refuse = |m: String| DriverError::new(ErrorCode::InvalidArg, format!("{m} {NOTHING}"));
    if flags & LV_SNAPSHOT_CREATE_NO_METADATA != 0 {
        return Err(refuse(format!(
            "Snapshot '{snap}' of domain '{name}': ESX keeps every snapshot in the VM's .vmsd, so there is no snapshot without metadata; drop «no_metadata»"
        )));
    }
    if flags & LV_SNAPSHOT_CREATE_REUSE_EXT != 0 {
        return Err(refuse(format!(
            "Snapshot '{snap}' of domain '{name}': ESX makes its delta disks itself, so there are no existing files to reuse; drop «reuse_external»"
        )));
    }
    let asked = |d: &Device| req.disks.iter().find(|s| s.name == d.target);
    let mode_of = |d: &Device| asked(d).and_then(|s| s.snapshot.as_deref()).unwrap_or("no").to_string();
    let taking_part = |d: &Device| d.is_disk() && d.mode == DiskMode::Persistent;
    // First what the request takes that ESX never takes: that is what the request asks for.
    if let Some(d) = devices.iter().find(|d| !taking_part(d) && mode_of(d) != "no") {
        let disk = format!("Disk {} of domain '{name}'", d.target);
        if d.is_disk() && d.mode == DiskMode::Unknown {
            return Err(refuse(format!(
                "{}; leave it out («diskspec {},snapshot=no»), or change its mode in the VMware client or on that line",
                d.unknown_mode(vmx, name),
                d.target
            )));
        }
        return Err(refuse(if d.is_disk() {
            format!(
                "{disk} is {}, and ESX never takes independent disks in snapshots; leave it out («diskspec {},snapshot=no»), or make it persistent first with «do:disk-mode {name} {} persistent»",
                d.mode, d.target, d.target
            )
        } else {
            format!("{disk} is a CD-ROM drive or passthrough device; it takes no part in snapshots")
        }));
    }
    let mut taken = Vec::new();
    for (i, d) in devices.iter().enumerate().filter(|(_, d)| taking_part(d)) {
        let disk = format!("Disk {} of domain '{name}'", d.target);
        let mode = mode_of(d);
        if mode != "external" {
            return Err(refuse(format!(
                "{disk} is persistent, and ESX takes every persistent disk in a snapshot (the request has it as snapshot='{mode}'); take it too (drop the «diskspec» or «disk_set» that leaves it out), or make it independent first with «do:disk-mode {name} {} independent-persistent»",
                d.target
            )));
        }
        let s = asked(d).expect("an external disk was asked for");
        if let Some(file) = &s.source_file {
            return Err(refuse(format!(
                "{disk}: ESX names its delta disks itself (<disk>-00000N.vmdk beside the .vmx), so the overlay cannot be {file}; drop file= from the diskspec"
            )));
        }
        if let Some(t) = s.driver_type.as_deref().filter(|t| *t != "vmdk") {
            return Err(refuse(format!("{disk}: ESX deltas are VMDKs, not {t}; drop driver= from the diskspec")));
        }
        if s.mirror_file.is_some() {
            return Err(needs_esx(
                &format!("Mirroring disk {} of domain '{name}'", d.target),
                "drop mirror= from the diskspec",
            ));
        }
        taken.push(i);
    }
    if let Some(s) = req.disks.iter().find(|s| !devices.iter().any(|d| d.target == s.name)) {
        return Err(DriverError::new(ErrorCode::NoDisk, format!("Domain '{name}' has no disk '{}' {NOTHING}", s.name)));
    }
    if taken.is_empty() {
        return Err(refuse(format!(
            "Snapshot '{snap}' of domain '{name}' would take no disk: ESX snapshots persistent disks only, and this VM has none"
        )));
    }
    Ok(taken)
}
