//! Reverting to a snapshot, internal or external, with or without memory.
//!
//! The domain stops (if it runs), its definition becomes the one the snapshot recorded, and:
//! - a disk taken internally goes back with `qemu-img snapshot -a`;
//! - a disk taken externally gets a fresh overlay on the snapshot's point-in-time image (the
//!   overlay the domain was using is removed unless another snapshot still needs it);
//! - a disk the snapshot left out (independent, not chosen) keeps its current image and so
//!   its current content; a transient disk starts empty of changes as always.
//!
//! Then the domain stays off, or starts running or paused, loading the memory the snapshot
//! saved (from its file, or from the internal snapshot). Every file the revert needs is
//! checked first: a snapshot whose files were removed is refused with nothing changed.

use super::{known_images, recorded_domain};
use crate::QemuDriver;
use crate::images::{self, qemu_img};
use crate::lifecycle::StartOptions;
use luavirt_plugin_api::abi::{LV_SNAPSHOT_REVERT_PAUSED, LV_SNAPSHOT_REVERT_RUNNING};
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

fn refused(snap: &str, name: &str, why: String) -> DriverError {
    DriverError::new(
        ErrorCode::InvalidState,
        format!("Cannot revert domain '{name}' to snapshot '{snap}': {why}; nothing was changed"),
    )
}

/// A free file name for a new overlay: `wanted`, or `wanted-1`, `wanted-2`, ...
fn free_name(wanted: &str) -> String {
    if !Path::new(wanted).exists() {
        return wanted.to_string();
    }
    (1..).map(|n| format!("{wanted}-{n}")).find(|c| !Path::new(c).exists()).expect("some name is free")
}

impl QemuDriver {
    /// `domain_snapshot_revert`.
    pub(crate) fn snapshot_revert_impl(
        &self,
        name: &str,
        snap_name: &str,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let _lock = self.state.lock(name)?;
        let (_, now) = self.state.read_definition(name)?;
        let mut tree = self.read_tree(name)?;
        let snap = self.find_snapshot(name, &tree, snap_name)?;
        self.refuse_while_mirroring(name, &tree, &format!("revert to snapshot '{snap_name}'"))?;
        let then = recorded_domain(name, &snap)?;
        let memory = snap.memory.clone().map(|m| (m.snapshot, m.file)).unwrap_or(("no".into(), None));

        // Check everything first.
        let known = known_images(&now, &tree);
        let taken = |target: &str| {
            snap.disks.iter().find(|d| d.name == target).and_then(|d| d.snapshot.clone()).unwrap_or_else(|| "no".into())
        };
        for d in then.disks() {
            let mode = taken(&d.target);
            if mode != "internal" && mode != "external" {
                continue;
            }
            let image = d.source.path().unwrap_or_default();
            if !Path::new(image).is_file() {
                return Err(refused(snap_name, name, format!("image {image} of disk {} was removed", d.target)));
            }
            if mode == "internal" {
                if !images::internal_snapshots(image)?.iter().any(|t| t == snap_name) {
                    return Err(refused(
                        snap_name,
                        name,
                        format!("image {image} of disk {} no longer holds the internal snapshot", d.target),
                    ));
                }
                // Rewinding an image that later overlays build on would change what they show.
                for other in &known {
                    if other != image && images::backing_of(other)?.as_deref() == Some(image) {
                        return Err(refused(
                            snap_name,
                            name,
                            format!(
                                "disk {}: {other} builds on {image}, where the internal snapshot lives; revert to or delete the later snapshots first",
                                d.target
                            ),
                        ));
                    }
                }
            }
        }
        if let ("external", Some(file)) = (memory.0.as_str(), &memory.1)
            && !Path::new(file).is_file()
        {
            return Err(refused(snap_name, name, format!("its memory file {file} was removed")));
        }
        let has_memory = memory.0 != "no";
        let paused = flags & LV_SNAPSHOT_REVERT_PAUSED != 0
            || (flags & LV_SNAPSHOT_REVERT_RUNNING == 0 && snap.state.as_deref() == Some("paused"));
        let run = flags & (LV_SNAPSHOT_REVERT_RUNNING | LV_SNAPSHOT_REVERT_PAUSED) != 0 || has_memory;

        // Images the snapshot records (its point-in-time images and those of every other
        // snapshot) must stay; the images the domain uses now may go.
        let mut needed = std::collections::BTreeSet::new();
        for s in tree.all() {
            if let Ok(d) = recorded_domain(name, s) {
                needed.extend(d.disks().into_iter().filter_map(|x| x.source.path().map(str::to_string)));
            }
        }

        if self.running(name)?.is_some() {
            self.stop(name, call)?;
        }
        let mut after = then.clone();
        let mut discard = Vec::new();
        for d in then.disks() {
            let current = now.disk(&d.target);
            match taken(&d.target).as_str() {
                "internal" => {
                    qemu_img(&["snapshot", "-a", snap_name, d.source.path().unwrap_or_default()])?;
                }
                "external" => {
                    let base = d.source.path().unwrap_or_default();
                    if let Some(top) = current.as_ref().and_then(|c| c.source.path().map(str::to_string))
                        && top != base
                        && !needed.contains(&top)
                    {
                        discard.push(top);
                    }
                    let wanted = snap
                        .disks
                        .iter()
                        .find(|s| s.name == d.target)
                        .and_then(|s| s.source_file.clone())
                        .unwrap_or_else(|| format!("{base}.{snap_name}"));
                    let overlay = if discard.contains(&wanted) { wanted } else { free_name(&wanted) };
                    if Path::new(&overlay).exists() {
                        std::fs::remove_file(&overlay)
                            .map_err(|e| DriverError::io("remove", Path::new(&overlay), e))?;
                        discard.retain(|f| f != &overlay);
                    }
                    images::create_overlay(&overlay, base, d.format_or_raw())?;
                    after
                        .set_disk_source(&d.target, &overlay, "qcow2")
                        .map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
                }
                _ => {
                    // Left out of the snapshot: keeps its current image and content.
                    if let Some(c) = current.filter(|c| !c.transient)
                        && let Some(path) = c.source.path()
                    {
                        after
                            .set_disk_source(&d.target, path, c.format_or_raw())
                            .map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
                    }
                }
            }
        }
        self.state.write_definition(name, &after.to_xml())?;
        for f in discard {
            if let Err(e) = std::fs::remove_file(&f) {
                call.log(Level::Warning, &format!("domain '{name}': could not remove the discarded overlay {f}: {e}"));
            }
        }
        tree.current = Some(snap_name.to_string());
        self.write_tree(name, &tree)?;

        if run {
            let internal: Vec<String> = snap
                .disks
                .iter()
                .filter(|d| d.snapshot.as_deref() == Some("internal"))
                .map(|d| d.name.clone())
                .collect();
            let opts = StartOptions {
                paused,
                incoming: if memory.0 == "external" { memory.1.as_deref() } else { None },
                load_internal: (memory.0 == "internal")
                    .then(|| (snap_name.to_string(), internal[0].clone(), internal.clone())),
            };
            self.start(&after, &opts, call)?;
        }
        Ok(())
    }
}
