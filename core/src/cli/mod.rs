//! The `luavirt` command: parses arguments, calls the host API, prints results.

pub mod args;
mod blockjob;
mod disks;
mod edit;
pub mod help;
mod info;
mod lifecycle;
pub mod logging;
mod migrate;
mod progress;
mod run;
mod script;
mod serve;
mod snapshot;
mod table;
mod watch;

pub use run::run;
