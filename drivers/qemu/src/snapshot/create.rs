//! Taking a snapshot, all or nothing, and safe to kill at any step.
//!
//! Offline: `qemu-img snapshot -c` for internal disks, `qemu-img create -b` for overlays.
//! Running: the domain pauses (unless its memory is saved live), then memory in the internal
//! snapshots (`snapshot-save`) or the disks in one `transaction` (atomic in QEMU), whichever
//! holds the memory first; a memory file is written after the disks (`migrate` leaves the
//! images inactive, which internal snapshots refuse), or before them with `--live` (the
//! disks are then taken at the end of the live save); then the mirrors of a mirrored
//! snapshot. Then, in every case, the definition names the overlays, the snapshot is
//! recorded, and the domain runs again (or halts).
//!
//! The [`Plan`] is recorded before the first step. A failure half-way undoes what was made;
//! a kill half-way is settled by the next call ([`QemuDriver::settle_create`]): if the disks
//! were switched (QEMU writes to the overlays, or the overlays hold data) it finishes the
//! snapshot, else it removes what was made; either way the domain runs again if it ran.

use super::{DiskWork, disk_work, known_images, mirror_job};
use crate::QemuDriver;
use crate::images::{self, qemu_img};
use crate::intent::{Change, Pending};
use crate::monitor::{Monitor, Until, sh_quote};
use luavirt_plugin_api::abi::{
    LV_SNAPSHOT_CREATE_HALT, LV_SNAPSHOT_CREATE_LIVE, LV_SNAPSHOT_CREATE_NO_METADATA, LV_SNAPSHOT_CREATE_REUSE_EXT,
    LV_SNAPSHOT_CREATE_SAVE,
};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::savefile::{self, SaveHeader, SavedDisk};
use luavirt_plugin_api::snapshot::SnapshotXml;
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;

/// A snapshot being taken, as recorded before its first step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// The snapshot's name.
    pub snapshot: String,
    /// The record the snapshot tree gets (creation time, state, the definition before).
    pub record: String,
    /// Keep the record (no `--no-metadata`).
    pub keep_metadata: bool,
    /// The definition once the disks are switched: external disks on their overlays.
    pub definition: String,
    /// The disks taken.
    pub disks: Vec<DiskWork>,
    /// Memory: `no`, `internal` or `external`.
    pub memory: String,
    /// The memory file (external).
    pub memory_file: Option<String>,
    /// QEMU ran the domain: the work goes through QMP.
    pub running: bool,
    /// The guest was running, not paused: it runs again at the end.
    pub was_running: bool,
    /// Keep the guest running while its memory is saved (`--live`).
    pub live_memory: bool,
    /// Stop the domain at the end (`--halt`).
    pub halt: bool,
    /// The overlays exist already (`--reuse-external`): never removed.
    pub reuse: bool,
    /// A save: the header the memory file starts with (`luavirt_plugin_api::savefile`).
    #[serde(default)]
    pub save_header: Option<String>,
}

impl Plan {
    fn external(&self) -> impl Iterator<Item = &DiskWork> {
        self.disks.iter().filter(|w| w.mode == "external")
    }

    fn internal(&self) -> impl Iterator<Item = &DiskWork> {
        self.disks.iter().filter(|w| w.mode == "internal")
    }
}

/// The header of a save's memory file: the domain, the snapshot, and each disk's saved image
/// (a save takes every disk it keeps as an overlay, so the image below is the saved state).
fn save_header(
    name: &str,
    dom: &luavirt_plugin_api::domain::DomainXml,
    snapshot: &str,
    disks: &[DiskWork],
    memory_file: Option<&str>,
    live: bool,
) -> DriverResult<String> {
    let refuse = |why: String| DriverError::new(ErrorCode::InvalidArg, format!("Save of domain '{name}': {why}"));
    if memory_file.is_none() {
        return Err(refuse("a save keeps the memory in a file; give one".to_string()));
    }
    if let Some(w) = disks.iter().find(|w| w.mode != "external") {
        return Err(refuse(format!("disk {} would be taken {}; a save takes its disks as overlays", w.target, w.mode)));
    }
    let header = SaveHeader {
        domain: name.to_string(),
        uuid: dom.uuid(),
        snapshot: snapshot.to_string(),
        created: luavirt_plugin_api::time::now_secs(),
        live,
        disks: dom
            .disks()
            .iter()
            .map(|d| match disks.iter().find(|w| w.target == d.target) {
                Some(w) => SavedDisk {
                    target: d.target.clone(),
                    saved: true,
                    image: Some(w.image.clone()),
                    format: Some(w.format.clone()),
                },
                None => SavedDisk { target: d.target.clone(), ..SavedDisk::default() },
            })
            .collect(),
    };
    Ok(String::from_utf8(savefile::encode(&header)).expect("the header is JSON text"))
}

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
        let _lock = self.lock_domain(name, call)?;
        let plan = self.plan_create(name, xml, flags)?;
        let mut pending = self.begin(name, Change::SnapshotCreate(plan.clone()))?;
        failpoint::hit("snapshot-create:begun");
        let made = if plan.running {
            self.create_live(name, &plan, &mut pending, call)
        } else {
            self.create_offline(&plan, call)
        };
        if let Err(e) = made {
            // What was made is undone; the domain runs again if it ran.
            pending.done()?;
            return Err(e);
        }
        pending.phase("made")?;
        let stored = self.finish_create(name, &plan, call)?;
        pending.done()?;
        call.emit_text(&stored.to_xml());
        Ok(())
    }

    /// Checks the request and decides every step.
    fn plan_create(&self, name: &str, xml: &str, flags: u32) -> DriverResult<Plan> {
        let (_, dom) = self.state.read_definition(name)?;
        let mut snap =
            SnapshotXml::parse(xml).map_err(|e| DriverError::new(ErrorCode::Xml, format!("Snapshot request: {e}")))?;
        let snap_name = snap
            .name
            .clone()
            .ok_or_else(|| DriverError::new(ErrorCode::InvalidArg, "The snapshot request has no name"))?;
        let tree = self.read_tree(name)?;
        if tree.get(&snap_name).is_some() {
            return Err(DriverError::new(
                ErrorCode::Exists,
                format!("Domain '{name}' already has a snapshot named '{snap_name}'"),
            ));
        }
        self.refuse_while_mirroring(name, &tree, "take a snapshot")?;
        let disks = disk_work(&dom, &snap)?;
        let reuse = flags & LV_SNAPSHOT_CREATE_REUSE_EXT != 0;
        for w in disks.iter().filter(|w| w.mode == "internal") {
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
        // New files must be new: an overlay or memory file that exists would be overwritten.
        let mut new_files: Vec<&str> = Vec::new();
        if !reuse {
            new_files.extend(disks.iter().filter_map(|w| w.overlay.as_deref().filter(|_| w.mode == "external")));
            new_files.extend(disks.iter().filter_map(|w| w.mirror.as_deref()));
        }
        let memory = snap.memory.clone().map(|m| m.snapshot).unwrap_or_else(|| "no".to_string());
        let memory_file = snap.memory.as_ref().and_then(|m| m.file.clone()).filter(|_| memory == "external");
        new_files.extend(memory_file.as_deref());
        if let Some(f) = new_files.iter().find(|f| Path::new(f).exists()) {
            return Err(DriverError::new(
                ErrorCode::Exists,
                format!("Snapshot '{snap_name}' of domain '{name}': {f} already exists; nothing was changed"),
            ));
        }
        let running = self.running(name)?.is_some();
        if running {
            self.refuse_started_transient(name, &disks)?;
        }
        if !running && memory != "no" {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!("Domain '{name}' is shut off, so a snapshot of it has no memory"),
            ));
        }
        let was_running = running && self.monitor(name)?.status()? == "running";
        let live_memory = flags & LV_SNAPSHOT_CREATE_LIVE != 0;
        if live_memory && let Some(w) = disks.iter().find(|w| w.mode == "internal") {
            return Err(DriverError::new(
                ErrorCode::Unsupported,
                format!(
                    "Snapshot '{snap_name}' of domain '{name}': disk {} cannot be taken internally at the end of a live memory save (QEMU leaves the images inactive then); take it externally («diskspec {},snapshot=external») or drop «live»",
                    w.target, w.target
                ),
            ));
        }
        let mut after = dom.clone();
        for w in disks.iter().filter(|w| w.mode == "external") {
            after
                .set_disk_source(&w.target, w.overlay.as_deref().expect("checked"), "qcow2")
                .map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
        }
        snap.creation_time = Some(luavirt_plugin_api::time::now_secs());
        snap.state = Some(
            match (running, memory.as_str()) {
                (false, _) => "shutoff",
                (true, "no") => "disk-snapshot",
                _ if was_running => "running",
                _ => "paused",
            }
            .to_string(),
        );
        snap.domain = Some(dom.document().root.clone());
        let halt = flags & LV_SNAPSHOT_CREATE_HALT != 0;
        let save_header = if flags & LV_SNAPSHOT_CREATE_SAVE != 0 {
            Some(save_header(name, &dom, &snap_name, &disks, memory_file.as_deref(), !halt)?)
        } else {
            None
        };
        Ok(Plan {
            snapshot: snap_name,
            record: snap.to_xml(),
            keep_metadata: flags & LV_SNAPSHOT_CREATE_NO_METADATA == 0,
            definition: after.to_xml(),
            disks,
            memory,
            memory_file,
            running,
            was_running,
            live_memory,
            halt,
            reuse,
            save_header,
        })
    }

    /// The switch and after: the definition names the overlays, the snapshot is recorded,
    /// the domain runs again or halts. Each step is skipped when done already, so the next
    /// call can finish a snapshot that a kill interrupted. Returns the snapshot as stored.
    fn finish_create(&self, name: &str, plan: &Plan, call: &mut Call) -> DriverResult<SnapshotXml> {
        let (text, _) = self.state.read_definition(name)?;
        if text != plan.definition {
            self.state.write_definition(name, &plan.definition)?;
        }
        failpoint::hit("snapshot-create:definition");
        let record = SnapshotXml::parse(&plan.record)
            .map_err(|e| DriverError::new(ErrorCode::Internal, format!("The snapshot record does not parse: {e}")))?;
        let mut stored = record.clone();
        if plan.keep_metadata {
            let mut tree = self.read_tree(name)?;
            if tree.get(&plan.snapshot).is_none() {
                tree.add(record);
                self.write_tree(name, &tree)?;
            }
            stored = tree.get(&plan.snapshot).cloned().expect("just added");
        }
        failpoint::hit("snapshot-create:metadata");
        if plan.running && self.running(name)?.is_some() {
            if plan.halt {
                self.stop(name, call)?;
            } else if plan.was_running {
                let mut mon = self.monitor(name)?;
                if mon.status()? != "running" {
                    mon.exec("cont", Value::Null)?;
                }
            }
        }
        Ok(stored)
    }

    fn create_offline(&self, plan: &Plan, call: &mut Call) -> DriverResult {
        let snap = plan.snapshot.as_str();
        let mut undo = Vec::new();
        for w in &plan.disks {
            let step = match w.mode.as_str() {
                "internal" => qemu_img(&["snapshot", "-c", snap, &w.image])
                    .map(|_| undo.push(Undo::InternalTag { image: w.image.clone() })),
                "external" => {
                    let overlay = w.overlay.as_deref().expect("checked");
                    if plan.reuse {
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
        failpoint::hit("snapshot-create:images");
        Ok(())
    }

    /// Takes the snapshot of a running domain, up to the disk switch, the memory and the
    /// mirrors; the domain is left paused if the memory step paused it.
    fn create_live(&self, name: &str, plan: &Plan, pending: &mut Pending, call: &mut Call) -> DriverResult {
        let snap_name = plan.snapshot.as_str();
        let mut mon = self.monitor(name)?;
        let resume = |mon: &mut Monitor| {
            if plan.was_running {
                let _ = mon.exec("cont", Value::Null);
            }
        };
        if plan.memory != "no" && !plan.live_memory && plan.was_running {
            mon.exec("stop", Value::Null)?;
        }
        let fail = |mon: &mut Monitor, e: DriverError, what: &str| {
            resume(mon);
            DriverError::new(
                e.code,
                format!("Snapshot '{snap_name}' of domain '{name}': {what}{}; nothing was changed", e.message),
            )
        };
        // Memory that comes first: in the internal snapshots, or saved live.
        let saved = match plan.memory.as_str() {
            "internal" => self.save_internal_memory(&mut mon, plan).map(|_| SavedMemory::Internal),
            "external" if plan.live_memory => {
                self.save_memory(&mut mon, plan, call).map(|_| SavedMemory::File(plan.memory_file.clone()))
            }
            _ => Ok(SavedMemory::None),
        };
        let mut saved = saved.map_err(|e| fail(&mut mon, e, ""))?;
        failpoint::hit("snapshot-create:memory");

        // The disks, in one transaction (atomic in QEMU).
        if let Err(e) = self.switch_disks(&mut mon, plan) {
            saved.undo(&mut mon, plan);
            return Err(fail(&mut mon, e, ""));
        }
        pending.phase("switched")?;
        failpoint::hit("snapshot-create:transaction");

        // A memory file of a paused domain comes after the disks, which it leaves inactive.
        if plan.memory == "external" && !plan.live_memory {
            if let Err(e) = self.save_memory(&mut mon, plan, call) {
                self.undo_disks(&mut mon, snap_name, &plan.disks, true, call);
                return Err(fail(&mut mon, e, ""));
            }
            saved = SavedMemory::File(plan.memory_file.clone());
        }
        pending.phase("memory-saved")?;
        failpoint::hit("snapshot-create:memory-file");

        // Mirrors: each new overlay is copied to its mirror, which then follows every write.
        let mut mirrored = Vec::new();
        for w in plan.disks.iter().filter(|w| w.mirror.is_some()) {
            let job = mirror_job(&w.target);
            let mode = if plan.reuse { "existing" } else { "absolute-paths" };
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
                self.undo_disks(&mut mon, snap_name, &plan.disks, plan.memory != "internal", call);
                saved.undo(&mut mon, plan);
                return Err(fail(&mut mon, e, &format!("the mirror of disk {} failed: ", w.target)));
            }
        }
        failpoint::hit("snapshot-create:mirrors");
        Ok(())
    }

    /// Saves memory and the internal disks together (`snapshot-save`).
    fn save_internal_memory(&self, mon: &mut Monitor, plan: &Plan) -> DriverResult {
        let internal: Vec<&DiskWork> = plan.internal().collect();
        let vmstate = internal
            .first()
            .ok_or_else(|| DriverError::new(ErrorCode::InvalidArg, "Internal memory needs a disk taken internally"))?;
        let vm = mon.top_node(&vmstate.target)?;
        let devices = internal.iter().map(|w| mon.top_node(&w.target)).collect::<DriverResult<Vec<_>>>()?;
        mon.run_job("snapshot-save", json!({ "tag": plan.snapshot, "vmstate": vm, "devices": devices }), "lv-save")
    }

    /// Switches the disks in one transaction: overlays on the external ones, internal tags
    /// on the others (unless `snapshot-save` made them with the memory).
    fn switch_disks(&self, mon: &mut Monitor, plan: &Plan) -> DriverResult {
        let mut actions = Vec::new();
        for w in &plan.disks {
            let node = mon.top_node(&w.target)?;
            match w.mode.as_str() {
                "internal" if plan.memory != "internal" => {
                    actions.push(json!({ "type": "blockdev-snapshot-internal-sync", "data": { "device": node, "name": plan.snapshot } }));
                }
                "external" => {
                    let overlay = w.overlay.clone().expect("checked");
                    if plan.reuse {
                        check_reused_overlay(&overlay, &w.image)?;
                    }
                    let mode = if plan.reuse { "existing" } else { "absolute-paths" };
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
    }

    /// Saves the guest's memory into the plan's file (created 0600 first: it holds guest RAM;
    /// a partial one from an interrupted attempt is replaced).
    fn save_memory(&self, mon: &mut Monitor, plan: &Plan, call: &mut Call) -> DriverResult {
        let file = plan.memory_file.as_deref().unwrap_or_default();
        let path = Path::new(file);
        let _ = std::fs::remove_file(path);
        let mut f = luavirt_plugin_api::fsutil::create_private_file(path)
            .map_err(|e| DriverError::io("create the memory file", path, e))?;
        // A save file says what it holds before the memory stream.
        if let Some(h) = &plan.save_header {
            std::io::Write::write_all(&mut f, h.as_bytes()).map_err(|e| DriverError::io("write", path, e))?;
        }
        drop(f);
        let _ = mon
            .exec("migrate-set-capabilities", json!({ "capabilities": [{ "capability": "events", "state": true }] }));
        mon.exec("migrate", json!({ "uri": format!("exec:cat >> {}", sh_quote(file)) }))?;
        mon.wait_migration(call, "saving memory").inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })
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

    /// Settles a snapshot a killed call left: finished if its disks were switched, else
    /// undone. Says which.
    pub(crate) fn settle_create(&self, name: &str, plan: &Plan, phase: &str, call: &mut Call) -> DriverResult<String> {
        let (_, dom) = self.state.read_definition(name)?;
        let defined = plan.external().count() > 0
            && plan
                .external()
                .all(|w| dom.disk(&w.target).and_then(|d| d.source.path().map(str::to_string)) == w.overlay);
        let recorded = self.read_tree(name)?.get(&plan.snapshot).is_some();
        let qemu = plan.running && self.running(name)?.is_some();
        let switched = if defined || recorded {
            true
        } else if qemu {
            let mut mon = self.monitor(name)?;
            end_memory_work(&mut mon, call)?;
            match plan.external().next() {
                Some(w) => Some(mon.active_image(&w.target)?.0) == w.overlay,
                None => all_tagged(plan)?,
            }
        } else {
            match plan.external().next() {
                // QEMU is gone: an overlay it wrote to holds the guest's latest data.
                Some(_) => plan.external().any(|w| w.overlay.as_deref().is_some_and(images::has_own_data)),
                None => all_tagged(plan)?,
            }
        };
        if !switched {
            self.undo_create(name, plan, qemu, call)?;
            return Ok(format!(
                "its disks had not been switched, so it was undone: nothing of snapshot '{}' is kept{}",
                plan.snapshot,
                if qemu && plan.was_running { " and the domain runs again" } else { "" }
            ));
        }
        let mut plan = plan.clone();
        if qemu {
            // The disks switched while the domain was paused; its memory goes to the file now.
            if plan.memory == "external" && !plan.live_memory && phase == "switched" {
                let mut mon = self.monitor(name)?;
                self.save_memory(&mut mon, &plan, call)?;
            }
            self.drop_missing_mirrors(name, &mut plan)?;
        }
        self.finish_create(name, &plan, call)?;
        Ok(format!(
            "its disks had been switched, so it was finished: snapshot '{}' is recorded and the definition names its overlays",
            plan.snapshot
        ))
    }

    /// A mirror whose job never started (or ended) is not claimed by the record; its
    /// half-made file goes.
    fn drop_missing_mirrors(&self, name: &str, plan: &mut Plan) -> DriverResult {
        let mut mon = self.monitor(name)?;
        let mut record = SnapshotXml::parse(&plan.record)
            .map_err(|e| DriverError::new(ErrorCode::Internal, format!("The snapshot record does not parse: {e}")))?;
        for w in plan.disks.iter_mut().filter(|w| w.mirror.is_some()) {
            if mon.block_job(&mirror_job(&w.target))?.is_some() {
                continue;
            }
            if let Some(m) = w.mirror.take().filter(|_| !plan.reuse) {
                let _ = std::fs::remove_file(m);
            }
            for d in record.disks.iter_mut().filter(|d| d.name == w.target) {
                d.mirror_file = None;
            }
        }
        plan.record = record.to_xml();
        Ok(())
    }

    /// Removes what a snapshot that never switched made: its internal tags, the overlays,
    /// mirrors and memory file nothing names; the domain runs again if it ran.
    fn undo_create(&self, name: &str, plan: &Plan, qemu: bool, call: &mut Call) -> DriverResult {
        let mut mon = if qemu { Some(self.monitor(name)?) } else { None };
        for w in plan.internal() {
            if !Path::new(&w.image).is_file() || !images::internal_snapshots(&w.image)?.contains(&plan.snapshot) {
                continue;
            }
            match mon.as_mut().map(|m| m.node_of_file(&w.image)).transpose()?.flatten() {
                Some(node) => {
                    let m = mon.as_mut().expect("node came from the monitor");
                    m.exec("blockdev-snapshot-delete-internal-sync", json!({ "device": node, "name": plan.snapshot }))?;
                }
                None => {
                    qemu_img(&["snapshot", "-d", &plan.snapshot, &w.image])?;
                }
            }
        }
        let (_, dom) = self.state.read_definition(name)?;
        let named = known_images(&dom, &self.read_tree(name)?);
        let mut made: Vec<&str> = Vec::new();
        if !plan.reuse {
            made.extend(plan.external().filter_map(|w| w.overlay.as_deref()));
            made.extend(plan.disks.iter().filter_map(|w| w.mirror.as_deref()));
        }
        made.extend(plan.memory_file.as_deref());
        for f in made.into_iter().filter(|f| !named.contains(*f)) {
            if let Err(e) = std::fs::remove_file(f)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                call.log(Level::Warning, &format!("domain '{name}': could not remove {f}: {e}"));
            }
        }
        if let Some(m) = mon.as_mut()
            && plan.was_running
            && m.status()? != "running"
        {
            m.exec("cont", Value::Null)?;
        }
        Ok(())
    }
}

/// Ends memory work a killed call left running in QEMU: a migration to a file is cancelled,
/// a `snapshot-save` job is waited for and dismissed.
fn end_memory_work(mon: &mut Monitor, call: &mut Call) -> DriverResult {
    let status = mon.exec("query-migrate", Value::Null)?["status"].as_str().unwrap_or("").to_string();
    if matches!(status.as_str(), "setup" | "active" | "pre-switchover" | "device" | "cancelling") {
        let _ = mon.exec("migrate_cancel", Value::Null);
        let _ = mon.wait_migration(call, "cancelling the memory save");
    }
    mon.settle_job("lv-save")
}

/// Whether every internal disk's image holds the snapshot's tag.
fn all_tagged(plan: &Plan) -> DriverResult<bool> {
    let mut any = false;
    for w in plan.internal() {
        if !images::internal_snapshots(&w.image)?.contains(&plan.snapshot) {
            return Ok(false);
        }
        any = true;
    }
    Ok(any)
}

/// Memory a running snapshot saved, to take back if a later step fails.
enum SavedMemory {
    None,
    File(Option<String>),
    /// The internal snapshots of the plan's internal disks.
    Internal,
}

impl SavedMemory {
    fn undo(&self, mon: &mut Monitor, plan: &Plan) {
        match self {
            SavedMemory::None => {}
            SavedMemory::File(f) => {
                if let Some(f) = f {
                    let _ = std::fs::remove_file(f);
                }
            }
            SavedMemory::Internal => {
                let devices: Vec<String> = plan.internal().filter_map(|w| mon.top_node(&w.target).ok()).collect();
                let _ =
                    mon.run_job("snapshot-delete", json!({ "tag": plan.snapshot, "devices": devices }), "lv-undo-save");
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
                "The existing overlay {overlay} is backed by {}, not by {image}; «reuse_external» needs an overlay of the disk's image",
                other.as_deref().unwrap_or("nothing")
            ),
        )),
    }
}

impl QemuDriver {
    /// A disk made persistent while the domain runs still runs on the throw-away overlay it
    /// started with (its new mode applies at the next start): a snapshot of it would be taken
    /// from, or on top of, a file that goes at stop.
    fn refuse_started_transient(&self, name: &str, disks: &[DiskWork]) -> DriverResult {
        let run_dir = self.state.run_dir(name)?;
        for w in disks.iter().filter(|w| w.mode != "no") {
            if crate::lifecycle::transient_overlay(&run_dir, &w.target).exists() {
                return Err(DriverError::new(
                    ErrorCode::InvalidState,
                    format!(
                        "Disk {} of domain '{name}' runs on a throw-away overlay since the domain started (it was independent-nonpersistent; its new mode applies at the next start), so it cannot be snapshotted until then; leave it out («diskspec {},snapshot=no») or restart the domain",
                        w.target, w.target
                    ),
                ));
            }
        }
        Ok(())
    }
}
