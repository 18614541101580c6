//! The client side of a remote connection: ssh started, the handshake, then requests one at
//! a time. While a request runs, progress frames reach the caller's progress function, and
//! the caller's cancel flag, once set, is sent as a cancel frame. A link that breaks stays
//! broken: every later request fails at once with what broke it.

use super::frame::{MAX_FRAME, ReadError, read_frame, write_frame};
use super::protocol::{Answer, HostFacts, PROTOCOL, Request, ToClient, ToServer};
use super::ssh::SshProcess;
use super::target::SshTarget;
use crate::api::files::{FileAnswer, FileQuery};
use crate::driver::request::Call;
use crate::driver::{CallOptions, CallOutput, DriverFacts};
use crate::error::{Error, Result};
use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;
use std::process::{ChildStdin, ChildStdout};
use std::sync::atomic::Ordering;

/// How often a waiting request looks at its cancel flag, in milliseconds.
const CANCEL_POLL_MS: i32 = 100;

/// The pipe to the remote server.
struct Pipe {
    to: ChildStdin,
    from: ChildStdout,
}

/// An open connection to `luavirt serve` on another host.
pub struct RemoteLink {
    target: SshTarget,
    pipe: RefCell<Option<Pipe>>,
    /// Why the link broke, once it has.
    broken: RefCell<Option<Error>>,
    next_id: Cell<u64>,
    /// The server's process: pid and start time.
    server: (u32, u64),
    host: HostFacts,
    ssh: RefCell<SshProcess>,
}

/// What opening a remote connection gives.
pub struct Opened {
    /// The link.
    pub link: RemoteLink,
    /// The driver serving the URI there.
    pub driver: DriverFacts,
}

/// Whether a request reached the server before the link broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// It was never sent whole: the server cannot have acted on it.
    NotSent,
    /// It was sent; the server may have acted on it, or not.
    Unknown,
}

impl RemoteLink {
    /// Runs ssh to `target` and opens the connection.
    pub fn open(target: &SshTarget) -> Result<Opened> {
        let (ssh, to, from) = SshProcess::spawn(target)?;
        let mut pipe = Pipe { to, from };
        let fail = |ssh: &SshProcess, what: String| {
            let said = ssh.said();
            Error::Remote {
                uri: target.uri.clone(),
                message: if said.is_empty() { what } else { format!("{what}; ssh said: {said}") },
            }
        };
        let hello = match read_frame::<ToClient>(&mut pipe.from) {
            Ok(m) => m,
            Err(ReadError::Closed | ReadError::Io(_)) => {
                return Err(fail(
                    &ssh,
                    format!(
                        "no luavirt answered on {} (ssh ended, or '{}' did not start there)",
                        target.place(),
                        target.command
                    ),
                ));
            }
            Err(e) => {
                return Err(fail(
                    &ssh,
                    format!(
                        "'{}' on {} answered with {e}; is it luavirt? name the remote luavirt binary with command=PATH",
                        target.command,
                        target.place()
                    ),
                ));
            }
        };
        let ToClient::Hello { protocol, luavirt, pid, start } = hello else {
            return Err(fail(&ssh, format!("luavirt on {} did not begin with its hello", target.place())));
        };
        if protocol != PROTOCOL {
            return Err(Error::Remote {
                uri: target.uri.clone(),
                message: format!(
                    "luavirt {luavirt} on {} speaks remote protocol {protocol}, and this luavirt {} speaks {PROTOCOL}; install the same luavirt release on both hosts (command= names the remote binary)",
                    target.place(),
                    env!("CARGO_PKG_VERSION")
                ),
            });
        }
        let open = ToServer::Open {
            protocol: PROTOCOL,
            luavirt: env!("CARGO_PKG_VERSION").to_string(),
            uri: target.remote_uri.clone(),
        };
        if let Err(e) = write_frame(&mut pipe.to, &open) {
            return Err(fail(&ssh, format!("the connection to {} closed: {e}", target.place())));
        }
        let (driver, host) = match read_frame::<ToClient>(&mut pipe.from) {
            Ok(ToClient::Opened { driver, host }) => (driver, host),
            Ok(ToClient::Refused { error }) => {
                let e = Error::from(error);
                return Err(Error::Remote { uri: target.uri.clone(), message: e.to_string() });
            }
            Ok(_) => return Err(fail(&ssh, format!("luavirt on {} answered out of turn", target.place()))),
            Err(e) => {
                return Err(fail(&ssh, format!("luavirt on {} did not open the connection: {e}", target.place())));
            }
        };
        let link = RemoteLink {
            target: target.clone(),
            pipe: RefCell::new(Some(pipe)),
            broken: RefCell::new(None),
            next_id: Cell::new(1),
            server: (pid, start),
            host,
            ssh: RefCell::new(ssh),
        };
        Ok(Opened { link, driver })
    }

    /// Where and how the host is reached.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// The remote host's state folder and machine.
    pub fn host(&self) -> &HostFacts {
        &self.host
    }

    /// The server's process on the remote host: pid and start time.
    pub fn server(&self) -> (u32, u64) {
        self.server
    }

    /// The ssh process (for tunnels).
    pub(crate) fn ssh(&self) -> std::cell::Ref<'_, SshProcess> {
        self.ssh.borrow()
    }

    /// Runs a driver call on the remote host.
    pub fn call(&self, call: &Call, options: &CallOptions) -> Result<CallOutput> {
        let body = Request::Call { call: call.clone(), progress_only_shows: options.progress_only_shows };
        match self.request(body, options)? {
            Answer::Output(o) => Ok(o.into()),
            other => Err(self.out_of_turn(&other)),
        }
    }

    /// Takes the host-level lock on `domain` there; released by [`RemoteLink::unlock`] or
    /// when the connection ends.
    pub fn lock(&self, domain: &str) -> Result<u64> {
        match self.request(Request::Lock { domain: domain.to_string() }, &CallOptions::default())? {
            Answer::Locked(n) => Ok(n),
            other => Err(self.out_of_turn(&other)),
        }
    }

    /// Releases a lock; a link that broke released it already.
    pub fn unlock(&self, lock: u64) {
        if self.broken.borrow().is_none() {
            let _ = self.request(Request::Unlock { lock }, &CallOptions::default());
        }
    }

    /// Waits until the process `pid` (started at `start`) of the remote host has ended.
    pub fn await_gone(&self, pid: u32, start: u64) -> Result<()> {
        self.request(Request::AwaitGone { pid, start }, &CallOptions::default()).map(drop)
    }

    /// A new private folder on the remote host, for the sockets of a tunnel.
    pub fn tunnel_dir(&self) -> Result<String> {
        match self.request(Request::TunnelDir, &CallOptions::default())? {
            Answer::Folder(f) => Ok(f),
            other => Err(self.out_of_turn(&other)),
        }
    }

    /// The drivers the remote host loaded and refused.
    pub fn drivers(&self) -> Result<crate::driver::HostDrivers> {
        match self.request(Request::Drivers, &CallOptions::default())? {
            Answer::Drivers(d) => Ok(d),
            other => Err(self.out_of_turn(&other)),
        }
    }

    /// Removes a file of the remote host.
    pub fn remove_file(&self, path: &str) -> Result<()> {
        self.request(Request::RemoveFile { path: path.to_string() }, &CallOptions::default()).map(drop)
    }

    /// Asks a question about the files of the remote host.
    pub fn files(&self, q: FileQuery) -> Result<FileAnswer> {
        match self.request(Request::Files(q), &CallOptions::default())? {
            Answer::Files(a) => Ok(a),
            other => Err(self.out_of_turn(&other)),
        }
    }

    fn out_of_turn(&self, answer: &Answer) -> Error {
        Error::Remote {
            uri: self.target.uri.clone(),
            message: format!("luavirt on {} answered out of turn ({answer:?})", self.target.place()),
        }
    }

    /// Sends a request and waits for its reply, passing progress on and cancelling when
    /// asked.
    fn request(&self, body: Request, options: &CallOptions) -> Result<Answer> {
        if let Some(e) = self.broken.borrow().as_ref() {
            return Err(again(e));
        }
        let mut guard = self.pipe.try_borrow_mut().map_err(|_| {
            Error::InvalidArg(format!(
                "{}: a call on this connection is still running (a progress function cannot use the connection it reports on)",
                self.target.uri
            ))
        })?;
        let pipe = guard.as_mut().expect("a link that is not broken has its pipe");
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        if let Err(e) = write_frame(&mut pipe.to, &ToServer::Request { id, body }) {
            drop(guard);
            return Err(self.break_link(Delivery::NotSent, format!("sending failed: {e}")));
        }
        let mut cancel_sent = false;
        loop {
            if !readable(&pipe.from, CANCEL_POLL_MS) {
                if !cancel_sent && options.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    cancel_sent = true;
                    if let Err(e) = write_frame(&mut pipe.to, &ToServer::Cancel { id }) {
                        drop(guard);
                        return Err(self.break_link(Delivery::Unknown, format!("sending a cancel failed: {e}")));
                    }
                }
                continue;
            }
            match read_frame::<ToClient>(&mut pipe.from) {
                Ok(ToClient::Progress { id: p, done, total, stage }) if p == id => {
                    if let Some(progress) = options.progress {
                        progress(done, total, &stage);
                    }
                }
                Ok(ToClient::Reply { id: r, result }) if r == id => return result.map_err(Error::from),
                Ok(ToClient::Refused { error }) => {
                    drop(guard);
                    return Err(self.break_link(Delivery::Unknown, Error::from(error).to_string()));
                }
                Ok(other) => {
                    drop(guard);
                    return Err(self.break_link(Delivery::Unknown, format!("it sent {other:?} out of turn")));
                }
                Err(ReadError::TooLarge(n)) => {
                    drop(guard);
                    let e = Error::Remote {
                        uri: self.target.uri.clone(),
                        message: format!(
                            "luavirt on {} sent a frame of {n} bytes, over the limit of {} MiB; the connection was closed",
                            self.target.place(),
                            MAX_FRAME >> 20
                        ),
                    };
                    self.close(&e);
                    return Err(e);
                }
                Err(ReadError::Closed) => {
                    drop(guard);
                    return Err(self.break_link(Delivery::Unknown, "luavirt there or ssh ended".to_string()));
                }
                Err(e) => {
                    drop(guard);
                    return Err(self.break_link(Delivery::Unknown, e.to_string()));
                }
            }
        }
    }

    /// Marks the link broken (closing the pipe); returns the error that says so.
    fn break_link(&self, delivery: Delivery, why: String) -> Error {
        let said = self.ssh.borrow().said();
        let e = Error::ConnectionLost {
            uri: self.target.uri.clone(),
            place: self.target.place(),
            detail: if said.is_empty() { why } else { format!("{why}; ssh said: {said}") },
            delivery,
        };
        self.close(&e);
        e
    }

    fn close(&self, why: &Error) {
        self.pipe.borrow_mut().take();
        *self.broken.borrow_mut() = Some(again(why));
    }
}

impl Drop for RemoteLink {
    fn drop(&mut self) {
        // Closing the pipe ends the server, which releases its locks; ssh then ends.
        self.pipe.get_mut().take();
        self.ssh.get_mut().stop();
    }
}

/// The error of a broken link, for a later request: nothing sent, so nothing done.
fn again(e: &Error) -> Error {
    match e {
        Error::ConnectionLost { uri, place, detail, .. } => Error::ConnectionLost {
            uri: uri.clone(),
            place: place.clone(),
            detail: detail.clone(),
            delivery: Delivery::NotSent,
        },
        Error::Remote { uri, message } => Error::Remote { uri: uri.clone(), message: message.clone() },
        other => Error::Remote { uri: String::new(), message: other.to_string() },
    }
}

/// Whether `from` has something to read within `ms` milliseconds (or has ended).
fn readable(from: &ChildStdout, ms: i32) -> bool {
    let mut fd = libc::pollfd { fd: from.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd, valid for the call.
    let n = unsafe { libc::poll(&mut fd, 1, ms) };
    // An interrupted poll reads as nothing yet: the caller looks again.
    n > 0
}
