//! Taking a snapshot of a shut-off xl domain, all disks or none, safe to kill at any step:
//! internal snapshots (`qemu-img snapshot -c`) and overlays (`qemu-img create -b`) first,
//! then the config names the overlays, then the sidecar records the snapshot. A failure
//! half-way undoes what was made; a kill half-way is settled by the next call
//! (`super::intent`).

use super::intent::{Change, Files, NewOverlay, undo};
use super::{Loaded, snapshot_image};
use crate::LibxlDriver;
use crate::diskspec::Format;
use crate::dom::cfg_error;
use crate::images;
use crate::view;
use luavirt_plugin_api::abi::{
    LV_SNAPSHOT_CREATE_HALT, LV_SNAPSHOT_CREATE_LIVE, LV_SNAPSHOT_CREATE_NO_METADATA, LV_SNAPSHOT_CREATE_REUSE_EXT,
};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::snapshot::{SnapshotDisk, SnapshotMemory, SnapshotXml};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

/// What a snapshot does, decided before its first step.
struct Work {
    /// Overlays to make.
    overlays: Vec<NewOverlay>,
    /// Images to give an internal snapshot.
    tags: Vec<String>,
    /// The record.
    record: SnapshotXml,
    /// The config afterwards.
    cfg: Vec<u8>,
}

impl LibxlDriver {
    /// `domain_snapshot_create`.
    pub(crate) fn snapshot_create_impl(&self, name: &str, xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        let req = SnapshotXml::parse(xml)
            .map_err(|e| DriverError::new(ErrorCode::Xml, format!("Snapshot request for domain '{name}': {e}")))?;
        let snap = req.name.clone().ok_or_else(|| {
            DriverError::new(ErrorCode::InvalidArg, format!("The snapshot request for domain '{name}' has no <name>"))
        })?;
        let l = self.load_snapshots(name, call)?;
        if l.sidecar.snapshots.get(&snap).is_some() {
            return Err(DriverError::new(
                ErrorCode::Exists,
                format!("Domain '{name}' already has a snapshot named '{snap}'; choose another name"),
            ));
        }
        self.require_off(name, &format!("Snapshot '{snap}' of domain '{name}'"))?;
        let w = plan(&l, &req, &snap, flags)?;
        let mut sidecar = l.sidecar.clone();
        if flags & LV_SNAPSHOT_CREATE_NO_METADATA == 0 {
            sidecar.snapshots.add(w.record.clone());
        }
        let files = Files::of(&l, &snap, w.cfg.clone(), &sidecar)?;
        let pending = self.begin(
            &l.dom.path,
            Change::Create { files: files.clone(), overlays: w.overlays.clone(), tags: w.tags.clone() },
        )?;
        failpoint::hit("libxl-snapshot-create:begun");
        let (mut made, mut tagged) = (Vec::new(), Vec::new());
        let result = (|| -> DriverResult {
            for image in &w.tags {
                images::tag("-c", &snap, image)?;
                tagged.push(image.clone());
            }
            for o in &w.overlays {
                images::create_overlay(&o.file, &o.base, &o.base_format)?;
                made.push(o.clone());
            }
            failpoint::hit("libxl-snapshot-create:images");
            files.switch().inspect_err(|_| {
                // The sidecar could not be written: the config goes back, so the two agree.
                let _ = files.unswitch();
            })
        })();
        if let Err(e) = result {
            undo(&snap, &made, &tagged, call);
            pending.done()?;
            return Err(DriverError::new(
                e.code,
                format!(
                    "Snapshot '{snap}' of domain '{name}': {}; nothing was changed",
                    e.message.trim_end_matches(" (nothing was changed)")
                ),
            ));
        }
        pending.done()?;
        let stored = sidecar.snapshots.get(&snap).cloned().unwrap_or(w.record);
        call.emit_text(&stored.to_xml());
        Ok(())
    }
}

/// Checks the request against the domain and decides every step; changes nothing.
fn plan(l: &Loaded, req: &SnapshotXml, snap: &str, flags: u32) -> DriverResult<Work> {
    let name = &l.name;
    let refuse = |code, m: String| {
        DriverError::new(code, format!("Snapshot '{snap}' of domain '{name}': {m} (nothing was changed)"))
    };
    if flags & (LV_SNAPSHOT_CREATE_HALT | LV_SNAPSHOT_CREATE_LIVE) != 0 {
        return Err(refuse(
            ErrorCode::InvalidArg,
            "«halt» and «live» apply to a running domain, and this one is shut off".into(),
        ));
    }
    if req.memory.as_ref().is_some_and(|m| m.snapshot != "no") {
        return Err(refuse(ErrorCode::InvalidState, "the domain is shut off, so it has no memory to save".into()));
    }
    let reuse = flags & LV_SNAPSHOT_CREATE_REUSE_EXT != 0;
    let mut cfg = l.dom.cfg.clone();
    let mut w = Work { overlays: Vec::new(), tags: Vec::new(), record: SnapshotXml::default(), cfg: Vec::new() };
    let mut disks = Vec::new();
    for s in &req.disks {
        let mode = s.snapshot.clone().unwrap_or_else(|| "no".to_string());
        let d = l
            .dom
            .disk(&s.name)
            .ok_or_else(|| refuse(ErrorCode::NoDisk, format!("the domain has no disk '{}'", s.name)))?;
        let mut taken = SnapshotDisk { name: s.name.clone(), snapshot: Some(mode.clone()), ..SnapshotDisk::default() };
        match mode.as_str() {
            "no" | "manual" => {}
            "internal" => {
                let image = snapshot_image(name, &l.dom, d)?;
                if d.spec.disk.format != Format::Qcow2 {
                    return Err(refuse(
                        ErrorCode::InvalidArg,
                        format!(
                            "disk {} is {}, which cannot hold an internal snapshot; take it externally",
                            s.name,
                            d.spec.disk.format.name()
                        ),
                    ));
                }
                if images::tags(&image)?.iter().any(|t| t == snap) {
                    return Err(refuse(
                        ErrorCode::Exists,
                        format!(
                            "image {image} of disk {} already holds an internal snapshot '{snap}' (a leftover?); remove it with qemu-img snapshot -d '{snap}' {image}",
                            s.name
                        ),
                    ));
                }
                w.tags.push(image);
            }
            "external" => {
                let image = snapshot_image(name, &l.dom, d)?;
                if let Some(t) = s.driver_type.as_deref().filter(|t| *t != "qcow2") {
                    return Err(refuse(
                        ErrorCode::Unsupported,
                        format!("disk {}: luavirt gives xl disks qcow2 overlays, not {t}", s.name),
                    ));
                }
                if s.mirror_file.is_some() {
                    return Err(refuse(
                        ErrorCode::Unsupported,
                        format!("disk {}: a mirror needs a running domain", s.name),
                    ));
                }
                let overlay = s.source_file.clone().ok_or_else(|| {
                    refuse(
                        ErrorCode::InvalidArg,
                        format!("disk {} has no overlay file; give one with «diskspec {},file=PATH»", s.name, s.name),
                    )
                })?;
                let exists = Path::new(&overlay).exists();
                if exists && !reuse {
                    return Err(refuse(
                        ErrorCode::Exists,
                        format!("overlay {overlay} of disk {} already exists", s.name),
                    ));
                }
                if reuse && images::backing_of(&overlay).as_deref() != Some(image.as_str()) {
                    return Err(refuse(
                        ErrorCode::InvalidArg,
                        format!(
                            "«reuse_external»: {overlay} is not a qcow2 overlay of {image} (the image of disk {})",
                            s.name
                        ),
                    ));
                }
                if !reuse {
                    w.overlays.push(NewOverlay {
                        file: overlay.clone(),
                        base: image,
                        base_format: d.spec.disk.format.qemu().to_string(),
                    });
                }
                let want = crate::diskspec::Disk {
                    target: Some(overlay.clone()),
                    format: Format::Qcow2,
                    ..d.spec.disk.clone()
                };
                let text = d.spec.rewrite(&want).map_err(|m| refuse(ErrorCode::InvalidArg, m))?;
                cfg = cfg.replace_item(d.setting, d.index, &text).map_err(cfg_error)?;
                taken.source_type = Some("file".into());
                taken.source_file = Some(overlay);
                taken.driver_type = Some("qcow2".into());
            }
            other => {
                return Err(refuse(ErrorCode::InvalidArg, format!("disk {}: unknown snapshot mode '{other}'", s.name)));
            }
        }
        disks.push(taken);
    }
    if w.tags.is_empty() && w.overlays.is_empty() && !disks.iter().any(|d| d.snapshot.as_deref() == Some("external")) {
        return Err(refuse(ErrorCode::InvalidArg, "it would take no disk".into()));
    }
    let before = view::build(&l.dom, &l.sidecar)?;
    w.record = SnapshotXml {
        name: Some(snap.to_string()),
        description: req.description.clone(),
        memory: Some(SnapshotMemory { snapshot: "no".into(), file: None }),
        disks,
        creation_time: Some(luavirt_plugin_api::time::now_secs()),
        state: Some("shutoff".into()),
        parent: None,
        domain: Some(before.document().root.clone()),
    };
    w.cfg = cfg.bytes().to_vec();
    Ok(w)
}
