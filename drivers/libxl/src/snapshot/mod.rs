//! Snapshots of shut-off xl domains, through `qemu-img` on the disks' images, with the same
//! guarantees as the QEMU driver's:
//!
//! - [`create`]: a disk taken internally gets an internal snapshot in its qcow2 image; one
//!   taken externally gets a qcow2 overlay, and its disk spec in the config names the
//!   overlay. The record (with the domain XML as it was, whose disks name the snapshot's
//!   point-in-time images) goes into the sidecar. All disks or none.
//! - [`revert`]: internal disks rewind their image; external ones get a fresh overlay on the
//!   snapshot's image; what only the discarded state used is removed.
//! - [`delete`]: internal snapshots go from the images; an external one's overlay is merged
//!   into its base where only that overlay builds on it.
//! - A `phy` block device takes no part: its backend serves raw devices only.
//!
//! Each change records its steps first and is settled by the next call if luavirt is killed
//! ([`intent`]). Snapshots of a running domain are refused with the reason (`crate::live`).

mod create;
mod delete;
pub(crate) mod intent;
mod revert;

use crate::LibxlDriver;
use crate::diskspec::{Backend, Format};
use crate::dom::{Dom, DomDisk};
use crate::records;
use crate::sidecar::Sidecar;
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::fsutil::LockGuard;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::snapshot::{SnapshotTree, SnapshotXml};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::collections::BTreeSet;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// A domain with its snapshots, locked against other luavirt processes while held.
pub(crate) struct Loaded {
    /// The domain name.
    pub name: String,
    /// Its config.
    pub dom: Dom,
    /// Its sidecar.
    pub sidecar: Sidecar,
    _lock: LockGuard,
}

impl Loaded {
    /// The snapshot called `snap`.
    fn snapshot(&self, snap: &str) -> DriverResult<SnapshotXml> {
        self.sidecar.snapshots.get(snap).cloned().ok_or_else(|| {
            DriverError::new(ErrorCode::NoSnapshot, format!("Domain '{}' has no snapshot '{snap}'", self.name))
        })
    }

    /// The domain's disk names.
    fn targets(&self, dom: &Dom) -> Vec<String> {
        dom.disks.iter().map(|d| d.target().to_string()).collect()
    }
}

/// The domain XML snapshot `snap` recorded.
fn recorded(name: &str, snap: &SnapshotXml) -> DriverResult<DomainXml> {
    let corrupt = |why: String| {
        DriverError::new(
            ErrorCode::CorruptState,
            format!("Snapshot '{}' of domain '{name}': {why}", snap.name.as_deref().unwrap_or("")),
        )
    };
    let e = snap.domain.as_ref().ok_or_else(|| corrupt("its record holds no domain".into()))?;
    DomainXml::parse(&e.to_xml(), None).map_err(|x| corrupt(format!("the domain it recorded is invalid: {x}")))
}

/// The image of disk `d` that a snapshot works on, or why it cannot.
fn snapshot_image(name: &str, dom: &Dom, d: &DomDisk) -> DriverResult<String> {
    let disk = &d.spec.disk;
    let what = format!("Disk {} of domain '{name}' ({})", d.target(), dom.at(d));
    let unsupported =
        |why: String| DriverError::new(ErrorCode::Unsupported, format!("{what} {why} (nothing was changed)"));
    if let Some(s) = &disk.script {
        return Err(unsupported(format!(
            "is reached through the block script {s}, so its target is no image file qemu-img can snapshot; leave it out («diskspec {},snapshot=no»)",
            d.target()
        )));
    }
    let Some(path) = disk.path() else {
        return Err(unsupported("names no local image".into()));
    };
    let block = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_block_device());
    if block || disk.backendtype == Some(Backend::Phy) {
        return Err(unsupported(format!(
            "is a block device on Xen's phy backend ({path}), which serves raw devices only: no qcow2 overlay can go on it, and it holds no internal snapshot. Snapshot it with its storage (lvcreate --snapshot for LVM), or leave it out («diskspec {},snapshot=no») or make it independent («do:disk-mode {name} {} independent-persistent»)",
            d.target(),
            d.target()
        )));
    }
    if let Some(b) = disk.backendtype.filter(|b| *b != Backend::Qdisk) {
        return Err(unsupported(format!(
            "uses backendtype={}, which cannot read the qcow2 image a snapshot leaves it on; use backendtype=qdisk, or leave it out («diskspec {},snapshot=no»)",
            b.name(),
            d.target()
        )));
    }
    if !Path::new(&path).is_file() {
        return Err(DriverError::new(
            ErrorCode::Io,
            format!("{what}: image {path} does not exist; restore it or fix the config (nothing was changed)"),
        ));
    }
    Ok(path)
}

/// The images the config and the snapshots' records stand on: each disk's image now, and
/// each point-in-time image a snapshot recorded. Only what exists.
fn named_images(name: &str, dom: &Dom, tree: &SnapshotTree) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = dom.disks.iter().filter_map(|d| d.spec.disk.path()).collect();
    for s in tree.all() {
        if let Ok(then) = recorded(name, s) {
            all.extend(then.disks().into_iter().filter_map(|d| d.source.path().map(str::to_string)));
        }
    }
    all.retain(|p| Path::new(p).is_file());
    all
}

/// Every image file the domain or its snapshots know: the named ones, and the overlays the
/// snapshots made. Only what exists.
fn known_images(name: &str, dom: &Dom, tree: &SnapshotTree) -> BTreeSet<String> {
    let mut all = named_images(name, dom, tree);
    all.extend(tree.all().iter().flat_map(|s| &s.disks).filter_map(|d| d.source_file.clone()));
    all.retain(|p| Path::new(p).is_file());
    all
}

/// The xl format of a recorded disk (`<driver type>`), raw by default.
fn recorded_format(d: &luavirt_plugin_api::domain::Disk) -> Format {
    d.format.as_deref().and_then(Format::parse).unwrap_or(Format::Raw)
}

impl LibxlDriver {
    /// Domain `name` and its snapshots, locked for a change (after a change a killed call left
    /// is settled), read again under the lock.
    fn load_snapshots(&self, name: &str, call: &mut Call) -> DriverResult<Loaded> {
        let found = self.find(name)?;
        let lock = self.lock_for_change(name, &found.path, call)?;
        let dom = Dom::load(&found.path)?;
        let sidecar = Sidecar::read(&dom.sidecar_path())?;
        Ok(Loaded { name: name.to_string(), dom, sidecar, _lock: lock })
    }

    /// `domain_snapshot_list`: each snapshot's XML, then the current one. Takes no lock.
    pub(crate) fn snapshot_list_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        let dom = self.find(name)?;
        let sidecar = Sidecar::read(&dom.sidecar_path())?;
        for s in sidecar.snapshots.all() {
            call.emit_text(&s.to_xml());
        }
        call.emit(&records::current_snapshot(sidecar.snapshots.current.as_deref()));
        Ok(())
    }
}
