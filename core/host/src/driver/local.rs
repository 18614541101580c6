//! A connection of a driver loaded in this process, and the one place that runs a [`Call`]
//! through its vtable with raw pointers. The typed client runs its calls here for a local
//! driver, and `luavirt serve` runs here the calls a remote client sends.

use super::LoadedDriver;
use super::call::{CallOptions, CallOutput};
use super::request::{Call, ParamsFunction};
use crate::error::{Error, Result};
use luavirt_plugin_api::abi::{self, LvCall, LvParam, LvStr};
use luavirt_plugin_api::{Params, Uri};
use std::ffi::c_void;
use std::sync::Arc;

/// An open connection of a loaded driver; closed when dropped.
pub struct LocalConn {
    driver: Arc<LoadedDriver>,
    handle: *mut c_void,
}

impl Drop for LocalConn {
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

type OnDomain = unsafe extern "C" fn(*mut c_void, LvStr, u32, *mut LvCall) -> i32;
type OnDomainStr = unsafe extern "C" fn(*mut c_void, LvStr, LvStr, u32, *mut LvCall) -> i32;
type WithParams = unsafe extern "C" fn(*mut c_void, LvStr, LvStr, *const LvParam, usize, u32, *mut LvCall) -> i32;

impl LocalConn {
    /// Opens a connection to `uri` with `driver`.
    pub fn open(driver: Arc<LoadedDriver>, uri: &Uri) -> Result<LocalConn> {
        let handle = driver.open(uri)?;
        Ok(LocalConn { driver, handle })
    }

    /// The driver.
    pub fn driver(&self) -> &LoadedDriver {
        &self.driver
    }

    /// The driver's handle of this connection, for the checks that call it raw.
    pub(crate) fn handle(&self) -> *mut c_void {
        self.handle
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported { driver: self.driver.name.clone(), operation: what.to_string() }
    }

    fn invoke(
        &self,
        what: &str,
        options: &CallOptions,
        f: impl FnOnce(*mut c_void, *mut LvCall) -> i32,
    ) -> Result<CallOutput> {
        let handle = self.handle;
        self.driver.invoke(what, options, |call| f(handle, call))
    }

    /// A call on domain `name` with only flags.
    fn on_domain(&self, what: &str, f: OnDomain, name: &str, flags: u32, options: &CallOptions) -> Result<CallOutput> {
        // SAFETY: the function comes from the driver's vtable, called with the ABI's contract:
        // a handle it opened, a string borrowed for the call, the call context.
        self.invoke(what, options, |h, c| unsafe { f(h, LvStr::from_str(name), flags, c) })
    }

    /// A call on domain `name` with one string argument.
    #[allow(clippy::too_many_arguments)] // the ABI function's own arguments
    fn on_domain_str(
        &self,
        what: &str,
        f: OnDomainStr,
        name: &str,
        arg: &str,
        flags: u32,
        options: &CallOptions,
    ) -> Result<CallOutput> {
        // SAFETY: as in on_domain, with a second borrowed string.
        self.invoke(what, options, |h, c| unsafe { f(h, LvStr::from_str(name), LvStr::from_str(arg), flags, c) })
    }

    /// A call on domain `name` with a string and typed parameters.
    #[allow(clippy::too_many_arguments)] // the ABI function's own arguments
    fn with_params(
        &self,
        what: &str,
        f: WithParams,
        name: &str,
        arg: &str,
        params: &Params,
        flags: u32,
        options: &CallOptions,
    ) -> Result<CallOutput> {
        let p = params.to_abi();
        // SAFETY: `p` borrows `params`, which outlives the call; the rest as in on_domain.
        self.invoke(what, options, |h, c| unsafe {
            f(h, LvStr::from_str(name), LvStr::from_str(arg), p.as_ptr(), p.len(), flags, c)
        })
    }

    /// Runs `call` through the vtable.
    pub fn run(&self, call: &Call, options: &CallOptions) -> Result<CallOutput> {
        let o = options;
        match call {
            Call::ListDomains => {
                let f = function!(self, connect_list_domains, "listing domains");
                // SAFETY: the handle and the call context, as the ABI says.
                self.invoke("listing domains", o, |h, c| unsafe { f(h, 0, c) })
            }
            Call::DefineXml { xml } => {
                let f = function!(self, domain_define_xml, "defining domains");
                // SAFETY: the XML is borrowed for the call.
                self.invoke("defining a domain", o, |h, c| unsafe { f(h, LvStr::from_str(xml), 0, c) })
            }
            Call::Undefine { name } => {
                let f = function!(self, domain_undefine, "undefining domains");
                self.on_domain("undefining a domain", f, name, 0, o)
            }
            Call::DomainXml { name, flags } => {
                let f = function!(self, domain_get_xml, "reading domain XML");
                self.on_domain("reading domain XML", f, name, *flags, o)
            }
            Call::DomainState { name } => {
                let f = function!(self, domain_get_state, "reading domain state");
                self.on_domain("reading domain state", f, name, 0, o)
            }
            Call::Start { name } => {
                let f = function!(self, domain_create, "starting domains");
                self.on_domain("starting a domain", f, name, 0, o)
            }
            Call::Destroy { name } => {
                let f = function!(self, domain_destroy, "destroying domains");
                self.on_domain("destroying a domain", f, name, 0, o)
            }
            Call::BlockInfo { name, disk } => {
                let f = function!(self, domain_get_block_info, "reading disk image details");
                self.on_domain_str("reading disk image details", f, name, disk, 0, o)
            }
            Call::SnapshotCreate { name, xml, flags } => {
                let f = function!(self, domain_snapshot_create, "snapshots");
                // A flag newer than the driver is never sent: a driver that ignored it would
                // do something else than asked.
                if flags & abi::LV_SNAPSHOT_CREATE_SAVE != 0 && self.driver.abi.1 < 3 {
                    return Err(self.unsupported("save files (ABI 1.3; the driver is older)"));
                }
                self.on_domain_str("taking a snapshot", f, name, xml, *flags, o)
            }
            Call::SnapshotList { name } => {
                let f = function!(self, domain_snapshot_list, "snapshots");
                self.on_domain("listing snapshots", f, name, 0, o)
            }
            Call::SnapshotRevert { name, snapshot, flags } => {
                let f = function!(self, domain_snapshot_revert, "reverting to snapshots");
                self.on_domain_str("reverting to a snapshot", f, name, snapshot, *flags, o)
            }
            Call::SnapshotDelete { name, snapshot, flags } => {
                let f = function!(self, domain_snapshot_delete, "deleting snapshots");
                self.on_domain_str("deleting a snapshot", f, name, snapshot, *flags, o)
            }
            Call::WithParams { function, name, arg, params, flags } => {
                let v = self.driver.vtable();
                let (f, unsupported, what) = match function {
                    ParamsFunction::BlockCopy => (v.domain_block_copy, "block copy", "copying a disk"),
                    ParamsFunction::BlockPull => (v.domain_block_pull, "block pull", "pulling a disk's backing data"),
                    ParamsFunction::BlockCommit => (v.domain_block_commit, "block commit", "committing a disk"),
                    ParamsFunction::MigrateBegin => (v.domain_migrate_begin, "migration", "beginning a migration"),
                    ParamsFunction::MigratePrepare => (v.domain_migrate_prepare, "migration", "preparing a migration"),
                    ParamsFunction::MigratePerform => (v.domain_migrate_perform, "migration", "migrating"),
                    ParamsFunction::MigrateFinish => (v.domain_migrate_finish, "migration", "finishing a migration"),
                    ParamsFunction::MigrateConfirm => (v.domain_migrate_confirm, "migration", "confirming a migration"),
                };
                let f = f.ok_or_else(|| self.unsupported(unsupported))?;
                self.with_params(what, f, name, arg, &Params::from(params), *flags, o)
            }
            Call::BlockJobInfo { name, disk } => {
                let f = function!(self, domain_block_job_info, "block jobs");
                self.on_domain_str("reading a block job", f, name, disk, 0, o)
            }
            Call::BlockJobAbort { name, disk, flags } => {
                let f = function!(self, domain_block_job_abort, "block jobs");
                self.on_domain_str("ending a block job", f, name, disk, *flags, o)
            }
            Call::BlockJobWait { name, disk, flags } => {
                let f = function!(self, domain_block_job_wait, "waiting for block jobs");
                self.on_domain_str("waiting for a block job", f, name, disk, *flags, o)
            }
            Call::AbortJob { name } => {
                let f = function!(self, domain_abort_job, "aborting jobs");
                self.on_domain("aborting a job", f, name, 0, o)
            }
            Call::Reconcile { name } => {
                let f = function!(self, domain_reconcile, "finishing interrupted changes");
                self.on_domain("finishing an interrupted change", f, name, 0, o)
            }
            Call::Shutdown { name } => {
                let f = function!(self, domain_shutdown, "shutting domains down");
                self.on_domain("asking a domain to shut down", f, name, 0, o)
            }
            Call::Reset { name } => {
                let f = function!(self, domain_reset, "resetting domains");
                self.on_domain("resetting a domain", f, name, 0, o)
            }
            Call::Suspend { name } => {
                let f = function!(self, domain_suspend, "suspending domains");
                self.on_domain("suspending a domain", f, name, 0, o)
            }
            Call::Resume { name } => {
                let f = function!(self, domain_resume, "resuming domains");
                self.on_domain("resuming a domain", f, name, 0, o)
            }
            Call::AttachDisk { name, xml, flags } => {
                let f = function!(self, domain_attach_disk, "attaching disks to a domain");
                self.on_domain_str("attaching a disk", f, name, xml, *flags, o)
            }
            Call::DetachDisk { name, disk, flags } => {
                let f = function!(self, domain_detach_disk, "detaching disks from a domain");
                self.on_domain_str("detaching a disk", f, name, disk, *flags, o)
            }
            Call::SnapshotRedefine { name, xml } => {
                let f = function!(self, domain_snapshot_redefine, "changing snapshot records");
                self.on_domain_str("changing a snapshot's record", f, name, xml, 0, o)
            }
        }
    }
}
