//! The per-disk plan of a migration, for every driver: which disks are copied (their content
//! moves), blank (recreated empty at the destination) or shared (the destination sees the same
//! storage), and where the copied and blank ones land.

use crate::error::{Error, Result};
use luavirt_plugin_api::domain::{DEFAULT_SET, Disk, DiskMode, DomainXml};
use luavirt_plugin_api::records::{BlockInfo, MigrateAction, MigrateDisk};
use serde::Serialize;
use std::path::Path;

/// What a caller asks of a migration.
#[derive(Clone, Debug, Default)]
pub struct MigrateRequest {
    /// Disks to copy, by target or source path.
    pub migrate_disks: Vec<String>,
    /// Copy the disks of this set (`--with-disk-set` alone names `selected`).
    pub disk_set: Option<String>,
    /// Disks recreated empty at the destination.
    pub blank_disks: Vec<String>,
    /// Disks the destination sees as they are (a transient disk is blank unless named here).
    pub shared_disks: Vec<String>,
    /// Copy every disk that is not shareable, read-only, empty or transient (libvirt's rule).
    pub copy_storage_all: bool,
    /// Where a copied or blank disk's image goes: target and path.
    pub disk_targets: Vec<(String, String)>,
    /// The folder for copied and blank disks' images not named in `disk_targets`.
    pub target_dir: Option<String>,
    /// Keep the guest running while its memory moves.
    pub live: bool,
    /// Define the domain at the destination (an offline migration always does).
    pub persistent: bool,
    /// Remove the source's definition once the destination has the domain.
    pub undefine_source: bool,
    /// Leave the domain paused at the destination.
    pub paused: bool,
    /// Speed limit in MiB/s.
    pub bandwidth: Option<u64>,
    /// Seconds the memory may take before the guest is paused so that it finishes.
    pub timeout: Option<u64>,
    /// Between machines: send the data through the ssh connections.
    pub tunnelled: bool,
    /// Between machines: where the destination listens on TCP (default: its host's name).
    pub listen_address: Option<String>,
    /// The TCP ports the destination may listen on (default 49152-49215).
    pub port_range: Option<(u16, u16)>,
}

/// One disk in a migration's plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedMigrateDisk {
    /// Its target.
    pub target: String,
    /// What happens to it.
    pub action: MigrateAction,
    /// Its image here.
    pub source: Option<String>,
    /// Its image at the destination (copy, blank).
    pub dest: Option<String>,
    /// Its format.
    pub format: String,
    /// Its virtual size in bytes (copy, blank).
    pub capacity: u64,
    /// Bytes its image uses here (copy).
    pub allocation: Option<u64>,
    /// Why it has that action, in words.
    pub why: String,
    #[serde(skip)]
    pub(super) cluster_size: Option<u64>,
}

impl PlannedMigrateDisk {
    /// The disk as the drivers' calls take it.
    pub(super) fn to_params(&self) -> MigrateDisk {
        MigrateDisk {
            target: self.target.clone(),
            action: self.action,
            path: self.dest.clone(),
            format: self.format.clone(),
            capacity: self.capacity,
            cluster_size: self.cluster_size,
            source: self.source.clone(),
        }
    }
}

fn invalid(domain: &str, m: String) -> Error {
    Error::InvalidArg(format!("Migration of domain '{domain}': {m}"))
}

/// Finds a disk by target or source path.
fn find<'a>(domain: &str, disks: &'a [Disk], name: &str) -> Result<&'a Disk> {
    let target = super::super::diskset::resolve(domain, disks, name)?;
    Ok(disks.iter().find(|d| d.target == target).expect("resolved"))
}

/// Whether the disk is thrown away at each stop (independent-nonpersistent).
fn is_transient(dom: &DomainXml, d: &Disk) -> bool {
    d.transient || dom.disk_mode(&d.target) == Some(DiskMode::IndependentNonpersistent)
}

/// Why a disk cannot be copied or blanked, if it cannot.
fn unmovable(d: &Disk, action: MigrateAction) -> Option<String> {
    let verb = if action == MigrateAction::Copy { "copied" } else { "made blank" };
    if d.source.path().is_none() {
        return Some(format!("disk {} has no image file ({}), so it cannot be {verb}", d.target, d.source.display()));
    }
    if d.readonly || d.device == "cdrom" {
        return Some(format!(
            "disk {} is read-only{}; the destination sees it as it is (leave it out, or name it in «shared_disks {}»)",
            d.target,
            if d.device == "cdrom" { " (a CD-ROM)" } else { "" },
            d.target
        ));
    }
    None
}

/// Resolves `req` over `dom`'s disks. `info` reads a disk's image details (format, size);
/// `default_dir` is where images go when neither `disk_targets` nor `target_dir` says.
pub(super) fn resolve(
    dom: &DomainXml,
    req: &MigrateRequest,
    info: impl Fn(&Disk) -> Result<BlockInfo>,
    default_dir: &Path,
) -> Result<Vec<PlannedMigrateDisk>> {
    let domain = dom.name();
    let disks = dom.disks();
    let mut chosen: Vec<Option<(MigrateAction, String)>> = vec![None; disks.len()];
    let mut choose = |d: &Disk, action: MigrateAction, why: String| -> Result<()> {
        let i = disks.iter().position(|x| x.target == d.target).expect("a disk of the domain");
        match &chosen[i] {
            Some((a, _)) if *a != action => Err(invalid(
                &domain,
                format!("disk {} is asked to be both {} and {}; name it once", d.target, a.as_str(), action.as_str()),
            )),
            _ => {
                chosen[i] = Some((action, why));
                Ok(())
            }
        }
    };
    for name in &req.migrate_disks {
        let d = find(&domain, &disks, name)?;
        if is_transient(dom, d) {
            return Err(invalid(
                &domain,
                format!(
                    "disk {} is transient (independent-nonpersistent): its changes are thrown away when the domain stops, so there is nothing to copy; it is made blank by default, or name it in «shared_disks {}»",
                    d.target, d.target
                ),
            ));
        }
        if let Some(m) = unmovable(d, MigrateAction::Copy) {
            return Err(invalid(&domain, m));
        }
        choose(d, MigrateAction::Copy, "named to be copied".to_string())?;
    }
    if let Some(set) = &req.disk_set {
        let members = dom.disk_sets().members(set).to_vec();
        if members.is_empty() {
            return Err(invalid(
                &domain,
                format!("disk set '{set}' has no disks; add some with «do:diskset add {domain} DISK --set {set}»"),
            ));
        }
        for m in &members {
            let d = find(&domain, &disks, m)?;
            if let Some(why) = unmovable(d, MigrateAction::Copy) {
                return Err(invalid(&domain, format!("{why}; it is in disk set '{set}'")));
            }
            choose(d, MigrateAction::Copy, format!("in disk set '{set}'"))?;
        }
    }
    for name in &req.blank_disks {
        let d = find(&domain, &disks, name)?;
        if let Some(m) = unmovable(d, MigrateAction::Blank) {
            return Err(invalid(&domain, m));
        }
        choose(d, MigrateAction::Blank, "named to be made blank".to_string())?;
    }
    for name in &req.shared_disks {
        let d = find(&domain, &disks, name)?;
        choose(d, MigrateAction::Shared, "named to be shared".to_string())?;
    }
    let mut plan = Vec::new();
    for (d, chosen) in disks.iter().zip(chosen) {
        let (action, why) = match chosen {
            Some(c) => c,
            None if is_transient(dom, d) && unmovable(d, MigrateAction::Blank).is_none() => {
                (MigrateAction::Blank, "transient: made blank by default".to_string())
            }
            None if req.copy_storage_all
                && !d.shareable
                && !is_transient(dom, d)
                && unmovable(d, MigrateAction::Copy).is_none() =>
            {
                (MigrateAction::Copy, "«copy_storage_all»".to_string())
            }
            None if req.copy_storage_all => (MigrateAction::Shared, "shareable, read-only or empty".to_string()),
            None => (MigrateAction::Shared, "not chosen to move".to_string()),
        };
        let source = d.source.path().map(str::to_string);
        let mut p = PlannedMigrateDisk {
            target: d.target.clone(),
            action,
            source: source.clone(),
            dest: None,
            format: d.format_or_raw().to_string(),
            capacity: 0,
            allocation: None,
            why,
            cluster_size: None,
        };
        if action != MigrateAction::Shared {
            let i = info(d)?;
            p.format = i.format;
            p.capacity = i.capacity;
            p.allocation = i.allocation;
            p.cluster_size = i.cluster_size;
            p.dest = Some(dest_path(&domain, req, d, source.as_deref().unwrap_or_default(), default_dir)?);
        }
        plan.push(p);
    }
    check_targets(&domain, req, &plan)?;
    Ok(plan)
}

/// Where a copied or blank disk's image goes.
fn dest_path(domain: &str, req: &MigrateRequest, d: &Disk, source: &str, default_dir: &Path) -> Result<String> {
    if let Some((_, path)) = req.disk_targets.iter().find(|(t, _)| *t == d.target) {
        return Ok(path.clone());
    }
    let file = Path::new(source).file_name().ok_or_else(|| {
        invalid(
            domain,
            format!("disk {}'s image {source} has no file name; give its «disk_target {}=PATH»", d.target, d.target),
        )
    })?;
    let dir = req.target_dir.as_deref().map(Path::new).unwrap_or(default_dir);
    Ok(dir.join(file).display().to_string())
}

/// Every named image path is absolute, distinct, for a disk that gets one, and not the source.
fn check_targets(domain: &str, req: &MigrateRequest, plan: &[PlannedMigrateDisk]) -> Result<()> {
    for (target, path) in &req.disk_targets {
        let Some(p) = plan.iter().find(|p| p.target == *target) else {
            return Err(invalid(domain, format!("«disk_target {target}=…» names no disk of the domain")));
        };
        if p.action == MigrateAction::Shared {
            return Err(invalid(
                domain,
                format!("«disk_target {target}={path}» names disk {target}, which is shared: nothing is made for it"),
            ));
        }
    }
    if let Some(dir) = &req.target_dir
        && !dir.starts_with('/')
    {
        return Err(invalid(domain, format!("the target folder {dir} must be an absolute path")));
    }
    let mut seen: Vec<&str> = Vec::new();
    for p in plan {
        let Some(dest) = p.dest.as_deref() else { continue };
        if !dest.starts_with('/') {
            return Err(invalid(domain, format!("disk {}'s destination {dest} must be an absolute path", p.target)));
        }
        if p.source.as_deref() == Some(dest) {
            return Err(invalid(
                domain,
                format!(
                    "disk {} would be {} onto its own image {dest}; give it another with «disk_target {}=PATH», or share it",
                    p.target,
                    if p.action == MigrateAction::Copy { "copied" } else { "made blank" },
                    p.target
                ),
            ));
        }
        if seen.contains(&dest) {
            return Err(invalid(domain, format!("two disks would land on {dest}; give one another «disk_target»")));
        }
        seen.push(dest);
    }
    Ok(())
}

/// The set `--with-disk-set` names when it is given no name.
pub const DEFAULT_MIGRATE_SET: &str = DEFAULT_SET;
