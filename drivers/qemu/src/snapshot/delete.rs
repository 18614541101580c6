//! Deleting one snapshot so that every other snapshot keeps its data.
//!
//! - Internal: the tag goes from each image (`qemu-img snapshot -d`, or QMP while running).
//! - External memory: the file goes.
//! - External disk: the snapshot's point-in-time image B is no longer needed as a boundary.
//!   If exactly one image X builds on B, X is merged down into B (`qemu-img commit`, or
//!   `block-commit` while running), whatever built on X is rebased onto B, every reference
//!   to X (the definition, other snapshots' records) becomes B, and X is removed. If several
//!   images build on B (a revert made a branch), or X holds internal snapshots, the files
//!   stay as they are: merging would change what the other branch shows, or lose them.
//! - A mirrored snapshot's mirror ends first: `--mirror-pivot` switches the disk to the
//!   mirror, `--mirror-abort` keeps it on its source; the images then stay as they are (the
//!   mirror exists to move the disk, and merging would move it back).

use super::{known_images, mirror_job, recorded_domain};
use crate::QemuDriver;
use crate::images::{self, qemu_img};
use crate::monitor::{Monitor, Until};
use luavirt_plugin_api::abi::{
    LV_SNAPSHOT_DELETE_METADATA_ONLY, LV_SNAPSHOT_DELETE_MIRROR_ABORT, LV_SNAPSHOT_DELETE_MIRROR_PIVOT,
};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::snapshot::SnapshotTree;
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde_json::json;

impl QemuDriver {
    /// `domain_snapshot_delete`.
    pub(crate) fn snapshot_delete_impl(
        &self,
        name: &str,
        snap_name: &str,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let _lock = self.state.lock(name)?;
        let (_, mut dom) = self.state.read_definition(name)?;
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
                        "Snapshot '{snap_name}' of domain '{name}' still mirrors disk {}; pass --mirror-pivot to switch to the mirror, or --mirror-abort to stay on the source",
                        mirrors.join(", ")
                    ),
                ));
            }
            let mon = mon.as_mut().expect("mirrors need a running domain");
            for disk in &mirrors {
                self.end_mirror(mon, &mut dom, disk, pivot, call)?;
            }
            self.state.write_definition(name, &dom.to_xml())?;
            tree.remove(snap_name);
            return self.write_tree(name, &tree);
        }
        if flags & LV_SNAPSHOT_DELETE_METADATA_ONLY != 0 {
            tree.remove(snap_name);
            return self.write_tree(name, &tree);
        }

        let then = recorded_domain(name, &snap)?;
        for d in snap.disks.iter().filter(|d| d.snapshot.as_deref() == Some("internal")) {
            let Some(image) = then.disk(&d.name).and_then(|x| x.source.path().map(str::to_string)) else {
                continue;
            };
            if !std::path::Path::new(&image).is_file()
                || !images::internal_snapshots(&image)?.iter().any(|t| t == snap_name)
            {
                continue;
            }
            match mon.as_mut().map(|m| m.node_of_file(&image)).transpose()?.flatten() {
                Some(node) => {
                    let m = mon.as_mut().expect("node came from the monitor");
                    m.exec("blockdev-snapshot-delete-internal-sync", json!({ "device": node, "name": snap_name }))?;
                }
                None => {
                    qemu_img(&["snapshot", "-d", snap_name, &image])?;
                }
            }
        }
        if let Some(file) = snap.memory.as_ref().filter(|m| m.snapshot == "external").and_then(|m| m.file.clone())
            && let Err(e) = std::fs::remove_file(&file)
        {
            call.log(Level::Warning, &format!("snapshot '{snap_name}': could not remove memory file {file}: {e}"));
        }
        for d in snap.disks.iter().filter(|d| d.snapshot.as_deref() == Some("external")) {
            let Some(base) = then.disk(&d.name).and_then(|x| x.source.path().map(str::to_string)) else {
                continue;
            };
            let known = known_images(&dom, &tree);
            let mut on_base = Vec::new();
            for img in known.iter().filter(|i| **i != base) {
                if images::backing_of(img)?.as_deref() == Some(base.as_str()) {
                    on_base.push(img.clone());
                }
            }
            // Merging copies only an image's present data: one that holds internal snapshots
            // (of later snapshots) must stay whole.
            let x_is_plain = match on_base.as_slice() {
                [x] => images::internal_snapshots(x)?.is_empty(),
                _ => false,
            };
            if let ([x], true) = (on_base.as_slice(), x_is_plain) {
                self.merge_down(name, mon.as_mut(), &d.name, x, &base, &known, call)?;
                replace_image(&mut dom, &mut tree, x, &base)?;
                std::fs::remove_file(x).map_err(|e| DriverError::io("remove", std::path::Path::new(x), e))?;
            } else if !on_base.is_empty() {
                call.log(
                    Level::Info,
                    &format!(
                        "snapshot '{snap_name}', disk {}: {} image(s) build on {base} (a branch, or internal snapshots); they stay as they are",
                        d.name,
                        on_base.len()
                    ),
                );
            }
        }
        self.state.write_definition(name, &dom.to_xml())?;
        tree.remove(snap_name);
        self.write_tree(name, &tree)
    }

    /// Merges image `top` into its backing image `base`, online when QEMU has `top` open,
    /// and rebases whatever else built on `top` onto `base`.
    #[allow(clippy::too_many_arguments)]
    fn merge_down(
        &self,
        name: &str,
        mon: Option<&mut Monitor>,
        disk: &str,
        top: &str,
        base: &str,
        known: &std::collections::BTreeSet<String>,
        call: &mut Call,
    ) -> DriverResult {
        let online = match mon {
            Some(m) => match (m.node_of_file(top)?, m.node_of_file(base)?) {
                (Some(t), Some(b)) => Some((m, t, b)),
                _ => None,
            },
            None => None,
        };
        match online {
            Some((m, top_node, base_node)) => {
                let device = m.top_node(disk)?;
                let job = format!("lv-commit-{disk}");
                m.exec(
                    "block-commit",
                    json!({ "job-id": job, "device": device, "top-node": top_node, "base-node": base_node }),
                )?;
                if device == top_node {
                    m.wait_block_job(&job, Until::Ready, call, "merging the snapshot")?;
                    m.exec("block-job-complete", json!({ "device": job }))?;
                }
                m.wait_block_job(&job, Until::Done, call, "merging the snapshot")?;
            }
            None => {
                qemu_img(&["commit", "-q", "-f", "qcow2", top])?;
            }
        }
        let base_format = images::format_of(base)?;
        for other in known.iter().filter(|k| k.as_str() != top && k.as_str() != base) {
            if images::backing_of(other)?.as_deref() == Some(top) {
                qemu_img(&["rebase", "-u", "-F", &base_format, "-b", base, other])?;
            }
        }
        call.log(Level::Debug, &format!("domain '{name}', disk {disk}: merged {top} into {base}"));
        Ok(())
    }

    /// Ends the mirror of `disk`: on the mirror (pivot) or on the source (abort).
    fn end_mirror(
        &self,
        mon: &mut Monitor,
        dom: &mut DomainXml,
        disk: &str,
        pivot: bool,
        call: &mut Call,
    ) -> DriverResult {
        let job = mirror_job(disk);
        if pivot {
            mon.exec("block-job-complete", json!({ "device": job }))?;
        } else {
            mon.exec("block-job-cancel", json!({ "device": job }))?;
        }
        mon.wait_block_job(
            &job,
            Until::Done,
            call,
            if pivot { "switching to the mirror" } else { "ending the mirror" },
        )?;
        let (file, format) = mon.active_image(disk)?;
        dom.set_disk_source(disk, &file, &format).map_err(|m| DriverError::new(ErrorCode::Internal, m))
    }
}

/// Replaces image `old` by `new` wherever the definition or a snapshot record names it.
fn replace_image(dom: &mut DomainXml, tree: &mut SnapshotTree, old: &str, new: &str) -> DriverResult {
    let format = images::format_of(new)?;
    let retarget = |d: &mut DomainXml| -> DriverResult {
        for disk in d.disks().into_iter().filter(|x| x.source.path() == Some(old)) {
            d.set_disk_source(&disk.target, new, &format).map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
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
