//! The typed client of one driver connection: one safe method per vtable function, taking and
//! returning Rust types (the records of `luavirt_plugin_api::records`, flag structs). It is
//! the only code that calls through the vtable with raw pointers; the host API above it has
//! no `unsafe`.

use super::LoadedDriver;
use super::call::{CallOptions, CallOutput};
use crate::error::{Error, Result};
use luavirt_plugin_api::abi::{self, LvCall, LvParam, LvStr};
use luavirt_plugin_api::records::{
    BlockInfo, BlockJob, CommitParams, CopyParams, Defined, DomainStatus, DomainSummary, MigrateArrived,
    MigrateEndpoints, MigrateParams, MigrateSent, PullParams, Record, SnapshotCurrent,
};
use luavirt_plugin_api::{ErrorCode, Uri};
use std::ffi::c_void;
use std::sync::Arc;

/// How a snapshot is taken.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotCreateFlags {
    /// Keep no metadata.
    pub no_metadata: bool,
    /// Stop the domain afterwards.
    pub halt: bool,
    /// Disks only.
    pub disk_only: bool,
    /// Overlays exist already.
    pub reuse_external: bool,
    /// Keep the guest running while memory is saved.
    pub live: bool,
    /// A save: the memory file starts with luavirt's save header.
    pub save: bool,
}

/// How a revert leaves the domain.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotRevertFlags {
    /// Running.
    pub running: bool,
    /// Paused.
    pub paused: bool,
    /// virsh's `--force`.
    pub force: bool,
}

/// What a delete does.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotDeleteFlags {
    /// Only the metadata.
    pub metadata_only: bool,
    /// End mirrors on the mirror.
    pub mirror_pivot: bool,
    /// End mirrors on the source.
    pub mirror_abort: bool,
}

/// What a block job call does after starting the job.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockJobFlags {
    /// Wait until ready or done.
    pub wait: bool,
    /// Then switch the disk to the new image.
    pub pivot: bool,
    /// Then end a copy on its source.
    pub finish: bool,
    /// A copy of the top image only.
    pub shallow: bool,
    /// The copy's destination exists.
    pub reuse_external: bool,
}

/// What a migration call is asked to do.
#[derive(Clone, Copy, Debug, Default)]
pub struct MigrateFlags {
    /// The domain keeps running while its memory moves.
    pub live: bool,
    /// Defined at the destination.
    pub persist: bool,
    /// The source's definition goes once the destination has the domain.
    pub undefine_source: bool,
    /// Paused at the destination.
    pub paused: bool,
    /// A shut-off domain: definition and disks only.
    pub offline: bool,
    /// Finish and confirm: the migration failed; undo.
    pub failed: bool,
}

impl MigrateFlags {
    fn bits(self) -> u32 {
        bits(&[
            (self.live, abi::LV_MIGRATE_LIVE),
            (self.persist, abi::LV_MIGRATE_PERSIST_DEST),
            (self.undefine_source, abi::LV_MIGRATE_UNDEFINE_SOURCE),
            (self.paused, abi::LV_MIGRATE_PAUSED),
            (self.offline, abi::LV_MIGRATE_OFFLINE),
            (self.failed, abi::LV_MIGRATE_FAILED),
        ])
    }
}

/// What a device change affects (libvirt's `--live` and `--config`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Affect {
    /// The running domain.
    pub live: bool,
    /// The persistent definition.
    pub config: bool,
}

impl Affect {
    fn bits(self) -> u32 {
        bits(&[(self.live, abi::LV_AFFECT_LIVE), (self.config, abi::LV_AFFECT_CONFIG)])
    }
}

fn bits(pairs: &[(bool, u32)]) -> u32 {
    pairs.iter().filter(|(on, _)| *on).fold(0, |f, (_, bit)| f | bit)
}

/// An open connection of a loaded driver; closed when dropped.
pub struct DriverConn {
    driver: Arc<LoadedDriver>,
    handle: *mut c_void,
}

impl Drop for DriverConn {
    fn drop(&mut self) {
        self.driver.close(self.handle);
    }
}

/// A vtable function, or the host's "unsupported" naming what was asked.
macro_rules! function {
    ($self:expr, $field:ident, $what:expr) => {
        $self.driver.vtable().$field.ok_or_else(|| $self.unsupported($what))?
    };
}

impl DriverConn {
    /// Opens a connection to `uri` with `driver`.
    pub fn open(driver: Arc<LoadedDriver>, uri: &Uri) -> Result<DriverConn> {
        let handle = driver.open(uri)?;
        Ok(DriverConn { driver, handle })
    }

    /// The driver.
    pub fn driver(&self) -> &LoadedDriver {
        &self.driver
    }

    /// The driver's handle of this connection, for the checks that call it raw.
    pub(crate) fn handle(&self) -> *mut c_void {
        self.handle
    }

    /// Whether the driver has the function that reads disk image details.
    pub fn has_block_info(&self) -> bool {
        self.driver.vtable().domain_get_block_info.is_some()
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported { driver: self.driver.name.clone(), operation: what.to_string() }
    }

    fn call(
        &self,
        what: &str,
        options: &CallOptions,
        f: impl FnOnce(*mut c_void, *mut LvCall) -> i32,
    ) -> Result<CallOutput> {
        let handle = self.handle;
        self.driver.invoke(what, options, |call| f(handle, call))
    }

    /// A call on domain `name` with only flags.
    fn on_domain(
        &self,
        what: &str,
        f: unsafe extern "C" fn(*mut c_void, LvStr, u32, *mut LvCall) -> i32,
        name: &str,
        flags: u32,
    ) -> Result<CallOutput> {
        // SAFETY: the function comes from the driver's vtable, called with the ABI's contract:
        // a handle it opened, a string borrowed for the call, the call context.
        self.call(what, &CallOptions::default(), |h, c| unsafe { f(h, LvStr::from_str(name), flags, c) })
    }

    /// A call on domain `name` with one string argument.
    fn on_domain_str(
        &self,
        what: &str,
        f: unsafe extern "C" fn(*mut c_void, LvStr, LvStr, u32, *mut LvCall) -> i32,
        name: &str,
        arg: &str,
        flags: u32,
        options: &CallOptions,
    ) -> Result<CallOutput> {
        // SAFETY: as in on_domain, with a second borrowed string.
        self.call(what, options, |h, c| unsafe { f(h, LvStr::from_str(name), LvStr::from_str(arg), flags, c) })
    }

    /// A block job call: domain, disk, typed parameters.
    #[allow(clippy::too_many_arguments)] // the ABI function's own arguments
    fn on_disk_params(
        &self,
        what: &str,
        f: unsafe extern "C" fn(*mut c_void, LvStr, LvStr, *const LvParam, usize, u32, *mut LvCall) -> i32,
        name: &str,
        disk: &str,
        params: &impl Record,
        flags: u32,
        options: &CallOptions,
    ) -> Result<CallOutput> {
        let list = params.to_params();
        let p = list.to_abi();
        // SAFETY: `p` borrows `list`, which outlives the call; the rest as in on_domain.
        self.call(what, options, |h, c| unsafe {
            f(h, LvStr::from_str(name), LvStr::from_str(disk), p.as_ptr(), p.len(), flags, c)
        })
    }

    /// Every domain.
    pub fn list_domains(&self) -> Result<Vec<DomainSummary>> {
        let f = function!(self, connect_list_domains, "listing domains");
        // SAFETY: the handle and the call context, as the ABI says.
        let out = self.call("listing domains", &CallOptions::default(), |h, c| unsafe { f(h, 0, c) })?;
        Ok(out.records.iter().map(DomainSummary::from_params).collect())
    }

    /// Defines (or redefines) a domain from XML.
    pub fn define_xml(&self, xml: &str) -> Result<Defined> {
        let f = function!(self, domain_define_xml, "defining domains");
        // SAFETY: the XML is borrowed for the call.
        let out = self
            .call("defining a domain", &CallOptions::default(), |h, c| unsafe { f(h, LvStr::from_str(xml), 0, c) })?;
        Ok(out.records.first().map(Defined::from_params).unwrap_or_default())
    }

    /// Removes a domain's definition.
    pub fn undefine(&self, name: &str) -> Result<()> {
        let f = function!(self, domain_undefine, "undefining domains");
        self.on_domain("undefining a domain", f, name, 0).map(drop)
    }

    /// A domain's XML; with `inactive`, its persistent definition even while it runs.
    pub fn domain_xml(&self, name: &str, inactive: bool) -> Result<String> {
        let f = function!(self, domain_get_xml, "reading domain XML");
        let flags = bits(&[(inactive, abi::LV_XML_INACTIVE)]);
        Ok(self.on_domain("reading domain XML", f, name, flags)?.into_text())
    }

    /// A domain's state.
    pub fn domain_status(&self, name: &str) -> Result<DomainStatus> {
        let f = function!(self, domain_get_state, "reading domain state");
        Ok(DomainStatus::from_params(&self.on_domain("reading domain state", f, name, 0)?.into_record()))
    }

    /// Starts a domain.
    pub fn start(&self, name: &str) -> Result<()> {
        let f = function!(self, domain_create, "starting domains");
        self.on_domain("starting a domain", f, name, 0).map(drop)
    }

    /// Stops a domain at once.
    pub fn destroy(&self, name: &str) -> Result<()> {
        let f = function!(self, domain_destroy, "destroying domains");
        self.on_domain("destroying a domain", f, name, 0).map(drop)
    }

    /// The image of disk `disk` (a target).
    pub fn block_info(&self, name: &str, disk: &str) -> Result<BlockInfo> {
        let f = function!(self, domain_get_block_info, "reading disk image details");
        let out = self.on_domain_str("reading disk image details", f, name, disk, 0, &CallOptions::default())?;
        Ok(BlockInfo::from_params(&out.into_record()))
    }

    /// Takes the snapshot `xml` (resolved by the host); returns it as stored.
    pub fn snapshot_create(
        &self,
        name: &str,
        xml: &str,
        flags: SnapshotCreateFlags,
        options: &CallOptions,
    ) -> Result<String> {
        let f = function!(self, domain_snapshot_create, "snapshots");
        // A flag newer than the driver is never sent: a driver that ignored it would do
        // something else than asked.
        if flags.save && self.driver.abi.1 < 3 {
            return Err(self.unsupported("save files (ABI 1.3; the driver is older)"));
        }
        let flags = bits(&[
            (flags.no_metadata, abi::LV_SNAPSHOT_CREATE_NO_METADATA),
            (flags.halt, abi::LV_SNAPSHOT_CREATE_HALT),
            (flags.disk_only, abi::LV_SNAPSHOT_CREATE_DISK_ONLY),
            (flags.reuse_external, abi::LV_SNAPSHOT_CREATE_REUSE_EXT),
            (flags.live, abi::LV_SNAPSHOT_CREATE_LIVE),
            (flags.save, abi::LV_SNAPSHOT_CREATE_SAVE),
            // Every luavirt snapshot is all or nothing.
            (true, abi::LV_SNAPSHOT_CREATE_ATOMIC),
        ]);
        Ok(self.on_domain_str("taking a snapshot", f, name, xml, flags, options)?.into_text())
    }

    /// Every snapshot's XML, and the current one.
    pub fn snapshot_list(&self, name: &str) -> Result<(Vec<String>, Option<String>)> {
        let f = function!(self, domain_snapshot_list, "snapshots");
        let out = self.on_domain("listing snapshots", f, name, 0)?;
        let current = out.records.first().map(SnapshotCurrent::from_params).and_then(|c| c.current);
        Ok((out.texts, current))
    }

    /// Reverts to snapshot `snap`.
    pub fn snapshot_revert(&self, name: &str, snap: &str, flags: SnapshotRevertFlags) -> Result<()> {
        let f = function!(self, domain_snapshot_revert, "reverting to snapshots");
        let flags = bits(&[
            (flags.running, abi::LV_SNAPSHOT_REVERT_RUNNING),
            (flags.paused, abi::LV_SNAPSHOT_REVERT_PAUSED),
            (flags.force, abi::LV_SNAPSHOT_REVERT_FORCE),
        ]);
        self.on_domain_str("reverting to a snapshot", f, name, snap, flags, &CallOptions::default()).map(drop)
    }

    /// Deletes snapshot `snap` (only it).
    pub fn snapshot_delete(&self, name: &str, snap: &str, flags: SnapshotDeleteFlags) -> Result<()> {
        let f = function!(self, domain_snapshot_delete, "deleting snapshots");
        let flags = bits(&[
            (flags.metadata_only, abi::LV_SNAPSHOT_DELETE_METADATA_ONLY),
            (flags.mirror_pivot, abi::LV_SNAPSHOT_DELETE_MIRROR_PIVOT),
            (flags.mirror_abort, abi::LV_SNAPSHOT_DELETE_MIRROR_ABORT),
        ]);
        self.on_domain_str("deleting a snapshot", f, name, snap, flags, &CallOptions::default()).map(drop)
    }

    fn job_bits(flags: BlockJobFlags) -> u32 {
        bits(&[
            (flags.wait, abi::LV_BLOCK_JOB_WAIT),
            (flags.pivot, abi::LV_BLOCK_JOB_PIVOT),
            (flags.finish, abi::LV_BLOCK_JOB_FINISH),
            (flags.shallow, abi::LV_BLOCK_COPY_SHALLOW),
            (flags.reuse_external, abi::LV_BLOCK_COPY_REUSE_EXT),
        ])
    }

    /// Copies disk `disk` to `params.dest`.
    pub fn block_copy(
        &self,
        name: &str,
        disk: &str,
        params: &CopyParams,
        flags: BlockJobFlags,
        options: &CallOptions,
    ) -> Result<()> {
        let f = function!(self, domain_block_copy, "block copy");
        self.on_disk_params("copying a disk", f, name, disk, params, Self::job_bits(flags), options).map(drop)
    }

    /// Pulls backing data into disk `disk`.
    pub fn block_pull(
        &self,
        name: &str,
        disk: &str,
        params: &PullParams,
        flags: BlockJobFlags,
        options: &CallOptions,
    ) -> Result<()> {
        let f = function!(self, domain_block_pull, "block pull");
        self.on_disk_params("pulling a disk's backing data", f, name, disk, params, Self::job_bits(flags), options)
            .map(drop)
    }

    /// Commits disk `disk`'s images down.
    pub fn block_commit(
        &self,
        name: &str,
        disk: &str,
        params: &CommitParams,
        flags: BlockJobFlags,
        options: &CallOptions,
    ) -> Result<()> {
        let f = function!(self, domain_block_commit, "block commit");
        self.on_disk_params("committing a disk", f, name, disk, params, Self::job_bits(flags), options).map(drop)
    }

    /// Disk `disk`'s block job, if it has one.
    pub fn block_job_info(&self, name: &str, disk: &str) -> Result<Option<BlockJob>> {
        let f = function!(self, domain_block_job_info, "block jobs");
        let out = self.on_domain_str("reading a block job", f, name, disk, 0, &CallOptions::default())?;
        Ok(out.records.first().map(BlockJob::from_params))
    }

    /// Ends disk `disk`'s block job: cancels it, or with `pivot` switches to the new image.
    pub fn block_job_abort(&self, name: &str, disk: &str, pivot: bool) -> Result<()> {
        let f = function!(self, domain_block_job_abort, "block jobs");
        let flags = bits(&[(pivot, abi::LV_BLOCK_JOB_PIVOT)]);
        self.on_domain_str("ending a block job", f, name, disk, flags, &CallOptions::default()).map(drop)
    }

    /// Waits for disk `disk`'s block job, then pivots or finishes it.
    pub fn block_job_wait(
        &self,
        name: &str,
        disk: &str,
        pivot: bool,
        finish: bool,
        options: &CallOptions,
    ) -> Result<()> {
        let f = function!(self, domain_block_job_wait, "waiting for block jobs");
        let flags = bits(&[(pivot, abi::LV_BLOCK_JOB_PIVOT), (finish, abi::LV_BLOCK_JOB_FINISH)]);
        self.on_domain_str("waiting for a block job", f, name, disk, flags, options).map(drop)
    }

    /// Whether the driver can take either side of a migration (all five calls).
    pub fn has_migration(&self) -> bool {
        let v = self.driver.vtable();
        v.domain_migrate_begin.is_some()
            && v.domain_migrate_prepare.is_some()
            && v.domain_migrate_perform.is_some()
            && v.domain_migrate_finish.is_some()
            && v.domain_migrate_confirm.is_some()
    }

    /// Migration, source: checks the plan; the domain XML to send.
    pub fn migrate_begin(&self, name: &str, params: &MigrateParams, flags: MigrateFlags) -> Result<String> {
        let f = function!(self, domain_migrate_begin, "migration");
        let out =
            self.on_disk_params("beginning a migration", f, name, "", params, flags.bits(), &CallOptions::default())?;
        Ok(out.into_text())
    }

    /// Migration, destination: readies `xml`'s disks and a domain waiting for its memory.
    pub fn migrate_prepare(
        &self,
        name: &str,
        xml: &str,
        params: &MigrateParams,
        flags: MigrateFlags,
        options: &CallOptions,
    ) -> Result<MigrateEndpoints> {
        let f = function!(self, domain_migrate_prepare, "migration");
        let out = self.on_disk_params("preparing a migration", f, name, xml, params, flags.bits(), options)?;
        Ok(out.records.first().map(MigrateEndpoints::from_params).unwrap_or_default())
    }

    /// Migration, source: moves the copied disks and the memory.
    pub fn migrate_perform(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: MigrateFlags,
        options: &CallOptions,
    ) -> Result<MigrateSent> {
        let f = function!(self, domain_migrate_perform, "migration");
        let out = self.on_disk_params("migrating", f, name, "", params, flags.bits(), options)?;
        Ok(out.records.first().map(MigrateSent::from_params).unwrap_or_default())
    }

    /// Migration, destination: commits, or undoes with `flags.failed`.
    pub fn migrate_finish(&self, name: &str, params: &MigrateParams, flags: MigrateFlags) -> Result<MigrateArrived> {
        let f = function!(self, domain_migrate_finish, "migration");
        let out =
            self.on_disk_params("finishing a migration", f, name, "", params, flags.bits(), &CallOptions::default())?;
        Ok(out.records.first().map(MigrateArrived::from_params).unwrap_or_default())
    }

    /// Migration, source: stops the domain, or puts it back with `flags.failed`.
    pub fn migrate_confirm(&self, name: &str, params: &MigrateParams, flags: MigrateFlags) -> Result<()> {
        let f = function!(self, domain_migrate_confirm, "migration");
        self.on_disk_params("confirming a migration", f, name, "", params, flags.bits(), &CallOptions::default())
            .map(drop)
    }

    /// Aborts the migration of domain `name` that another process runs.
    pub fn abort_job(&self, name: &str) -> Result<()> {
        let f = function!(self, domain_abort_job, "aborting jobs");
        self.on_domain("aborting a job", f, name, 0).map(drop)
    }

    /// Asks the guest of domain `name` to shut down; returns without waiting.
    pub fn shutdown(&self, name: &str) -> Result<()> {
        let f = function!(self, domain_shutdown, "shutting domains down");
        self.on_domain("asking a domain to shut down", f, name, 0).map(drop)
    }

    /// Resets domain `name` at once.
    pub fn reset(&self, name: &str) -> Result<()> {
        let f = function!(self, domain_reset, "resetting domains");
        self.on_domain("resetting a domain", f, name, 0).map(drop)
    }

    /// Pauses domain `name`.
    pub fn suspend(&self, name: &str) -> Result<()> {
        let f = function!(self, domain_suspend, "suspending domains");
        self.on_domain("suspending a domain", f, name, 0).map(drop)
    }

    /// Resumes paused domain `name`.
    pub fn resume(&self, name: &str) -> Result<()> {
        let f = function!(self, domain_resume, "resuming domains");
        self.on_domain("resuming a domain", f, name, 0).map(drop)
    }

    /// Whether the driver attaches and detaches disks itself (live, or in the definition).
    pub fn has_disk_hotplug(&self) -> bool {
        let v = self.driver.vtable();
        v.domain_attach_disk.is_some() && v.domain_detach_disk.is_some()
    }

    /// Attaches the disk `disk_xml` to domain `name`, live and/or in its definition.
    pub fn attach_disk(&self, name: &str, disk_xml: &str, affect: Affect) -> Result<()> {
        let f = function!(self, domain_attach_disk, "attaching disks to a domain");
        let options = CallOptions::default();
        self.on_domain_str("attaching a disk", f, name, disk_xml, affect.bits(), &options).map(drop)
    }

    /// Detaches disk `target` from domain `name`, live and/or from its definition.
    pub fn detach_disk(&self, name: &str, target: &str, affect: Affect) -> Result<()> {
        let f = function!(self, domain_detach_disk, "detaching disks from a domain");
        let options = CallOptions::default();
        self.on_domain_str("detaching a disk", f, name, target, affect.bits(), &options).map(drop)
    }

    /// Replaces the stored record of a snapshot (`xml` names it) with `xml`.
    pub fn snapshot_redefine(&self, name: &str, xml: &str) -> Result<()> {
        let f = function!(self, domain_snapshot_redefine, "changing snapshot records");
        self.on_domain_str("changing a snapshot's record", f, name, xml, 0, &CallOptions::default()).map(drop)
    }

    /// Finishes or undoes a change a killed call left on domain `name`; nothing to do for a
    /// driver without multi-step changes or for a domain that does not exist.
    pub fn reconcile(&self, name: &str) -> Result<()> {
        let Some(f) = self.driver.vtable().domain_reconcile else { return Ok(()) };
        match self.on_domain("finishing an interrupted change", f, name, 0) {
            Err(e) if e.code() == ErrorCode::NoDomain => Ok(()),
            other => other.map(drop),
        }
    }
}
