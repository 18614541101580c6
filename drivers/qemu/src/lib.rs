//! luavirt's QEMU driver (`qemu:///session`, and root's `qemu:///system`).
//!
//! Definitions are kept as the libvirt XML they were defined with, under the state folder
//! (`?state=DIR`, else `LUAVIRT_STATE_DIR`, ...). A started domain is a real
//! `qemu-system-*` process in a session of its own, so it outlives the `luavirt` process that
//! started it; any later call finds it by pid and start time and talks to it over its QMP
//! socket. A QEMU that died is reported as shut off; the next change clears what it left.
//!
//! Every change that takes several steps records its intent first ([`intent`]), and the next
//! call that takes the domain's lock finishes or undoes a change a killed call left
//! ([`reconcile`]), so luavirt can be killed at any instruction without losing guest data.

mod blockjob;
mod cmdline;
mod hotplug;
mod images;
mod intent;
mod lifecycle;
mod migrate;
mod monitor;
mod power;
mod process;
mod qmp;
mod reconcile;
mod snapshot;
mod state;

use luavirt_plugin_api::abi::{
    LV_CAP_BLOCK_INFO, LV_CAP_BLOCK_JOBS, LV_CAP_DEFINE, LV_CAP_LIFECYCLE, LV_CAP_MIGRATION, LV_CAP_SNAPSHOT,
};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::fsutil::state_dir_for;
use luavirt_plugin_api::kit::{Call, Driver, DriverResult};
use luavirt_plugin_api::records::{
    CommitParams, CopyParams, Defined, DomainState, DomainStatus, DomainSummary, MigrateParams, PullParams,
};
use luavirt_plugin_api::{DriverError, ErrorCode, Uri};
use state::StateDir;

/// One open `qemu:///session` connection.
pub struct QemuDriver {
    state: StateDir,
}

impl Driver for QemuDriver {
    const NAME: &'static str = "qemu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "QEMU domains: qemu-system over QMP, images through qemu-img";
    const URI_SCHEMES: &'static str = "qemu";
    const CAPABILITIES: u64 =
        LV_CAP_DEFINE | LV_CAP_LIFECYCLE | LV_CAP_BLOCK_INFO | LV_CAP_SNAPSHOT | LV_CAP_BLOCK_JOBS | LV_CAP_MIGRATION;

    fn open(uri: &Uri, _flags: u32, _call: &mut Call) -> DriverResult<Self> {
        if !uri.host.is_empty() {
            return Err(DriverError::new(
                ErrorCode::InvalidUri,
                format!("{uri}: remote QEMU hosts are not supported; use qemu:///session"),
            ));
        }
        if uri.path != "/session" && uri.path != "/system" {
            return Err(DriverError::new(
                ErrorCode::InvalidUri,
                format!(
                    "{uri}: the QEMU driver serves qemu:///session (add ?state=DIR for another state folder) and, for root, qemu:///system"
                ),
            ));
        }
        // The machine's host: root's, state in /var/lib/luavirt, as libvirt's system connection.
        if uri.path == "/system" && uri.param("state").is_none() && !luavirt_plugin_api::fsutil::running_as_root() {
            return Err(DriverError::new(
                ErrorCode::InvalidUri,
                format!(
                    "{uri}: the system host keeps its state in {} and is root's; run luavirt as root, or use qemu:///session",
                    luavirt_plugin_api::fsutil::SYSTEM_STATE_DIR
                ),
            ));
        }
        Ok(QemuDriver { state: StateDir::new(&state_dir_for(uri)) })
    }

    fn list_domains(&self, _flags: u32, call: &mut Call) -> DriverResult {
        let mut names = self.state.domain_names()?;
        let arriving: Vec<String> =
            self.state.names_with_intents().into_iter().filter(|n| !names.contains(n) && self.is_arriving(n)).collect();
        names.extend(arriving);
        names.sort();
        for name in names {
            let uuid = match self.state.read_uuid(&name) {
                Ok(uuid) => uuid,
                Err(e) if e.code == ErrorCode::NoDomain => None,
                Err(e) => return Err(e),
            };
            let (state, id) = self.state_of(&name, call)?;
            let transient = uuid.is_none() || self.state.is_transient(&name)?;
            if transient && state == DomainState::ShutOff {
                continue; // it lived only as long as its QEMU
            }
            call.emit(&DomainSummary { uuid: uuid.unwrap_or_default(), name, state, id, persistent: !transient });
        }
        Ok(())
    }

    fn define_xml(&self, xml: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let mut dom = DomainXml::parse(xml, None).map_err(|e| DriverError::new(ErrorCode::Xml, e.to_string()))?;
        let name = dom.name();
        let _lock = self.lock_beside(&name, call)?;
        if dom.uuid().is_none() {
            let uuid = luavirt_plugin_api::domain::generate_uuid()
                .map_err(|e| DriverError::new(ErrorCode::Io, format!("Cannot generate a UUID: {e}")))?;
            dom.set_uuid(&uuid);
        }
        let uuid = dom.uuid().unwrap_or_default();
        if let Some(other) = self.state.uuid_owner(&uuid)?.filter(|o| *o != name) {
            return Err(DriverError::new(
                ErrorCode::Exists,
                format!("UUID {uuid} is already used by domain '{other}'; remove <uuid> to get a new one"),
            ));
        }
        // The index first: an entry whose definition was never written counts for nothing.
        self.state.index_uuid(&uuid, &name)?;
        let text = dom.to_xml();
        self.state.write_definition(&name, &text)?;
        luavirt_plugin_api::failpoint::hit("define:written");
        call.emit(&Defined { name, uuid: dom.uuid().unwrap_or_default() });
        if text == xml {
            self.state.keep_parsed(text, dom); // as parsed: no UUID was added
        }
        Ok(())
    }

    fn undefine(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let _lock = self.lock_domain(name, call)?;
        self.state.read_definition_text(name)?;
        let (state, _) = self.state_of(name, call)?;
        if state != DomainState::ShutOff {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!("Domain '{name}' is running; destroy it first (luavirt destroy {name})"),
            ));
        }
        let snapshots = self.read_tree(name)?.all().len();
        if snapshots > 0 {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "Domain '{name}' has {snapshots} snapshot(s); delete them first (with «metadata» to keep their files)"
                ),
            ));
        }
        let path = self.state.definition(name)?;
        std::fs::remove_file(&path).map_err(|e| DriverError::io("remove", &path, e))?;
        self.state.clear_run(name)
    }

    fn get_xml(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let text = match self.state.read_definition_text(name) {
            Ok(text) => text,
            // A domain arriving by migration: the definition it will have.
            Err(e) if e.code == ErrorCode::NoDomain => match self.pending_change(name)?.map(|i| i.change) {
                Some(intent::Change::MigrateIn(incoming)) => incoming.xml,
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        };
        call.emit_text(&text);
        Ok(())
    }

    fn get_state(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.known(name)?;
        let (state, id) = self.state_of(name, call)?;
        let reason = self.pending_change(name)?.map(|i| {
            let since = luavirt_plugin_api::time::format_local(i.started_at);
            let what = i.change.describe();
            if i.owner_alive() {
                format!("{what} in progress (pid {}, since {since})", i.pid)
            } else {
                format!("interrupted {what} (at {since}); the next change to the domain finishes or undoes it")
            }
        });
        call.emit(&DomainStatus { state, id, reason });
        Ok(())
    }

    fn create(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let _lock = self.lock_domain(name, call)?;
        let (_, dom) = self.state.read_definition(name)?;
        let opts = lifecycle::StartOptions::default();
        let pending = self.begin(name, intent::Change::Start(opts.clone()))?;
        let started = self.start(&dom, &opts, call);
        luavirt_plugin_api::failpoint::hit("start:running");
        // A failed start stopped what it began.
        pending.done()?;
        started
    }

    fn destroy(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.known(name)?;
        let _lock = self.lock_domain(name, call)?;
        self.known(name)?;
        self.stop(name, call)
    }

    fn reconcile(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.known(name)?;
        self.lock_beside(name, call).map(|_| ())
    }

    fn get_block_info(&self, name: &str, disk: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let (_, dom) = self.state.read_definition(name)?;
        let d = dom.disk(disk).ok_or_else(|| {
            let all: Vec<String> = dom.disks().into_iter().map(|d| d.target).collect();
            DriverError::new(
                ErrorCode::NoDisk,
                format!("Domain '{name}' has no disk '{disk}'; its disks are: {}", all.join(", ")),
            )
        })?;
        let path = d.source.path().ok_or_else(|| {
            DriverError::new(
                ErrorCode::Unsupported,
                format!("Disk {disk} of domain '{name}' has no local image ({})", d.source.display()),
            )
        })?;
        let record = images::block_info(name, &d, path)?;
        call.emit(&record);
        Ok(())
    }

    fn snapshot_create(&self, name: &str, xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        self.snapshot_create_impl(name, xml, flags, call)
    }

    fn snapshot_list(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.snapshot_list_impl(name, call)
    }

    fn snapshot_revert(&self, name: &str, snapshot: &str, flags: u32, call: &mut Call) -> DriverResult {
        self.snapshot_revert_impl(name, snapshot, flags, call)
    }

    fn snapshot_delete(&self, name: &str, snapshot: &str, flags: u32, call: &mut Call) -> DriverResult {
        self.snapshot_delete_impl(name, snapshot, flags, call)
    }

    fn block_copy(&self, name: &str, disk: &str, params: &CopyParams, flags: u32, call: &mut Call) -> DriverResult {
        self.block_copy_impl(name, disk, params, flags, call)
    }

    fn block_pull(&self, name: &str, disk: &str, params: &PullParams, flags: u32, call: &mut Call) -> DriverResult {
        self.block_pull_impl(name, disk, params, flags, call)
    }

    fn block_commit(&self, name: &str, disk: &str, params: &CommitParams, flags: u32, call: &mut Call) -> DriverResult {
        self.block_commit_impl(name, disk, params, flags, call)
    }

    fn block_job_info(&self, name: &str, disk: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.block_job_info_impl(name, disk, call)
    }

    fn block_job_abort(&self, name: &str, disk: &str, flags: u32, call: &mut Call) -> DriverResult {
        self.block_job_abort_impl(name, disk, flags, call)
    }

    fn block_job_wait(&self, name: &str, disk: &str, flags: u32, call: &mut Call) -> DriverResult {
        self.block_job_wait_impl(name, disk, flags, call)
    }

    fn migrate_begin(&self, name: &str, params: &MigrateParams, flags: u32, call: &mut Call) -> DriverResult {
        self.migrate_begin_impl(name, params, flags, call)
    }

    fn migrate_prepare(
        &self,
        name: &str,
        xml: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        self.migrate_prepare_impl(name, xml, params, flags, call)
    }

    fn migrate_perform(&self, name: &str, params: &MigrateParams, flags: u32, call: &mut Call) -> DriverResult {
        self.migrate_perform_impl(name, params, flags, call)
    }

    fn migrate_finish(&self, name: &str, params: &MigrateParams, flags: u32, call: &mut Call) -> DriverResult {
        self.migrate_finish_impl(name, params, flags, call)
    }

    fn migrate_confirm(&self, name: &str, params: &MigrateParams, flags: u32, call: &mut Call) -> DriverResult {
        self.migrate_confirm_impl(name, params, flags, call)
    }

    fn abort_job(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.abort_job_impl(name, call)
    }

    fn shutdown(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.shutdown_impl(name, call)
    }

    fn reset(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.reset_impl(name, call)
    }

    fn suspend(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.suspend_impl(name, call)
    }

    fn resume(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.resume_impl(name, call)
    }

    fn snapshot_redefine(&self, name: &str, xml: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.snapshot_redefine_impl(name, xml, call)
    }

    fn attach_disk(&self, name: &str, disk_xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        self.attach_disk_impl(name, disk_xml, flags, call)
    }

    fn detach_disk(&self, name: &str, target: &str, flags: u32, call: &mut Call) -> DriverResult {
        self.detach_disk_impl(name, target, flags, call)
    }
}

impl QemuDriver {
    /// Whether a migration is arriving as `name` (a domain without a definition yet).
    fn is_arriving(&self, name: &str) -> bool {
        matches!(self.pending_change(name), Ok(Some(i)) if matches!(i.change, intent::Change::MigrateIn(_)))
    }

    /// `Ok` when `name` is defined here or arriving; else the error that it is not defined.
    fn known(&self, name: &str) -> DriverResult {
        match self.state.read_definition_text(name) {
            Err(e) if e.code == ErrorCode::NoDomain && self.is_arriving(name) => Ok(()),
            other => other.map(drop),
        }
    }
}

luavirt_plugin_api::export_driver!(
    QemuDriver,
    ops: [
        connect_list_domains,
        domain_define_xml,
        domain_undefine,
        domain_get_xml,
        domain_get_state,
        domain_create,
        domain_destroy,
        domain_get_block_info,
        domain_snapshot_create,
        domain_snapshot_list,
        domain_snapshot_revert,
        domain_snapshot_delete,
        domain_block_copy,
        domain_block_pull,
        domain_block_commit,
        domain_block_job_info,
        domain_block_job_abort,
        domain_block_job_wait,
        domain_reconcile,
        domain_migrate_begin,
        domain_migrate_prepare,
        domain_migrate_perform,
        domain_migrate_finish,
        domain_migrate_confirm,
        domain_abort_job,
        domain_shutdown,
        domain_reset,
        domain_suspend,
        domain_resume,
        domain_attach_disk,
        domain_detach_disk,
        domain_snapshot_redefine,
    ]
);
