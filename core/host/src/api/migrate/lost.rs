//! A migration whose connection to a remote destination was lost while the destination
//! finished it: the destination may have committed (the guest runs there) or not. luavirt
//! opens a new connection, waits for the server of the lost one to end, lets the next call
//! settle what it left (a committed arrival completes, any other is undone), and asks whether
//! the domain is there. If it cannot ask, the source stays paused: resuming it could run the
//! guest twice.

use crate::api::Connection;
use crate::error::{Error, Result};
use crate::log;
use crate::remote::Delivery;
use luavirt_plugin_api::ErrorCode;
use luavirt_plugin_api::records::MigrateArrived;

/// Whether `e` lost a request that may have run at the other end.
pub(super) fn outcome_unknown(e: &Error) -> bool {
    matches!(e, Error::ConnectionLost { delivery: Delivery::Unknown, .. })
}

impl Connection {
    /// Opens a second connection to this remote host, waits for the server of this (lost)
    /// one to end, settles what it left on domain `name`, and says whether `name` is there.
    pub(super) fn arrived_after_loss(&self, name: &str) -> Result<bool> {
        let link = self.client.remote_link().ok_or_else(|| {
            Error::InvalidArg(format!("{} is not a remote connection, so it cannot be reopened", self.uri()))
        })?;
        let (pid, start) = link.server();
        let again = self.reopen()?;
        again.client.remote_link().expect("a reopened remote connection is remote").await_gone(pid, start)?;
        drop(again.lock_domain(name)?);
        match again.domain_state(name) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == ErrorCode::NoDomain => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// `e` with what it means for the migration of `name`, when it is a lost connection to the
/// destination and the source was left (or put back) as it was.
pub(super) fn source_runs_on(e: Error, name: &str, dest: &Connection, asked: bool) -> Error {
    if !matches!(e, Error::ConnectionLost { .. }) {
        return e;
    }
    let there = if asked {
        format!("asked again over a new connection, {} had not committed and removed what it had made", dest.uri())
    } else {
        format!("the next change to the domain on {} removes what it had made for it", dest.uri())
    };
    Error::Driver {
        code: e.code(),
        message: format!("{e}. The migration did not happen: domain '{name}' runs on here as before; {there}"),
    }
}

/// The arrival, when the destination turned out to have committed: the copied disks' bytes
/// are not known then.
pub(super) fn arrived_anyway(name: &str, dest: &Connection) -> MigrateArrived {
    log::write(
        log::Level::Warning,
        "luavirt",
        &format!(
            "the connection to {} was lost while it finished the migration of domain '{name}'; asked again over a new connection: the domain had arrived there",
            dest.uri()
        ),
    );
    MigrateArrived::default()
}

/// The error when the destination could not be asked again.
pub(super) fn unsure(name: &str, src: &Connection, dest: &Connection, lost: &Error, again: &Error) -> Error {
    Error::Driver {
        code: ErrorCode::InvalidState,
        message: format!(
            "{lost}; asking {} again whether domain '{name}' arrived failed too: {again}. The domain stays paused on {}, with its disks as they were, because it may run at the destination: if it runs there, destroy it here; if not, the next change to it here says what to do",
            dest.uri(),
            src.uri()
        ),
    }
}
