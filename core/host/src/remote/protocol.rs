//! The messages of luavirt's remote protocol, version [`PROTOCOL`].
//!
//! 1. The server speaks first: [`ToClient::Hello`] with its protocol version, its luavirt
//!    version and its process. A client that speaks another version stops there.
//! 2. The client sends [`ToServer::Open`] with its own version and the URI to open on the
//!    server's host (`qemu:///session?state=...`). The server answers
//!    [`ToClient::Opened`] (the driver's facts, the host's state folder and machine) or
//!    [`ToClient::Refused`] (a version it does not speak, a URI it cannot open) and ends.
//! 3. Then requests, one at a time, each with an id: a driver [`Call`], a domain lock taken
//!    or released, a wait for a process to end. While a call runs the server may send
//!    [`ToClient::Progress`] for it, and the client may send [`ToServer::Cancel`]; the
//!    server then sets the call's cancel flag. Each request ends with one
//!    [`ToClient::Reply`].
//!
//! Errors keep their code (the ABI number) and message; "unsupported" keeps the driver and
//! the operation. Messages are JSON in frames (see [`super::frame`]).

use crate::api::files::{FileAnswer, FileQuery};
use crate::driver::request::{Call, WireOutput};
use crate::driver::{DriverFacts, HostDrivers};
use crate::error::Error;
use luavirt_plugin_api::ErrorCode;
use serde::{Deserialize, Serialize};

/// The protocol version this luavirt speaks. Both sides must speak the same.
pub const PROTOCOL: u32 = 1;

/// From the client (the luavirt that runs ssh) to the server (`luavirt serve --stdio`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToServer {
    /// The first message: what to open.
    Open {
        /// The client's protocol version.
        protocol: u32,
        /// The client's luavirt version.
        luavirt: String,
        /// The URI to open on the server's host.
        uri: String,
    },
    /// A request.
    Request {
        /// Its id, echoed in its progress and reply.
        id: u64,
        /// What is asked.
        body: Request,
    },
    /// Asks the call with this id to stop.
    Cancel {
        /// The request's id.
        id: u64,
    },
}

/// What a request asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// A driver call.
    Call {
        /// The call.
        call: Call,
        /// The client's progress receiver only shows reports (and never calls a driver), so
        /// the driver may report while holding its locks.
        progress_only_shows: bool,
    },
    /// Take the host-level lock on a domain; the server holds it until released, or until
    /// the connection ends.
    Lock {
        /// The domain.
        domain: String,
    },
    /// Release a lock taken by `Lock`.
    Unlock {
        /// What `Lock` answered.
        lock: u64,
    },
    /// Wait until a process of the server's host has ended (an earlier server of a lost
    /// connection, so that what it was doing is over).
    AwaitGone {
        /// Its pid.
        pid: u32,
        /// Its start time, so that a reused pid is not taken for it.
        start: u64,
    },
    /// A new private folder on the server's host, for the sockets of a tunnel.
    TunnelDir,
    /// A question about the files of the server's host.
    Files(FileQuery),
    /// The drivers the server's host loaded and refused.
    Drivers,
    /// Remove a file of the server's host (an image `undefine --remove-all-storage` removes).
    RemoveFile {
        /// The file.
        path: String,
    },
}

/// From the server to the client.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToClient {
    /// The first message.
    Hello {
        /// The server's protocol version.
        protocol: u32,
        /// The server's luavirt version.
        luavirt: String,
        /// The server's pid, and its start time.
        pid: u32,
        /// Start time of the server's process (field 22 of /proc/PID/stat).
        start: u64,
    },
    /// The connection is open.
    Opened {
        /// The driver serving the URI.
        driver: DriverFacts,
        /// Where the server's host is.
        host: HostFacts,
    },
    /// The server will not go on; it ends after sending this.
    Refused {
        /// Why.
        error: WireError,
    },
    /// Progress of a running call.
    Progress {
        /// The request's id.
        id: u64,
        /// Done so far.
        done: u64,
        /// In all.
        total: u64,
        /// What is being done.
        stage: String,
    },
    /// The end of a request.
    Reply {
        /// The request's id.
        id: u64,
        /// Its answer, or its error.
        result: Result<Answer, WireError>,
    },
}

/// What a request answered.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A call's output.
    Output(WireOutput),
    /// A lock taken, to release by this number.
    Locked(u64),
    /// A folder made.
    Folder(String),
    /// The answer about files.
    Files(FileAnswer),
    /// The server's host's drivers.
    Drivers(HostDrivers),
    /// Done.
    Done,
}

/// Where a connection's host is: its state folder and its machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// The state folder of the URI opened (`?state=DIR`, else the default).
    pub state_dir: String,
    /// The machine's identity (`/etc/machine-id`, else the kernel's boot id).
    pub machine: String,
}

/// An error as it crosses the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireError {
    /// The ABI error code.
    pub code: i32,
    /// The message, as the server's host API wrote it.
    pub message: String,
    /// For "unsupported": the driver and the operation.
    pub unsupported: Option<(String, String)>,
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> WireError {
        WireError {
            code: e.code().as_i32(),
            message: e.to_string(),
            unsupported: match e {
                Error::Unsupported { driver, operation } => Some((driver.clone(), operation.clone())),
                _ => None,
            },
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        match w.unsupported {
            Some((driver, operation)) => Error::Unsupported { driver, operation },
            None => Error::Driver { code: ErrorCode::from_i32(w.code), message: w.message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_code_and_words_across_the_wire() {
        for e in [
            Error::Driver { code: ErrorCode::NoSnapshot, message: "Domain 'd' has no snapshot 's'".into() },
            Error::Unsupported { driver: "vmx".into(), operation: "migration".into() },
            Error::InvalidArg("bad".into()),
        ] {
            let wire: WireError = serde_json::from_str(&serde_json::to_string(&WireError::from(&e)).unwrap()).unwrap();
            let back = Error::from(wire);
            assert_eq!((back.code(), back.to_string()), (e.code(), e.to_string()));
        }
    }
}
