//! luavirt's VMware driver (`vmx:///DATASTORE`): the VMs of a datastore folder, read from and
//! written to the files an ESX, Workstation or Fusion host keeps, with no VMware host running.
//!
//! - Each `.vmx` under the folder is a domain named by its `displayName`, shown as libvirt
//!   domain XML ([`view`]); disks on other datastores resolve through
//!   `?datastore.NAME=/folder` ([`datastore`]).
//! - The `.vmx` is read and written losslessly ([`vmx`]): a disk mode change rewrites one line.
//!   Disk sets live in a sidecar beside it ([`sidecar`]). Redefining accepts only those two
//!   kinds of change ([`define`]).
//! - Disk details come from the VMDK descriptors ([`vmdk`], [`blockinfo`]).
//! - Snapshots are kept as ESX keeps them: delta VMDKs, the `.vmx` pointed at them, and the
//!   `.vmsd` ([`vmsd`], `snapshot`).
//! - Run state needs an ESX host: every domain reads as shut off, and start, stop and
//!   undefine are not in the vtable (the host says the driver does not support them).

pub mod blockinfo;
pub mod datastore;
pub mod define;
pub mod devices;
pub mod inventory;
pub mod qemu_img;
pub mod sidecar;
mod snapshot;
pub mod view;
pub mod vm;
pub mod vmdk;
pub mod vmsd;
pub mod vmx;

use datastore::Datastores;
use devices::Device;
use luavirt_plugin_api::abi::{LV_CAP_BLOCK_INFO, LV_CAP_DEFINE, LV_CAP_SNAPSHOT};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::fsutil::{LockGuard, lock_exclusive, state_dir_for, write_atomic};
use luavirt_plugin_api::kit::{Call, Driver, DriverResult, Level};
use luavirt_plugin_api::records::{Defined, DomainState, DomainStatus, DomainSummary};
use luavirt_plugin_api::{DriverError, ErrorCode, Uri};
use std::path::{Path, PathBuf};
use vm::Vm;

/// One open `vmx:///DATASTORE` connection.
pub struct VmxDriver {
    root: PathBuf,
    stores: Datastores,
    /// luavirt's own files about these VMs: `locks/`, `intents/` (see `snapshot::intent`).
    state: PathBuf,
}

/// Query parameters a `vmx:///` URI takes.
const URI_HELP: &str = "vmx:///PATH takes ?datastore=NAME (the folder's datastore name), ?datastore.NAME=/folder (another datastore) and ?state=DIR";

/// What an operation that needs a running VMware host says: `what` (sentence case, naming
/// the domain) and what to do instead.
pub(crate) fn needs_esx(what: &str, advice: &str) -> DriverError {
    DriverError::new(
        ErrorCode::Unsupported,
        format!(
            "{what} needs an ESX or Workstation host, which luavirt does not drive here: the vmx driver works on the VM's files only; {advice}"
        ),
    )
}

impl VmxDriver {
    fn find(&self, name: &str) -> DriverResult<Vm> {
        inventory::find(&self.root, name)
    }

    /// luavirt's file of `kind` (`locks`, `intents`) about the VM at `vmx`.
    fn state_path(&self, kind: &str, vmx: &Path, ext: &str) -> PathBuf {
        // FNV-1a of the path: a short, stable file name.
        let hash = vmx
            .to_string_lossy()
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        self.state.join(kind).join(format!("{hash:016x}.{ext}"))
    }

    /// Locks the `.vmx` at `path` against other luavirt processes while it is rewritten.
    fn lock(&self, path: &Path) -> DriverResult<LockGuard> {
        let lock = self.state_path("locks", path, "lock");
        lock_exclusive(&lock).map_err(|e| DriverError::io("lock", &lock, e))
    }

    /// Locks the `.vmx` at `path` for a change, after settling a change a killed call left.
    fn lock_for_change(&self, name: &str, path: &Path, call: &mut Call) -> DriverResult<LockGuard> {
        let lock = self.lock(path)?;
        if let Some(dir) = path.parent() {
            luavirt_plugin_api::fsutil::remove_stale_temporaries(dir);
        }
        self.reconcile_vm(name, path, call)?;
        Ok(lock)
    }

    /// The devices and the domain XML of `vm`.
    fn view(&self, vm: &Vm) -> DriverResult<(Vec<Device>, DomainXml)> {
        let devices = vm.devices()?;
        let sets = sidecar::read(&vm.sidecar_path(), &devices)?;
        let xml = view::build(vm, &devices, &self.stores, &sets)?;
        Ok((devices, xml))
    }

    /// Writes new `.vmx` bytes over `vm`'s file, unless the file
    /// changed on disk since it was read (the VMware client does not take luavirt's lock).
    fn write_vmx(&self, vm: &Vm, bytes: &[u8]) -> DriverResult {
        let path = &vm.path;
        let now = std::fs::read(path).map_err(|e| DriverError::io("read", path, e))?;
        if now != vm.bytes {
            return Err(DriverError::new(
                ErrorCode::Busy,
                format!(
                    "{} changed while luavirt was about to write it; try again (nothing was written)",
                    path.display()
                ),
            ));
        }
        // write_atomic keeps the file's permissions.
        write_atomic(path, bytes).map_err(|e| DriverError::io("write", path, e))
    }
}

impl Driver for VmxDriver {
    const NAME: &'static str = "vmx";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "VMware .vmx domains on a datastore folder (files only: the VMware client starts, stops and removes VMs)";
    const URI_SCHEMES: &'static str = "vmx";
    const CAPABILITIES: u64 = LV_CAP_DEFINE | LV_CAP_BLOCK_INFO | LV_CAP_SNAPSHOT;

    fn open(uri: &Uri, _flags: u32, _call: &mut Call) -> DriverResult<Self> {
        let invalid = |m: String| DriverError::new(ErrorCode::InvalidUri, format!("{uri}: {m}"));
        if !uri.host.is_empty() {
            return Err(invalid(format!(
                "remote ESX hosts are not supported; name a datastore folder on this machine, like vmx:///vmfs/volumes/{}",
                uri.host
            )));
        }
        if uri.path.is_empty() || uri.path == "/" {
            return Err(invalid("name a datastore folder, like vmx:///srv/datastore1".to_string()));
        }
        if let Some((k, _)) =
            uri.query.iter().find(|(k, _)| k != "state" && k != "datastore" && !k.starts_with("datastore."))
        {
            return Err(invalid(format!("unknown parameter '{k}'; {URI_HELP}")));
        }
        let root = Path::new(&uri.path).canonicalize().map_err(|e| {
            invalid(format!("datastore folder {} cannot be opened ({e}); create it or fix the path", uri.path))
        })?;
        if !root.is_dir() {
            return Err(invalid(format!(
                "{} is not a folder; name the datastore folder that holds the VMs' folders",
                uri.path
            )));
        }
        let stores = Datastores::from_uri(uri, &root)?;
        Ok(VmxDriver { root, stores, state: state_dir_for(uri).join("vmx") })
    }

    fn list_domains(&self, _flags: u32, call: &mut Call) -> DriverResult {
        for l in inventory::list(&self.root)? {
            let uuid = match &l.vm {
                Ok(vm) => vm.uuid().ok().flatten().unwrap_or_default(),
                Err(e) => {
                    call.log(Level::Warning, &e.message);
                    String::new()
                }
            };
            call.emit(&DomainSummary { name: l.name, uuid, state: DomainState::ShutOff, id: -1, persistent: true });
        }
        Ok(())
    }

    fn define_xml(&self, xml: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let given = DomainXml::parse(xml, None).map_err(|e| DriverError::new(ErrorCode::Xml, e.to_string()))?;
        let name = given.name();
        let found = match self.find(&name) {
            Err(e) if e.code == ErrorCode::NoDomain => {
                return Err(DriverError::new(
                    ErrorCode::Unsupported,
                    format!(
                        "Domain '{name}' is not on datastore {}: luavirt does not create VMware VMs from XML. Create the VM with the VMware client (ESX, Workstation or Fusion) in a folder there; it is then listed, and its disk modes and disk sets can be changed",
                        self.root.display()
                    ),
                ));
            }
            other => other?,
        };
        let _lock = self.lock_for_change(&name, &found.path, call)?;
        // Read again under the lock: another luavirt may have changed it meanwhile.
        let vm = Vm::load(&found.path)?;
        let (devices, view) = self.view(&vm)?;
        let plan = define::plan(&vm, &devices, &view, &given)?;
        if let Some(bytes) = define::apply_modes(&vm, &devices, &plan)? {
            self.write_vmx(&vm, &bytes)?;
        }
        // Also drops members of disks that left the VM since the sidecar was written.
        sidecar::write(&vm.sidecar_path(), &plan.sets, &devices)?;
        call.emit(&Defined { name, uuid: view.uuid().or(given.uuid()).unwrap_or_default() });
        Ok(())
    }

    fn get_xml(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let vm = self.find(name)?;
        let (_, xml) = self.view(&vm)?;
        call.emit_text(&xml.to_xml());
        Ok(())
    }

    fn get_state(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let vm = self.find(name)?;
        let reason = match self.pending_change(&vm.path)? {
            Some(i) => format!(
                "interrupted {} (pid {}); the next change to the domain finishes or undoes it",
                i.change.describe(),
                i.pid
            ),
            None => "files only: the run state needs an ESX host".to_string(),
        };
        call.emit(&DomainStatus { state: DomainState::ShutOff, id: -1, reason: Some(reason) });
        Ok(())
    }

    fn get_block_info(&self, name: &str, disk: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let vm = self.find(name)?;
        let devices = vm.devices()?;
        let d = devices.iter().find(|d| d.target == disk).ok_or_else(|| {
            let all: Vec<&str> = devices.iter().map(|d| d.target.as_str()).collect();
            DriverError::new(
                ErrorCode::NoDisk,
                format!("Domain '{name}' has no disk '{disk}'; its disks are: {}", all.join(", ")),
            )
        })?;
        let r = blockinfo::record(&vm, name, d, &self.stores, call)?;
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
        let vm = self.find(name)?;
        self.lock_for_change(name, &vm.path, call).map(drop)
    }
}

#[cfg(test)]
mod tests;

luavirt_plugin_api::export_driver!(
    VmxDriver,
    ops: [
        connect_list_domains,
        domain_define_xml,
        domain_get_xml,
        domain_get_state,
        domain_get_block_info,
        domain_snapshot_create,
        domain_snapshot_list,
        domain_snapshot_revert,
        domain_snapshot_delete,
        domain_reconcile,
    ]
);
