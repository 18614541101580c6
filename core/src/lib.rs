//! The luavirt host: loads hypervisor drivers through the C ABI of `luavirt-plugin-api`, opens
//! connections, and implements every operation once (in [`host`]) for the `luavirt` command
//! and Lua scripts to share.
//!
//! - [`driver`]: finding, checking and calling driver plugins.
//! - [`host`]: connections and the operations on domains and disk sets.
//! - [`lua`]: the sandboxed Lua scripting host and its `luavirt` module.
//! - [`error`]: what failed, on which object, and what to do.
#![deny(missing_docs)]

pub mod driver;
pub mod error;
pub mod host;
pub mod log;
pub mod lua;

pub use error::{Error, Result};
pub use host::{Connection, Host};
