//! Reverting a shut-off xl domain to a snapshot. Each disk the snapshot took goes back to the
//! image it recorded: taken externally, it gets a fresh overlay on that image (so the snapshot
//! stays whole for the next revert); taken internally, its image applies the internal
//! snapshot. Disks the snapshot left out keep their content, and the rest of the config stays
//! as it is. The overlays the domain used go once nothing names or builds on them.
//!
//! Every file the revert needs is checked first. Then: fresh overlays, the switch (config,
//! then the sidecar's current snapshot), the internal snapshots applied, the discarded images
//! removed; a kill before the switch is undone by the next call, after it finished
//! (`super::intent`). With `--running` or `--paused` the domain then starts with `xl create`,
//! which is checked to be possible before anything changes.

use super::intent::{Change, Files, NewOverlay, undo};
use super::{known_images, recorded, recorded_format, snapshot_image};
use crate::LibxlDriver;
use crate::diskspec::{Disk, Format};
use crate::dom::cfg_error;
use crate::images;
use luavirt_plugin_api::abi::{LV_SNAPSHOT_REVERT_PAUSED, LV_SNAPSHOT_REVERT_RUNNING};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

/// A name no file has: `wanted`, else `wanted-1`, `wanted-2`, ... (none of `avoid`).
fn free_name(wanted: &str, avoid: &[String]) -> String {
    std::iter::once(wanted.to_string())
        .chain((1..).map(|n| format!("{wanted}-{n}")))
        .find(|c| !Path::new(c).exists() && !avoid.contains(c))
        .expect("some name is free")
}

impl LibxlDriver {
    /// `domain_snapshot_revert`.
    pub(crate) fn snapshot_revert_impl(&self, name: &str, snap: &str, flags: u32, call: &mut Call) -> DriverResult {
        let start = flags & (LV_SNAPSHOT_REVERT_RUNNING | LV_SNAPSHOT_REVERT_PAUSED) != 0;
        let l = self.load_snapshots(name, call)?;
        let s = l.snapshot(snap)?;
        let refused = |why: String| {
            DriverError::new(
                ErrorCode::InvalidState,
                format!("Cannot revert domain '{name}' to snapshot '{snap}': {why}; nothing was changed"),
            )
        };
        self.require_off(name, &format!("Reverting domain '{name}' to snapshot '{snap}'"))?;
        if start {
            self.require_xl(
                &format!("Reverting domain '{name}' to snapshot '{snap}' and running it"),
                "revert without «running» or «paused» to put only its disks back",
            )?;
        }
        let then = recorded(name, &s)?;
        let known = known_images(name, &l.dom, &l.sidecar.snapshots);
        // Images some snapshot records as its point in time stay.
        let mut needed: Vec<String> = Vec::new();
        for other in l.sidecar.snapshots.all() {
            if let Ok(d) = recorded(name, other) {
                needed.extend(d.disks().into_iter().filter_map(|x| x.source.path().map(str::to_string)));
            }
        }
        let mut cfg = l.dom.cfg.clone();
        let (mut overlays, mut rewind, mut discard): (Vec<NewOverlay>, Vec<String>, Vec<String>) = Default::default();
        for t in &s.disks {
            let mode = t.snapshot.as_deref().unwrap_or("no");
            if mode != "internal" && mode != "external" {
                continue;
            }
            let Some(d) = l.dom.disk(&t.name) else {
                call.log(
                    Level::Info,
                    &format!("snapshot '{snap}': disk {} is no longer in domain '{name}'; skipped", t.name),
                );
                continue;
            };
            let was = then.disk(&t.name).ok_or_else(|| refused(format!("its record has no disk {}", t.name)))?;
            let image = was.source.path().unwrap_or_default().to_string();
            if !Path::new(&image).is_file() {
                return Err(refused(format!("image {image} of disk {} was removed", t.name)));
            }
            let current = snapshot_image(name, &l.dom, d)?;
            let format = recorded_format(&was);
            let mut want = Disk { format, target: Some(image.clone()), ..d.spec.disk.clone() };
            if mode == "internal" {
                if !images::tags(&image)?.iter().any(|x| x == snap) {
                    return Err(refused(format!(
                        "image {image} of disk {} no longer holds the internal snapshot",
                        t.name
                    )));
                }
                // Rewinding an image that later overlays build on would change what they show.
                if let Some(other) =
                    known.iter().find(|k| **k != image && images::backing_of(k).as_deref() == Some(image.as_str()))
                {
                    return Err(refused(format!(
                        "disk {}: {other} builds on {image}, where the internal snapshot lives; revert to or delete the later snapshots first",
                        t.name
                    )));
                }
                rewind.push(image.clone());
            } else {
                let wanted = t.source_file.clone().unwrap_or_else(|| format!("{image}.{snap}"));
                let taken: Vec<String> = overlays.iter().map(|o| o.file.clone()).collect();
                let file = free_name(&wanted, &taken);
                overlays.push(NewOverlay {
                    file: file.clone(),
                    base: image.clone(),
                    base_format: format.qemu().to_string(),
                });
                want.target = Some(file);
                want.format = Format::Qcow2;
            }
            if current != image && !needed.contains(&current) && !discard.contains(&current) {
                discard.push(current);
            }
            if want != d.spec.disk {
                let text = d.spec.rewrite(&want).map_err(refused)?;
                cfg = cfg.replace_item(d.setting, d.index, &text).map_err(cfg_error)?;
            }
        }
        let mut sidecar = l.sidecar.clone();
        sidecar.snapshots.current = Some(snap.to_string());
        let files = Files::of(&l, snap, cfg.bytes().to_vec(), &sidecar)?;
        let pending = self.begin(
            &l.dom.path,
            Change::Revert {
                files: files.clone(),
                overlays: overlays.clone(),
                rewind: rewind.clone(),
                discard: discard.clone(),
            },
        )?;
        failpoint::hit("libxl-snapshot-revert:begun");
        let mut made = Vec::new();
        let switched = (|| -> DriverResult {
            for o in &overlays {
                images::create_overlay(&o.file, &o.base, &o.base_format)?;
                made.push(o.clone());
            }
            failpoint::hit("libxl-snapshot-revert:overlays");
            files.switch().inspect_err(|_| {
                let _ = files.unswitch();
            })
        })();
        if let Err(e) = switched {
            undo(snap, &made, &[], call);
            pending.done()?;
            return Err(refused(e.message.trim_end_matches(" (nothing was changed)").to_string()));
        }
        // Switched: from here on the revert is finished, by this call or the next.
        for image in &rewind {
            images::tag("-a", snap, image)?;
        }
        failpoint::hit("libxl-snapshot-revert:rewound");
        self.remove_unneeded(name, &files, &discard, call)?;
        pending.done()?;
        if start {
            let paused = flags & LV_SNAPSHOT_REVERT_PAUSED != 0;
            let path = l.dom.path.display().to_string();
            let args: Vec<&str> = if paused { vec!["create", "-p", &path] } else { vec!["create", &path] };
            self.xl.run(&args).map_err(|e| {
                DriverError::new(
                    ErrorCode::Hypervisor,
                    format!(
                        "Domain '{name}' was reverted to snapshot '{snap}', but it did not start: {e}; it is shut off"
                    ),
                )
            })?;
        }
        Ok(())
    }
}
