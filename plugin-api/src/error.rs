//! Error codes as Rust sees them, and the error a driver operation returns.

use crate::abi;
use std::fmt;

/// The `LV_ERR_*` codes of the ABI, as an enum. Unknown numbers read as `Internal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `LV_ERR_INTERNAL`
    Internal,
    /// `LV_ERR_UNSUPPORTED`
    Unsupported,
    /// `LV_ERR_INVALID_ARG`
    InvalidArg,
    /// `LV_ERR_NO_DOMAIN`
    NoDomain,
    /// `LV_ERR_EXISTS`
    Exists,
    /// `LV_ERR_INVALID_STATE`
    InvalidState,
    /// `LV_ERR_XML`
    Xml,
    /// `LV_ERR_IO`
    Io,
    /// `LV_ERR_HYPERVISOR`
    Hypervisor,
    /// `LV_ERR_DRIVER_PANIC`
    DriverPanic,
    /// `LV_ERR_NO_DISK`
    NoDisk,
    /// `LV_ERR_CANCELLED`
    Cancelled,
    /// `LV_ERR_CORRUPT_STATE`
    CorruptState,
    /// `LV_ERR_NO_SNAPSHOT`
    NoSnapshot,
    /// `LV_ERR_BUSY`
    Busy,
    /// `LV_ERR_INVALID_URI`
    InvalidUri,
}

const TABLE: &[(ErrorCode, i32, &str)] = &[
    (ErrorCode::Internal, abi::LV_ERR_INTERNAL, "internal"),
    (ErrorCode::Unsupported, abi::LV_ERR_UNSUPPORTED, "unsupported"),
    (ErrorCode::InvalidArg, abi::LV_ERR_INVALID_ARG, "invalid-argument"),
    (ErrorCode::NoDomain, abi::LV_ERR_NO_DOMAIN, "no-domain"),
    (ErrorCode::Exists, abi::LV_ERR_EXISTS, "exists"),
    (ErrorCode::InvalidState, abi::LV_ERR_INVALID_STATE, "invalid-state"),
    (ErrorCode::Xml, abi::LV_ERR_XML, "xml"),
    (ErrorCode::Io, abi::LV_ERR_IO, "io"),
    (ErrorCode::Hypervisor, abi::LV_ERR_HYPERVISOR, "hypervisor"),
    (ErrorCode::DriverPanic, abi::LV_ERR_DRIVER_PANIC, "driver-panic"),
    (ErrorCode::NoDisk, abi::LV_ERR_NO_DISK, "no-disk"),
    (ErrorCode::Cancelled, abi::LV_ERR_CANCELLED, "cancelled"),
    (ErrorCode::CorruptState, abi::LV_ERR_CORRUPT_STATE, "corrupt-state"),
    (ErrorCode::NoSnapshot, abi::LV_ERR_NO_SNAPSHOT, "no-snapshot"),
    (ErrorCode::Busy, abi::LV_ERR_BUSY, "busy"),
    (ErrorCode::InvalidUri, abi::LV_ERR_INVALID_URI, "invalid-uri"),
];

impl ErrorCode {
    /// The ABI number.
    pub fn as_i32(self) -> i32 {
        TABLE.iter().find(|(c, _, _)| *c == self).map(|(_, n, _)| *n).unwrap_or(abi::LV_ERR_INTERNAL)
    }

    /// Reads an ABI number; unknown numbers (a newer driver) become `Internal`.
    pub fn from_i32(n: i32) -> ErrorCode {
        TABLE.iter().find(|(_, m, _)| *m == n).map(|(c, _, _)| *c).unwrap_or(ErrorCode::Internal)
    }

    /// A short stable name, for `--json` output and Lua error tables.
    pub fn name(self) -> &'static str {
        TABLE.iter().find(|(c, _, _)| *c == self).map(|(_, _, s)| *s).unwrap_or("internal")
    }
}

/// What a driver operation returns on failure: a code and a message that names the object,
/// the file and line where there is one, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// The whole message, sentence case, without a trailing period.
    pub message: String,
}

impl DriverError {
    /// An error of `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> DriverError {
        DriverError { code, message: message.into() }
    }

    /// `Unsupported` with a message naming the operation.
    pub fn unsupported(what: impl fmt::Display) -> DriverError {
        DriverError::new(ErrorCode::Unsupported, format!("{what} is not supported by this driver"))
    }

    /// An I/O error on `path`, naming what was being done.
    pub fn io(doing: &str, path: &std::path::Path, err: std::io::Error) -> DriverError {
        DriverError::new(ErrorCode::Io, format!("Cannot {doing} {}: {err}", path.display()))
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DriverError {}
