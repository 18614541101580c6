//! The `extern "C"` functions [`crate::export_driver!`] puts in a driver's vtable: each turns
//! ABI arguments into Rust ones, calls the [`Driver`] method, and turns errors and panics into
//! an error code plus a message for the host.

use super::{Call, Driver, Host};
use crate::abi::{self, LvCall, LvHostApi, LvParam, LvStr};
use crate::records::{CommitParams, CopyParams, MigrateParams, PullParams, Record};
use crate::{DriverError, ErrorCode, Params, Uri};
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a connection handle points to.
struct Conn<D> {
    host: Host,
    driver: D,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `f`, turning an error or a panic into an ABI error code.
fn guarded<D: Driver>(
    host: Host,
    call: *mut LvCall,
    op: &str,
    f: impl FnOnce(&mut Call) -> Result<(), DriverError>,
) -> i32 {
    let mut out = Call::new(host, call);
    let result = catch_unwind(AssertUnwindSafe(|| f(&mut out)));
    match result {
        Ok(Ok(())) => crate::abi::LV_OK,
        Ok(Err(e)) => out.set_error(&e),
        Err(payload) => out.set_error(&DriverError::new(
            ErrorCode::DriverPanic,
            format!("Driver '{}' panicked in {op}: {}; the operation did not complete, please report this to the driver's authors", D::NAME, panic_message(payload.as_ref())),
        )),
    }
}

/// Refuses flag bits outside `accepted` (the function's `LV_*_FLAGS` mask), naming them: a
/// host asking for something this driver was not built to do must hear "no".
fn check_flags<D: Driver>(op: &str, flags: u32, accepted: u32) -> Result<(), DriverError> {
    let unknown = flags & !accepted;
    if unknown == 0 {
        return Ok(());
    }
    Err(DriverError::new(
        ErrorCode::Unsupported,
        format!(
            "Driver '{}' does not know flag bit(s) {unknown:#x} of {op} (it was built for ABI {}.{}, whose {op} takes {accepted:#x}); update the driver",
            D::NAME,
            abi::LV_ABI_MAJOR,
            abi::LV_ABI_MINOR
        ),
    ))
}

fn text_arg(s: LvStr, what: &str) -> Result<String, DriverError> {
    // SAFETY: the host passes strings valid for the call.
    let bytes = unsafe { s.as_bytes() };
    String::from_utf8(bytes.to_vec())
        .map_err(|_| DriverError::new(ErrorCode::InvalidArg, format!("The {what} is not valid UTF-8")))
}

/// `connect_open`
///
/// # Safety
/// Called by the host with the ABI's contract.
pub unsafe extern "C" fn connect_open<D: Driver>(
    host: *const LvHostApi,
    uri: LvStr,
    flags: u32,
    conn_out: *mut *mut c_void,
    call: *mut LvCall,
) -> i32 {
    let h = Host::new(host);
    super::remember_host(h);
    guarded::<D>(h, call, "connect_open", |out| {
        check_flags::<D>("connect_open", flags, abi::LV_NO_FLAGS)?;
        let text = text_arg(uri, "URI")?;
        let uri = Uri::parse(&text).map_err(|e| DriverError::new(ErrorCode::InvalidUri, e.to_string()))?;
        let driver = D::open(&uri, flags, out)?;
        let conn = Box::new(Conn { host: h, driver });
        // SAFETY: the host passes a writable out pointer.
        unsafe { *conn_out = Box::into_raw(conn) as *mut c_void };
        Ok(())
    })
}

/// `connect_close`
///
/// # Safety
/// `conn` must come from `connect_open` of the same driver and not be used afterwards.
pub unsafe extern "C" fn connect_close<D: Driver>(conn: *mut c_void) {
    if conn.is_null() {
        return;
    }
    // SAFETY: the pointer came from Box::into_raw in connect_open.
    let conn = unsafe { Box::from_raw(conn as *mut Conn<D>) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(conn)));
}

/// Generates one entry function per driver operation, accepting the flags in its mask.
macro_rules! entries {
    ($( $entry:ident => $method:ident ( $( $arg:ident : $what:literal ),* ) $mask:ident ; )*) => {$(
        #[doc = concat!("`", stringify!($entry), "`")]
        ///
        /// # Safety
        /// Called by the host with the ABI's contract.
        pub unsafe extern "C" fn $entry<D: Driver>(conn: *mut c_void, $( $arg: LvStr, )* flags: u32, call: *mut LvCall) -> i32 {
            // SAFETY: the host passes the handle connect_open returned.
            let conn = unsafe { &*(conn as *const Conn<D>) };
            guarded::<D>(conn.host, call, stringify!($entry), |out| {
                check_flags::<D>(stringify!($entry), flags, abi::$mask)?;
                $( let $arg = text_arg($arg, $what)?; )*
                conn.driver.$method($( &$arg, )* flags, out)
            })
        }
    )*};
}

/// Generates the entry functions of operations that also take typed parameters.
macro_rules! param_entries {
    ($( $entry:ident => $method:ident ( $params:ty ) $mask:ident ; )*) => {$(
        #[doc = concat!("`", stringify!($entry), "`")]
        ///
        /// # Safety
        /// Called by the host with the ABI's contract.
        pub unsafe extern "C" fn $entry<D: Driver>(
            conn: *mut c_void,
            name: LvStr,
            disk: LvStr,
            params: *const LvParam,
            nparams: usize,
            flags: u32,
            call: *mut LvCall,
        ) -> i32 {
            // SAFETY: the host passes the handle connect_open returned.
            let conn = unsafe { &*(conn as *const Conn<D>) };
            guarded::<D>(conn.host, call, stringify!($entry), |out| {
                check_flags::<D>(stringify!($entry), flags, abi::$mask)?;
                let name = text_arg(name, "domain name")?;
                let disk = text_arg(disk, "disk name")?;
                // SAFETY: the host passes `nparams` valid parameters.
                let params = <$params>::from_params(&unsafe { Params::from_abi(params, nparams) });
                conn.driver.$method(&name, &disk, &params, flags, out)
            })
        }
    )*};
}

param_entries! {
    domain_block_copy => block_copy(CopyParams) LV_BLOCK_COPY_FLAGS;
    domain_block_pull => block_pull(PullParams) LV_BLOCK_PULL_FLAGS;
    domain_block_commit => block_commit(CommitParams) LV_BLOCK_COMMIT_FLAGS;
}

/// Generates the entry functions of a migration's calls: the domain's name, an argument only
/// prepare reads (the domain XML), and the migration's parameters.
macro_rules! migrate_entries {
    ($( $entry:ident => $method:ident ( $($xml:ident)? ) $mask:ident ; )*) => {$(
        #[doc = concat!("`", stringify!($entry), "`")]
        ///
        /// # Safety
        /// Called by the host with the ABI's contract.
        pub unsafe extern "C" fn $entry<D: Driver>(
            conn: *mut c_void,
            name: LvStr,
            arg: LvStr,
            params: *const LvParam,
            nparams: usize,
            flags: u32,
            call: *mut LvCall,
        ) -> i32 {
            // SAFETY: the host passes the handle connect_open returned.
            let conn = unsafe { &*(conn as *const Conn<D>) };
            guarded::<D>(conn.host, call, stringify!($entry), |out| {
                check_flags::<D>(stringify!($entry), flags, abi::$mask)?;
                let name = text_arg(name, "domain name")?;
                $( let $xml = text_arg(arg, "domain XML")?; )?
                let _ = arg;
                // SAFETY: the host passes `nparams` valid parameters.
                let params = MigrateParams::from_params(&unsafe { Params::from_abi(params, nparams) });
                conn.driver.$method(&name, $( &$xml, )? &params, flags, out)
            })
        }
    )*};
}

migrate_entries! {
    domain_migrate_begin => migrate_begin() LV_MIGRATE_FLAGS;
    domain_migrate_prepare => migrate_prepare(xml) LV_MIGRATE_FLAGS;
    domain_migrate_perform => migrate_perform() LV_MIGRATE_FLAGS;
    domain_migrate_finish => migrate_finish() LV_MIGRATE_END_FLAGS;
    domain_migrate_confirm => migrate_confirm() LV_MIGRATE_END_FLAGS;
}

entries! {
    connect_list_domains => list_domains() LV_NO_FLAGS;
    domain_define_xml => define_xml(xml: "domain XML") LV_NO_FLAGS;
    domain_undefine => undefine(name: "domain name") LV_NO_FLAGS;
    domain_get_xml => get_xml(name: "domain name") LV_GET_XML_FLAGS;
    domain_get_state => get_state(name: "domain name") LV_NO_FLAGS;
    domain_create => create(name: "domain name") LV_NO_FLAGS;
    domain_destroy => destroy(name: "domain name") LV_NO_FLAGS;
    domain_get_block_info => get_block_info(name: "domain name", disk: "disk name") LV_NO_FLAGS;
    domain_snapshot_create => snapshot_create(name: "domain name", xml: "snapshot XML") LV_SNAPSHOT_CREATE_FLAGS;
    domain_snapshot_list => snapshot_list(name: "domain name") LV_NO_FLAGS;
    domain_snapshot_revert => snapshot_revert(name: "domain name", snapshot: "snapshot name") LV_SNAPSHOT_REVERT_FLAGS;
    domain_snapshot_delete => snapshot_delete(name: "domain name", snapshot: "snapshot name") LV_SNAPSHOT_DELETE_FLAGS;
    domain_block_job_info => block_job_info(name: "domain name", disk: "disk name") LV_NO_FLAGS;
    domain_block_job_abort => block_job_abort(name: "domain name", disk: "disk name") LV_BLOCK_JOB_ABORT_FLAGS;
    domain_block_job_wait => block_job_wait(name: "domain name", disk: "disk name") LV_BLOCK_JOB_WAIT_FLAGS;
    domain_reconcile => reconcile(name: "domain name") LV_NO_FLAGS;
    domain_abort_job => abort_job(name: "domain name") LV_NO_FLAGS;
    domain_shutdown => shutdown(name: "domain name") LV_NO_FLAGS;
    domain_reset => reset(name: "domain name") LV_NO_FLAGS;
    domain_suspend => suspend(name: "domain name") LV_NO_FLAGS;
    domain_resume => resume(name: "domain name") LV_NO_FLAGS;
    domain_attach_disk => attach_disk(name: "domain name", xml: "disk XML") LV_AFFECT_FLAGS;
    domain_detach_disk => detach_disk(name: "domain name", target: "disk name") LV_AFFECT_FLAGS;
    domain_snapshot_redefine => snapshot_redefine(name: "domain name", xml: "snapshot XML") LV_NO_FLAGS;
}

/// Exports a [`Driver`] as a luavirt plugin: defines its vtable, its `LvDriverInfo` and the
/// entry symbol `luavirt_driver_entry_v1`. `ops` lists the vtable fields to fill; the others
/// stay NULL (unsupported). Use once per cdylib.
#[macro_export]
macro_rules! export_driver {
    ($ty:ty, ops: [$($op:ident),* $(,)?] $(,)?) => {
        static LUAVIRT_DRIVER_VTABLE: $crate::abi::LvDriverVtable = {
            let mut v = $crate::abi::LvDriverVtable::EMPTY;
            v.connect_open = Some($crate::kit::entry::connect_open::<$ty>);
            v.connect_close = Some($crate::kit::entry::connect_close::<$ty>);
            $( v.$op = Some($crate::kit::entry::$op::<$ty>); )*
            v
        };
        static LUAVIRT_DRIVER_INFO: $crate::abi::LvDriverInfo = $crate::abi::LvDriverInfo {
            struct_size: ::std::mem::size_of::<$crate::abi::LvDriverInfo>() as u32,
            abi_major: $crate::abi::LV_ABI_MAJOR,
            abi_minor: $crate::abi::LV_ABI_MINOR,
            pointer_width: ::std::mem::size_of::<*const u8>() as u16,
            reserved16: 0,
            reserved32: 0,
            capabilities: <$ty as $crate::kit::Driver>::CAPABILITIES,
            name: $crate::abi::LvStr::from_str(<$ty as $crate::kit::Driver>::NAME),
            version: $crate::abi::LvStr::from_str(<$ty as $crate::kit::Driver>::VERSION),
            uri_schemes: $crate::abi::LvStr::from_str(<$ty as $crate::kit::Driver>::URI_SCHEMES),
            description: $crate::abi::LvStr::from_str(<$ty as $crate::kit::Driver>::DESCRIPTION),
            vtable: &LUAVIRT_DRIVER_VTABLE,
        };
        /// The driver's entry point: returns its description and functions.
        #[unsafe(no_mangle)]
        pub extern "C" fn luavirt_driver_entry_v1() -> *const $crate::abi::LvDriverInfo {
            &LUAVIRT_DRIVER_INFO
        }
    };
}
