//! Reverting to a snapshot, internal or external, with or without memory.
//!
//! The domain stops (if it runs), its definition becomes the one the snapshot recorded, and:
//! - a disk taken internally goes back with `qemu-img snapshot -a`;
//! - a disk taken externally gets a fresh overlay, under a name no file has, on the
//!   snapshot's point-in-time image; the overlay the domain was using is removed once the
//!   definition no longer names it, unless a snapshot or another image still needs it;
//! - a disk the snapshot left out (independent, not chosen) keeps its current image and so
//!   its current content; a transient disk starts empty of changes as always.
//!
//! Then the domain stays off, or starts running or paused, loading the memory the snapshot
//! saved (from its file, or from the internal snapshot). Every file the revert needs is
//! checked first: a snapshot whose files were removed is refused with nothing changed.
//!
//! The [`Plan`] is recorded once the checks pass. A killed revert is finished by the next
//! call ([`QemuDriver::settle_revert`]): once the domain was stopped there is no state to go
//! back to, so the disks are reverted; a domain that was to run is left shut off.

use super::{known_images, recorded_domain};
use crate::QemuDriver;
use crate::images::{self, qemu_img};
use crate::intent::Change;
use crate::lifecycle::{LoadInternal, StartOptions};
use luavirt_plugin_api::abi::{LV_SNAPSHOT_REVERT_PAUSED, LV_SNAPSHOT_REVERT_RUNNING};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// A revert, as recorded before its first step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// The snapshot.
    pub snapshot: String,
    /// The definition after the revert.
    pub definition: String,
    /// Fresh overlays on the snapshot's point-in-time images.
    pub overlays: Vec<NewOverlay>,
    /// Images rewound to their internal snapshot.
    pub rewind: Vec<String>,
    /// Images only the discarded state used, removed at the end.
    pub discard: Vec<String>,
    /// How the domain comes up afterwards; `None`: it stays off.
    pub start: Option<StartOptions>,
}

/// An overlay the revert creates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NewOverlay {
    /// Its file.
    pub file: String,
    /// The image below it.
    pub base: String,
    /// That image's format.
    pub base_format: String,
}

/// The steps of a revert, in order.
const PHASES: &[&str] = &["begun", "stopped", "switched", "cleaned", "started"];

fn refused(snap: &str, name: &str, why: String) -> DriverError {
    DriverError::new(
        ErrorCode::InvalidState,
        format!("Cannot revert domain '{name}' to snapshot '{snap}': {why}; nothing was changed"),
    )
}

/// A name no file has: `wanted`, else `wanted-1`, `wanted-2`, ... (never one of `avoid`).
fn free_name(wanted: &str, avoid: &[String]) -> String {
    std::iter::once(wanted.to_string())
        .chain((1..).map(|n| format!("{wanted}-{n}")))
        .find(|c| !Path::new(c).exists() && !avoid.contains(c))
        .expect("some name is free")
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
        let _lock = self.lock_domain(name, call)?;
        let plan = self.plan_revert(name, snap_name, flags)?;
        let mut pending = self.begin(name, Change::SnapshotRevert(plan.clone()))?;
        failpoint::hit("snapshot-revert:begun");
        if self.running(name)?.is_some() {
            self.stop(name, call)?;
        }
        pending.phase("stopped")?;
        failpoint::hit("snapshot-revert:stopped");
        self.switch_revert(name, &plan)?;
        pending.phase("switched")?;
        failpoint::hit("snapshot-revert:switched");
        self.discard(name, &plan.discard, call)?;
        pending.phase("cleaned")?;
        failpoint::hit("snapshot-revert:cleaned");
        if let Some(opts) = &plan.start {
            let dom = DomainXml::parse(&plan.definition, None)
                .map_err(|e| DriverError::new(ErrorCode::Internal, e.to_string()))?;
            let started = self.start(&dom, opts, call);
            if let Err(e) = started {
                pending.done()?;
                return Err(DriverError::new(
                    e.code,
                    format!(
                        "Domain '{name}' was reverted to snapshot '{snap_name}', but it did not start: {}; it is shut off",
                        e.message
                    ),
                ));
            }
            pending.phase("started")?;
            failpoint::hit("snapshot-revert:started");
        }
        pending.done()
    }

    /// Checks everything the revert needs and decides every step; changes nothing.
    fn plan_revert(&self, name: &str, snap_name: &str, flags: u32) -> DriverResult<Plan> {
        let (_, now) = self.state.read_definition(name)?;
        let tree = self.read_tree(name)?;
        let snap = self.find_snapshot(name, &tree, snap_name)?;
        self.refuse_while_mirroring(name, &tree, &format!("revert to snapshot '{snap_name}'"))?;
        let then = recorded_domain(name, &snap)?;
        let memory = snap.memory.clone().map(|m| (m.snapshot, m.file)).unwrap_or(("no".into(), None));
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

        // Images a snapshot records as its point in time must stay.
        let needed = needed_images(name, &tree);
        let mut after = then.clone();
        let mut plan = Plan {
            snapshot: snap_name.to_string(),
            definition: String::new(),
            overlays: Vec::new(),
            rewind: Vec::new(),
            discard: Vec::new(),
            start: None,
        };
        for d in then.disks() {
            let current = now.disk(&d.target);
            match taken(&d.target).as_str() {
                "internal" => plan.rewind.push(d.source.path().unwrap_or_default().to_string()),
                "external" => {
                    let base = d.source.path().unwrap_or_default();
                    if let Some(top) = current.as_ref().and_then(|c| c.source.path().map(str::to_string))
                        && top != base
                        && !needed.contains(&top)
                        && !plan.discard.contains(&top)
                    {
                        plan.discard.push(top);
                    }
                    let wanted = snap
                        .disks
                        .iter()
                        .find(|s| s.name == d.target)
                        .and_then(|s| s.source_file.clone())
                        .unwrap_or_else(|| format!("{base}.{snap_name}"));
                    let taken_names: Vec<String> = plan.overlays.iter().map(|o| o.file.clone()).collect();
                    let file = free_name(&wanted, &taken_names);
                    after
                        .set_disk_source(&d.target, &file, "qcow2")
                        .map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
                    plan.overlays.push(NewOverlay {
                        file,
                        base: base.to_string(),
                        base_format: d.format_or_raw().to_string(),
                    });
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
        plan.definition = after.to_xml();
        if run {
            let internal: Vec<String> = snap
                .disks
                .iter()
                .filter(|d| d.snapshot.as_deref() == Some("internal"))
                .map(|d| d.name.clone())
                .collect();
            plan.start = Some(StartOptions {
                paused,
                incoming: if memory.0 == "external" { memory.1.clone() } else { None },
                load_internal: (memory.0 == "internal").then(|| LoadInternal {
                    tag: snap_name.to_string(),
                    vmstate: internal[0].clone(),
                    disks: internal.clone(),
                }),
                migrate_in: false,
            });
        }
        Ok(plan)
    }

    /// Creates the fresh overlays, rewinds internal snapshots, then switches the definition
    /// and the current snapshot. Safe to repeat until the definition is switched: nothing
    /// runs the domain's disks meanwhile.
    fn switch_revert(&self, name: &str, plan: &Plan) -> DriverResult {
        for o in &plan.overlays {
            // Ours from an interrupted attempt (its name was free when the revert began).
            if Path::new(&o.file).exists() {
                std::fs::remove_file(&o.file).map_err(|e| DriverError::io("remove", Path::new(&o.file), e))?;
            }
            images::create_overlay(&o.file, &o.base, &o.base_format)?;
        }
        for image in &plan.rewind {
            qemu_img(&["snapshot", "-a", &plan.snapshot, image])?;
        }
        failpoint::hit("snapshot-revert:images");
        self.state.write_definition(name, &plan.definition)?;
        failpoint::hit("snapshot-revert:definition");
        let mut tree = self.read_tree(name)?;
        tree.current = Some(plan.snapshot.clone());
        self.write_tree(name, &tree)
    }

    /// Removes images only a discarded state used, once nothing names or builds on them.
    fn discard(&self, name: &str, files: &[String], call: &mut Call) -> DriverResult {
        let (_, dom) = self.state.read_definition(name)?;
        let tree = self.read_tree(name)?;
        let mut keep = needed_images(name, &tree);
        keep.extend(dom.disks().into_iter().filter_map(|d| d.source.path().map(str::to_string)));
        let known = known_images(&dom, &tree);
        for f in files.iter().filter(|f| !keep.contains(*f) && Path::new(f).is_file()) {
            let built_on = known.iter().any(|k| k != f && images::backing_of(k).ok().flatten().as_deref() == Some(f));
            if built_on {
                continue;
            }
            if let Err(e) = std::fs::remove_file(f) {
                call.log(Level::Warning, &format!("domain '{name}': could not remove the discarded overlay {f}: {e}"));
            }
        }
        Ok(())
    }

    /// Settles a revert a killed call left. Says what it did.
    pub(crate) fn settle_revert(&self, name: &str, plan: &Plan, phase: &str, call: &mut Call) -> DriverResult<String> {
        let at = |p: &str| PHASES.iter().position(|x| *x == p).unwrap_or(0);
        if at(phase) < at("stopped") && self.running(name)?.is_some() {
            return Ok("it had not stopped the domain yet, so nothing had changed".to_string());
        }
        if at(phase) < at("switched") {
            if self.running(name)?.is_some() {
                self.stop(name, call)?;
            }
            self.switch_revert(name, plan)?;
        }
        self.discard(name, &plan.discard, call)?;
        let Some(_) = &plan.start else {
            return Ok(format!("it was finished: the domain is at snapshot '{}' and shut off", plan.snapshot));
        };
        if at(phase) < at("cleaned") {
            return Ok(format!(
                "it was finished on the disks: the domain is at snapshot '{}' and shut off; revert again to run it from the snapshot",
                plan.snapshot
            ));
        }
        let state = self.settle_start(name, phase == "started", call)?;
        Ok(format!("its disks are at snapshot '{}'; {state}", plan.snapshot))
    }
}

/// The images some snapshot records as its point in time.
fn needed_images(name: &str, tree: &luavirt_plugin_api::snapshot::SnapshotTree) -> BTreeSet<String> {
    let mut needed = BTreeSet::new();
    for s in tree.all() {
        if let Ok(d) = recorded_domain(name, s) {
            needed.extend(d.disks().into_iter().filter_map(|x| x.source.path().map(str::to_string)));
        }
    }
    needed
}
