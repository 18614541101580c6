//! Finishing or undoing a change that a killed call left half-way, from the truth: QEMU's
//! block graph, jobs and run status over QMP while it runs, the image files when it does not.
//! Run by every call that takes a domain's lock to change it, before it reads anything; each
//! change's own module knows its steps and settles it; this one dispatches and reports.

use crate::QemuDriver;
use crate::intent::Change;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::{DriverError, time};

impl QemuDriver {
    /// Settles whatever `name` was left with; the caller holds the domain's lock.
    pub(crate) fn reconcile_locked(&self, name: &str, call: &mut Call) -> DriverResult {
        // A QEMU that ended without luavirt leaves its run folder (transient overlays too).
        if let Some(rs) = self.state.read_run_state(name)?
            && !crate::process::is_alive(rs.pid, rs.start_time)
        {
            self.state.clear_run(name)?;
        }
        for dir in self.state.folders() {
            luavirt_plugin_api::fsutil::remove_stale_temporaries(&dir);
        }
        let Some(intent) = self.pending_change(name)? else { return Ok(()) };
        if intent.owner_alive() {
            return Ok(()); // in progress: its process is waiting for a block job
        }
        let what = intent.change.describe();
        let settled = match &intent.change {
            Change::Start(_) => self.settle_start(name, intent.phase == "started", call),
            Change::SnapshotCreate(plan) => self.settle_create(name, plan, &intent.phase, call),
            Change::SnapshotRevert(plan) => self.settle_revert(name, plan, &intent.phase, call),
            Change::SnapshotDelete(plan) => self.settle_delete(name, plan, &intent.phase, call),
            Change::MirrorEnd(m) => self.settle_mirror_end(name, m, call),
            Change::Pivot(p) => self.settle_pivot(name, p, call),
            Change::BlockJob(e) => self.settle_ending(name, e, &intent.phase, call),
            Change::MigrateOut(m) => self.settle_outgoing(name, m, &intent.phase, call),
            Change::MigrateIn(m) => self.settle_incoming(name, m, &intent.phase, call),
            Change::AttachDisk(h) => self.settle_attach(name, h, call),
            Change::DetachDisk(h) => self.settle_detach(name, h, call),
        };
        let outcome = settled.map_err(|e| {
            DriverError::new(
                e.code,
                format!(
                    "Domain '{name}': {what} was interrupted (pid {}, at {}) and cannot be finished or undone: {}; fix the cause and try again",
                    intent.pid,
                    time::format_local(intent.started_at),
                    e.message
                ),
            )
        })?;
        self.resume_pending(name, intent.clone())?.done()?;
        call.log(
            Level::Warning,
            &format!(
                "domain '{name}': {what} was interrupted (pid {}, at {}); {outcome}",
                intent.pid,
                time::format_local(intent.started_at)
            ),
        );
        Ok(())
    }
}
