//! The QEMU driver's multi-step changes, as recorded before their first step (see
//! `luavirt_plugin_api::intent`), and the lock every change takes: whoever takes a domain's
//! lock first finishes or undoes the change a killed call left (`crate::reconcile`).
//!
//! Each change's steps follow one order: record the intent, create new files (with names no
//! other file has), switch (QEMU's block graph, then the definition, then the snapshot
//! metadata), and only then delete what nothing names any more.

use crate::QemuDriver;
use crate::lifecycle::StartOptions;
use crate::state::DomainLock;
use luavirt_plugin_api::intent::Intent;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};

/// A change to one domain that takes several steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "kebab-case")]
pub(crate) enum Change {
    /// `start`: QEMU is brought up as `options` say.
    Start(StartOptions),
    /// `snapshot-create`.
    SnapshotCreate(crate::snapshot::create::Plan),
    /// `snapshot-revert`.
    SnapshotRevert(crate::snapshot::revert::Plan),
    /// `snapshot-delete` (merging images away).
    SnapshotDelete(crate::snapshot::delete::Plan),
    /// `snapshot-delete --mirror-pivot|--mirror-abort`.
    MirrorEnd(crate::snapshot::delete::MirrorEnd),
    /// A block job that switches the disk to another image (copy or active commit pivot).
    Pivot(crate::blockjob::Pivot),
    /// A copy or commit waited for and then ended (pivot, finish): the job is undone if the
    /// call does not see it through.
    BlockJob(crate::blockjob::Ending),
    /// A migration leaving (the source's side).
    MigrateOut(crate::migrate::Outgoing),
    /// A migration arriving (the destination's side).
    MigrateIn(crate::migrate::Incoming),
    /// A disk plugged into the running domain and added to its definition.
    AttachDisk(crate::hotplug::Hotplug),
    /// A disk unplugged from the running domain and removed from its definition.
    DetachDisk(crate::hotplug::Hotplug),
}

impl Change {
    /// What it is, in a few words, for messages.
    pub fn describe(&self) -> String {
        match self {
            Change::Start(_) => "start".to_string(),
            Change::SnapshotCreate(p) => format!("snapshot-create of '{}'", p.snapshot),
            Change::SnapshotRevert(p) => format!("snapshot-revert to '{}'", p.snapshot),
            Change::SnapshotDelete(p) => format!("snapshot-delete of '{}'", p.snapshot),
            Change::MirrorEnd(m) => format!("the end of the mirrors of snapshot '{}'", m.snapshot),
            Change::Pivot(p) => match &p.to {
                Some(to) => format!("the pivot of disk {} to {to}", p.disk),
                None => format!("the pivot of disk {}", p.disk),
            },
            Change::BlockJob(e) => format!("the block {} of disk {} to {}", e.kind, e.disk, e.target),
            Change::MigrateOut(m) => format!("migration {} (leaving)", m.id),
            Change::MigrateIn(m) => format!("migration {} (arriving)", m.id),
            Change::AttachDisk(h) => format!("the attach of disk {}", h.target),
            Change::DetachDisk(h) => format!("the detach of disk {}", h.target),
        }
    }
}

/// A change to a domain under way.
pub(crate) type Pending = luavirt_plugin_api::intent::Pending<Change>;

impl QemuDriver {
    /// Takes the lock of domain `name` for a change, after finishing or undoing whatever
    /// change a killed call left. A change still in progress (a block job waited for by a
    /// live process) makes it a clear error.
    pub(crate) fn lock_domain(&self, name: &str, call: &mut Call) -> DriverResult<DomainLock> {
        let lock = self.lock_beside(name, call)?;
        if let Some(i) = self.pending_change(name)? {
            return Err(DriverError::new(
                ErrorCode::Busy,
                format!(
                    "Domain '{name}' has {} in progress (pid {}); wait for it to finish, or end it (abort the block job)",
                    i.change.describe(),
                    i.pid
                ),
            ));
        }
        Ok(lock)
    }

    /// As [`QemuDriver::lock_domain`], for a change that may go on beside one in progress
    /// (a definition change, ending a block job).
    pub(crate) fn lock_beside(&self, name: &str, call: &mut Call) -> DriverResult<DomainLock> {
        let lock = self.state.lock(name)?;
        self.reconcile_locked(name, call)?;
        Ok(lock)
    }

    /// Records that `change` to `name` begins; the caller holds the domain's lock.
    pub(crate) fn begin(&self, name: &str, change: Change) -> DriverResult<Pending> {
        self.state.intents(name)?.begin(change)
    }

    /// The change to `name` left unfinished, if any (reading writes nothing).
    pub(crate) fn pending_change(&self, name: &str) -> DriverResult<Option<Intent<Change>>> {
        let file = self.state.intents(name)?;
        file.read().map_err(|e| {
            DriverError::new(
                ErrorCode::CorruptState,
                format!(
                    "Domain '{name}': {e}; an interrupted change cannot be finished. Check the domain's disks against its definition, then remove the file"
                ),
            )
        })
    }

    /// The pending change of `name` as a handle, to move on or finish.
    pub(crate) fn resume_pending(&self, name: &str, intent: Intent<Change>) -> DriverResult<Pending> {
        Ok(self.state.intents(name)?.resume(intent))
    }
}
