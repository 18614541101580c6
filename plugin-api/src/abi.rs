//! The C ABI between the luavirt host and a driver plugin.
//!
//! Everything here is `#[repr(C)]` and mirrored in `include/luavirt_driver.h`, which is
//! generated from this file by cbindgen (a test regenerates it and compares, another compiles
//! a C program against it and compares every size and offset with these definitions, and a
//! third holds every released layout against fixed numbers).
//!
//! The rules, which the header repeats for C authors (see `cbindgen.toml`):
//!
//! **Versions.** Structs are append-only: each starts with `struct_size`, and a reader only
//! touches fields within the size the writer declared. New fields and functions go at the end
//! with a comment naming the minor that added them, and `LV_ABI_MINOR` goes up by one.
//! `LV_ABI_MAJOR` changes only when something shipped changes meaning or place; the host
//! refuses a driver of another major and says why. A driver built for a newer minor than the
//! host's is loaded with the functions of the host's minor (`luavirt drivers` says so); one
//! built for an older minor has the later functions unsupported. Numbers (errors, flags,
//! states, capabilities) keep their values forever; a retired one stays as a comment.
//!
//! **Memory.** Strings are UTF-8 `(pointer, length)` pairs, borrowed for the duration of the
//! call that passes them; nothing allocated on one side is freed on the other: results go to
//! the host through the `emit_*` callbacks, which copy them. `LvDriverInfo` and its vtable
//! are statics that live as long as the process. The host never unloads a driver.
//!
//! **Calls.** Every function takes a `flags` word; each documents the bits it accepts
//! (`LV_*_FLAGS` masks) and a driver must refuse any other bit with `LV_ERR_UNSUPPORTED`,
//! naming it, so a host asking an old driver for something new hears "no" instead of getting
//! the old behaviour. A NULL function means "unsupported"; a function that could never do
//! anything stays NULL. Errors are an `LV_ERR_*` return plus `set_error` with a message that
//! names the object and says what to do. Records are typed lists keyed by the `LV_KEY_*`
//! names. A driver must not unwind across the boundary.
//!
//! **Threads.** The host calls a driver from one thread at a time per connection, and never
//! re-enters a connection from inside one of its calls, except from the callbacks below.
//! A driver calls `emit_text`, `emit_record`, `set_error`, `progress`, `is_cancelled` and
//! `log` (with a non-NULL call) only from the thread the host called it on, during that call;
//! the host ignores such callbacks from any other thread and logs that it did. `log` with a
//! NULL call may come from any thread at any time. `progress` runs the caller's code (a Lua
//! callback), which may call into the driver again on the same connection: a driver reports
//! progress only while it holds no lock of its own that such a call would need.
//!
//! **Documents.** `domain_define_xml` keeps the XML it is given losslessly, luavirt's own
//! metadata (`<metadata>` in luavirt's namespaces: disk sets, modes) included, or keeps that
//! metadata where its format has a place for it (a sidecar) and shows it again in
//! `domain_get_xml`.

use std::ffi::c_void;

/// Major version of this ABI. A host loads only drivers of the same major.
pub const LV_ABI_MAJOR: u16 = 1;
/// Minor version of this ABI: the number of append-only extensions since the major began.
pub const LV_ABI_MINOR: u16 = 3;

/// Every call succeeded.
pub const LV_OK: i32 = 0;
/// Something failed inside the driver that fits no other code.
pub const LV_ERR_INTERNAL: i32 = 1;
/// The driver does not support this operation or flag.
pub const LV_ERR_UNSUPPORTED: i32 = 2;
/// An argument is malformed or out of range.
pub const LV_ERR_INVALID_ARG: i32 = 3;
/// No domain has that name.
pub const LV_ERR_NO_DOMAIN: i32 = 4;
/// An object with that name or UUID already exists.
pub const LV_ERR_EXISTS: i32 = 5;
/// The operation is not valid in the domain's current state (start a running domain, ...).
pub const LV_ERR_INVALID_STATE: i32 = 6;
/// A document (domain XML, snapshot XML) is malformed or breaks a rule.
pub const LV_ERR_XML: i32 = 7;
/// A file could not be read or written.
pub const LV_ERR_IO: i32 = 8;
/// The hypervisor or one of its tools failed (qemu-img, QMP, ...).
pub const LV_ERR_HYPERVISOR: i32 = 9;
/// The driver panicked; the call did not complete.
pub const LV_ERR_DRIVER_PANIC: i32 = 10;
/// The domain has no disk of that name.
pub const LV_ERR_NO_DISK: i32 = 11;
/// The call was cancelled through `LvHostApi::is_cancelled`.
pub const LV_ERR_CANCELLED: i32 = 12;
/// A state file kept by the driver is corrupt; it was left as it was.
pub const LV_ERR_CORRUPT_STATE: i32 = 13;
/// No snapshot has that name.
pub const LV_ERR_NO_SNAPSHOT: i32 = 14;
/// Another process holds a lock the call needs.
pub const LV_ERR_BUSY: i32 = 15;
/// The connection URI is malformed or names something this driver cannot serve.
pub const LV_ERR_INVALID_URI: i32 = 16;

/// `LvParam::kind`: a signed 64-bit integer in `int_value`.
pub const LV_PARAM_INT: u32 = 1;
/// `LvParam::kind`: an unsigned 64-bit integer in `uint_value`.
pub const LV_PARAM_UINT: u32 = 2;
/// `LvParam::kind`: a double in `double_value`.
pub const LV_PARAM_DOUBLE: u32 = 3;
/// `LvParam::kind`: a boolean in `int_value` (0 or 1).
pub const LV_PARAM_BOOL: u32 = 4;
/// `LvParam::kind`: a UTF-8 string in `string_value`.
pub const LV_PARAM_STRING: u32 = 5;

/// Domain state numbers, as libvirt numbers `virDomainState`.
pub const LV_STATE_NOSTATE: u64 = 0;
/// The domain is running.
pub const LV_STATE_RUNNING: u64 = 1;
/// The domain is blocked on a resource.
pub const LV_STATE_BLOCKED: u64 = 2;
/// The domain is paused.
pub const LV_STATE_PAUSED: u64 = 3;
/// The domain is shutting down.
pub const LV_STATE_SHUTDOWN: u64 = 4;
/// The domain is shut off (defined, not running).
pub const LV_STATE_SHUTOFF: u64 = 5;
/// The domain crashed.
pub const LV_STATE_CRASHED: u64 = 6;
/// The domain is suspended by guest power management.
pub const LV_STATE_PMSUSPENDED: u64 = 7;

/// Capability: the driver keeps domain definitions (define, undefine).
pub const LV_CAP_DEFINE: u64 = 1 << 0;
/// Capability: the driver starts and stops domains.
pub const LV_CAP_LIFECYCLE: u64 = 1 << 1;
/// Capability: the driver reports disk image details (format, size, backing chain).
pub const LV_CAP_BLOCK_INFO: u64 = 1 << 2;
/// Capability: the driver only reads; it never changes anything.
pub const LV_CAP_READ_ONLY: u64 = 1 << 3;
/// Capability: snapshots.
pub const LV_CAP_SNAPSHOT: u64 = 1 << 4;
/// Capability: block jobs (copy, pull, commit).
pub const LV_CAP_BLOCK_JOBS: u64 = 1 << 5;
/// Capability: migration.
pub const LV_CAP_MIGRATION: u64 = 1 << 6;

/// `domain_get_xml` flag: the persistent definition even when the domain is running.
pub const LV_XML_INACTIVE: u32 = 1 << 0;

/// `log` level: something failed.
pub const LV_LOG_ERROR: i32 = 1;
/// `log` level: something the user should know.
pub const LV_LOG_WARNING: i32 = 2;
/// `log` level: progress worth a line.
pub const LV_LOG_INFO: i32 = 3;
/// `log` level: details.
pub const LV_LOG_DEBUG: i32 = 4;

// ---- ABI 1.1: snapshot and block job flags (libvirt's numbers where libvirt has the flag) ----

/// `domain_snapshot_create`: take the snapshot but keep no metadata for it.
pub const LV_SNAPSHOT_CREATE_NO_METADATA: u32 = 1 << 2;
/// `domain_snapshot_create`: stop the domain once the snapshot is taken.
pub const LV_SNAPSHOT_CREATE_HALT: u32 = 1 << 3;
/// `domain_snapshot_create`: disks only, no memory state.
pub const LV_SNAPSHOT_CREATE_DISK_ONLY: u32 = 1 << 4;
/// `domain_snapshot_create`: overlay files that already exist are used as they are.
pub const LV_SNAPSHOT_CREATE_REUSE_EXT: u32 = 1 << 5;
/// `domain_snapshot_create`: all disks or none (luavirt always works this way).
pub const LV_SNAPSHOT_CREATE_ATOMIC: u32 = 1 << 7;
/// `domain_snapshot_create`: keep the domain running while its memory is saved.
pub const LV_SNAPSHOT_CREATE_LIVE: u32 = 1 << 8;
/// `domain_snapshot_create` (ABI 1.3): a save: the memory file starts with luavirt's save
/// header (`luavirt_plugin_api::savefile`: the domain, the snapshot, each disk's saved image),
/// so it restores on its own; a revert reads the memory after the header.
pub const LV_SNAPSHOT_CREATE_SAVE: u32 = 1 << 24;
/// `domain_snapshot_revert`: the domain runs after the revert.
pub const LV_SNAPSHOT_REVERT_RUNNING: u32 = 1 << 0;
/// `domain_snapshot_revert`: the domain is paused after the revert.
pub const LV_SNAPSHOT_REVERT_PAUSED: u32 = 1 << 1;
/// `domain_snapshot_revert`: revert even where it loses a running domain's state.
pub const LV_SNAPSHOT_REVERT_FORCE: u32 = 1 << 2;
/// `domain_snapshot_delete`: only forget the snapshot; leave images as they are.
pub const LV_SNAPSHOT_DELETE_METADATA_ONLY: u32 = 1 << 1;
/// `domain_snapshot_delete`: end the snapshot's mirrors by switching the disks to the mirror.
pub const LV_SNAPSHOT_DELETE_MIRROR_PIVOT: u32 = 1 << 3;
/// `domain_snapshot_delete`: end the snapshot's mirrors and keep the disks on their source.
pub const LV_SNAPSHOT_DELETE_MIRROR_ABORT: u32 = 1 << 4;
/// Block jobs: wait until the job is ready (copy, active commit) or done (pull, commit).
pub const LV_BLOCK_JOB_WAIT: u32 = 1 << 0;
/// Block jobs: after waiting, switch the disk to the new image (copy, active commit).
pub const LV_BLOCK_JOB_PIVOT: u32 = 1 << 1;
/// Block copy: after waiting, end the job and keep the disk on its source (the copy stays).
pub const LV_BLOCK_JOB_FINISH: u32 = 1 << 2;
/// Block copy: copy only the top image; the copy gets the same backing chain.
pub const LV_BLOCK_COPY_SHALLOW: u32 = 1 << 3;
/// Block copy: the destination exists already and is used as it is.
pub const LV_BLOCK_COPY_REUSE_EXT: u32 = 1 << 4;

// ---- ABI 1.3: migration flags (libvirt's numbers where libvirt has the flag) ----

/// Migration: the domain keeps running while its memory moves.
pub const LV_MIGRATE_LIVE: u32 = 1 << 0;
/// Migration: the domain is defined at the destination (else it is gone once it stops).
pub const LV_MIGRATE_PERSIST_DEST: u32 = 1 << 3;
/// Migration: the source's definition is removed once the destination has the domain.
pub const LV_MIGRATE_UNDEFINE_SOURCE: u32 = 1 << 4;
/// Migration: the domain stays paused at the destination.
pub const LV_MIGRATE_PAUSED: u32 = 1 << 5;
/// Migration: the domain is shut off; only its definition and disks move.
pub const LV_MIGRATE_OFFLINE: u32 = 1 << 10;
/// `domain_migrate_finish`, `domain_migrate_confirm`: the migration failed; undo.
pub const LV_MIGRATE_FAILED: u32 = 1 << 24;
/// `domain_attach_disk`, `domain_detach_disk` (ABI 1.3): change the running domain
/// (libvirt's `VIR_DOMAIN_AFFECT_LIVE`).
pub const LV_AFFECT_LIVE: u32 = 1 << 0;
/// `domain_attach_disk`, `domain_detach_disk` (ABI 1.3): change the persistent definition
/// (libvirt's `VIR_DOMAIN_AFFECT_CONFIG`).
pub const LV_AFFECT_CONFIG: u32 = 1 << 1;

// ---- The flags each function accepts; any other bit is refused with LV_ERR_UNSUPPORTED ----

/// Flags of `domain_get_xml`.
pub const LV_GET_XML_FLAGS: u32 = LV_XML_INACTIVE;
/// Flags of `domain_snapshot_create`.
pub const LV_SNAPSHOT_CREATE_FLAGS: u32 = LV_SNAPSHOT_CREATE_NO_METADATA
    | LV_SNAPSHOT_CREATE_HALT
    | LV_SNAPSHOT_CREATE_DISK_ONLY
    | LV_SNAPSHOT_CREATE_REUSE_EXT
    | LV_SNAPSHOT_CREATE_ATOMIC
    | LV_SNAPSHOT_CREATE_LIVE
    | LV_SNAPSHOT_CREATE_SAVE;
/// Flags of `domain_snapshot_revert`.
pub const LV_SNAPSHOT_REVERT_FLAGS: u32 =
    LV_SNAPSHOT_REVERT_RUNNING | LV_SNAPSHOT_REVERT_PAUSED | LV_SNAPSHOT_REVERT_FORCE;
/// Flags of `domain_snapshot_delete`.
pub const LV_SNAPSHOT_DELETE_FLAGS: u32 =
    LV_SNAPSHOT_DELETE_METADATA_ONLY | LV_SNAPSHOT_DELETE_MIRROR_PIVOT | LV_SNAPSHOT_DELETE_MIRROR_ABORT;
/// Flags of `domain_block_copy`.
pub const LV_BLOCK_COPY_FLAGS: u32 =
    LV_BLOCK_JOB_WAIT | LV_BLOCK_JOB_PIVOT | LV_BLOCK_JOB_FINISH | LV_BLOCK_COPY_SHALLOW | LV_BLOCK_COPY_REUSE_EXT;
/// Flags of `domain_block_pull`.
pub const LV_BLOCK_PULL_FLAGS: u32 = LV_BLOCK_JOB_WAIT;
/// Flags of `domain_block_commit`.
pub const LV_BLOCK_COMMIT_FLAGS: u32 = LV_BLOCK_JOB_WAIT | LV_BLOCK_JOB_PIVOT;
/// Flags of `domain_block_job_abort`.
pub const LV_BLOCK_JOB_ABORT_FLAGS: u32 = LV_BLOCK_JOB_PIVOT;
/// Flags of `domain_block_job_wait`.
pub const LV_BLOCK_JOB_WAIT_FLAGS: u32 = LV_BLOCK_JOB_PIVOT | LV_BLOCK_JOB_FINISH;
/// Flags of `domain_migrate_begin`, `domain_migrate_prepare` and `domain_migrate_perform`.
pub const LV_MIGRATE_FLAGS: u32 =
    LV_MIGRATE_LIVE | LV_MIGRATE_PERSIST_DEST | LV_MIGRATE_UNDEFINE_SOURCE | LV_MIGRATE_PAUSED | LV_MIGRATE_OFFLINE;
/// Flags of `domain_migrate_finish` and `domain_migrate_confirm`.
pub const LV_MIGRATE_END_FLAGS: u32 = LV_MIGRATE_FLAGS | LV_MIGRATE_FAILED;
/// Flags of `domain_attach_disk` and `domain_detach_disk` (ABI 1.3).
pub const LV_AFFECT_FLAGS: u32 = LV_AFFECT_LIVE | LV_AFFECT_CONFIG;
/// Flags of every other function: none yet.
pub const LV_NO_FLAGS: u32 = 0;

/// A borrowed UTF-8 string: `len` bytes at `ptr`, not NUL-terminated. `ptr` may be NULL only
/// when `len` is 0. Valid for the duration of the call that passes it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LvStr {
    /// First byte.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

/// One typed parameter. Lists of parameters may repeat a key (`migrate_disks=vda`,
/// `migrate_disks=vdb`); order is kept. Only the field that `kind` names is meaningful.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LvParam {
    /// Parameter name.
    pub key: LvStr,
    /// One of `LV_PARAM_*`.
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
    /// Value of an `LV_PARAM_INT` or `LV_PARAM_BOOL`.
    pub int_value: i64,
    /// Value of an `LV_PARAM_UINT`.
    pub uint_value: u64,
    /// Value of an `LV_PARAM_DOUBLE`.
    pub double_value: f64,
    /// Value of an `LV_PARAM_STRING`.
    pub string_value: LvStr,
}

/// The host's context for one driver call. Opaque to drivers: pass it back to the host's
/// callbacks. Valid until the driver function returns.
pub struct LvCall {
    _private: [u8; 0],
}

/// Host functions a driver may call. Passed to `connect_open`; valid for the life of the
/// connection. Append-only: check `struct_size` before using a field added after ABI 1.0.
#[repr(C)]
pub struct LvHostApi {
    /// `sizeof(LvHostApi)` as the host was built.
    pub struct_size: u32,
    /// The host's `LV_ABI_MAJOR`.
    pub abi_major: u16,
    /// The host's `LV_ABI_MINOR`.
    pub abi_minor: u16,
    /// Hands a text result (a document, a name) to the host, which copies it.
    pub emit_text: unsafe extern "C" fn(call: *mut LvCall, text: LvStr),
    /// Hands one record (a list of typed parameters) to the host, which copies it.
    pub emit_record: unsafe extern "C" fn(call: *mut LvCall, params: *const LvParam, count: usize),
    /// Records the call's error: one of `LV_ERR_*` and a message that names the object and
    /// says what to do. The function must then return the same code.
    pub set_error: unsafe extern "C" fn(call: *mut LvCall, code: i32, message: LvStr),
    /// Reports progress of a long call: `done` of `total` units, and what it is doing.
    pub progress: unsafe extern "C" fn(call: *mut LvCall, done: u64, total: u64, stage: LvStr),
    /// Returns true when the user asked to cancel the call; the driver should stop, undo what
    /// it can, and return `LV_ERR_CANCELLED`.
    pub is_cancelled: unsafe extern "C" fn(call: *mut LvCall) -> bool,
    /// Writes a log line. `level`: 1 error, 2 warning, 3 info, 4 debug. `call` may be NULL.
    pub log: unsafe extern "C" fn(call: *mut LvCall, level: i32, message: LvStr),
    // ---- ABI 1.3: check struct_size before use ----
    /// Returns false when whoever receives this call's progress only shows it and never calls
    /// back into a driver: the driver may then report progress while it holds its own locks
    /// (a snapshot saving memory). True, or a host older than 1.3: a report may lead to a
    /// call back (a script's callback), so hold reports back while holding a lock.
    pub progress_reenters: unsafe extern "C" fn(call: *mut LvCall) -> bool,
}

/// Opens a connection for `uri`, whose scheme the driver claimed. On success stores the
/// driver's connection handle in `*conn_out` and returns `LV_OK`.
pub type LvConnectOpenFn = Option<
    unsafe extern "C" fn(
        host: *const LvHostApi,
        uri: LvStr,
        flags: u32,
        conn_out: *mut *mut c_void,
        call: *mut LvCall,
    ) -> i32,
>;
/// Releases a connection handle returned by `connect_open`.
pub type LvConnectCloseFn = Option<unsafe extern "C" fn(conn: *mut c_void)>;
/// An operation on the connection.
pub type LvConnectOpFn = Option<unsafe extern "C" fn(conn: *mut c_void, flags: u32, call: *mut LvCall) -> i32>;
/// An operation on the connection with one string argument.
pub type LvConnectStrOpFn =
    Option<unsafe extern "C" fn(conn: *mut c_void, arg: LvStr, flags: u32, call: *mut LvCall) -> i32>;
/// An operation on the domain called `name`.
pub type LvDomainOpFn =
    Option<unsafe extern "C" fn(conn: *mut c_void, name: LvStr, flags: u32, call: *mut LvCall) -> i32>;
/// An operation on the domain called `name` with one string argument and typed parameters.
pub type LvDomainParamsOpFn = Option<
    unsafe extern "C" fn(
        conn: *mut c_void,
        name: LvStr,
        arg: LvStr,
        params: *const LvParam,
        nparams: usize,
        flags: u32,
        call: *mut LvCall,
    ) -> i32,
>;
/// An operation on the domain called `name` with one string argument.
pub type LvDomainStrOpFn =
    Option<unsafe extern "C" fn(conn: *mut c_void, name: LvStr, arg: LvStr, flags: u32, call: *mut LvCall) -> i32>;

/// The driver's functions. NULL means unsupported. Append-only.
#[repr(C)]
pub struct LvDriverVtable {
    /// `sizeof(LvDriverVtable)` as the driver was built.
    pub struct_size: u32,
    /// Zero.
    pub reserved: u32,
    // ---- ABI 1.0 ----
    /// Opens a connection. Required.
    pub connect_open: LvConnectOpenFn,
    /// Closes a connection. Required.
    pub connect_close: LvConnectCloseFn,
    /// Emits one record per domain: `name` (string), `uuid` (string), `state` (uint,
    /// `LV_STATE_*`), `id` (int, -1 when not running), `persistent` (bool).
    pub connect_list_domains: LvConnectOpFn,
    /// Defines (or redefines) a domain from domain XML `arg`; emits one record with `name`
    /// and `uuid`. The XML is kept losslessly.
    pub domain_define_xml: LvConnectStrOpFn,
    /// Removes the definition of domain `name`.
    pub domain_undefine: LvDomainOpFn,
    /// Emits the domain XML as one text. Flags: `LV_XML_INACTIVE`.
    pub domain_get_xml: LvDomainOpFn,
    /// Emits one record: `state` (uint), `id` (int), `reason` (string, optional).
    pub domain_get_state: LvDomainOpFn,
    /// Starts the domain.
    pub domain_create: LvDomainOpFn,
    /// Stops the domain at once, like pulling the plug.
    pub domain_destroy: LvDomainOpFn,
    /// Emits one record about the image of disk `arg` (a target name): `format` (string),
    /// `capacity` and `allocation` (uint, bytes), then for each image below it in the backing
    /// chain, nearest first, a `backing` (string path) followed by its `backing_format`.
    pub domain_get_block_info: LvDomainStrOpFn,
    // ---- ABI 1.1: snapshots and block jobs ----
    /// Takes a snapshot. `arg` is a `<domainsnapshot>` in which the host has resolved every
    /// disk (each `<disk>` has `snapshot=` no, internal, external or manual, and an external
    /// one its overlay `<source file>` and `<driver type>`). Flags: `LV_SNAPSHOT_CREATE_*`.
    /// Emits the snapshot as stored (with creation time, state, parent and `<domain>`).
    pub domain_snapshot_create: LvDomainStrOpFn,
    /// Emits each snapshot's XML as one text, in creation order, then one record with
    /// `current` (string, absent when there is none).
    pub domain_snapshot_list: LvDomainOpFn,
    /// Reverts the domain to snapshot `arg`. Flags: `LV_SNAPSHOT_REVERT_*`.
    pub domain_snapshot_revert: LvDomainStrOpFn,
    /// Deletes snapshot `arg` (only it; the host orders deletes of several), keeping every
    /// other snapshot's data. Flags: `LV_SNAPSHOT_DELETE_*`.
    pub domain_snapshot_delete: LvDomainStrOpFn,
    /// Copies disk `arg` to `dest` (string param; `format` optional) while the domain runs.
    /// Flags: `LV_BLOCK_JOB_*`, `LV_BLOCK_COPY_*`.
    pub domain_block_copy: LvDomainParamsOpFn,
    /// Pulls the data of the backing images of disk `arg` into it, down to `base` (string
    /// param, optional: all of them). Flags: `LV_BLOCK_JOB_WAIT`.
    pub domain_block_pull: LvDomainParamsOpFn,
    /// Commits disk `arg`'s images from `top` (default: the active image) down into `base`
    /// (default: the next one below). Flags: `LV_BLOCK_JOB_WAIT`, `LV_BLOCK_JOB_PIVOT`.
    pub domain_block_commit: LvDomainParamsOpFn,
    /// Emits one record about disk `arg`'s block job: `type` (copy, pull, commit,
    /// active-commit), `current` and `end` (uint), `ready` (bool), `status` (string); no
    /// record when there is no job.
    pub domain_block_job_info: LvDomainStrOpFn,
    /// Ends disk `arg`'s block job: cancels it, or with `LV_BLOCK_JOB_PIVOT` switches the disk
    /// to the new image (a ready copy or active commit).
    pub domain_block_job_abort: LvDomainStrOpFn,
    /// Waits for disk `arg`'s block job: until ready (copy, active commit) or done (pull,
    /// commit), reporting progress; then with `LV_BLOCK_JOB_PIVOT` switches the disk to the
    /// new image, with `LV_BLOCK_JOB_FINISH` ends a copy on its source.
    pub domain_block_job_wait: LvDomainStrOpFn,
    // ---- ABI 1.2: crash safety ----
    /// Finishes or undoes a change to domain `name` that an earlier call left unfinished
    /// (its process was killed), from the truth (the hypervisor, the files), and logs at
    /// warning level what it repaired; does nothing when there is none. The host calls it
    /// after taking its own lock on the domain and before it reads the domain to change it.
    /// A driver whose every change is a single atomic step leaves it NULL.
    pub domain_reconcile: LvDomainOpFn,
    // ---- ABI 1.3: migration ----
    // A migration moves domain `name` from a source connection to a destination connection
    // in five calls, so that the destination may be another process on another machine:
    // begin (source), prepare (destination), perform (source), finish (destination), confirm
    // (source). Each takes the same parameters: `migration` (string, an id the host chose),
    // then one group per disk, each starting with `disk` (its target) followed by `action`
    // (copy, blank or shared), `path` (the image at the destination, for copy and blank),
    // `format`, `capacity`, `cluster_size` (uint, optional) and `source` (the image at the
    // source); then `bandwidth` (bytes per second, optional) and `timeout` (seconds, optional)
    // may come before the first group, and from perform on, the `memory_uri`, `disk_uri` and
    // `commit_marker` that prepare emitted. Flags: `LV_MIGRATE_*`. A driver that drives
    // neither side leaves all five NULL; one side alone is not enough.
    /// Source: checks that the domain can migrate as planned and emits the domain XML to send
    /// as one text. Changes nothing.
    pub domain_migrate_begin: LvDomainParamsOpFn,
    /// Destination: readies domain XML `arg` (each copied or blank disk on its `path`):
    /// creates the copied and blank disks' images and, live, starts the domain paused waiting
    /// for its memory and the copied disks' data; offline, copies the disks from `source`.
    /// Emits one record: `memory_uri` and `disk_uri` (strings, live only), `commit_marker`
    /// (string: a file that exists once the destination has committed, where the source can
    /// see it; absent otherwise).
    pub domain_migrate_prepare: LvDomainParamsOpFn,
    /// Source, live only: moves the copied disks' data and the memory to the destination's
    /// endpoints, reporting progress, then leaves the domain paused with its disks inactive.
    /// On failure it undoes itself (the domain runs on, as before). Emits one record:
    /// `memory` (uint, bytes of memory sent).
    pub domain_migrate_perform: LvDomainParamsOpFn,
    /// Destination: with `LV_MIGRATE_FAILED` undoes prepare; else commits (the domain is
    /// defined here and runs, or stays paused with `LV_MIGRATE_PAUSED`). Emits one record: for
    /// each copied disk a `disk` followed by `allocation` (uint, bytes its image uses here).
    pub domain_migrate_finish: LvDomainParamsOpFn,
    /// Source: with `LV_MIGRATE_FAILED` puts the domain back as it was before perform; else
    /// stops it, and with `LV_MIGRATE_UNDEFINE_SOURCE` removes its definition.
    pub domain_migrate_confirm: LvDomainParamsOpFn,
    /// Aborts the migration of domain `name` that another call (another process) is running;
    /// that call then fails and puts everything back. An error when there is none, or when it
    /// is too late (the destination is committing).
    pub domain_abort_job: LvDomainOpFn,
    // ---- ABI 1.3: everyday lifecycle and disks ----
    /// Asks the guest of running domain `name` to shut down (the ACPI power button) and
    /// returns at once, without waiting: the domain is shut off once the guest has done it
    /// (the host waits, if asked, by reading the state). A guest that ignores the request
    /// keeps running.
    pub domain_shutdown: LvDomainOpFn,
    /// Resets running domain `name` at once, like its reset button: the guest restarts
    /// without being asked (its unwritten data is lost); the domain keeps running.
    pub domain_reset: LvDomainOpFn,
    /// Pauses running domain `name`: its vCPUs stop; memory and devices stay.
    pub domain_suspend: LvDomainOpFn,
    /// Resumes paused domain `name`.
    pub domain_resume: LvDomainOpFn,
    /// Attaches a disk to domain `name`: `arg` is one `<disk>` element of domain XML, whose
    /// target no disk of the domain has. Flags: `LV_AFFECT_LIVE` (hot-plug it into the running
    /// domain), `LV_AFFECT_CONFIG` (add it to the persistent definition); the host always
    /// passes at least one. A driver refuses a combination it cannot make happen entirely,
    /// and a change of several steps is crash safe (see `domain_reconcile`).
    pub domain_attach_disk: LvDomainStrOpFn,
    /// Detaches disk `arg` (a target) from domain `name`, leaving its image as it is. Flags as
    /// `domain_attach_disk`. Removing it from the definition also removes it from the
    /// domain's disk sets.
    pub domain_detach_disk: LvDomainStrOpFn,
    /// Replaces the stored record of a snapshot with `arg`, a `<domainsnapshot>` as
    /// `domain_snapshot_list` emits it, naming a snapshot that exists: only the record
    /// changes, never an image or the domain (the host lets only the description differ).
    pub domain_snapshot_redefine: LvDomainStrOpFn,
    // ---- ABI 1.4: append here ----
}

/// What a driver says about itself. Returned by the driver's entry function; must stay valid
/// and unchanged for the life of the process (a `static`).
#[repr(C)]
pub struct LvDriverInfo {
    /// `sizeof(LvDriverInfo)` as the driver was built.
    pub struct_size: u32,
    /// `LV_ABI_MAJOR` the driver was built for.
    pub abi_major: u16,
    /// `LV_ABI_MINOR` the driver was built for.
    pub abi_minor: u16,
    /// `sizeof(void *)` in the driver: a canary against a 32/64-bit mix-up.
    pub pointer_width: u16,
    /// Zero.
    pub reserved16: u16,
    /// Zero.
    pub reserved32: u32,
    /// `LV_CAP_*` bits.
    pub capabilities: u64,
    /// Short name, like `qemu`.
    pub name: LvStr,
    /// Driver version, like `1.2.0`.
    pub version: LvStr,
    /// URI schemes the driver serves, separated by commas: `qemu` serves `qemu:///session`.
    pub uri_schemes: LvStr,
    /// One line saying what the driver drives.
    pub description: LvStr,
    /// The driver's functions.
    pub vtable: *const LvDriverVtable,
}

/// The one symbol a driver exports, `luavirt_driver_entry_v1`: returns the driver's
/// [`LvDriverInfo`]. Must not fail and must not do work beyond returning the pointer.
pub type LvDriverEntryFn = unsafe extern "C" fn() -> *const LvDriverInfo;

/// Name of the entry symbol. The `_v1` follows `LV_ABI_MAJOR`, so a later host can look
/// for several.
pub const LV_DRIVER_ENTRY_SYMBOL: &str = "luavirt_driver_entry_v1";

// ---- Record and parameter keys (see each function for the records it emits or takes) ----

/// A name (string).
pub const LV_KEY_NAME: &str = "name";
/// A UUID (string).
pub const LV_KEY_UUID: &str = "uuid";
/// A domain state, `LV_STATE_*` (uint).
pub const LV_KEY_STATE: &str = "state";
/// The hypervisor's id of a running domain, -1 otherwise (int).
pub const LV_KEY_ID: &str = "id";
/// The domain has a persistent definition (bool).
pub const LV_KEY_PERSISTENT: &str = "persistent";
/// Why a domain is in its state (string).
pub const LV_KEY_REASON: &str = "reason";
/// An image format (string).
pub const LV_KEY_FORMAT: &str = "format";
/// A virtual size in bytes (uint).
pub const LV_KEY_CAPACITY: &str = "capacity";
/// Bytes used on the host (uint).
pub const LV_KEY_ALLOCATION: &str = "allocation";
/// An image below in the backing chain, nearest first; repeats (string).
pub const LV_KEY_BACKING: &str = "backing";
/// The format of the `backing` before it (string).
pub const LV_KEY_BACKING_FORMAT: &str = "backing_format";
/// The current snapshot; units done of a job (string; uint).
pub const LV_KEY_CURRENT: &str = "current";
/// Units in all of a job (uint).
pub const LV_KEY_END: &str = "end";
/// A block job's kind: copy, pull, commit, active-commit (string).
pub const LV_KEY_TYPE: &str = "type";
/// A block job can pivot (bool).
pub const LV_KEY_READY: &str = "ready";
/// A block job's status in the hypervisor's words (string).
pub const LV_KEY_STATUS: &str = "status";
/// A block copy's destination (string).
pub const LV_KEY_DEST: &str = "dest";
/// The image a pull stops at, or a commit goes into (string).
pub const LV_KEY_BASE: &str = "base";
/// The highest image a commit takes (string).
pub const LV_KEY_TOP: &str = "top";
/// A speed limit in bytes per second (uint).
pub const LV_KEY_BANDWIDTH: &str = "bandwidth";
// ABI 1.3:
/// A migration's id (string).
pub const LV_KEY_MIGRATION: &str = "migration";
/// A disk's target; starts a disk's group of keys (string).
pub const LV_KEY_DISK: &str = "disk";
/// What a migration does with a disk: copy, blank or shared (string).
pub const LV_KEY_ACTION: &str = "action";
/// A file (string).
pub const LV_KEY_PATH: &str = "path";
/// Where a disk's image is at the source (string).
pub const LV_KEY_SOURCE: &str = "source";
/// An image's cluster size in bytes (uint).
pub const LV_KEY_CLUSTER_SIZE: &str = "cluster_size";
/// A time limit in seconds (uint).
pub const LV_KEY_TIMEOUT: &str = "timeout";
/// Where a migration's memory goes (string, a QEMU-style URI such as unix:PATH).
pub const LV_KEY_MEMORY_URI: &str = "memory_uri";
/// Where a migration's copied disks are served (string, such as unix:PATH).
pub const LV_KEY_DISK_URI: &str = "disk_uri";
/// A file that exists once a migration's destination has committed (string).
pub const LV_KEY_COMMIT_MARKER: &str = "commit_marker";
/// Bytes of memory (uint).
pub const LV_KEY_MEMORY: &str = "memory";
/// Bytes an image file takes as a file: its length, or a block device's size (uint).
pub const LV_KEY_PHYSICAL: &str = "physical";
// Keys added after ABI 1.3 (data only: a driver that does not know them answers as before,
// and the host checks the answer):
/// Where a migration's destination listens on TCP for the memory and the copied disks
/// (string, a host name or address; prepare then answers `tcp:` endpoints). Without it, the
/// destination listens where only its own machine reaches (Unix sockets).
pub const LV_KEY_LISTEN_ADDRESS: &str = "listen_address";
/// The lowest TCP port a migration's destination may listen on (uint).
pub const LV_KEY_PORT_MIN: &str = "port_min";
/// The highest TCP port a migration's destination may listen on (uint).
pub const LV_KEY_PORT_MAX: &str = "port_max";

/// Every string constant above, for the header (cbindgen does not write string constants;
/// the header test adds these as `#define`s).
pub const STRING_CONSTANTS: &[(&str, &str)] = &[
    ("LV_DRIVER_ENTRY_SYMBOL", LV_DRIVER_ENTRY_SYMBOL),
    ("LV_KEY_NAME", LV_KEY_NAME),
    ("LV_KEY_UUID", LV_KEY_UUID),
    ("LV_KEY_STATE", LV_KEY_STATE),
    ("LV_KEY_ID", LV_KEY_ID),
    ("LV_KEY_PERSISTENT", LV_KEY_PERSISTENT),
    ("LV_KEY_REASON", LV_KEY_REASON),
    ("LV_KEY_FORMAT", LV_KEY_FORMAT),
    ("LV_KEY_CAPACITY", LV_KEY_CAPACITY),
    ("LV_KEY_ALLOCATION", LV_KEY_ALLOCATION),
    ("LV_KEY_BACKING", LV_KEY_BACKING),
    ("LV_KEY_BACKING_FORMAT", LV_KEY_BACKING_FORMAT),
    ("LV_KEY_CURRENT", LV_KEY_CURRENT),
    ("LV_KEY_END", LV_KEY_END),
    ("LV_KEY_TYPE", LV_KEY_TYPE),
    ("LV_KEY_READY", LV_KEY_READY),
    ("LV_KEY_STATUS", LV_KEY_STATUS),
    ("LV_KEY_DEST", LV_KEY_DEST),
    ("LV_KEY_BASE", LV_KEY_BASE),
    ("LV_KEY_TOP", LV_KEY_TOP),
    ("LV_KEY_BANDWIDTH", LV_KEY_BANDWIDTH),
    ("LV_KEY_MIGRATION", LV_KEY_MIGRATION),
    ("LV_KEY_DISK", LV_KEY_DISK),
    ("LV_KEY_ACTION", LV_KEY_ACTION),
    ("LV_KEY_PATH", LV_KEY_PATH),
    ("LV_KEY_SOURCE", LV_KEY_SOURCE),
    ("LV_KEY_CLUSTER_SIZE", LV_KEY_CLUSTER_SIZE),
    ("LV_KEY_TIMEOUT", LV_KEY_TIMEOUT),
    ("LV_KEY_MEMORY_URI", LV_KEY_MEMORY_URI),
    ("LV_KEY_DISK_URI", LV_KEY_DISK_URI),
    ("LV_KEY_COMMIT_MARKER", LV_KEY_COMMIT_MARKER),
    ("LV_KEY_MEMORY", LV_KEY_MEMORY),
    ("LV_KEY_PHYSICAL", LV_KEY_PHYSICAL),
    ("LV_KEY_LISTEN_ADDRESS", LV_KEY_LISTEN_ADDRESS),
    ("LV_KEY_PORT_MIN", LV_KEY_PORT_MIN),
    ("LV_KEY_PORT_MAX", LV_KEY_PORT_MAX),
];

// The info and vtable are immutable statics that only hold pointers to other statics.
unsafe impl Sync for LvDriverInfo {}
unsafe impl Sync for LvDriverVtable {}

impl LvStr {
    /// An empty string.
    pub const EMPTY: LvStr = LvStr { ptr: std::ptr::null(), len: 0 };

    /// Borrows a Rust string.
    pub const fn from_str(s: &str) -> LvStr {
        LvStr { ptr: s.as_ptr(), len: s.len() }
    }

    /// Reads the bytes back.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a`, or `len` must be 0.
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: the caller promises `ptr..ptr+len` is readable for 'a.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// Reads the string back, replacing invalid UTF-8.
    ///
    /// # Safety
    /// As [`LvStr::as_bytes`].
    pub unsafe fn to_string_lossy(self) -> String {
        String::from_utf8_lossy(unsafe { self.as_bytes() }).into_owned()
    }
}

impl LvDriverVtable {
    /// A table with every function missing, to fill in.
    pub const EMPTY: LvDriverVtable = LvDriverVtable {
        struct_size: std::mem::size_of::<LvDriverVtable>() as u32,
        reserved: 0,
        connect_open: None,
        connect_close: None,
        connect_list_domains: None,
        domain_define_xml: None,
        domain_undefine: None,
        domain_get_xml: None,
        domain_get_state: None,
        domain_create: None,
        domain_destroy: None,
        domain_get_block_info: None,
        domain_snapshot_create: None,
        domain_snapshot_list: None,
        domain_snapshot_revert: None,
        domain_snapshot_delete: None,
        domain_block_copy: None,
        domain_block_pull: None,
        domain_block_commit: None,
        domain_block_job_info: None,
        domain_block_job_abort: None,
        domain_block_job_wait: None,
        domain_reconcile: None,
        domain_migrate_begin: None,
        domain_migrate_prepare: None,
        domain_migrate_perform: None,
        domain_migrate_finish: None,
        domain_migrate_confirm: None,
        domain_abort_job: None,
        domain_shutdown: None,
        domain_reset: None,
        domain_suspend: None,
        domain_resume: None,
        domain_attach_disk: None,
        domain_detach_disk: None,
        domain_snapshot_redefine: None,
    };
}

/// Name of each capability bit, for display.
pub const CAPABILITY_NAMES: &[(u64, &str)] = &[
    (LV_CAP_DEFINE, "define"),
    (LV_CAP_LIFECYCLE, "lifecycle"),
    (LV_CAP_BLOCK_INFO, "block-info"),
    (LV_CAP_READ_ONLY, "read-only"),
    (LV_CAP_SNAPSHOT, "snapshot"),
    (LV_CAP_BLOCK_JOBS, "block-jobs"),
    (LV_CAP_MIGRATION, "migration"),
];
