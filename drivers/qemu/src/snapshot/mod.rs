//! Snapshots of QEMU domains: internal ones inside qcow2 images, external ones as qcow2
//! overlays, memory inside a qcow2 image or in a file; offline through `qemu-img`, running
//! through QMP. The host has already resolved which disks take part and how.
//!
//! What a snapshot record keeps (its `<domainsnapshot>`): for each disk its mode and, when
//! external, the overlay it created; and in `<domain>` the definition as it was, whose disk
//! sources are the snapshot's point-in-time images (an internal snapshot lives in that image;
//! an external one *is* that image, now read-only below the overlay).

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod revert;
mod store;

use crate::QemuDriver;
use crate::monitor::Monitor;
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::records::SnapshotCurrent;
use luavirt_plugin_api::snapshot::{SnapshotTree, SnapshotXml};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::collections::BTreeSet;

/// One disk's part in a snapshot, with the image it applies to.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct DiskWork {
    pub target: String,
    /// `internal`, `external` or `manual`.
    pub mode: String,
    /// The disk's image when the snapshot is taken.
    pub image: String,
    /// That image's format.
    pub format: String,
    /// The new overlay (external).
    pub overlay: Option<String>,
    /// Mirror file (mirrored snapshot).
    pub mirror: Option<String>,
}

/// Name of the block job that mirrors disk `target` for a mirrored snapshot.
pub(crate) fn mirror_job(target: &str) -> String {
    format!("mirror-{target}")
}

/// The disks that take part in `snap` on domain `dom`, each with its current image.
pub(crate) fn disk_work(dom: &DomainXml, snap: &SnapshotXml) -> DriverResult<Vec<DiskWork>> {
    let name = dom.name();
    let mut work = Vec::new();
    for s in &snap.disks {
        let mode = s.snapshot.clone().unwrap_or_else(|| "no".to_string());
        if mode == "no" {
            continue;
        }
        let d = dom
            .disk(&s.name)
            .ok_or_else(|| DriverError::new(ErrorCode::NoDisk, format!("Domain '{name}' has no disk '{}'", s.name)))?;
        let image = d.source.path().ok_or_else(|| {
            DriverError::new(
                ErrorCode::Unsupported,
                format!("Disk {} of domain '{name}' has no local image to snapshot", d.target),
            )
        })?;
        if mode == "external" && s.driver_type.as_deref().is_some_and(|t| t != "qcow2") {
            return Err(DriverError::new(
                ErrorCode::Unsupported,
                format!(
                    "Disk {} of domain '{name}': the QEMU driver makes qcow2 overlays, not {}",
                    d.target,
                    s.driver_type.as_deref().unwrap_or("")
                ),
            ));
        }
        if mode == "external" && s.source_file.is_none() {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!("Disk {} of snapshot has no overlay file", d.target),
            ));
        }
        work.push(DiskWork {
            target: d.target.clone(),
            mode,
            image: image.to_string(),
            format: d.format_or_raw().to_string(),
            overlay: s.source_file.clone(),
            mirror: s.mirror_file.clone(),
        });
    }
    Ok(work)
}

/// Every image file the domain or any of its snapshots refers to, that exists.
pub(crate) fn known_images(dom: &DomainXml, tree: &SnapshotTree) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let add_dom = |all: &mut BTreeSet<String>, d: &DomainXml| {
        all.extend(d.disks().into_iter().filter_map(|disk| disk.source.path().map(str::to_string)));
    };
    add_dom(&mut all, dom);
    for s in tree.all() {
        if let Some(then) = s.domain.as_ref().and_then(|e| DomainXml::parse(&e.to_xml(), None).ok()) {
            add_dom(&mut all, &then);
        }
        for d in &s.disks {
            if let Some(f) = &d.source_file {
                all.insert(f.clone());
            }
        }
    }
    all.retain(|p| std::path::Path::new(p).is_file());
    all
}

/// The definition a snapshot recorded.
pub(crate) fn recorded_domain(domain: &str, snap: &SnapshotXml) -> DriverResult<DomainXml> {
    let e = snap.domain.as_ref().ok_or_else(|| {
        DriverError::new(
            ErrorCode::CorruptState,
            format!(
                "Snapshot '{}' of domain '{domain}' has no recorded definition",
                snap.name.as_deref().unwrap_or("")
            ),
        )
    })?;
    DomainXml::parse(&e.to_xml(), None).map_err(|x| {
        DriverError::new(
            ErrorCode::CorruptState,
            format!(
                "The definition recorded in snapshot '{}' of domain '{domain}' is invalid: {x}",
                snap.name.as_deref().unwrap_or("")
            ),
        )
    })
}

impl QemuDriver {
    /// The snapshot called `snap`, or an error naming the domain.
    pub(crate) fn find_snapshot(&self, name: &str, tree: &SnapshotTree, snap: &str) -> DriverResult<SnapshotXml> {
        tree.get(snap)
            .cloned()
            .ok_or_else(|| DriverError::new(ErrorCode::NoSnapshot, format!("Domain '{name}' has no snapshot '{snap}'")))
    }

    /// Disks of `name` whose mirrored-snapshot job still runs: `(snapshot, target)`.
    pub(crate) fn active_mirrors(
        &self,
        tree: &SnapshotTree,
        mon: Option<&mut Monitor>,
    ) -> DriverResult<Vec<(String, String)>> {
        let Some(mon) = mon else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for s in tree.all() {
            for d in s.disks.iter().filter(|d| d.mirror_file.is_some()) {
                if mon.block_job(&mirror_job(&d.name))?.is_some() {
                    out.push((s.name.clone().unwrap_or_default(), d.name.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Refuses `what` while a mirrored snapshot's mirror is active.
    pub(crate) fn refuse_while_mirroring(&self, name: &str, tree: &SnapshotTree, what: &str) -> DriverResult {
        let mut mon = if self.running(name)?.is_some() { Some(self.monitor(name)?) } else { None };
        if let Some((snap, disk)) = self.active_mirrors(tree, mon.as_mut())?.into_iter().next() {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "Cannot {what}: disk {disk} of domain '{name}' is still mirrored by snapshot '{snap}'; end the mirror first: delete snapshot '{snap}' with «mirror_pivot» (or «mirror_abort»)"
                ),
            ));
        }
        Ok(())
    }

    /// `domain_snapshot_list`: each snapshot's XML, then the current one.
    pub(crate) fn snapshot_list_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        self.state.read_definition(name)?;
        let tree = self.read_tree(name)?;
        for s in tree.all() {
            call.emit_text(&s.to_xml());
        }
        call.emit(&SnapshotCurrent { current: tree.current.clone() });
        Ok(())
    }
}
