//! The safe Rust side of the driver ABI.
//!
//! A driver implements [`Driver`] (every operation has a default that answers "unsupported"),
//! then exports itself once. A complete driver of one domain that is always shut off:
//!
//! ```
//! use luavirt_plugin_api::kit::{Call, Driver, DriverResult};
//! use luavirt_plugin_api::records::{DomainState, DomainSummary};
//! use luavirt_plugin_api::{DriverError, ErrorCode, Uri};
//!
//! pub struct Still;
//!
//! impl Driver for Still {
//!     const NAME: &'static str = "still";
//!     const VERSION: &'static str = "1.0.0";
//!     const DESCRIPTION: &'static str = "One domain that never runs";
//!     const URI_SCHEMES: &'static str = "still";
//!     const CAPABILITIES: u64 = luavirt_plugin_api::abi::LV_CAP_READ_ONLY;
//!
//!     fn open(uri: &Uri, _flags: u32, _call: &mut Call) -> DriverResult<Self> {
//!         match uri.path.as_str() {
//!             "/" | "" => Ok(Still),
//!             other => Err(DriverError::new(ErrorCode::InvalidUri, format!("{uri}: no path {other} here; use still:///"))),
//!         }
//!     }
//!
//!     fn list_domains(&self, _flags: u32, call: &mut Call) -> DriverResult {
//!         call.emit(&DomainSummary {
//!             name: "quiet".into(),
//!             uuid: "8c3f1d0e-2b4a-4c5d-9e6f-708192a3b4c5".into(),
//!             state: DomainState::ShutOff,
//!             id: -1,
//!             persistent: true,
//!         });
//!         Ok(())
//!     }
//! }
//!
//! luavirt_plugin_api::export_driver!(Still, ops: [connect_list_domains]);
//! # let info = unsafe { &*luavirt_driver_entry_v1() };
//! # assert!(info.vtable.is_null() == false);
//! ```
//!
//! The listed operations fill the vtable; the others stay NULL, which the host reports as
//! unsupported. Each exported function refuses flag bits outside the function's `LV_*_FLAGS`
//! mask and catches panics, turning them into `LV_ERR_DRIVER_PANIC` errors, so a bug in a
//! driver never unwinds into the host. Results are the typed records of [`crate::records`],
//! emitted with [`Call::emit`].

#[doc(hidden)]
pub mod entry;

use crate::abi::{LvCall, LvHostApi, LvStr};
use crate::records::{CommitParams, CopyParams, MigrateParams, PullParams, Record};
use crate::{DriverError, Uri};

/// Log levels for [`Host::log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something the user should know.
    Warning = 2,
    /// Progress worth a line.
    Info = 3,
    /// Details.
    Debug = 4,
}

/// The host's functions, as a driver keeps them for the life of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    api: *const LvHostApi,
}

// The host API table is immutable and its functions are safe to call from any thread.
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl Host {
    pub(crate) fn new(api: *const LvHostApi) -> Host {
        Host { api }
    }

    fn api(&self) -> &LvHostApi {
        // SAFETY: the host passes a table that lives as long as the connection.
        unsafe { &*self.api }
    }

    /// Writes a log line through the host.
    pub fn log(&self, level: Level, message: &str) {
        unsafe { (self.api().log)(std::ptr::null_mut(), level as i32, LvStr::from_str(message)) }
    }
}

/// One call in progress: where results, progress and log lines go.
pub struct Call {
    host: Host,
    call: *mut LvCall,
}

impl Call {
    pub(crate) fn new(host: Host, call: *mut LvCall) -> Call {
        Call { host, call }
    }

    /// The host, to keep for logging outside calls.
    pub fn host(&self) -> Host {
        self.host
    }

    /// Hands a text result to the host.
    pub fn emit_text(&mut self, text: &str) {
        unsafe { (self.host.api().emit_text)(self.call, LvStr::from_str(text)) }
    }

    /// Hands one record to the host (one of [`crate::records`]).
    pub fn emit(&mut self, record: &impl Record) {
        // The ABI list borrows the strings of `params`, which must outlive the callback.
        let params = record.to_params();
        let abi = params.to_abi();
        unsafe { (self.host.api().emit_record)(self.call, abi.as_ptr(), abi.len()) }
    }

    /// Reports progress: `done` of `total` units, and what is being done.
    pub fn progress(&mut self, done: u64, total: u64, stage: &str) {
        unsafe { (self.host.api().progress)(self.call, done, total, LvStr::from_str(stage)) }
    }

    /// Whether a progress report may lead to a call back into this driver (a script's
    /// callback), so that it must not be sent while holding a lock such a call would take.
    /// True with a host that cannot say (older than ABI 1.3).
    pub fn progress_may_reenter(&self) -> bool {
        let api = self.host.api();
        let end = std::mem::offset_of!(LvHostApi, progress_reenters) + std::mem::size_of::<usize>();
        if (api.struct_size as usize) < end {
            return true;
        }
        unsafe { (api.progress_reenters)(self.call) }
    }

    /// Whether the user asked to cancel this call.
    pub fn is_cancelled(&self) -> bool {
        unsafe { (self.host.api().is_cancelled)(self.call) }
    }

    /// Writes a log line attributed to this call.
    pub fn log(&mut self, level: Level, message: &str) {
        unsafe { (self.host.api().log)(self.call, level as i32, LvStr::from_str(message)) }
    }

    pub(crate) fn set_error(&mut self, err: &DriverError) -> i32 {
        let code = err.code.as_i32();
        unsafe { (self.host.api().set_error)(self.call, code, LvStr::from_str(&err.message)) };
        code
    }
}

/// Result of a driver operation.
pub type DriverResult<T = ()> = Result<T, DriverError>;

/// A driver, as Rust authors write one. One value per open connection; the host may call it
/// from one thread at a time per connection.
#[allow(unused_variables)]
pub trait Driver: Sized + Send + 'static {
    /// Short name, like `qemu`.
    const NAME: &'static str;
    /// Version of the driver.
    const VERSION: &'static str;
    /// One line saying what it drives.
    const DESCRIPTION: &'static str;
    /// URI schemes served, separated by commas.
    const URI_SCHEMES: &'static str;
    /// `LV_CAP_*` bits.
    const CAPABILITIES: u64;

    /// Opens a connection for `uri` (its scheme is one of [`Driver::URI_SCHEMES`]).
    fn open(uri: &Uri, flags: u32, call: &mut Call) -> DriverResult<Self>;

    /// Emits one record per domain (see `LvDriverVtable::connect_list_domains`).
    fn list_domains(&self, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Listing domains"))
    }
    /// Defines a domain from XML; emits a record with `name` and `uuid`.
    fn define_xml(&self, xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Defining domains"))
    }
    /// Removes a domain's definition.
    fn undefine(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Undefining domains"))
    }
    /// Emits the domain's XML.
    fn get_xml(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Reading domain XML"))
    }
    /// Emits a record with the domain's `state` and `id`.
    fn get_state(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Reading domain state"))
    }
    /// Starts the domain.
    fn create(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Starting domains"))
    }
    /// Stops the domain at once.
    fn destroy(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Destroying domains"))
    }
    /// Emits a record describing the image of `disk`.
    fn get_block_info(&self, name: &str, disk: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Reading disk image details"))
    }
    /// Takes the snapshot described by the resolved `<domainsnapshot>` `xml`.
    fn snapshot_create(&self, name: &str, xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Taking snapshots"))
    }
    /// Emits every snapshot's XML, then a record with `current`.
    fn snapshot_list(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Listing snapshots"))
    }
    /// Reverts to `snapshot`.
    fn snapshot_revert(&self, name: &str, snapshot: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Reverting to snapshots"))
    }
    /// Deletes `snapshot`.
    fn snapshot_delete(&self, name: &str, snapshot: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Deleting snapshots"))
    }
    /// Copies `disk` to `params.dest`.
    fn block_copy(&self, name: &str, disk: &str, params: &CopyParams, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Block copy"))
    }
    /// Pulls backing data into `disk`, down to `params.base`.
    fn block_pull(&self, name: &str, disk: &str, params: &PullParams, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Block pull"))
    }
    /// Commits `disk`'s images from `params.top` into `params.base`.
    fn block_commit(&self, name: &str, disk: &str, params: &CommitParams, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Block commit"))
    }
    /// Emits a record about `disk`'s block job, if there is one.
    fn block_job_info(&self, name: &str, disk: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Block job information"))
    }
    /// Waits for `disk`'s block job, then pivots or finishes it as `flags` ask.
    fn block_job_wait(&self, name: &str, disk: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Waiting for block jobs"))
    }
    /// Cancels or pivots `disk`'s block job.
    fn block_job_abort(&self, name: &str, disk: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Ending block jobs"))
    }
    /// Finishes or undoes a change to `name` that a killed call left unfinished.
    fn reconcile(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Reconciling interrupted changes"))
    }
    /// Migration, source: checks the plan; emits the domain XML to send.
    fn migrate_begin(&self, name: &str, params: &MigrateParams, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Migration"))
    }
    /// Migration, destination: readies `xml`'s disks and, live, a paused domain waiting for
    /// its memory; emits [`crate::records::MigrateEndpoints`].
    fn migrate_prepare(
        &self,
        name: &str,
        xml: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        Err(DriverError::unsupported("Migration"))
    }
    /// Migration, source: moves the copied disks and memory; emits
    /// [`crate::records::MigrateSent`].
    fn migrate_perform(&self, name: &str, params: &MigrateParams, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Migration"))
    }
    /// Migration, destination: commits or (with `LV_MIGRATE_FAILED`) undoes; emits
    /// [`crate::records::MigrateArrived`].
    fn migrate_finish(&self, name: &str, params: &MigrateParams, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Migration"))
    }
    /// Migration, source: stops the domain or (with `LV_MIGRATE_FAILED`) puts it back.
    fn migrate_confirm(&self, name: &str, params: &MigrateParams, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Migration"))
    }
    /// Aborts the migration of `name` another call is running.
    fn abort_job(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Aborting jobs"))
    }
    /// Asks the guest of `name` to shut down (ACPI) and returns without waiting.
    fn shutdown(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Shutting domains down"))
    }
    /// Resets `name` at once (its reset button).
    fn reset(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Resetting domains"))
    }
    /// Pauses `name`.
    fn suspend(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Suspending domains"))
    }
    /// Resumes paused `name`.
    fn resume(&self, name: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Resuming domains"))
    }
    /// Attaches the disk `disk_xml` (one `<disk>`) to `name`, live and/or in its definition
    /// as `flags` (`LV_AFFECT_*`) say.
    fn attach_disk(&self, name: &str, disk_xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Attaching disks"))
    }
    /// Detaches disk `target` from `name`, live and/or from its definition.
    fn detach_disk(&self, name: &str, target: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Detaching disks"))
    }
    /// Replaces the stored record of the snapshot `xml` names with `xml` (metadata only).
    fn snapshot_redefine(&self, name: &str, xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        Err(DriverError::unsupported("Redefining snapshots"))
    }
}

/// The host of this process, as the first connection met it: for log lines written where no
/// call is at hand (a QMP client, a tool run deep in a helper).
static PROCESS_HOST: std::sync::OnceLock<Host> = std::sync::OnceLock::new();

pub(crate) fn remember_host(host: Host) {
    let _ = PROCESS_HOST.set(host);
}

/// Writes a log line through the host, from anywhere in the driver (before the first
/// connection opens there is no host, and the line goes nowhere). Details of what the driver
/// runs (each QMP command and reply, each tool with its arguments) go at [`Level::Debug`],
/// which the host shows with `luavirt -vv`.
pub fn log(level: Level, message: &str) {
    if let Some(h) = PROCESS_HOST.get() {
        h.log(level, message);
    }
}
