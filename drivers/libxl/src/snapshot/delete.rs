//! Deleting one snapshot of a shut-off xl domain so that every other snapshot, and the
//! domain's present state, keep their data.
//!
//! - Internal: the snapshot goes from each image (`qemu-img snapshot -d`).
//! - External disk: the snapshot's point-in-time image B stops being a boundary. If exactly
//!   one image X builds on B (and X holds no internal snapshots), X is merged into B
//!   (`qemu-img commit`), what built on X is rebased onto B, every reference to X (the config,
//!   other snapshots' records) becomes B, and X is removed. Otherwise (a revert made a branch
//!   on B) the files stay as they are.
//! - `--metadata`: only the record goes.
//!
//! The steps are recorded first; merging writes into B, so a killed delete is always
//! finished by the next call (`super::intent`). Nothing is removed before the config and the
//! records stop naming it.

use super::intent::{Change, DELETE_PHASES, Files, Merge};
use super::{known_images, recorded, recorded_format};
use crate::LibxlDriver;
use crate::diskspec::Disk;
use crate::dom::cfg_error;
use crate::images;
use crate::sidecar::SidecarFile;
use luavirt_plugin_api::abi::{
    LV_SNAPSHOT_DELETE_METADATA_ONLY, LV_SNAPSHOT_DELETE_MIRROR_ABORT, LV_SNAPSHOT_DELETE_MIRROR_PIVOT,
};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::snapshot::SnapshotTree;
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

/// Deletes the internal snapshot `snapshot` from `untag` and makes the `merges`; `changed`
/// tells whether anything was written before a failure. Each step is safe to do again: a tag
/// that is gone is skipped, a merged overlay that is gone is skipped, a repeated commit
/// writes the same data.
pub(crate) fn merge_all(snapshot: &str, untag: &[String], merges: &[Merge], changed: &mut bool) -> DriverResult {
    for image in untag {
        if images::tags(image)?.iter().any(|t| t == snapshot) {
            images::tag("-d", snapshot, image)?;
            *changed = true;
        }
    }
    failpoint::hit("libxl-snapshot-delete:untagged");
    for m in merges {
        if Path::new(&m.top).is_file() {
            let written = || std::fs::metadata(&m.base).and_then(|x| x.modified()).ok();
            let before = written();
            let merged = images::commit(&m.top);
            *changed |= merged.is_ok() || written() != before;
            merged.map_err(|e| DriverError::new(e.code, format!("disk {}: {}", m.disk, e.message)))?;
        }
        for other in &m.rebase {
            images::rebase_unsafe(other, &m.base, &m.base_format)?;
        }
    }
    Ok(())
}

/// Replaces image `old` by `new` (of `format`) in every snapshot record.
fn retarget_records(tree: &mut SnapshotTree, old: &str, new: &str, format: &str) -> DriverResult {
    let names: Vec<String> = tree.all().iter().filter_map(|s| s.name.clone()).collect();
    for n in names {
        let s = tree.get_mut(&n).expect("listed");
        for d in s.disks.iter_mut().filter(|d| d.source_file.as_deref() == Some(old)) {
            d.source_file = Some(new.to_string());
        }
        if let Some(e) = s.domain.as_ref() {
            let mut then = DomainXml::parse(&e.to_xml(), None)
                .map_err(|x| DriverError::new(ErrorCode::CorruptState, x.to_string()))?;
            for disk in then.disks().into_iter().filter(|x| x.source.path() == Some(old)) {
                then.set_disk_source(&disk.target, new, format)
                    .map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
            }
            s.domain = Some(then.document().root.clone());
        }
    }
    Ok(())
}

impl LibxlDriver {
    /// `domain_snapshot_delete`.
    pub(crate) fn snapshot_delete_impl(&self, name: &str, snap: &str, flags: u32, call: &mut Call) -> DriverResult {
        if flags & (LV_SNAPSHOT_DELETE_MIRROR_PIVOT | LV_SNAPSHOT_DELETE_MIRROR_ABORT) != 0 {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "Snapshot '{snap}' of domain '{name}' has no mirror (xl snapshots are never mirrored); drop «mirror_pivot» or «mirror_abort»"
                ),
            ));
        }
        let l = self.load_snapshots(name, call)?;
        let s = l.snapshot(snap)?;
        let mut sidecar = l.sidecar.clone();
        if flags & LV_SNAPSHOT_DELETE_METADATA_ONLY != 0 {
            sidecar.snapshots.remove(snap);
            return SidecarFile::of(&l.dom.sidecar_path(), &sidecar, &l.targets(&l.dom)).write();
        }
        self.require_off(name, &format!("Deleting snapshot '{snap}' of domain '{name}'"))?;
        let then = recorded(name, &s)?;
        let mut untag = Vec::new();
        for d in s.disks.iter().filter(|d| d.snapshot.as_deref() == Some("internal")) {
            if let Some(image) = then.disk(&d.name).and_then(|x| x.source.path().map(str::to_string))
                && Path::new(&image).is_file()
                && images::tags(&image)?.iter().any(|t| t == snap)
            {
                untag.push(image);
            }
        }
        let known = known_images(name, &l.dom, &l.sidecar.snapshots);
        let mut cfg = l.dom.cfg.clone();
        let mut merges = Vec::new();
        for d in s.disks.iter().filter(|d| d.snapshot.as_deref() == Some("external")) {
            let Some(was) = then.disk(&d.name) else { continue };
            let Some(base) = was.source.path().map(str::to_string) else { continue };
            let on_base: Vec<&String> = known
                .iter()
                .filter(|k| **k != base && images::backing_of(k).as_deref() == Some(base.as_str()))
                .collect();
            let top = match on_base.as_slice() {
                [x] if images::tags(x)?.is_empty() => (*x).clone(),
                [] => continue,
                _ => {
                    call.log(
                        Level::Info,
                        &format!(
                            "snapshot '{snap}', disk {}: {} image(s) build on {base} (a branch, or internal snapshots); the files stay as they are",
                            d.name,
                            on_base.len()
                        ),
                    );
                    continue;
                }
            };
            let rebase: Vec<String> = known
                .iter()
                .filter(|k| **k != top && **k != base && images::backing_of(k).as_deref() == Some(top.as_str()))
                .cloned()
                .collect();
            let format = recorded_format(&was);
            // The config's disks on the merged overlay move to its base.
            for cd in l.dom.disks.iter().filter(|x| x.spec.disk.path().as_deref() == Some(top.as_str())) {
                let want = Disk { target: Some(base.clone()), format, ..cd.spec.disk.clone() };
                let text = cd.spec.rewrite(&want).map_err(|m| DriverError::new(ErrorCode::InvalidArg, m))?;
                cfg = cfg.replace_item(cd.setting, cd.index, &text).map_err(cfg_error)?;
            }
            retarget_records(&mut sidecar.snapshots, &top, &base, format.name())?;
            merges.push(Merge { disk: d.name.clone(), top, base, base_format: format.qemu().to_string(), rebase });
        }
        sidecar.snapshots.remove(snap);
        let files = Files::of(&l, snap, cfg.bytes().to_vec(), &sidecar)?;
        // What only this snapshot needed: the overlays merged away, and the images it stood on
        // and made (each removed only if nothing else needs it by then).
        let mut removed: Vec<String> = merges.iter().map(|m| m.top.clone()).collect();
        for d in s.disks.iter().filter(|d| d.snapshot.as_deref() == Some("external")) {
            removed.extend(then.disk(&d.name).and_then(|x| x.source.path().map(str::to_string)));
            removed.extend(d.source_file.clone());
        }
        removed.dedup();
        let mut pending = self.begin(
            &l.dom.path,
            Change::Delete {
                files: files.clone(),
                untag: untag.clone(),
                merges: merges.clone(),
                removed: removed.clone(),
            },
        )?;
        failpoint::hit("libxl-snapshot-delete:begun");
        let mut changed = false;
        if let Err(e) = merge_all(snap, &untag, &merges, &mut changed) {
            if !changed {
                pending.done()?;
                return Err(DriverError::new(
                    e.code,
                    format!("Cannot delete snapshot '{snap}' of domain '{name}': {}; nothing was changed", e.message),
                ));
            }
            // Images were written: the delete stays recorded for the next change to finish.
            return Err(DriverError::new(
                e.code,
                format!(
                    "Snapshot '{snap}' of domain '{name}': {}; its images were partly merged, so the next change to the domain finishes the delete once the cause is fixed («do:recover {name}» does only that)",
                    e.message
                ),
            ));
        }
        pending.phase(DELETE_PHASES[1])?;
        failpoint::hit("libxl-snapshot-delete:merged");
        files.switch()?;
        pending.phase(DELETE_PHASES[2])?;
        failpoint::hit("libxl-snapshot-delete:switched");
        self.remove_unneeded(name, &files, &removed, call)?;
        pending.done()
    }
}
