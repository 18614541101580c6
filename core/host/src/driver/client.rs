//! The typed client of one driver connection: one safe method per vtable function, taking and
//! returning Rust types (the records of `luavirt_plugin_api::records`, flag structs). Each
//! method builds a [`Call`] and reads what it emitted; the call runs through the vtable of a
//! driver loaded here ([`LocalConn`], the only code with raw pointers) or through
//! `luavirt serve` on another host ([`RemoteLink`]), and the method cannot tell which. The
//! host API above it has no `unsafe` and no idea where the driver is.

use super::call::{CallOptions, CallOutput};
use super::local::LocalConn;
use super::request::{Call, ParamsFunction, WireParams};
use super::{DriverFacts, LoadedDriver};
use crate::error::Result;
use crate::remote::RemoteLink;
use luavirt_plugin_api::abi;
use luavirt_plugin_api::records::{
    BlockInfo, BlockJob, CommitParams, CopyParams, Defined, DomainStatus, DomainSummary, MigrateArrived,
    MigrateEndpoints, MigrateParams, MigrateSent, PullParams, Record, SnapshotCurrent,
};
use luavirt_plugin_api::{ErrorCode, Uri};
use std::rc::Rc;
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

/// The typed client of one driver connection, here or on another host.
pub struct DriverConn {
    facts: DriverFacts,
    link: Link,
}

/// Where the driver runs.
enum Link {
    /// Loaded in this process.
    Local(LocalConn),
    /// Behind `luavirt serve` on another host.
    Remote(Rc<RemoteLink>),
}

impl DriverConn {
    /// Opens a connection to `uri` with `driver`, loaded here.
    pub fn open(driver: Arc<LoadedDriver>, uri: &Uri) -> Result<DriverConn> {
        let facts = driver.facts();
        Ok(DriverConn { facts, link: Link::Local(LocalConn::open(driver, uri)?) })
    }

    /// A connection that a remote host's `luavirt serve` opened, with its driver's facts.
    pub(crate) fn remote(link: Rc<RemoteLink>, facts: DriverFacts) -> DriverConn {
        DriverConn { facts, link: Link::Remote(link) }
    }

    /// What the driver is and has.
    pub fn facts(&self) -> &DriverFacts {
        &self.facts
    }

    /// The local connection, when the driver is loaded here.
    pub fn local(&self) -> Option<&LocalConn> {
        match &self.link {
            Link::Local(l) => Some(l),
            Link::Remote(_) => None,
        }
    }

    /// The link to the remote host, when the driver runs there.
    pub(crate) fn remote_link(&self) -> Option<&Rc<RemoteLink>> {
        match &self.link {
            Link::Local(_) => None,
            Link::Remote(r) => Some(r),
        }
    }

    /// Runs `call` where the driver is.
    fn exec(&self, call: Call, options: &CallOptions) -> Result<CallOutput> {
        match &self.link {
            Link::Local(l) => l.run(&call, options),
            Link::Remote(r) => r.call(&call, options),
        }
    }

    fn plain(&self, call: Call) -> Result<CallOutput> {
        self.exec(call, &CallOptions::default())
    }

    /// Whether the driver has the function that reads disk image details.
    pub fn has_block_info(&self) -> bool {
        self.facts.has_function("domain_get_block_info")
    }

    fn with_params(
        &self,
        function: ParamsFunction,
        name: &str,
        arg: &str,
        params: &impl Record,
        flags: u32,
        options: &CallOptions,
    ) -> Result<CallOutput> {
        let params = WireParams::from(&params.to_params());
        let call = Call::WithParams { function, name: name.into(), arg: arg.into(), params, flags };
        self.exec(call, options)
    }

    /// Every domain.
    pub fn list_domains(&self) -> Result<Vec<DomainSummary>> {
        let out = self.plain(Call::ListDomains)?;
        Ok(out.records.iter().map(DomainSummary::from_params).collect())
    }

    /// Defines (or redefines) a domain from XML.
    pub fn define_xml(&self, xml: &str) -> Result<Defined> {
        let out = self.plain(Call::DefineXml { xml: xml.into() })?;
        Ok(out.records.first().map(Defined::from_params).unwrap_or_default())
    }

    /// Removes a domain's definition.
    pub fn undefine(&self, name: &str) -> Result<()> {
        self.plain(Call::Undefine { name: name.into() }).map(drop)
    }

    /// A domain's XML; with `inactive`, its persistent definition even while it runs.
    pub fn domain_xml(&self, name: &str, inactive: bool) -> Result<String> {
        let flags = bits(&[(inactive, abi::LV_XML_INACTIVE)]);
        Ok(self.plain(Call::DomainXml { name: name.into(), flags })?.into_text())
    }

    /// A domain's state.
    pub fn domain_status(&self, name: &str) -> Result<DomainStatus> {
        Ok(DomainStatus::from_params(&self.plain(Call::DomainState { name: name.into() })?.into_record()))
    }

    /// Starts a domain.
    pub fn start(&self, name: &str) -> Result<()> {
        self.plain(Call::Start { name: name.into() }).map(drop)
    }

    /// Stops a domain at once.
    pub fn destroy(&self, name: &str) -> Result<()> {
        self.plain(Call::Destroy { name: name.into() }).map(drop)
    }

    /// The image of disk `disk` (a target).
    pub fn block_info(&self, name: &str, disk: &str) -> Result<BlockInfo> {
        let out = self.plain(Call::BlockInfo { name: name.into(), disk: disk.into() })?;
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
        Ok(self.exec(Call::SnapshotCreate { name: name.into(), xml: xml.into(), flags }, options)?.into_text())
    }

    /// Every snapshot's XML, and the current one.
    pub fn snapshot_list(&self, name: &str) -> Result<(Vec<String>, Option<String>)> {
        let out = self.plain(Call::SnapshotList { name: name.into() })?;
        let current = out.records.first().map(SnapshotCurrent::from_params).and_then(|c| c.current);
        Ok((out.texts, current))
    }

    /// Reverts to snapshot `snap`.
    pub fn snapshot_revert(&self, name: &str, snap: &str, flags: SnapshotRevertFlags) -> Result<()> {
        let flags = bits(&[
            (flags.running, abi::LV_SNAPSHOT_REVERT_RUNNING),
            (flags.paused, abi::LV_SNAPSHOT_REVERT_PAUSED),
            (flags.force, abi::LV_SNAPSHOT_REVERT_FORCE),
        ]);
        self.plain(Call::SnapshotRevert { name: name.into(), snapshot: snap.into(), flags }).map(drop)
    }

    /// Deletes snapshot `snap` (only it).
    pub fn snapshot_delete(&self, name: &str, snap: &str, flags: SnapshotDeleteFlags) -> Result<()> {
        let flags = bits(&[
            (flags.metadata_only, abi::LV_SNAPSHOT_DELETE_METADATA_ONLY),
            (flags.mirror_pivot, abi::LV_SNAPSHOT_DELETE_MIRROR_PIVOT),
            (flags.mirror_abort, abi::LV_SNAPSHOT_DELETE_MIRROR_ABORT),
        ]);
        self.plain(Call::SnapshotDelete { name: name.into(), snapshot: snap.into(), flags }).map(drop)
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
        self.with_params(ParamsFunction::BlockCopy, name, disk, params, Self::job_bits(flags), options).map(drop)
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
        self.with_params(ParamsFunction::BlockPull, name, disk, params, Self::job_bits(flags), options).map(drop)
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
        self.with_params(ParamsFunction::BlockCommit, name, disk, params, Self::job_bits(flags), options).map(drop)
    }

    /// Disk `disk`'s block job, if it has one.
    pub fn block_job_info(&self, name: &str, disk: &str) -> Result<Option<BlockJob>> {
        let out = self.plain(Call::BlockJobInfo { name: name.into(), disk: disk.into() })?;
        Ok(out.records.first().map(BlockJob::from_params))
    }

    /// Ends disk `disk`'s block job: cancels it, or with `pivot` switches to the new image.
    pub fn block_job_abort(&self, name: &str, disk: &str, pivot: bool) -> Result<()> {
        let flags = bits(&[(pivot, abi::LV_BLOCK_JOB_PIVOT)]);
        self.plain(Call::BlockJobAbort { name: name.into(), disk: disk.into(), flags }).map(drop)
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
        let flags = bits(&[(pivot, abi::LV_BLOCK_JOB_PIVOT), (finish, abi::LV_BLOCK_JOB_FINISH)]);
        self.exec(Call::BlockJobWait { name: name.into(), disk: disk.into(), flags }, options).map(drop)
    }

    /// Whether the driver can take either side of a migration (all five calls).
    pub fn has_migration(&self) -> bool {
        [
            "domain_migrate_begin",
            "domain_migrate_prepare",
            "domain_migrate_perform",
            "domain_migrate_finish",
            "domain_migrate_confirm",
        ]
        .iter()
        .all(|f| self.facts.has_function(f))
    }

    /// Migration, source: checks the plan; the domain XML to send.
    pub fn migrate_begin(&self, name: &str, params: &MigrateParams, flags: MigrateFlags) -> Result<String> {
        let out =
            self.with_params(ParamsFunction::MigrateBegin, name, "", params, flags.bits(), &CallOptions::default())?;
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
        let out = self.with_params(ParamsFunction::MigratePrepare, name, xml, params, flags.bits(), options)?;
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
        let out = self.with_params(ParamsFunction::MigratePerform, name, "", params, flags.bits(), options)?;
        Ok(out.records.first().map(MigrateSent::from_params).unwrap_or_default())
    }

    /// Migration, destination: commits, or undoes with `flags.failed`.
    pub fn migrate_finish(&self, name: &str, params: &MigrateParams, flags: MigrateFlags) -> Result<MigrateArrived> {
        let out =
            self.with_params(ParamsFunction::MigrateFinish, name, "", params, flags.bits(), &CallOptions::default())?;
        Ok(out.records.first().map(MigrateArrived::from_params).unwrap_or_default())
    }

    /// Migration, source: stops the domain, or puts it back with `flags.failed`.
    pub fn migrate_confirm(&self, name: &str, params: &MigrateParams, flags: MigrateFlags) -> Result<()> {
        self.with_params(ParamsFunction::MigrateConfirm, name, "", params, flags.bits(), &CallOptions::default())
            .map(drop)
    }

    /// Aborts the migration of domain `name` that another process runs.
    pub fn abort_job(&self, name: &str) -> Result<()> {
        self.plain(Call::AbortJob { name: name.into() }).map(drop)
    }

    /// Asks the guest of domain `name` to shut down; returns without waiting.
    pub fn shutdown(&self, name: &str) -> Result<()> {
        self.plain(Call::Shutdown { name: name.into() }).map(drop)
    }

    /// Resets domain `name` at once.
    pub fn reset(&self, name: &str) -> Result<()> {
        self.plain(Call::Reset { name: name.into() }).map(drop)
    }

    /// Pauses domain `name`.
    pub fn suspend(&self, name: &str) -> Result<()> {
        self.plain(Call::Suspend { name: name.into() }).map(drop)
    }

    /// Resumes paused domain `name`.
    pub fn resume(&self, name: &str) -> Result<()> {
        self.plain(Call::Resume { name: name.into() }).map(drop)
    }

    /// Whether the driver attaches and detaches disks itself (live, or in the definition).
    pub fn has_disk_hotplug(&self) -> bool {
        self.facts.has_function("domain_attach_disk") && self.facts.has_function("domain_detach_disk")
    }

    /// Attaches the disk `disk_xml` to domain `name`, live and/or in its definition.
    pub fn attach_disk(&self, name: &str, disk_xml: &str, affect: Affect) -> Result<()> {
        self.plain(Call::AttachDisk { name: name.into(), xml: disk_xml.into(), flags: affect.bits() }).map(drop)
    }

    /// Detaches disk `target` from domain `name`, live and/or from its definition.
    pub fn detach_disk(&self, name: &str, target: &str, affect: Affect) -> Result<()> {
        self.plain(Call::DetachDisk { name: name.into(), disk: target.into(), flags: affect.bits() }).map(drop)
    }

    /// Replaces the stored record of a snapshot (`xml` names it) with `xml`.
    pub fn snapshot_redefine(&self, name: &str, xml: &str) -> Result<()> {
        self.plain(Call::SnapshotRedefine { name: name.into(), xml: xml.into() }).map(drop)
    }

    /// Finishes or undoes a change a killed call left on domain `name`; nothing to do for a
    /// driver without multi-step changes or for a domain that does not exist.
    pub fn reconcile(&self, name: &str) -> Result<()> {
        if !self.facts.has_function("domain_reconcile") {
            return Ok(());
        }
        match self.plain(Call::Reconcile { name: name.into() }) {
            Err(e) if e.code() == ErrorCode::NoDomain => Ok(()),
            other => other.map(drop),
        }
    }
}
