//! Deleting one snapshot so that every other snapshot keeps its data.
//!
//! - Internal: the tag goes from each image (`qemu-img snapshot -d`, or QMP while running).
//! - External disk: the snapshot's point-in-time image B is no longer needed as a boundary.
//!   If exactly one image X builds on B, X is merged down into B (`qemu-img commit`, or
//!   `block-commit` while running), whatever built on X is rebased onto B, every reference
//!   to X (the definition, other snapshots' records) becomes B, and X is removed. If several
//!   images build on B (a revert made a branch), or X holds internal snapshots, the files
//!   stay as they are: merging would change what the other branch shows, or lose them.
//! - External memory: the file goes, last, once the disks are merged and the record is gone.
//! - A mirrored snapshot's mirror ends first: `--mirror-pivot` switches the disk to the
//!   mirror, `--mirror-abort` keeps it on its source; the images then stay as they are (the
//!   mirror exists to move the disk, and merging would move it back).
//!
//! Both kinds are recorded as a plan before their first step, and every step can be done
//! again, so a killed delete is finished by the next call ([`QemuDriver::settle_delete`],
//! [`QemuDriver::settle_mirror_end`]): merging has already changed B, so there is no going
//! back. Nothing is removed before the definition and the records stop naming it.

use super::{known_images, mirror_job, recorded_domain};
use crate::QemuDriver;
use crate::images::{self, qemu_img};
use crate::intent::Change;
use crate::monitor::{Monitor, Until};
use luavirt_plugin_api::abi::{
    LV_SNAPSHOT_DELETE_METADATA_ONLY, LV_SNAPSHOT_DELETE_MIRROR_ABORT, LV_SNAPSHOT_DELETE_MIRROR_PIVOT,
};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::snapshot::SnapshotTree;
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

/// A delete that merges images, as recorded before its first step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// The snapshot.
    pub snapshot: String,
    /// Images whose internal snapshot (tag) goes.
    pub tags: Vec<String>,
    /// Merges of an image into the snapshot's point-in-time image below it.
    pub merges: Vec<Merge>,
    /// The memory file, removed last.
    pub memory_file: Option<String>,
    /// The definition afterwards.
    pub definition: String,
    /// The snapshot tree afterwards.
    pub tree: String,
}

/// `top` merged into `base` (its backing image) for disk `disk`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Merge {
    /// The disk.
    pub disk: String,
    /// The image merged away.
    pub top: String,
    /// The image it goes into.
    pub base: String,
    /// `base`'s format.
    pub base_format: String,
    /// Images built on `top`, rebased onto `base`.
    pub rebase: Vec<String>,
}

/// A mirrored snapshot's mirrors ending, as recorded before the first one ends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MirrorEnd {
    /// The snapshot.
    pub snapshot: String,
    /// On the mirrors (pivot) or on the sources (abort).
    pub pivot: bool,
    /// `(disk, its source, its mirror)`.
    pub disks: Vec<(String, String, String)>,
}

const PHASES: &[&str] = &["begun", "merged", "switched", "removed"];

impl QemuDriver {
    /// `domain_snapshot_delete`.
    pub(crate) fn snapshot_delete_impl(
        &self,
        name: &str,
        snap_name: &str,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let _lock = self.lock_domain(name, call)?;
        let (_, dom) = self.state.read_definition(name)?;
        let mut tree = self.read_tree(name)?;
        let snap = self.find_snapshot(name, &tree, snap_name)?;
        let mut mon = if self.running(name)?.is_some() { Some(self.monitor(name)?) } else { None };

        let mirrors: Vec<String> = self
            .active_mirrors(&tree, mon.as_mut())?
            .into_iter()
            .filter(|(s, _)| s == snap_name)
            .map(|(_, d)| d)
            .collect();
        if !mirrors.is_empty() {
            let pivot = flags & LV_SNAPSHOT_DELETE_MIRROR_PIVOT != 0;
            if !pivot && flags & LV_SNAPSHOT_DELETE_MIRROR_ABORT == 0 {
                return Err(DriverError::new(
                    ErrorCode::InvalidState,
                    format!(
                        "Snapshot '{snap_name}' of domain '{name}' still mirrors disk {}; pass «mirror_pivot» to switch to the mirror, or «mirror_abort» to stay on the source",
                        mirrors.join(", ")
                    ),
                ));
            }
            drop(mon);
            let mut end = MirrorEnd { snapshot: snap_name.to_string(), pivot, disks: Vec::new() };
            for disk in mirrors {
                let source = dom.disk(&disk).and_then(|d| d.source.path().map(str::to_string)).unwrap_or_default();
                let mirror = snap.disks.iter().find(|d| d.name == disk).and_then(|d| d.mirror_file.clone());
                end.disks.push((disk, source, mirror.unwrap_or_default()));
            }
            let pending = self.begin(name, Change::MirrorEnd(end.clone()))?;
            failpoint::hit("mirror-end:begun");
            self.end_mirrors(name, &end, call)?;
            return pending.done();
        }
        if flags & LV_SNAPSHOT_DELETE_METADATA_ONLY != 0 {
            tree.remove(snap_name);
            return self.write_tree(name, &tree);
        }
        drop(mon);
        let plan = self.plan_delete(name, &dom, &tree, snap_name, call)?;
        let mut pending = self.begin(name, Change::SnapshotDelete(plan.clone()))?;
        failpoint::hit("snapshot-delete:begun");
        let mut changed = false;
        if let Err(e) = self.merge_all(name, &plan, &mut changed, call) {
            if !changed {
                pending.done()?;
                return Err(DriverError::new(
                    e.code,
                    format!(
                        "Cannot delete snapshot '{snap_name}' of domain '{name}': {}; nothing was changed",
                        e.message
                    ),
                ));
            }
            // Images were written: the delete stays recorded (given up by this call), and the
            // next change to the domain finishes it.
            return Err(DriverError::new(
                e.code,
                format!(
                    "Snapshot '{snap_name}' of domain '{name}': {}; its images were partly merged, so the next change to the domain finishes the delete once the cause is fixed (`luavirt recover {name}` does only that)",
                    e.message
                ),
            ));
        }
        pending.phase("merged")?;
        failpoint::hit("snapshot-delete:merged");
        self.switch_delete(name, &plan)?;
        pending.phase("switched")?;
        failpoint::hit("snapshot-delete:switched");
        self.remove_merged(name, &plan, call)?;
        pending.done()
    }

    /// Decides every step: which tags go, which images merge, the definition and the tree
    /// afterwards. Changes nothing.
    fn plan_delete(
        &self,
        name: &str,
        dom: &DomainXml,
        tree: &SnapshotTree,
        snap_name: &str,
        call: &mut Call,
    ) -> DriverResult<Plan> {
        let snap = self.find_snapshot(name, tree, snap_name)?;
        let then = recorded_domain(name, &snap)?;
        let mut plan = Plan {
            snapshot: snap_name.to_string(),
            tags: Vec::new(),
            merges: Vec::new(),
            memory_file: snap.memory.as_ref().filter(|m| m.snapshot == "external").and_then(|m| m.file.clone()),
            definition: String::new(),
            tree: String::new(),
        };
        for d in snap.disks.iter().filter(|d| d.snapshot.as_deref() == Some("internal")) {
            if let Some(image) = then.disk(&d.name).and_then(|x| x.source.path().map(str::to_string))
                && Path::new(&image).is_file()
                && images::internal_snapshots(&image)?.iter().any(|t| t == snap_name)
            {
                plan.tags.push(image);
            }
        }
        let mut dom = dom.clone();
        let mut tree = tree.clone();
        let known = known_images(&dom, &tree);
        for d in snap.disks.iter().filter(|d| d.snapshot.as_deref() == Some("external")) {
            let Some(base) = then.disk(&d.name).and_then(|x| x.source.path().map(str::to_string)) else {
                continue;
            };
            let mut on_base = Vec::new();
            for img in known.iter().filter(|i| **i != base) {
                if images::backing_of(img)?.as_deref() == Some(base.as_str()) {
                    on_base.push(img.clone());
                }
            }
            // Merging copies only an image's present data: one that holds internal snapshots
            // (of later snapshots) must stay whole.
            match on_base.as_slice() {
                [x] if images::internal_snapshots(x)?.is_empty() => {
                    let mut rebase = Vec::new();
                    for other in known.iter().filter(|k| **k != *x && **k != base) {
                        if images::backing_of(other)?.as_deref() == Some(x.as_str()) {
                            rebase.push(other.clone());
                        }
                    }
                    let base_format = images::format_of(&base)?;
                    replace_image(&mut dom, &mut tree, x, &base, &base_format)?;
                    plan.merges.push(Merge { disk: d.name.clone(), top: x.clone(), base, base_format, rebase });
                }
                [] => {}
                _ => call.log(
                    Level::Info,
                    &format!(
                        "snapshot '{snap_name}', disk {}: {} image(s) build on {base} (a branch, or internal snapshots); they stay as they are",
                        d.name,
                        on_base.len()
                    ),
                ),
            }
        }
        tree.remove(snap_name);
        plan.definition = dom.to_xml();
        plan.tree = tree.to_xml();
        Ok(plan)
    }

    /// Removes the tags and merges the images; `changed` tells whether anything was written
    /// before a failure. Each step is done again safely: a tag that is gone is skipped, a
    /// merge QEMU finished is not repeated, a repeated `qemu-img commit` writes the same data.
    fn merge_all(&self, name: &str, plan: &Plan, changed: &mut bool, call: &mut Call) -> DriverResult {
        let mut mon = if self.running(name)?.is_some() { Some(self.monitor(name)?) } else { None };
        for image in &plan.tags {
            if !images::internal_snapshots(image)?.contains(&plan.snapshot) {
                continue;
            }
            match mon.as_mut().map(|m| m.node_of_file(image)).transpose()?.flatten() {
                Some(node) => {
                    let m = mon.as_mut().expect("node came from the monitor");
                    m.exec("blockdev-snapshot-delete-internal-sync", json!({ "device": node, "name": plan.snapshot }))?;
                }
                None => {
                    qemu_img(&["snapshot", "-d", &plan.snapshot, image])?;
                }
            }
            *changed = true;
        }
        failpoint::hit("snapshot-delete:tags");
        for m in &plan.merges {
            let written = || std::fs::metadata(&m.base).and_then(|x| x.modified()).ok();
            let before = written();
            let merged = self.merge_down(name, mon.as_mut(), m, call);
            *changed |= merged.is_ok() || written() != before;
            merged?;
        }
        Ok(())
    }

    /// Merges `m.top` into `m.base`, online when QEMU has both open, and rebases whatever
    /// else built on `m.top` onto `m.base`.
    fn merge_down(&self, name: &str, mon: Option<&mut Monitor>, m: &Merge, call: &mut Call) -> DriverResult {
        let job = format!("lv-commit-{}", m.disk);
        let mut mon = mon;
        let (top_node, base_node) = match mon.as_mut() {
            Some(q) => (q.node_of_file(&m.top)?, q.node_of_file(&m.base)?),
            None => (None, None),
        };
        match (mon, top_node, base_node) {
            (Some(mon), Some(top_node), Some(base_node)) => {
                let device = mon.top_node(&m.disk)?;
                if mon.block_job(&job)?.is_none() {
                    mon.exec(
                        "block-commit",
                        json!({ "job-id": job, "device": device, "top-node": top_node, "base-node": base_node }),
                    )?;
                }
                // A commit of the active image becomes ready and switches when completed;
                // one of a lower image just ends.
                mon.wait_block_job(&job, Until::Ready, call, "merging the snapshot")?;
                if mon.block_job(&job)?.is_some_and(|j| j["ready"].as_bool() == Some(true)) {
                    failpoint::hit("snapshot-delete:commit-ready");
                    mon.exec("block-job-complete", json!({ "device": job }))?;
                    mon.wait_block_job(&job, Until::Done, call, "merging the snapshot")?;
                }
            }
            // QEMU reads the base and no longer the top: an earlier attempt merged it.
            (_, None, Some(_)) => {}
            (_, Some(_), _) => {
                return Err(DriverError::new(
                    ErrorCode::InvalidState,
                    format!(
                        "Disk {} of domain '{name}': QEMU reads {} but not its backing image {}; cannot merge",
                        m.disk, m.top, m.base
                    ),
                ));
            }
            (_, None, None) => {
                if Path::new(&m.top).is_file() {
                    qemu_img(&["commit", "-q", "-f", "qcow2", &m.top])?;
                }
            }
        }
        for other in &m.rebase {
            qemu_img(&["rebase", "-u", "-F", &m.base_format, "-b", &m.base, other])?;
        }
        call.log(Level::Debug, &format!("domain '{name}', disk {}: merged {} into {}", m.disk, m.top, m.base));
        Ok(())
    }

    /// The switch: the definition and the snapshot tree stop naming the merged images.
    fn switch_delete(&self, name: &str, plan: &Plan) -> DriverResult {
        let (text, _) = self.state.read_definition(name)?;
        if text != plan.definition {
            self.state.write_definition(name, &plan.definition)?;
        }
        failpoint::hit("snapshot-delete:definition");
        let tree = SnapshotTree::parse(&plan.tree).map_err(|e| {
            DriverError::new(ErrorCode::Internal, format!("The planned snapshot tree does not parse: {e}"))
        })?;
        self.write_tree(name, &tree)
    }

    /// Removes the merged images and the memory file, which nothing names any more.
    fn remove_merged(&self, name: &str, plan: &Plan, call: &mut Call) -> DriverResult {
        let (_, dom) = self.state.read_definition(name)?;
        let named = known_images(&dom, &self.read_tree(name)?);
        let files = plan.merges.iter().map(|m| m.top.as_str()).chain(plan.memory_file.as_deref());
        for f in files.filter(|f| !named.contains(*f)) {
            if let Err(e) = std::fs::remove_file(f)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                call.log(Level::Warning, &format!("snapshot '{}': could not remove {f}: {e}", plan.snapshot));
            }
        }
        failpoint::hit("snapshot-delete:removed");
        Ok(())
    }

    /// Settles a delete a killed call left: it is finished. Says so.
    pub(crate) fn settle_delete(&self, name: &str, plan: &Plan, phase: &str, call: &mut Call) -> DriverResult<String> {
        let at = |p: &str| PHASES.iter().position(|x| *x == p).unwrap_or(0);
        if at(phase) < at("switched") {
            self.merge_all(name, plan, &mut true, call)?;
            self.switch_delete(name, plan)?;
        }
        self.remove_merged(name, plan, call)?;
        Ok(format!("it was finished: snapshot '{}' is deleted and its images merged", plan.snapshot))
    }

    /// Ends each mirror of `end`, then points the definition at the image each disk ended
    /// on (a plain path: the source or the mirror) and forgets the snapshot.
    fn end_mirrors(&self, name: &str, end: &MirrorEnd, call: &mut Call) -> DriverResult {
        let mut mon = self.monitor(name)?;
        let (_, mut dom) = self.state.read_definition(name)?;
        for (disk, source, mirror) in &end.disks {
            let job = mirror_job(disk);
            if let Some(info) = mon.block_job(&job)? {
                let ended = if end.pivot && info["ready"].as_bool() == Some(true) {
                    mon.exec("block-job-complete", json!({ "device": job }))
                } else {
                    // A ready mirror cancelled gently first brings the mirror up to date;
                    // one that cannot be (its files are broken) is cancelled by force.
                    mon.exec("block-job-cancel", json!({ "device": job }))
                        .or_else(|_| mon.exec("block-job-cancel", json!({ "device": job, "force": true })))
                };
                // A job that ended on its own meanwhile leaves the disk where QEMU says.
                if let Err(e) = ended
                    && mon.block_job(&job)?.is_some()
                {
                    return Err(e);
                }
                let _ = mon.wait_block_job(
                    &job,
                    Until::Done,
                    call,
                    if end.pivot { "switching to the mirror" } else { "ending the mirror" },
                );
                failpoint::hit("mirror-end:job-ended");
            }
            // Where QEMU writes now: the mirror after a pivot, else the source.
            let on_mirror = mon.node_of_file(mirror)?.is_some() && mon.node_of_file(source)?.is_none();
            let (file, format) = if on_mirror { (mirror, "qcow2".to_string()) } else { (source, "qcow2".to_string()) };
            let format = images::format_of(file).unwrap_or(format);
            dom.set_disk_source(disk, file, &format).map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
        }
        self.state.write_definition(name, &dom.to_xml())?;
        failpoint::hit("mirror-end:definition");
        let mut tree = self.read_tree(name)?;
        tree.remove(&end.snapshot);
        self.write_tree(name, &tree)
    }

    /// Settles the end of mirrors a killed call left: finished. Says so.
    pub(crate) fn settle_mirror_end(&self, name: &str, end: &MirrorEnd, call: &mut Call) -> DriverResult<String> {
        if self.running(name)?.is_none() {
            // QEMU is gone: its disks were last written where the definition says.
            let mut tree = self.read_tree(name)?;
            tree.remove(&end.snapshot);
            self.write_tree(name, &tree)?;
            return Ok(format!(
                "QEMU is not running; the definition keeps its disks, and snapshot '{}' is deleted",
                end.snapshot
            ));
        }
        self.end_mirrors(name, end, call)?;
        Ok(format!("it was finished: the mirrors ended and snapshot '{}' is deleted", end.snapshot))
    }
}

/// Replaces image `old` by `new` wherever the definition or a snapshot record names it.
fn replace_image(dom: &mut DomainXml, tree: &mut SnapshotTree, old: &str, new: &str, format: &str) -> DriverResult {
    let retarget = |d: &mut DomainXml| -> DriverResult {
        for disk in d.disks().into_iter().filter(|x| x.source.path() == Some(old)) {
            d.set_disk_source(&disk.target, new, format).map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
        }
        Ok(())
    };
    retarget(dom)?;
    let names: Vec<String> = tree.all().iter().filter_map(|s| s.name.clone()).collect();
    for n in names {
        let s = tree.get_mut(&n).expect("listed");
        for d in s.disks.iter_mut().filter(|d| d.source_file.as_deref() == Some(old)) {
            d.source_file = Some(new.to_string());
        }
        if let Some(e) = s.domain.as_ref() {
            let mut then = DomainXml::parse(&e.to_xml(), None)
                .map_err(|x| DriverError::new(ErrorCode::CorruptState, x.to_string()))?;
            retarget(&mut then)?;
            s.domain = Some(then.document().root.clone());
        }
    }
    Ok(())
}
