//! Migration of an xl domain from one config folder to another (two `libxl:///FOLDER?state=DIR`
//! connections are two hosts), in the host's five phases and with its per-disk plan.
//!
//! - **Offline** (a shut-off domain): begin checks the domain and the plan and sends its domain
//!   XML with the config itself inside (`<xl:migration>` in `<metadata>`); prepare, at the
//!   destination, refuses a name, file or UUID taken there, then makes the copied disks'
//!   images (`qemu-img convert`, sparse) and the blank ones (`qemu-img create`); finish
//!   commits: the sidecar (disk sets and modes, not snapshot records), then the config, the
//!   source's with only those disks' targets rewritten; confirm removes the source's config
//!   and sidecar only when asked to («undefine_source»): xl configs are the user's files.
//! - **Live** (a domain Xen runs): Xen's migration stream (`xl migrate`) carries memory and
//!   device state, no disk content, so every disk must be shared. Prepare checks that Xen runs
//!   at the destination; perform runs `xl migrate` into the destination's
//!   `xl migrate-receive`; finish commits the config once Xen runs the domain there.
//!
//! Each side records what it does before its first step (`<state>/libxl/migrations/`, one
//! record per config path, kept by [`Record`]), so a kill at any step is settled by the next
//! call: the destination either has the whole domain or nothing (its config, written last, is
//! the commit); the source finishes removing what «undefine_source» began to remove.

mod b64;
mod dest;
mod source;

use crate::LibxlDriver;
use crate::dom::{Dom, DomDisk};
use crate::sidecar::SidecarFile;
use luavirt_plugin_api::fsutil::LockGuard;
use luavirt_plugin_api::intent::{Intent, IntentFile};
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::records::{MigrateAction, MigrateDisk};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// A migration's record on one side.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "operation")]
pub(crate) enum Record {
    /// The destination's side: what it makes, and the config it commits.
    #[serde(rename = "migrate-in")]
    In(Incoming),
    /// The source's side: the config and sidecar «undefine_source» removes.
    #[serde(rename = "migrate-out")]
    Out(Outgoing),
}

/// The destination's side of a migration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Incoming {
    /// The migration's id.
    pub id: String,
    /// The domain.
    pub name: String,
    /// The config it writes here (the commit).
    pub cfg: PathBuf,
    /// Its bytes.
    pub cfg_bytes: Vec<u8>,
    /// The sidecar, written before the config.
    pub sidecar: SidecarFile,
    /// Every image it makes (none existed when it began).
    pub files: Vec<String>,
    /// The guest arrives running (Xen's stream), not as files.
    pub live: bool,
}

/// The source's side of a migration: removing its config and sidecar («undefine_source»).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Outgoing {
    /// The migration's id.
    pub id: String,
    /// The domain.
    pub name: String,
    /// Its config.
    pub cfg: PathBuf,
    /// The config's bytes (removed only while they are these).
    pub cfg_bytes: Vec<u8>,
    /// The sidecar as it was (removed only while it is so).
    pub sidecar: SidecarFile,
}

impl Record {
    fn name(&self) -> &str {
        match self {
            Record::In(i) => &i.name,
            Record::Out(o) => &o.name,
        }
    }

    fn cfg(&self) -> &Path {
        match self {
            Record::In(i) => &i.cfg,
            Record::Out(o) => &o.cfg,
        }
    }

    /// The change in words.
    pub fn describe(&self) -> String {
        match self {
            Record::In(i) => format!("migration {} (arriving)", i.id),
            Record::Out(o) => format!("migration {} (leaving)", o.id),
        }
    }
}

/// Why a disk cannot be copied or made blank, if it cannot: its content is no image file
/// luavirt can read or recreate at the destination.
pub(crate) fn unmovable(name: &str, dom: &Dom, d: &DomDisk, action: MigrateAction) -> Option<String> {
    let disk = &d.spec.disk;
    let verb = if action == MigrateAction::Copy { "copied" } else { "made blank" };
    let target = d.target();
    let what = format!("Disk {target} of domain '{name}' ({})", dom.at(d));
    if let Some(s) = &disk.script {
        return Some(format!(
            "{what} is reached through the block script {s}, so its target is no image file luavirt can have {verb}: migrate it shared («shared_disks {target}»), with the destination reaching the same storage"
        ));
    }
    let Some(path) = disk.path() else {
        return Some(format!("{what} names no local image, so it cannot be {verb}"));
    };
    let block = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_block_device());
    if block || disk.backendtype == Some(crate::diskspec::Backend::Phy) {
        return Some(format!(
            "{what} is a block device on Xen's phy backend ({path}): luavirt makes copied and blank disks as image files, which the phy backend cannot serve; give the destination a device of its own with its storage tools (lvcreate, dd), or migrate the disk shared («shared_disks {target}»)"
        ));
    }
    None
}

/// Why a live migration cannot take disk `d` (copied or blank), in words.
fn live_refusal(name: &str, d: &MigrateDisk) -> DriverError {
    DriverError::new(
        ErrorCode::Unsupported,
        format!(
            "Domain '{name}' cannot migrate live with disk {} {}: Xen's live migration (xl migrate) carries the guest's memory and device state but no disk content, so every disk must be shared (the destination sees the same storage); share it («shared_disks {}»), or shut the domain down and migrate it offline to copy or blank disks (nothing was changed)",
            d.target,
            if d.action == MigrateAction::Copy { "copied" } else { "made blank" },
            d.target
        ),
    )
}

impl LibxlDriver {
    /// The record file of a migration of the config at `cfg`.
    fn migration_file(&self, cfg: &Path) -> IntentFile {
        IntentFile::new(self.state_path("migrations", cfg, "json"))
    }

    /// The migration recorded for the config at `cfg`, if any (writes nothing).
    pub(crate) fn migration_at(&self, cfg: &Path) -> DriverResult<Option<Intent<Record>>> {
        let file = self.migration_file(cfg);
        file.read().map_err(|e| {
            DriverError::new(
                ErrorCode::CorruptState,
                format!("{}: {e}; check the config and the images it names, then remove the record", cfg.display()),
            )
        })
    }

    /// The migrations recorded for domain `name` of this folder (by the config each writes or
    /// removes, which may not exist). Writes nothing.
    pub(crate) fn migrations_of(&self, name: &str) -> Vec<Intent<Record>> {
        let Ok(entries) = std::fs::read_dir(self.state.join("migrations")) else { return Vec::new() };
        let mut out: Vec<Intent<Record>> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| IntentFile::new(e.path()).read::<Record>().ok().flatten())
            .filter(|i| i.change.name() == name && i.change.cfg().parent() == Some(self.root.as_path()))
            .collect();
        out.sort_by_key(|i| i.started_at);
        out
    }

    /// Locks the config at `path` (which may not exist yet) against other luavirt processes.
    pub(crate) fn lock_config(&self, path: &Path) -> DriverResult<LockGuard> {
        let lock = self.state_path("locks", path, "lock");
        luavirt_plugin_api::fsutil::lock_exclusive(&lock).map_err(|e| DriverError::io("lock", &lock, e))
    }

    /// Settles the migration a killed call left on the config at `path`; the caller holds its
    /// lock. A migration whose process still runs is in progress and left alone.
    pub(crate) fn settle_migration_at(&self, path: &Path, call: &mut Call) -> DriverResult {
        let Some(intent) = self.migration_at(path)? else { return Ok(()) };
        if intent.owner_alive() {
            return Ok(());
        }
        let name = intent.change.name().to_string();
        let what = intent.change.describe();
        let outcome = match &intent.change {
            Record::In(incoming) => self.settle_incoming(incoming),
            Record::Out(outgoing) => self.settle_outgoing(outgoing, call),
        }
        .map_err(|e| {
            DriverError::new(
                e.code,
                format!(
                    "Domain '{name}': {what} was interrupted (pid {}) and cannot be finished or undone: {}; fix the cause and try again",
                    intent.pid, e.message
                ),
            )
        })?;
        self.migration_file(path).resume(intent.clone()).done()?;
        call.log(Level::Warning, &format!("domain '{name}': {what} was interrupted (pid {}); {outcome}", intent.pid));
        Ok(())
    }

    /// Settles every migration a killed call left on domain `name` (arriving or leaving,
    /// whose config may not exist), each under its config's lock.
    pub(crate) fn settle_migrations_of(&self, name: &str, call: &mut Call) -> DriverResult {
        for intent in self.migrations_of(name).into_iter().filter(|i| !i.owner_alive()) {
            let path = intent.change.cfg().to_path_buf();
            let _lock = self.lock_config(&path)?;
            self.settle_migration_at(&path, call)?;
        }
        Ok(())
    }

    /// Why domain `name` is as it is while a migration is recorded on it (for `domstate
    /// --reason`), if one is.
    pub(crate) fn migration_reason(&self, name: &str) -> Option<String> {
        let i = self.migrations_of(name).pop()?;
        let what = i.change.describe();
        Some(if i.owner_alive() {
            format!("{what} in progress (pid {})", i.pid)
        } else {
            format!("interrupted {what} (pid {}); the next change to the domain finishes or undoes it", i.pid)
        })
    }
}
