//! The luavirt host: loads hypervisor drivers through the C ABI of `luavirt-plugin-api`,
//! talks to them through a typed client, and implements every operation once, for the
//! `luavirt` command and Lua scripts to share. Its public API is all those doors can reach:
//! what they may not do differently lives here, once.
//!
//! - [`driver`]: finding, checking and loading driver plugins, and the typed client that is
//!   the only code calling through the ABI.
//! - The host API ([`Host`], [`Connection`] and the operations on it, [`snapshot`]):
//!   connections, domains, disk sets, disk modes, snapshots, block jobs, dry runs.
//! - [`remote`]: connections to other hosts over SSH (`qemu+ssh://`), and the server ssh
//!   runs there (`luavirt serve --stdio`).
//! - [`trust`]: whether a driver or policy file may be run at all (StrictModes).
//! - [`error`]: what failed, on which object, and what to do; [`log`]: log lines through the `log` facade;
//!   [`words`]: options named in messages, shown in the words of the door.
#![deny(missing_docs)]

mod api;
pub mod driver;
pub mod error;
pub mod log;
pub mod remote;
pub mod trust;
pub mod words;

pub use api::*;
pub use error::{Error, Result};
