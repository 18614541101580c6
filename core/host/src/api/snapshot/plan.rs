//! Which disks a snapshot takes, and how: decided here, once, for every driver.
//!
//! - Explicit diskspecs name the disks that take part; else the members of a disk set; else
//!   every disk whose `snapshot=` default is not `no`.
//! - `<transient/>` disks never take part; nor do empty and read-only ones.
//! - Each disk goes internal or external: its diskspec, else its `snapshot=` default, else
//!   external for an overlay of an earlier external snapshot (so chains stay mergeable),
//!   internal for qcow2 and external for other formats. A disk that cannot hold an internal
//!   snapshot (raw, ...) goes external, or stays out if its default is `no`, instead of
//!   failing the snapshot.
//! - Memory: none for `--disk-only` or a shut-off domain; a file for `--memspec`; otherwise
//!   inside the first disk taken internally.

use super::spec::SnapshotRequest;
use crate::error::{Error, Result};
use luavirt_plugin_api::domain::{Disk, DomainXml};
use luavirt_plugin_api::snapshot::{DISK_SNAPSHOT_MODES, SnapshotDisk, SnapshotMemory, SnapshotXml};
use serde::Serialize;
use std::path::Path;

/// One disk's part in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedDisk {
    /// Target (vda).
    pub target: String,
    /// `no`, `internal`, `external` or `manual`.
    pub snapshot: String,
    /// Why, in words.
    pub reason: String,
    /// The new overlay (external).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The overlay's format (external).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Mirror file (mirrored snapshot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
}

/// Memory in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "snapshot", rename_all = "lowercase")]
pub enum PlannedMemory {
    /// No memory state.
    No,
    /// Inside a disk's internal snapshot.
    Internal {
        /// The disk that holds it.
        disk: String,
    },
    /// In a file.
    External {
        /// The file.
        file: String,
    },
}

/// A resolved snapshot: what `--print-plan` shows and what the driver is asked to do.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotPlan {
    /// Domain.
    pub domain: String,
    /// Snapshot name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Whether the domain runs.
    pub running: bool,
    /// Memory.
    pub memory: PlannedMemory,
    /// Every disk of the domain, in order.
    pub disks: Vec<PlannedDisk>,
}

/// The most bytes a snapshot name may have: a qcow2 snapshot tag holds 255 bytes (QEMU cuts
/// longer ones, and then finds no snapshot of the full name), and a file name too.
pub const MAX_SNAPSHOT_NAME_BYTES: usize = 255;

/// Checks a snapshot name: it becomes a qcow2 tag and part of file names, so no `/`, no
/// control characters, no leading `.` or space, at most 64 characters and at most 255 bytes
/// in UTF-8 (64 four-byte characters are 256). Spaces inside are fine (VMware names
/// snapshots "Snapshot 1").
pub fn check_snapshot_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && !name.starts_with(['.', ' '])
        && !name.ends_with(' ')
        && !name.chars().any(|c| c == '/' || c.is_control());
    if !ok {
        return Err(Error::InvalidArg(format!(
            "Invalid snapshot name {name:?}: use 1 to 64 characters without '/' or control characters, not starting with '.' or a space"
        )));
    }
    if name.len() > MAX_SNAPSHOT_NAME_BYTES {
        return Err(Error::InvalidArg(format!(
            "Invalid snapshot name {name:?}: it is {} bytes in UTF-8, and a snapshot name may have at most {MAX_SNAPSHOT_NAME_BYTES} (qcow2 keeps no more); use a shorter name or fewer non-ASCII characters",
            name.len()
        )));
    }
    Ok(())
}

/// The default overlay of `path` for snapshot `name`: the file name's extension replaced by
/// the snapshot name (`/i/a.qcow2` → `/i/a.s1`), as libvirt names them.
pub fn default_overlay(path: &str, name: &str) -> String {
    let p = Path::new(path);
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    p.with_file_name(format!("{stem}.{name}")).display().to_string()
}

/// The overlay luavirt names for `path` in snapshot `name` when the user names none: the
/// [`default_overlay`], unless a file has that name or another disk of the same snapshot
/// takes it (`x.raw` and `x.img` share the stem `x`): then the whole file name plus the
/// snapshot name (`x.raw.s1`), then `x.raw.s1-2`, ... With `reuse`, the default as it is.
fn free_overlay(path: &str, name: &str, taken: &[String], reuse: bool, exists: Exists) -> String {
    let first = default_overlay(path, name);
    if reuse {
        return first;
    }
    let free = |c: &String| !taken.contains(c) && !exists(c);
    std::iter::once(first)
        .chain(std::iter::once(format!("{path}.{name}")))
        .chain((2..).map(|n| format!("{path}.{name}-{n}")))
        .find(free)
        .expect("some name is free")
}

/// Every file a snapshot creates (overlays, mirrors, the memory file) must be its own: two
/// disks on one overlay would each overwrite the other.
fn check_distinct(disks: &[PlannedDisk], memory: &PlannedMemory) -> std::result::Result<(), String> {
    let mut seen: Vec<(&str, String)> = Vec::new();
    let files = disks
        .iter()
        .flat_map(|p| {
            [
                p.file.as_deref().map(|f| (f, format!("the overlay of disk {}", p.target))),
                p.mirror.as_deref().map(|m| (m, format!("the mirror of disk {}", p.target))),
            ]
        })
        .chain(std::iter::once(match memory {
            PlannedMemory::External { file } => Some((file.as_str(), "the memory file".to_string())),
            _ => None,
        }))
        .flatten();
    for (file, what) in files {
        if let Some((_, other)) = seen.iter().find(|(f, _)| *f == file) {
            return Err(format!("{other} and {what} are the same file {file}; give each its own"));
        }
        seen.push((file, what));
    }
    Ok(())
}

fn formats_with_internal_snapshots(format: &str) -> bool {
    format == "qcow2"
}

/// Whether a file exists on the domain's host (where the snapshot's files will be made).
type Exists<'a> = &'a dyn Fn(&str) -> bool;

impl SnapshotPlan {
    /// Resolves `req` against domain `dom` (running or not), with the files of this host.
    /// `overlays` are the disks whose image is an overlay (has a backing image): they go
    /// external unless told otherwise.
    pub fn resolve(dom: &DomainXml, req: &SnapshotRequest, running: bool, overlays: &[String]) -> Result<SnapshotPlan> {
        let is_overlay = |target: &str| overlays.iter().any(|o| o == target);
        Self::resolve_asking(dom, req, running, &is_overlay, &|p| Path::new(p).exists())
    }

    /// As [`SnapshotPlan::resolve`], asking `is_overlay` about a disk only when the answer
    /// decides its mode (a disk the request or its default already places is not looked at:
    /// each look may read an image chain), and `exists` which files exist on the domain's host.
    pub fn resolve_asking(
        dom: &DomainXml,
        req: &SnapshotRequest,
        running: bool,
        is_overlay: &dyn Fn(&str) -> bool,
        exists: Exists,
    ) -> Result<SnapshotPlan> {
        let domain = dom.name();
        let name = match &req.name {
            Some(n) => n.clone(),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                .to_string(),
        };
        check_snapshot_name(&name)?;
        let disks = dom.disks();
        let invalid = |m: String| Error::InvalidArg(format!("Snapshot '{name}' of domain '{domain}': {m}"));
        if req.atomic == Some(false) {
            return Err(invalid(
                "atomic=false cannot be honoured: every luavirt snapshot takes all its disks or none; drop the option"
                    .to_string(),
            ));
        }

        // Requests built by a script, not parsed from a diskspec, are checked here too.
        if let Some(spec) =
            req.disks.iter().find(|s| s.snapshot.as_deref().is_some_and(|m| !DISK_SNAPSHOT_MODES.contains(&m)))
        {
            return Err(invalid(format!(
                "disk {} has the snapshot mode {:?}; use one of {}",
                spec.disk,
                spec.snapshot.as_deref().unwrap_or(""),
                DISK_SNAPSHOT_MODES.join(", ")
            )));
        }
        // Who takes part, and with which diskspec.
        let mut specs = vec![None; disks.len()];
        let chosen: Vec<bool> = if !req.disks.is_empty() {
            for spec in &req.disks {
                let target = super::super::diskset::resolve(&domain, &disks, &spec.disk)?;
                let i = disks.iter().position(|d| d.target == target).expect("resolved");
                if specs[i].is_some() {
                    return Err(invalid(format!("disk {target} is named twice")));
                }
                specs[i] = Some(spec.clone());
            }
            specs.iter().map(Option::is_some).collect()
        } else if let Some(set) = &req.disk_set {
            let members = dom.disk_sets().members(set).to_vec();
            if members.is_empty() {
                return Err(invalid(format!(
                    "disk set '{set}' has no disks; add some with «do:diskset add {domain} DISK --set {set}»"
                )));
            }
            disks.iter().map(|d| members.contains(&d.target)).collect()
        } else {
            vec![true; disks.len()]
        };

        let mut planned: Vec<PlannedDisk> = Vec::new();
        for (i, d) in disks.iter().enumerate() {
            let taken: Vec<String> = planned.iter().filter_map(|p| p.file.clone()).collect();
            let p = if !chosen[i] {
                let why = if req.disks.is_empty() {
                    format!("not in disk set '{}'", req.disk_set.as_deref().unwrap_or(""))
                } else {
                    "not named in the request's disks".to_string()
                };
                PlannedDisk::no(d, why)
            } else {
                let host = HostFacts { overlay: &|| is_overlay(&d.target), exists };
                plan_disk(d, specs[i].as_ref(), &name, req, running, &taken, host).map_err(invalid)?
            };
            planned.push(p);
        }

        let memory = plan_memory(req, running, &planned, exists).map_err(invalid)?;
        check_distinct(&planned, &memory).map_err(invalid)?;
        if req.halt && !running {
            return Err(invalid("«halt» needs a running domain".to_string()));
        }
        if req.live && !matches!(memory, PlannedMemory::External { .. }) {
            return Err(invalid("«live» applies to memory saved in a file; add «memspec file=PATH»".to_string()));
        }
        if planned.iter().all(|p| p.snapshot == "no") && memory == PlannedMemory::No {
            let why: Vec<String> = planned.iter().map(|p| format!("{}: {}", p.target, p.reason)).collect();
            return Err(invalid(format!(
                "no disk would be taken ({})",
                if why.is_empty() { "the domain has no disks".to_string() } else { why.join("; ") }
            )));
        }
        Ok(SnapshotPlan { domain, name, description: req.description.clone(), running, memory, disks: planned })
    }

    /// The `<domainsnapshot>` the driver receives: every disk resolved.
    pub fn to_snapshot_xml(&self) -> SnapshotXml {
        SnapshotXml {
            name: Some(self.name.clone()),
            description: self.description.clone(),
            memory: Some(match &self.memory {
                PlannedMemory::No => SnapshotMemory { snapshot: "no".into(), file: None },
                PlannedMemory::Internal { .. } => SnapshotMemory { snapshot: "internal".into(), file: None },
                PlannedMemory::External { file } => {
                    SnapshotMemory { snapshot: "external".into(), file: Some(file.clone()) }
                }
            }),
            disks: self
                .disks
                .iter()
                .map(|p| SnapshotDisk {
                    name: p.target.clone(),
                    snapshot: Some(p.snapshot.clone()),
                    source_type: p.file.as_ref().map(|_| "file".to_string()),
                    source_file: p.file.clone(),
                    driver_type: p.format.clone(),
                    mirror_file: p.mirror.clone(),
                })
                .collect(),
            ..SnapshotXml::default()
        }
    }

    /// The plan in one line: `'s1' (vda: internal; vdb: external -> /i/b.s1; memory: no)`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .disks
            .iter()
            .filter(|p| p.snapshot != "no")
            .map(|p| match &p.file {
                Some(f) => format!("{}: {} -> {f}", p.target, p.snapshot),
                None => format!("{}: {}", p.target, p.snapshot),
            })
            .collect();
        parts.push(match &self.memory {
            PlannedMemory::No => "memory: no".to_string(),
            PlannedMemory::Internal { disk } => format!("memory: in {disk}"),
            PlannedMemory::External { file } => format!("memory: {file}"),
        });
        format!("'{}' ({})", self.name, parts.join("; "))
    }

    /// The plan in words, one line per disk.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "Snapshot '{}' of domain '{}' ({}):\n",
            self.name,
            self.domain,
            if self.running { "running" } else { "shut off" }
        );
        out.push_str(&match &self.memory {
            PlannedMemory::No => "  memory: not saved\n".to_string(),
            PlannedMemory::Internal { disk } => format!("  memory: internal, in disk {disk}\n"),
            PlannedMemory::External { file } => format!("  memory: external, file {file}\n"),
        });
        for p in &self.disks {
            let mut line = format!("  {}: {}", p.target, p.snapshot);
            match (&p.file, p.snapshot.as_str()) {
                (Some(f), _) => line.push_str(&format!(" -> {f} ({})", p.format.as_deref().unwrap_or("qcow2"))),
                (None, "external") => line.push_str(" -> an overlay the driver names"),
                _ => {}
            }
            if let Some(m) = &p.mirror {
                line.push_str(&format!(", mirrored to {m}"));
            }
            line.push_str(&format!(" ({})\n", p.reason));
            out.push_str(&line);
        }
        out
    }
}

impl PlannedDisk {
    fn no(d: &Disk, reason: impl Into<String>) -> PlannedDisk {
        PlannedDisk {
            target: d.target.clone(),
            snapshot: "no".into(),
            reason: reason.into(),
            file: None,
            format: None,
            mirror: None,
        }
    }
}

/// What planning one disk asks of the domain's host, each only when the answer decides.
struct HostFacts<'a> {
    /// Whether the disk's image is an overlay (has a backing image).
    overlay: &'a dyn Fn() -> bool,
    exists: Exists<'a>,
}

/// Plans one disk that was chosen to take part.
fn plan_disk(
    d: &Disk,
    spec: Option<&super::spec::DiskSpec>,
    name: &str,
    req: &SnapshotRequest,
    running: bool,
    taken: &[String],
    HostFacts { overlay, exists }: HostFacts,
) -> Result<PlannedDisk, String> {
    // A file or mirror without a mode means external, as libvirt reads it.
    let asked = spec.and_then(|s| {
        s.snapshot.clone().or_else(|| (s.file.is_some() || s.mirror.is_some()).then(|| "external".to_string()))
    });
    // Disks that never take part: an explicit request for them is an error, else a reason.
    let never = if d.transient {
        Some(format!(
            "disk {} is transient (<transient/>): its changes are discarded, so it never takes part in snapshots",
            d.target
        ))
    } else if d.source.path().is_none() && !matches!(d.source, luavirt_plugin_api::domain::DiskSource::Network { .. }) {
        Some(format!("disk {} has no local image", d.target))
    } else if d.readonly || d.device == "cdrom" {
        Some(format!("disk {} is read-only", d.target))
    } else {
        None
    };
    if let Some(why) = never {
        // Naming a disk in a diskspec asks for it, unless with snapshot=no.
        if spec.is_some() && asked.as_deref() != Some("no") {
            return Err(why);
        }
        let short = if d.transient {
            "transient"
        } else if d.readonly || d.device == "cdrom" {
            "read-only"
        } else {
            "no local image"
        };
        return Ok(PlannedDisk::no(d, short));
    }
    let format = d.format_or_raw().to_string();
    let default = d.snapshot.clone();
    let (mut mode, mut reason) = match (&asked, &default) {
        (Some(m), _) => (m.clone(), "as the diskspec asks".to_string()),
        (None, Some(m)) => (m.clone(), format!("its default snapshot='{m}'")),
        (None, None) if overlay() => (
            "external".to_string(),
            "its image is an overlay of an earlier external snapshot; external again keeps the chain mergeable"
                .to_string(),
        ),
        (None, None) if formats_with_internal_snapshots(&format) => {
            ("internal".to_string(), format!("{format} holds internal snapshots"))
        }
        (None, None) => ("external".to_string(), format!("{format} cannot hold internal snapshots")),
    };
    if mode == "internal" && !formats_with_internal_snapshots(&format) {
        if default.as_deref() == Some("no") {
            return Ok(PlannedDisk::no(
                d,
                format!("{format} cannot hold an internal snapshot, and its default is snapshot='no'"),
            ));
        }
        mode = "external".to_string();
        reason = format!("{format} cannot hold an internal snapshot, so it is taken externally");
    }
    let mut p = PlannedDisk {
        target: d.target.clone(),
        snapshot: mode.clone(),
        reason,
        file: None,
        format: None,
        mirror: None,
    };
    let spec_file = spec.and_then(|s| s.file.clone());
    let spec_mirror = spec.and_then(|s| s.mirror.clone());
    if mode != "external" {
        if spec_file.is_some() || spec_mirror.is_some() {
            return Err(format!("disk {}: file= and mirror= need snapshot=external (it is {mode})", d.target));
        }
        return Ok(p);
    }
    let local = d.source.path().is_some_and(|p| Path::new(p).is_absolute());
    let file = match (spec_file, d.source.path()) {
        (Some(f), _) => Some(f),
        (None, Some(path)) if local => Some(free_overlay(path, name, taken, req.reuse_external, exists)),
        // A datastore path or the like: the driver names the overlay as its hypervisor does.
        (None, Some(_)) => None,
        (None, None) => {
            return Err(format!(
                "disk {} has a network source; give its overlay with «diskspec {},file=PATH»",
                d.target, d.target
            ));
        }
    };
    if let Some(file) = &file {
        // Linux file names hold 255 bytes; a long snapshot name can make the default longer.
        let base = Path::new(file).file_name().map_or(0, |n| n.len());
        if base > MAX_SNAPSHOT_NAME_BYTES {
            return Err(format!(
                "disk {}: the overlay's file name in {file} is {base} bytes, and a file name may have at most {MAX_SNAPSHOT_NAME_BYTES}; use a shorter snapshot name, or give the overlay with «diskspec {},file=PATH»",
                d.target, d.target
            ));
        }
        if local && !Path::new(file).is_absolute() {
            return Err(format!("disk {}: overlay {file} must be an absolute path", d.target));
        }
        if Some(file.as_str()) == d.source.path() {
            return Err(format!("disk {}: the overlay {file} is the disk's own image", d.target));
        }
        if local {
            check_new_file(file, req.reuse_external, &format!("disk {}: overlay", d.target), exists)?;
        }
    }
    if let Some(m) = spec_mirror {
        if !running {
            return Err(format!("disk {}: a mirrored snapshot needs a running domain (mirror={m})", d.target));
        }
        check_new_file(&m, req.reuse_external, &format!("disk {}: mirror", d.target), exists)?;
        p.mirror = Some(m);
    }
    // The overlay's format: as asked, else qcow2 where luavirt names the file, else the
    // driver's choice.
    p.format = spec.and_then(|s| s.driver.clone()).or_else(|| file.as_ref().map(|_| "qcow2".to_string()));
    p.file = file;
    Ok(p)
}

/// A file the snapshot will create must not exist, unless reusing; a reused one must.
fn check_new_file(file: &str, reuse: bool, what: &str, exists: Exists) -> Result<(), String> {
    let exists = exists(file);
    match (exists, reuse) {
        (true, false) => {
            Err(format!("{what} {file} already exists; pass «reuse_external» to use it, or choose another file"))
        }
        (false, true) => Err(format!("{what} {file} does not exist, and «reuse_external» uses existing files")),
        _ => Ok(()),
    }
}

fn plan_memory(
    req: &SnapshotRequest,
    running: bool,
    disks: &[PlannedDisk],
    exists: Exists,
) -> Result<PlannedMemory, String> {
    let spec = req.memory.clone().unwrap_or_default();
    let asked = spec.snapshot.clone().or_else(|| spec.file.as_ref().map(|_| "external".to_string()));
    if req.disk_only {
        if asked.as_deref().is_some_and(|m| m != "no") {
            return Err("«disk_only» takes no memory; drop «memspec»".to_string());
        }
        return Ok(PlannedMemory::No);
    }
    if !running {
        if asked.as_deref().is_some_and(|m| m != "no") {
            return Err("the domain is shut off, so it has no memory to save; drop «memspec»".to_string());
        }
        return Ok(PlannedMemory::No);
    }
    match asked.as_deref() {
        Some("no") => Ok(PlannedMemory::No),
        Some("external") => {
            let file = spec.file.ok_or("external memory needs a file: «memspec file=PATH»")?;
            if !Path::new(&file).is_absolute() {
                return Err(format!("memory file {file} must be an absolute path"));
            }
            check_new_file(&file, false, "memory file", exists)?;
            Ok(PlannedMemory::External { file })
        }
        _ => match disks.iter().find(|p| p.snapshot == "internal") {
            Some(p) => Ok(PlannedMemory::Internal { disk: p.target.clone() }),
            None => Err("a running domain's memory goes into a qcow2 disk taken internally, and none is; add «memspec file=PATH», or «disk_only»".to_string()),
        },
    }
}

#[cfg(test)]
mod tests;
