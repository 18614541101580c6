//! The luavirt doors over the host API of `luavirt-host`: the sandboxed Lua scripting host
//! (this library, so tests can drive it) and the `luavirt` command (the binary). Neither
//! implements an operation: they read their users' words, call the host, and show what it
//! says.
//!
//! - [`lua`]: the sandboxed Lua scripting host and its `luavirt` module.
//! - [`policy`]: policy files and their hooks, for every command and for `luavirt watch`.
//! - [`watch`]: `luavirt watch`, the long-running process that runs the hooks.
#![deny(missing_docs)]

pub mod lua;
pub mod policy;
pub mod watch;

pub use luavirt_host::{Connection, Error, Host, Result};
