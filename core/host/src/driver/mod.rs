//! Drivers as the host sees them: loaded plugins, their vtables, and calls into them.

mod call;
pub mod check;
pub mod client;
pub mod loader;
pub mod local;
mod mapped;
pub mod request;
mod validate;

pub use call::{CallOptions, CallOutput, ProgressFn};

use crate::error::{Error, Result};
use luavirt_plugin_api::abi::{self, LvDriverVtable, LvStr};
use luavirt_plugin_api::{ErrorCode, Uri};
use serde::{Deserialize, Serialize};
use std::ffi::c_void;
use std::path::PathBuf;

/// What a connection's driver is and has, wherever it runs: what the host API asks of a
/// driver before calling it (its name for messages, whether it runs domains, which functions
/// it has). A remote host sends its driver's facts when the connection opens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DriverFacts {
    /// Short name (`qemu`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it drives.
    pub description: String,
    /// URI schemes it serves.
    pub schemes: Vec<String>,
    /// `LV_CAP_*` bits.
    pub capabilities: u64,
    /// ABI (major, minor) it was built for.
    pub abi: (u16, u16),
    /// The names of the vtable functions it has.
    pub functions: Vec<String>,
}

impl DriverFacts {
    /// Whether it has the function called `name` (a field of `LvDriverVtable`).
    pub fn has_function(&self, name: &str) -> bool {
        self.functions.iter().any(|f| f == name)
    }

    /// Whether it starts and stops domains (so they have memory to save).
    pub fn runs_domains(&self) -> bool {
        self.capabilities & abi::LV_CAP_LIFECYCLE != 0
    }

    /// Names of the capability bits it declares.
    pub fn capability_names(&self) -> Vec<&'static str> {
        abi::CAPABILITY_NAMES.iter().filter(|(bit, _)| self.capabilities & bit != 0).map(|(_, n)| *n).collect()
    }
}

/// A driver that passed the loader's checks.
pub struct LoadedDriver {
    /// Short name (`qemu`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it drives.
    pub description: String,
    /// URI schemes it serves.
    pub schemes: Vec<String>,
    /// `LV_CAP_*` bits.
    pub capabilities: u64,
    /// ABI (major, minor) it was built for.
    pub abi: (u16, u16),
    /// Where it was loaded from.
    pub path: PathBuf,
    vtable: LvDriverVtable,
}

/// A shared object the loader refused, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefusedDriver {
    /// Where it was found.
    pub path: PathBuf,
    /// Why it was refused.
    pub reason: String,
}

/// A loaded driver as `luavirt drivers` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DriverListing {
    /// What it is and has.
    pub facts: DriverFacts,
    /// Its file.
    pub path: PathBuf,
    /// What its ABI minor means on its host, when it is not the host's.
    pub note: Option<String>,
}

/// The drivers a host loaded, and the files it refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostDrivers {
    /// Loaded, in the order found.
    pub loaded: Vec<DriverListing>,
    /// Refused, with reasons.
    pub refused: Vec<RefusedDriver>,
}

/// Copies a driver's vtable, keeping only the functions within `size` bytes (a driver built
/// for an older minor has a shorter table; the missing entries read as NULL).
///
/// # Safety
/// `src` must point to at least `size` readable bytes.
unsafe fn copy_vtable(src: *const LvDriverVtable, size: usize) -> LvDriverVtable {
    let mut out = LvDriverVtable::EMPTY;
    let keep = size.min(std::mem::size_of::<LvDriverVtable>());
    // SAFETY: both regions are at least `keep` bytes; every bit pattern copied comes from a
    // table of the same layout, and zero is a valid `None`.
    unsafe {
        let dst = (&mut out as *mut LvDriverVtable).cast::<u8>();
        std::ptr::copy_nonoverlapping(src.cast::<u8>(), dst, keep);
    }
    out.struct_size = std::mem::size_of::<LvDriverVtable>() as u32;
    out
}

impl std::fmt::Debug for LoadedDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedDriver").field("name", &self.name).field("path", &self.path).finish_non_exhaustive()
    }
}

impl LoadedDriver {
    /// Whether the driver serves `scheme`.
    pub fn serves(&self, scheme: &str) -> bool {
        self.schemes.iter().any(|s| s == scheme)
    }

    /// What its ABI minor means here, when it is not the host's: a newer driver is used with
    /// the functions of the host's minor, an older one lacks the functions added after it.
    pub fn abi_note(&self) -> Option<String> {
        let (major, minor) = self.abi;
        let host = abi::LV_ABI_MINOR;
        match minor.cmp(&host) {
            std::cmp::Ordering::Greater => Some(format!(
                "built for ABI {major}.{minor}, newer than this host's {major}.{host}: loaded with the functions of {major}.{host}"
            )),
            std::cmp::Ordering::Less => Some(format!(
                "built for ABI {major}.{minor}: the functions added in {major}.{} and later are unsupported",
                minor + 1
            )),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// What it is and has, as connections report it.
    pub fn facts(&self) -> DriverFacts {
        DriverFacts {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            schemes: self.schemes.clone(),
            capabilities: self.capabilities,
            abi: self.abi,
            functions: validate::function_names(&self.vtable),
        }
    }

    /// Whether its vtable has the function called `name` (a field of `LvDriverVtable`).
    pub fn has_function(&self, name: &str) -> bool {
        validate::has_function(&self.vtable, name)
    }

    /// Whether it starts and stops domains (so they have memory to save).
    pub fn runs_domains(&self) -> bool {
        self.capabilities & abi::LV_CAP_LIFECYCLE != 0
    }

    /// Names of the capability bits it declares.
    pub fn capability_names(&self) -> Vec<&'static str> {
        abi::CAPABILITY_NAMES.iter().filter(|(bit, _)| self.capabilities & bit != 0).map(|(_, n)| *n).collect()
    }

    /// The vtable (functions outside the driver's declared size are NULL).
    pub(crate) fn vtable(&self) -> &LvDriverVtable {
        &self.vtable
    }

    /// Opens a connection to `uri`.
    pub(crate) fn open(&self, uri: &Uri) -> Result<*mut c_void> {
        let open = self.vtable.connect_open.expect("the loader checked connect_open");
        let mut conn: *mut c_void = std::ptr::null_mut();
        let conn_ptr = &mut conn as *mut *mut c_void;
        let text = uri.as_str();
        self.invoke("opening a connection", &CallOptions::default(), |call| unsafe {
            open(call::host_api(), LvStr::from_str(text), 0, conn_ptr, call)
        })?;
        if conn.is_null() {
            return Err(Error::Driver {
                code: ErrorCode::Internal,
                message: format!("Driver '{}' opened {uri} but returned no connection", self.name),
            });
        }
        Ok(conn)
    }

    /// Closes a connection handle.
    pub(crate) fn close(&self, conn: *mut c_void) {
        if let Some(close) = self.vtable.connect_close {
            unsafe { close(conn) }
        }
    }

    /// Calls a driver function with a fresh call context and collects what it emits.
    pub(crate) fn invoke(
        &self,
        operation: &str,
        options: &CallOptions,
        f: impl FnOnce(*mut abi::LvCall) -> i32,
    ) -> Result<CallOutput> {
        call::invoke(&self.name, operation, options, f)
    }
}
