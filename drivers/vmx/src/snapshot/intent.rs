//! Snapshot changes of a `.vmx` domain, recorded before their first step, and how the next
//! call settles one that a killed luavirt left (see `luavirt_plugin_api::intent`).
//!
//! Every change writes new deltas first, then the `.vmx` (which is the switch: it names the
//! disks' files), then the `.vmsd`, and only then removes files nothing names any more. The
//! record holds both files' bytes before and after, so the truth is a comparison: a `.vmx`
//! as it was after means the switch happened (finish: the `.vmsd`, then the removals); as it
//! was before means it did not (undo: remove the new deltas). A delete's merges have already
//! written into the snapshot's images, so a delete is always finished.

use super::delete::{Merge, merge};
use super::{Loaded, chain};
use crate::VmxDriver;
use crate::datastore::Datastores;
use crate::vm::Vm;
use crate::vmsd::Vmsd;
use luavirt_plugin_api::fsutil::write_atomic;
use luavirt_plugin_api::intent::{Intent, IntentFile, Pending};
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A snapshot change of one VM.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "operation")]
pub(crate) enum Change {
    /// `snapshot-create`: new deltas, the `.vmx` on them, the snapshot in the `.vmsd`.
    #[serde(rename = "snapshot-create")]
    Create(Files),
    /// `snapshot-revert`: fresh deltas, the `.vmx` on them, the discarded deltas removed.
    #[serde(rename = "snapshot-revert")]
    Revert(Files),
    /// `snapshot-delete`: deltas merged down, both files updated, the merged deltas removed.
    #[serde(rename = "snapshot-delete")]
    Delete {
        /// The files.
        files: Files,
        /// The merges, each repeated safely.
        merges: Vec<Merge>,
    },
}

/// The `.vmx` and `.vmsd` of a change, before and after, and the files it makes and removes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Files {
    /// The snapshot.
    pub snapshot: String,
    /// The `.vmx`.
    pub vmx: PathBuf,
    /// Its bytes before.
    pub vmx_before: Vec<u8>,
    /// Its bytes after.
    pub vmx_after: Vec<u8>,
    /// The `.vmsd`.
    pub vmsd: PathBuf,
    /// Its bytes after.
    pub vmsd_after: Vec<u8>,
    /// New deltas.
    pub made: Vec<PathBuf>,
    /// Files removed once nothing names them.
    pub removed: Vec<PathBuf>,
}

impl Change {
    fn files(&self) -> &Files {
        match self {
            Change::Create(f) | Change::Revert(f) | Change::Delete { files: f, .. } => f,
        }
    }

    pub fn describe(&self) -> String {
        let s = &self.files().snapshot;
        match self {
            Change::Create(_) => format!("snapshot-create of '{s}'"),
            Change::Revert(_) => format!("snapshot-revert to '{s}'"),
            Change::Delete { .. } => format!("snapshot-delete of '{s}'"),
        }
    }
}

impl Files {
    /// The switch: the `.vmx`, then the `.vmsd` (each skipped when written already).
    pub fn switch(&self) -> DriverResult {
        let now = std::fs::read(&self.vmx).map_err(|e| DriverError::io("read", &self.vmx, e))?;
        if now != self.vmx_after {
            write_atomic(&self.vmx, &self.vmx_after).map_err(|e| DriverError::io("write", &self.vmx, e))?;
        }
        if std::fs::read(&self.vmsd).ok().as_deref() != Some(self.vmsd_after.as_slice()) {
            write_atomic(&self.vmsd, &self.vmsd_after).map_err(|e| DriverError::io("write", &self.vmsd, e))?;
        }
        Ok(())
    }
}

impl VmxDriver {
    /// Where the record of a change to the VM at `vmx` is kept.
    fn intents(&self, vmx: &Path) -> IntentFile {
        IntentFile::new(self.state_path("intents", vmx, "json"))
    }

    /// Records that `change` begins; the caller holds the VM's lock.
    pub(crate) fn begin(&self, change: Change) -> DriverResult<Pending<Change>> {
        self.intents(&change.files().vmx.clone()).begin(change)
    }

    /// The change to the VM at `vmx` that a killed call left, if any (reading writes nothing).
    pub(crate) fn pending_change(&self, vmx: &Path) -> DriverResult<Option<Intent<Change>>> {
        self.intents(vmx).read().map_err(|e| {
            DriverError::new(
                ErrorCode::CorruptState,
                format!("{}: {e}; check the VM's .vmx and .vmsd, then remove the record", vmx.display()),
            )
        })
    }

    /// Settles the change a killed call left on the VM at `vmx`; the caller holds its lock.
    pub(crate) fn reconcile_vm(&self, name: &str, vmx: &Path, call: &mut Call) -> DriverResult {
        let Some(intent) = self.pending_change(vmx)? else { return Ok(()) };
        if intent.owner_alive() {
            return Ok(());
        }
        let what = intent.change.describe();
        let outcome = self.settle(&intent.change, call).map_err(|e| {
            DriverError::new(
                e.code,
                format!(
                    "Domain '{name}': {what} was interrupted (pid {}) and cannot be finished or undone: {}; fix the cause and try again",
                    intent.pid, e.message
                ),
            )
        })?;
        self.intents(vmx).resume(intent.clone()).done()?;
        call.log(Level::Warning, &format!("domain '{name}': {what} was interrupted (pid {}); {outcome}", intent.pid));
        Ok(())
    }

    fn settle(&self, change: &Change, call: &mut Call) -> DriverResult<String> {
        let f = change.files();
        let now = std::fs::read(&f.vmx).map_err(|e| DriverError::io("read", &f.vmx, e))?;
        if let Change::Delete { merges, .. } = change {
            if now != f.vmx_after {
                if now != f.vmx_before {
                    return Err(changed_meanwhile(f));
                }
                for m in merges {
                    if m.top.is_file() {
                        merge(m).map_err(|failed| failed.error)?;
                    }
                }
            }
            f.switch()?;
            self.remove_unnamed(f, &f.removed, call)?;
            return Ok(format!("it was finished: snapshot '{}' is deleted and its deltas merged", f.snapshot));
        }
        if now == f.vmx_after {
            f.switch()?;
            self.remove_unnamed(f, &f.removed, call)?;
            Ok("the .vmx had been switched, so it was finished".to_string())
        } else if now == f.vmx_before {
            self.remove_unnamed(f, &f.made, call)?;
            Ok("the .vmx had not been switched, so it was undone: its new deltas are removed".to_string())
        } else {
            Err(changed_meanwhile(f))
        }
    }

    /// Removes each of `files` that neither the `.vmx` nor the `.vmsd` names, directly or
    /// through a chain (one that cannot be removed is left, with a warning).
    pub(crate) fn remove_unnamed(&self, f: &Files, files: &[PathBuf], call: &mut Call) -> DriverResult {
        let vm = Vm::load(&f.vmx)?;
        let named = named_files(&vm, &self.stores)?;
        for p in files.iter().filter(|p| !named.contains(*p)) {
            if let Err(e) = std::fs::remove_file(p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                call.log(Level::Warning, &format!("{}: could not remove {}: {e}", f.vmx.display(), p.display()));
            }
        }
        Ok(())
    }
}

/// The settle cannot tell what happened: the `.vmx` is neither as before nor as after.
fn changed_meanwhile(f: &Files) -> DriverError {
    DriverError::new(
        ErrorCode::Busy,
        format!(
            "{} changed since the interrupted change began (the VMware client?); luavirt leaves it as it is",
            f.vmx.display()
        ),
    )
}

/// Every file the `.vmx` (its disks' chains) and the `.vmsd` (its snapshots' images) name.
fn named_files(vm: &Vm, ds: &Datastores) -> DriverResult<Vec<PathBuf>> {
    let devices = vm.devices()?;
    let vmsd_path = Vmsd::path_for(&vm.path);
    let vmsd = match std::fs::read(&vmsd_path) {
        Ok(b) => Vmsd::parse(&b, &vmsd_path).map_err(crate::vm::vmx_error)?,
        Err(_) => Vmsd::empty(&vmsd_path, vm.vmx.encoding(), &vm.vmx.usual_ending()),
    };
    let mut tops: Vec<PathBuf> = devices
        .iter()
        .filter_map(|d| match &d.medium {
            crate::devices::Medium::Disk(f) => ds.resolve(vm.dir(), f).ok(),
            _ => None,
        })
        .collect();
    tops.extend(vmsd.snapshots().iter().flat_map(|s| &s.disks).filter_map(|d| ds.resolve(vm.dir(), &d.file).ok()));
    let mut named = Vec::new();
    for t in tops {
        match chain::read(ds, &t, "a named image") {
            Ok(images) => named.extend(images.into_iter().map(|i| i.path)),
            Err(_) => named.push(t),
        }
    }
    Ok(named)
}

impl Loaded {
    /// The `.vmx` and `.vmsd` of this VM as they are now, ready to describe a change.
    pub(crate) fn files(&self, snapshot: &str, vmx_after: Vec<u8>, vmsd: &Vmsd) -> Files {
        Files {
            snapshot: snapshot.to_string(),
            vmx: self.vm.path.clone(),
            vmx_before: self.vm.bytes.clone(),
            vmx_after,
            vmsd: vmsd.path().to_path_buf(),
            vmsd_after: vmsd.to_bytes(),
            made: Vec::new(),
            removed: Vec::new(),
        }
    }
}
