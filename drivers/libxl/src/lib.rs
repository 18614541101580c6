//! luavirt's Xen driver (`libxl:///FOLDER`, default `/etc/xen`): the xl domain configs of a
//! folder, worked on as files, with Xen's `xl` for what only a running hypervisor can do.
//!
//! - Each xl config of the folder is a domain named by its `name =` ([`inventory`], [`dom`]),
//!   read and written losslessly ([`cfg`]): a change rewrites only the disk spec it changes
//!   ([`diskspec`]).
//! - It is shown as libvirt shows an xl config ([`view`]); redefining it changes its disks,
//!   disk modes and disk sets ([`define`]). What xl has no place for (modes, sets, snapshot
//!   records) lives in a sidecar beside the config ([`sidecar`]).
//! - Snapshots of a shut-off domain go through `qemu-img` on the disks' images ([`images`]):
//!   qcow2 overlays for external ones, internal ones inside qcow2 images; each change is
//!   recorded first and settled by the next call if luavirt is killed (`snapshot`).
//! - Run state, start and stop go through `xl` ([`xl`], `live`); without xl, or without a
//!   hypervisor, they say which is missing.
//! - Migration between two config folders (`migrate`): offline with copied, blank and shared
//!   disks; live (`xl migrate`) with shared disks only, as Xen's stream carries no disk content.
//! - Every result record is built in [`records`].

pub mod cfg;
pub mod define;
pub mod diskspec;
pub mod dom;
pub mod images;
pub mod inventory;
mod live;
mod migrate;
pub mod records;
pub mod sidecar;
mod snapshot;
pub mod view;
pub mod xl;

use dom::Dom;
use luavirt_plugin_api::abi::{
    LV_CAP_BLOCK_INFO, LV_CAP_DEFINE, LV_CAP_LIFECYCLE, LV_CAP_MIGRATION, LV_CAP_SNAPSHOT, LV_STATE_SHUTOFF,
};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::fsutil::{LockGuard, remove_stale_temporaries, state_dir_for};
use luavirt_plugin_api::kit::{Call, Driver, DriverResult, Level};
use luavirt_plugin_api::records::MigrateParams;
use luavirt_plugin_api::{DriverError, ErrorCode, Uri};
use sidecar::Sidecar;
use std::path::{Path, PathBuf};
use xl::Xl;

/// The folder `libxl:///` and `xen:///system` name.
const DEFAULT_FOLDER: &str = "/etc/xen";

/// Query parameters a `libxl:///` URI takes.
const URI_HELP: &str = "libxl:///FOLDER takes ?state=DIR (luavirt's state folder) and ?xl=PATH (the xl program)";

/// One open `libxl:///FOLDER` connection.
pub struct LibxlDriver {
    root: PathBuf,
    /// luavirt's files about these domains: `locks/`, `intents/`.
    state: PathBuf,
    xl: Xl,
}

impl LibxlDriver {
    fn find(&self, name: &str) -> DriverResult<Dom> {
        inventory::find(&self.root, name)
    }

    /// luavirt's file of `kind` (`locks`, `intents`, `migrations`) about the config at `cfg`.
    fn state_path(&self, kind: &str, cfg: &Path, ext: &str) -> PathBuf {
        // FNV-1a of the path: a short, stable file name.
        let hash = cfg
            .to_string_lossy()
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        self.state.join(kind).join(format!("{hash:016x}.{ext}"))
    }

    /// Locks the config at `path` for a change, after settling a change a killed call left.
    fn lock_for_change(&self, name: &str, path: &Path, call: &mut Call) -> DriverResult<LockGuard> {
        let guard = self.lock_config(path)?;
        if let Some(dir) = path.parent() {
            remove_stale_temporaries(dir);
        }
        self.settle_migration_at(path, call)?;
        self.reconcile_domain(name, path, call)?;
        Ok(guard)
    }

    /// The domain XML of `dom`.
    fn view(&self, dom: &Dom) -> DriverResult<(Sidecar, DomainXml)> {
        let sidecar = Sidecar::read(&dom.sidecar_path())?;
        let xml = view::build(dom, &sidecar)?;
        Ok((sidecar, xml))
    }

    /// The disk `target` of `dom`, or an error listing its disks.
    fn disk<'a>(&self, dom: &'a Dom, name: &str, target: &str) -> DriverResult<&'a dom::DomDisk> {
        dom.disk(target).ok_or_else(|| {
            let all: Vec<&str> = dom.disks.iter().map(|d| d.target()).collect();
            DriverError::new(
                ErrorCode::NoDisk,
                format!("Domain '{name}' has no disk '{target}'; its disks are: {}", all.join(", ")),
            )
        })
    }
}

impl Driver for LibxlDriver {
    const NAME: &'static str = "libxl";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Xen domains from xl config files (snapshots and migration offline with qemu-img; xl for run state)";
    const URI_SCHEMES: &'static str = "libxl,xen";
    const CAPABILITIES: u64 = LV_CAP_DEFINE | LV_CAP_LIFECYCLE | LV_CAP_BLOCK_INFO | LV_CAP_SNAPSHOT | LV_CAP_MIGRATION;

    fn open(uri: &Uri, _flags: u32, _call: &mut Call) -> DriverResult<Self> {
        let invalid = |m: String| DriverError::new(ErrorCode::InvalidUri, format!("{uri}: {m}"));
        if !uri.host.is_empty() {
            return Err(invalid(format!(
                "remote Xen hosts are not supported; name a config folder on this machine, like libxl:///etc/xen (not {})",
                uri.host
            )));
        }
        let folder = match (uri.scheme.as_str(), uri.path.as_str()) {
            ("xen", "/system" | "" | "/") => DEFAULT_FOLDER.to_string(),
            ("xen", other) => {
                return Err(invalid(format!(
                    "xen:/// names only xen:///system (the configs in {DEFAULT_FOLDER}); for another folder use libxl://{other}"
                )));
            }
            (_, "" | "/") => DEFAULT_FOLDER.to_string(),
            (_, p) => p.to_string(),
        };
        if let Some((k, _)) = uri.query.iter().find(|(k, _)| k != "state" && k != "xl") {
            return Err(invalid(format!("unknown parameter '{k}'; {URI_HELP}")));
        }
        let root = Path::new(&folder).canonicalize().map_err(|e| {
            invalid(format!("config folder {folder} cannot be opened ({e}); create it or fix the path"))
        })?;
        if !root.is_dir() {
            return Err(invalid(format!("{folder} is not a folder; name the folder that holds the xl configs")));
        }
        Ok(LibxlDriver { root, state: state_dir_for(uri).join("libxl"), xl: Xl::new(uri.param("xl").unwrap_or("xl")) })
    }

    fn list_domains(&self, _flags: u32, call: &mut Call) -> DriverResult {
        let running = match self.xl.list() {
            Ok(list) => list,
            Err(e) if e.nothing_runs() => Vec::new(),
            Err(e) => {
                call.log(Level::Warning, &format!("{e}; every domain shows as shut off"));
                Vec::new()
            }
        };
        for l in inventory::list(&self.root)? {
            let uuid = match &l.dom {
                Ok(d) => d.uuid().ok().flatten().unwrap_or_default(),
                Err(e) => {
                    call.log(Level::Warning, &e.message);
                    String::new()
                }
            };
            let (state, id) = match running.iter().find(|r| r.name == l.name) {
                Some(r) => (r.state, Some(r.id)),
                None => (LV_STATE_SHUTOFF, None),
            };
            call.emit(&records::domain(&l.name, &uuid, state, id));
        }
        Ok(())
    }

    fn define_xml(&self, xml: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.define_impl(xml, call)
    }

    fn get_xml(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let dom = self.find(name)?;
        let (_, xml) = self.view(&dom)?;
        call.emit_text(&xml.to_xml());
        Ok(())
    }

    fn get_state(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let dom = match self.find(name) {
            Ok(dom) => dom,
            // A domain arriving by migration, or one whose config a migration was removing.
            Err(e) if e.code == ErrorCode::NoDomain => match self.migration_reason(name) {
                Some(reason) => {
                    call.emit(&records::state(LV_STATE_SHUTOFF, None, Some(&reason)));
                    return Ok(());
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let run = self.run_state(name);
        let reason = match self.pending_change(&dom.path)? {
            Some(i) => Some(format!(
                "interrupted {} (pid {}); the next change to the domain finishes or undoes it",
                i.change.describe(),
                i.pid
            )),
            None => self.migration_reason(name).or_else(|| run.reason()),
        };
        let (state, id) = run.state();
        call.emit(&records::state(state, id, reason.as_deref()));
        Ok(())
    }

    fn create(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.start_impl(name, call)
    }

    fn destroy(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.destroy_impl(name, call)
    }

    fn get_block_info(&self, name: &str, disk: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let dom = self.find(name)?;
        let d = self.disk(&dom, name, disk)?;
        let r = self.block_info(name, &dom, d)?;
        call.emit(&r);
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

    fn reconcile(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.settle_migrations_of(name, call)?;
        let dom = self.find(name)?;
        self.lock_for_change(name, &dom.path, call).map(drop)
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
}

luavirt_plugin_api::export_driver!(
    LibxlDriver,
    ops: [
        connect_list_domains,
        domain_define_xml,
        domain_get_xml,
        domain_get_state,
        domain_create,
        domain_destroy,
        domain_get_block_info,
        domain_snapshot_create,
        domain_snapshot_list,
        domain_snapshot_revert,
        domain_snapshot_delete,
        domain_reconcile,
        domain_migrate_begin,
        domain_migrate_prepare,
        domain_migrate_perform,
        domain_migrate_finish,
        domain_migrate_confirm,
    ]
);
