//! Taking a snapshot. All or nothing: what a failure half-way created is removed again.
//!
//! Offline: `qemu-img snapshot -c` for internal disks, `qemu-img create -b` for overlays.
//! Running: memory first (the domain is then paused: `migrate` to a file, or `snapshot-save`
//! with the internal disks), then one `transaction` for the disks (atomic in QEMU), then the
//! mirrors of a mirrored snapshot; then the domain runs again (or halts).

use super::{DiskWork, disk_work, mirror_job};
use crate::QemuDriver;
use crate::images::{self, qemu_img};
use crate::monitor::{Monitor, Until, sh_quote};
use luavirt_plugin_api::abi::{
    LV_SNAPSHOT_CREATE_HALT, LV_SNAPSHOT_CREATE_LIVE, LV_SNAPSHOT_CREATE_NO_METADATA, LV_SNAPSHOT_CREATE_REUSE_EXT,
};
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::snapshot::SnapshotXml;
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde_json::{Value, json};

/// Something to undo if a later step fails.
enum Undo {
    InternalTag { image: String },
    File(String),
}

fn undo_all(snap: &str, undo: Vec<Undo>, call: &mut Call) {
    for u in undo.into_iter().rev() {
        let r = match &u {
            Undo::InternalTag { image } => qemu_img(&["snapshot", "-d", snap, image]).map(|_| ()),
            Undo::File(f) => {
                std::fs::remove_file(f).map_err(|e| DriverError::new(ErrorCode::Io, format!("Cannot remove {f}: {e}")))
            }
        };
        if let Err(e) = r {
            call.log(Level::Error, &format!("rolling back snapshot '{snap}': {}", e.message));
        }
    }
}

impl QemuDriver {
    /// `domain_snapshot_create`.
    pub(crate) fn snapshot_create_impl(&self, name: &str, xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        let _lock = self.state.lock(name)?;
        let (_, dom) = self.state.read_definition(name)?;
        let mut snap =
            SnapshotXml::parse(xml).map_err(|e| DriverError::new(ErrorCode::Xml, format!("Snapshot request: {e}")))?;
        let snap_name = snap
            .name
            .clone()
            .ok_or_else(|| DriverError::new(ErrorCode::InvalidArg, "The snapshot request has no name"))?;
        let mut tree = self.read_tree(name)?;
        if tree.get(&snap_name).is_some() {
            return Err(DriverError::new(
                ErrorCode::Exists,
                format!("Domain '{name}' already has a snapshot named '{snap_name}'"),
            ));
        }
        self.refuse_while_mirroring(name, &tree, "take a snapshot")?;
        let work = disk_work(&dom, &snap)?;
        let reuse = flags & LV_SNAPSHOT_CREATE_REUSE_EXT != 0;
        for w in work.iter().filter(|w| w.mode == "internal") {
            if w.format != "qcow2" {
                return Err(DriverError::new(
                    ErrorCode::InvalidArg,
                    format!(
                        "Disk {} of domain '{name}' is {}, which cannot hold an internal snapshot",
                        w.target, w.format
                    ),
                ));
            }
            if images::internal_snapshots(&w.image)?.contains(&snap_name) {
                return Err(DriverError::new(
                    ErrorCode::Exists,
                    format!(
                        "Image {} of disk {} already holds an internal snapshot '{snap_name}' (a leftover?); remove it with qemu-img snapshot -d {snap_name} {}",
                        w.image, w.target, w.image
                    ),
                ));
            }
        }
        let memory = snap.memory.clone().map(|m| m.snapshot).unwrap_or_else(|| "no".to_string());
        let state = if self.running(name)?.is_some() {
            self.create_live(name, &snap, &work, flags, call)?
        } else {
            if memory != "no" {
                return Err(DriverError::new(
                    ErrorCode::InvalidState,
                    format!("Domain '{name}' is shut off, so a snapshot of it has no memory"),
                ));
            }
            self.create_offline(&snap_name, &work, reuse, call)?;
            "shutoff".to_string()
        };

        // The definition now names the overlays; the record keeps the one from before.
        let mut after = dom.clone();
        for w in work.iter().filter(|w| w.mode == "external") {
            after
                .set_disk_source(&w.target, w.overlay.as_deref().expect("checked"), "qcow2")
                .map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
        }
        if after != dom {
            self.state.write_definition(name, &after.to_xml())?;
        }
        snap.creation_time = Some(luavirt_plugin_api::time::now_secs());
        snap.state = Some(state);
        snap.domain = Some(dom.document().root.clone());
        if flags & LV_SNAPSHOT_CREATE_NO_METADATA == 0 {
            tree.add(snap.clone());
            self.write_tree(name, &tree)?;
            snap = tree.get(&snap_name).cloned().expect("just added");
        }
        if flags & LV_SNAPSHOT_CREATE_HALT != 0 && self.running(name)?.is_some() {
            self.stop(name, call)?;
        }
        call.emit_text(&snap.to_xml());
        Ok(())
    }

    fn create_offline(&self, snap: &str, work: &[DiskWork], reuse: bool, call: &mut Call) -> DriverResult {
        let mut undo = Vec::new();
        for w in work {
            let step = match w.mode.as_str() {
                "internal" => qemu_img(&["snapshot", "-c", snap, &w.image])
                    .map(|_| undo.push(Undo::InternalTag { image: w.image.clone() })),
                "external" => {
                    let overlay = w.overlay.as_deref().expect("checked");
                    if reuse {
                        check_reused_overlay(overlay, &w.image)
                    } else {
                        images::create_overlay(overlay, &w.image, &w.format)
                            .map(|_| undo.push(Undo::File(overlay.to_string())))
                    }
                }
                _ => Ok(()),
            };
            if let Err(e) = step {
                undo_all(snap, undo, call);
                return Err(DriverError::new(
                    e.code,
                    format!("Snapshot '{snap}', disk {}: {}; nothing was changed", w.target, e.message),
                ));
            }
        }
        Ok(())
    }

    /// Takes the snapshot of a running domain; returns the state word for the record.
    fn create_live(
        &self,
        name: &str,
        snap: &SnapshotXml,
        work: &[DiskWork],
        flags: u32,
        call: &mut Call,
    ) -> DriverResult<String> {
        let snap_name = snap.name.clone().unwrap_or_default();
        let mut mon = self.monitor(name)?;
        let was_running = mon.status()? == "running";
        let memory = snap
            .memory
            .clone()
            .unwrap_or(luavirt_plugin_api::snapshot::SnapshotMemory { snapshot: "no".into(), file: None });
        let live = flags & LV_SNAPSHOT_CREATE_LIVE != 0;
        let reuse = flags & LV_SNAPSHOT_CREATE_REUSE_EXT != 0;
        let resume = |mon: &mut Monitor| {
            if was_running {
                let _ = mon.exec("cont", Value::Null);
            }
        };
        if memory.snapshot != "no" && !(memory.snapshot == "external" && live) && was_running {
            mon.exec("stop", Value::Null)?;
        }

        // Memory first: after it the domain is paused, so the disks match it.
        let internal: Vec<&DiskWork> = work.iter().filter(|w| w.mode == "internal").collect();
        let fail = |mon: &mut Monitor, e: DriverError, what: &str| {
            resume(mon);
            DriverError::new(
                e.code,
                format!("Snapshot '{snap_name}' of domain '{name}': {what}{}; nothing was changed", e.message),
            )
        };
        let saved = match memory.snapshot.as_str() {
            "external" => {
                let file = memory.file.clone().unwrap_or_default();
                let _ = mon.exec(
                    "migrate-set-capabilities",
                    json!({ "capabilities": [{ "capability": "events", "state": true }] }),
                );
                let r = mon
                    .exec("migrate", json!({ "uri": format!("exec:cat > {}", sh_quote(&file)) }))
                    .and_then(|_| mon.wait_migration(call, "saving memory"));
                r.map(|_| SavedMemory::File(file.clone())).inspect_err(|_| {
                    let _ = std::fs::remove_file(&file);
                })
            }
            "internal" => (|| {
                let vmstate = internal.first().ok_or_else(|| {
                    DriverError::new(ErrorCode::InvalidArg, "Internal memory needs a disk taken internally")
                })?;
                let vm = mon.top_node(&vmstate.target)?;
                let devices = internal.iter().map(|w| mon.top_node(&w.target)).collect::<DriverResult<Vec<_>>>()?;
                mon.run_job(
                    "snapshot-save",
                    json!({ "tag": snap_name, "vmstate": vm, "devices": devices }),
                    "lv-save",
                )?;
                Ok(SavedMemory::Internal(devices))
            })(),
            _ => Ok(SavedMemory::None),
        };
        let saved = saved.map_err(|e| fail(&mut mon, e, ""))?;

        // The disks, in one transaction (atomic in QEMU).
        let transaction = (|| {
            let mut actions = Vec::new();
            for w in work {
                let node = mon.top_node(&w.target)?;
                match w.mode.as_str() {
                    "internal" if memory.snapshot != "internal" => {
                        actions.push(json!({ "type": "blockdev-snapshot-internal-sync", "data": { "device": node, "name": snap_name } }));
                    }
                    "external" => {
                        let overlay = w.overlay.clone().expect("checked");
                        if reuse {
                            check_reused_overlay(&overlay, &w.image)?;
                        }
                        let mode = if reuse { "existing" } else { "absolute-paths" };
                        let new_node = mon.fresh_node_name(&format!("lv-{}", w.target))?;
                        actions.push(json!({ "type": "blockdev-snapshot-sync", "data": {
                            "node-name": node, "snapshot-file": overlay, "snapshot-node-name": new_node, "format": "qcow2", "mode": mode } }));
                    }
                    _ => {}
                }
            }
            if !actions.is_empty() {
                mon.exec("transaction", json!({ "actions": actions }))?;
            }
            Ok(())
        })();
        if let Err(e) = transaction {
            saved.undo(&mut mon, &snap_name);
            return Err(fail(&mut mon, e, ""));
        }

        // Mirrors: each new overlay is copied to its mirror, which then follows every write.
        let mut mirrored = Vec::new();
        for w in work.iter().filter(|w| w.mirror.is_some()) {
            let job = mirror_job(&w.target);
            let mode = if reuse { "existing" } else { "absolute-paths" };
            let started = mon
                .top_node(&w.target)
                .and_then(|node| {
                    mon.exec("drive-mirror", json!({ "job-id": job, "device": node, "target": w.mirror, "format": "qcow2", "sync": "top", "mode": mode }))
                })
                .and_then(|_| {
                    mirrored.push(job.clone());
                    mon.wait_block_job(&job, Until::Ready, call, "starting the mirror")
                });
            if let Err(e) = started {
                for job in &mirrored {
                    let _ = mon.exec("block-job-cancel", json!({ "device": job, "force": true }));
                }
                self.undo_disks(&mut mon, &snap_name, work, memory.snapshot != "internal", call);
                saved.undo(&mut mon, &snap_name);
                return Err(fail(&mut mon, e, &format!("the mirror of disk {} failed: ", w.target)));
            }
        }
        let status = if memory.snapshot == "no" {
            "disk-snapshot"
        } else if was_running {
            "running"
        } else {
            "paused"
        };
        if flags & LV_SNAPSHOT_CREATE_HALT == 0 {
            resume(&mut mon);
        }
        Ok(status.to_string())
    }

    /// Takes back what the disk transaction did on a running domain: each overlay is
    /// committed into the image below it (keeping any write since) and removed, and
    /// internal tags taken by the transaction are deleted.
    fn undo_disks(
        &self,
        mon: &mut Monitor,
        snap: &str,
        work: &[DiskWork],
        internal_by_transaction: bool,
        call: &mut Call,
    ) {
        for w in work {
            let r = match w.mode.as_str() {
                "external" => (|| {
                    let top = mon.top_node(&w.target)?;
                    let base = mon
                        .node_of_file(&w.image)?
                        .ok_or_else(|| DriverError::new(ErrorCode::Internal, format!("{} is not open", w.image)))?;
                    let job = format!("lv-undo-{}", w.target);
                    mon.exec(
                        "block-commit",
                        json!({ "job-id": job, "device": top, "top-node": top, "base-node": base }),
                    )?;
                    mon.wait_block_job(&job, Until::Ready, call, "undoing an overlay")?;
                    mon.exec("block-job-complete", json!({ "device": job }))?;
                    mon.wait_block_job(&job, Until::Done, call, "undoing an overlay")?;
                    std::fs::remove_file(w.overlay.as_deref().unwrap_or_default())
                        .map_err(|e| DriverError::new(ErrorCode::Io, e.to_string()))
                })(),
                "internal" if internal_by_transaction => mon
                    .top_node(&w.target)
                    .and_then(|node| {
                        mon.exec("blockdev-snapshot-delete-internal-sync", json!({ "device": node, "name": snap }))
                    })
                    .map(|_| ()),
                _ => Ok(()),
            };
            if let Err(e) = r {
                call.log(Level::Error, &format!("rolling back snapshot '{snap}' on disk {}: {}", w.target, e.message));
            }
        }
    }
}

/// Memory a running snapshot saved, to take back if the disks fail.
enum SavedMemory {
    None,
    File(String),
    /// The internal snapshot on these nodes.
    Internal(Vec<String>),
}

impl SavedMemory {
    fn undo(&self, mon: &mut Monitor, tag: &str) {
        match self {
            SavedMemory::None => {}
            SavedMemory::File(f) => {
                let _ = std::fs::remove_file(f);
            }
            SavedMemory::Internal(devices) => {
                let _ = mon.run_job("snapshot-delete", json!({ "tag": tag, "devices": devices }), "lv-undo-save");
            }
        }
    }
}

/// A reused overlay must already sit on the disk's image.
fn check_reused_overlay(overlay: &str, image: &str) -> DriverResult {
    match images::backing_of(overlay)? {
        Some(b) if b == image => Ok(()),
        other => Err(DriverError::new(
            ErrorCode::InvalidArg,
            format!(
                "The existing overlay {overlay} is backed by {}, not by {image}; --reuse-external needs an overlay of the disk's image",
                other.as_deref().unwrap_or("nothing")
            ),
        )),
    }
}
