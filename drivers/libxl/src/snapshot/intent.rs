//! Snapshot changes of an xl domain, recorded before their first step, and how the next call
//! settles one that a killed luavirt left (see `luavirt_plugin_api::intent`).
//!
//! Every change makes its new images first, then switches: the config (it names the disks'
//! images), then the sidecar (the snapshot records); only then does it rewind images or
//! remove what nothing names. The record holds both files before and after, so the truth is
//! a comparison: files as after mean the switch happened (finish it); as before, that it did
//! not (undo: remove what was made). A delete writes into images before it switches, so it is
//! always finished. A config that is neither (edited meanwhile) is left alone, with an error.

use super::{Loaded, known_images, named_images};
use crate::LibxlDriver;
use crate::dom::Dom;
use crate::images;
use crate::sidecar::{Sidecar, SidecarFile};
use luavirt_plugin_api::fsutil::write_atomic;
use luavirt_plugin_api::intent::{Intent, IntentFile, Pending};
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An overlay a change makes: its file, on `base` of qemu-img format `base_format`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NewOverlay {
    pub file: String,
    pub base: String,
    pub base_format: String,
}

/// `top` merged into `base` (its backing image) for disk `disk`; what built on `top` is
/// rebased onto `base`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Merge {
    pub disk: String,
    pub top: String,
    pub base: String,
    pub base_format: String,
    pub rebase: Vec<String>,
}

/// A snapshot change of one domain.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "operation")]
pub(crate) enum Change {
    /// `snapshot-create`: internal snapshots and overlays made, then the switch.
    #[serde(rename = "snapshot-create")]
    Create {
        files: Files,
        /// Overlays made (not reused ones).
        overlays: Vec<NewOverlay>,
        /// Images given an internal snapshot.
        tags: Vec<String>,
    },
    /// `snapshot-revert`: fresh overlays, the switch, internal snapshots applied, the
    /// discarded images removed.
    #[serde(rename = "snapshot-revert")]
    Revert { files: Files, overlays: Vec<NewOverlay>, rewind: Vec<String>, discard: Vec<String> },
    /// `snapshot-delete`: internal snapshots deleted and overlays merged, the switch, then
    /// what only the snapshot needed removed (merged overlays, its point-in-time images).
    #[serde(rename = "snapshot-delete")]
    Delete { files: Files, untag: Vec<String>, merges: Vec<Merge>, removed: Vec<String> },
}

/// The config and the sidecar of a change, before and after.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Files {
    /// The snapshot.
    pub snapshot: String,
    /// The config.
    pub cfg: PathBuf,
    /// Its bytes before.
    pub cfg_before: Vec<u8>,
    /// Its bytes after.
    pub cfg_after: Vec<u8>,
    /// The sidecar before.
    pub sidecar_before: SidecarFile,
    /// The sidecar after.
    pub sidecar_after: SidecarFile,
}

/// Where the files are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    /// As before the change.
    Before,
    /// As after it.
    After,
    /// The change writes neither file (an internal snapshot without a record, say).
    Same,
    /// Neither: edited meanwhile.
    Neither,
}

/// The steps of a delete, in order.
pub(crate) const DELETE_PHASES: &[&str] = &["begun", "merged", "switched"];

impl Change {
    fn files(&self) -> &Files {
        match self {
            Change::Create { files, .. } | Change::Revert { files, .. } | Change::Delete { files, .. } => files,
        }
    }

    /// The change in words.
    pub fn describe(&self) -> String {
        let s = &self.files().snapshot;
        match self {
            Change::Create { .. } => format!("snapshot-create of '{s}'"),
            Change::Revert { .. } => format!("snapshot-revert to '{s}'"),
            Change::Delete { .. } => format!("snapshot-delete of '{s}'"),
        }
    }
}

impl Files {
    /// The files of `l` now, ready to describe a change to `cfg_after` and `sidecar`.
    pub fn of(l: &Loaded, snapshot: &str, cfg_after: Vec<u8>, sidecar: &Sidecar) -> DriverResult<Files> {
        let after = Dom::from_bytes(&l.dom.path, &cfg_after)?;
        let path = l.dom.sidecar_path();
        Ok(Files {
            snapshot: snapshot.to_string(),
            cfg: l.dom.path.clone(),
            cfg_before: l.dom.cfg.bytes().to_vec(),
            cfg_after,
            // The file as it is (written by hand, it may differ from how luavirt writes it).
            sidecar_before: SidecarFile::current(&path)?,
            sidecar_after: SidecarFile::of(&path, sidecar, &l.targets(&after)),
        })
    }

    /// Where the files are now.
    pub fn where_now(&self) -> DriverResult<Switch> {
        let cfg = std::fs::read(&self.cfg).map_err(|e| DriverError::io("read", &self.cfg, e))?;
        let sidecar = SidecarFile::current(&self.sidecar_after.path)?;
        Ok(if self.cfg_before != self.cfg_after {
            if cfg == self.cfg_after {
                Switch::After
            } else if cfg == self.cfg_before {
                Switch::Before
            } else {
                Switch::Neither
            }
        } else if cfg != self.cfg_before {
            Switch::Neither
        } else if self.sidecar_before.bytes != self.sidecar_after.bytes {
            if sidecar.bytes == self.sidecar_after.bytes {
                Switch::After
            } else if sidecar.bytes == self.sidecar_before.bytes {
                Switch::Before
            } else {
                Switch::Neither
            }
        } else {
            Switch::Same
        })
    }

    /// The switch: the config, then the sidecar (each skipped when written already). The
    /// config must still be as it was read (the user may edit it: xl takes no lock).
    pub fn switch(&self) -> DriverResult {
        let now = std::fs::read(&self.cfg).map_err(|e| DriverError::io("read", &self.cfg, e))?;
        if now != self.cfg_after {
            if now != self.cfg_before {
                return Err(self.changed_meanwhile());
            }
            write_atomic(&self.cfg, &self.cfg_after).map_err(|e| DriverError::io("write", &self.cfg, e))?;
        }
        luavirt_plugin_api::failpoint::hit("libxl-snapshot:config-written");
        self.sidecar_after.write()
    }

    /// Puts the config back as it was (after a switch that failed at the sidecar).
    pub fn unswitch(&self) -> DriverResult {
        write_atomic(&self.cfg, &self.cfg_before).map_err(|e| DriverError::io("write", &self.cfg, e))
    }

    pub fn changed_meanwhile(&self) -> DriverError {
        DriverError::new(
            ErrorCode::Busy,
            format!(
                "{} changed since luavirt read it for snapshot '{}' (edited by hand?); luavirt leaves it as it is",
                self.cfg.display(),
                self.snapshot
            ),
        )
    }
}

/// Removes the overlays `made`, and internal snapshot `tag` from `tagged`, as far as they
/// exist; failures are logged (there is nothing more to undo).
pub(crate) fn undo(snapshot: &str, made: &[NewOverlay], tagged: &[String], call: &mut Call) {
    for o in made {
        if let Err(e) = std::fs::remove_file(&o.file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            call.log(Level::Error, &format!("undoing snapshot '{snapshot}': cannot remove {}: {e}", o.file));
        }
    }
    for image in tagged {
        if images::tags(image).is_ok_and(|t| t.iter().any(|t| t == snapshot))
            && let Err(e) = images::tag("-d", snapshot, image)
        {
            call.log(Level::Error, &format!("undoing snapshot '{snapshot}': {}", e.message));
        }
    }
}

impl LibxlDriver {
    fn intents(&self, cfg: &Path) -> IntentFile {
        IntentFile::new(self.state_path("intents", cfg, "json"))
    }

    /// Records that `change` of the config at `cfg` begins; the caller holds its lock.
    pub(crate) fn begin(&self, cfg: &Path, change: Change) -> DriverResult<Pending<Change>> {
        self.intents(cfg).begin(change)
    }

    /// The change to the config at `cfg` that a killed call left, if any (writes nothing).
    pub(crate) fn pending_change(&self, cfg: &Path) -> DriverResult<Option<Intent<Change>>> {
        self.intents(cfg).read().map_err(|e| {
            DriverError::new(
                ErrorCode::CorruptState,
                format!("{}: {e}; check the config and its sidecar, then remove the record", cfg.display()),
            )
        })
    }

    /// Settles the change a killed call left on the config at `cfg`; the caller holds its lock.
    pub(crate) fn reconcile_domain(&self, name: &str, cfg: &Path, call: &mut Call) -> DriverResult {
        let Some(intent) = self.pending_change(cfg)? else { return Ok(()) };
        if intent.owner_alive() {
            return Ok(());
        }
        let what = intent.change.describe();
        let outcome = self.settle(name, &intent, call).map_err(|e| {
            DriverError::new(
                e.code,
                format!(
                    "Domain '{name}': {what} was interrupted (pid {}) and cannot be finished or undone: {}; fix the cause and try again",
                    intent.pid, e.message
                ),
            )
        })?;
        self.intents(cfg).resume(intent.clone()).done()?;
        call.log(Level::Warning, &format!("domain '{name}': {what} was interrupted (pid {}); {outcome}", intent.pid));
        Ok(())
    }

    fn settle(&self, name: &str, intent: &Intent<Change>, call: &mut Call) -> DriverResult<String> {
        let f = intent.change.files();
        let at = f.where_now()?;
        if at == Switch::Neither {
            return Err(f.changed_meanwhile());
        }
        match &intent.change {
            Change::Create { overlays, tags, .. } => {
                let made = overlays.iter().all(|o| Path::new(&o.file).is_file())
                    && tags.iter().all(|i| images::tags(i).is_ok_and(|t| t.contains(&f.snapshot)));
                if at == Switch::After || (at == Switch::Same && made) {
                    f.switch()?;
                    Ok(format!("its files had been switched, so it was finished: snapshot '{}' is taken", f.snapshot))
                } else {
                    undo(&f.snapshot, overlays, tags, call);
                    Ok(format!(
                        "the config had not been switched, so it was undone: nothing of snapshot '{}' is kept",
                        f.snapshot
                    ))
                }
            }
            Change::Revert { overlays, rewind, discard, .. } => {
                if at == Switch::Before {
                    undo(&f.snapshot, overlays, &[], call);
                    return Ok(
                        "the config had not been switched, so it was undone: the domain is as it was".to_string()
                    );
                }
                f.switch()?;
                for image in rewind {
                    images::tag("-a", &f.snapshot, image)?;
                }
                self.remove_unneeded(name, f, discard, call)?;
                Ok(format!("it was finished: the domain is at snapshot '{}' and shut off", f.snapshot))
            }
            Change::Delete { untag, merges, removed, .. } => {
                if !intent.reached("switched", super::intent::DELETE_PHASES) {
                    super::delete::merge_all(&f.snapshot, untag, merges, &mut false)?;
                    f.switch()?;
                }
                self.remove_unneeded(name, f, removed, call)?;
                Ok(format!("it was finished: snapshot '{}' is deleted and its images merged", f.snapshot))
            }
        }
    }

    /// Removes each of `files` that no image the config or a snapshot's point in time stands
    /// on (through its whole backing chain) needs, and on which no image they know builds
    /// (one that cannot be removed is left, with a warning).
    pub(crate) fn remove_unneeded(&self, name: &str, f: &Files, files: &[String], call: &mut Call) -> DriverResult {
        let dom = Dom::load(&f.cfg)?;
        let sidecar = Sidecar::read(&dom.sidecar_path())?;
        let in_use: std::collections::BTreeSet<String> =
            named_images(name, &dom, &sidecar.snapshots).iter().flat_map(|i| images::chain_files(i)).collect();
        let known = known_images(name, &dom, &sidecar.snapshots);
        for file in files.iter().filter(|p| !in_use.contains(*p) && Path::new(p).is_file()) {
            if known.iter().any(|k| k != file && images::backing_of(k).as_deref() == Some(file.as_str())) {
                continue;
            }
            if let Err(e) = std::fs::remove_file(file) {
                call.log(Level::Warning, &format!("domain '{name}': could not remove {file}: {e}"));
            }
        }
        Ok(())
    }
}
