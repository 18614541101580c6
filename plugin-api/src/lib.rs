//! The contract between the luavirt host and its hypervisor drivers.
//!
//! - [`abi`]: the stable C ABI (mirrored in `include/luavirt_driver.h` for C authors).
//! - [`kit`]: the safe Rust side of that ABI: implement [`kit::Driver`], then call
//!   [`export_driver!`] once; panics are caught and become errors.
//! - Documents every driver shares: lossless XML ([`xml`]), libvirt domain XML with a typed view
//!   of disks and luavirt's disk sets ([`domain`]), `<domainsnapshot>` ([`snapshot`]), typed
//!   parameter lists ([`params`]) and the typed records that travel in them ([`records`]),
//!   connection URIs ([`uri`]).
//! - [`fsutil`]: atomic state files, private folders and per-object locks, so every driver
//!   writes state the same safe way; [`intent`]: records of multi-step changes that the next
//!   call finishes or undoes after a crash; [`failpoint`]: where tests kill luavirt;
//!   [`child`]: tools that end with the luavirt process that runs them.
//!
//! This crate depends on nothing else of luavirt: a third-party driver needs only this crate
//! (in Rust) or the header (in C).
#![deny(missing_docs)]

pub mod abi;
pub mod child;
pub mod domain;
pub mod error;
pub mod failpoint;
pub mod fsutil;
pub mod intent;
pub mod kit;
pub mod params;
pub mod records;
pub mod savefile;
pub mod snapshot;
pub mod time;
pub mod uri;
pub mod xml;

pub use error::{DriverError, ErrorCode};
pub use params::{Params, Value};
pub use uri::Uri;
