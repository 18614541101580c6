//! `luavirt serve --stdio`: the remote end of a `DRIVER+ssh://` connection. ssh runs it with
//! the protocol on its standard input and output; it opens no socket and listens on nothing,
//! so ssh's authentication is the only one. It opens the URI it is asked with the drivers of
//! its host, runs the client's driver calls there one at a time, holds the host-level domain
//! locks the client takes until it releases them or goes away, and ends when its standard
//! input closes (the connection ended, or was lost: a call under way is then cancelled).
//!
//! A reader thread takes frames off standard input, so that a cancel reaches the running
//! call; the calls themselves run on the main thread, which alone writes frames.

use super::frame::{ReadError, read_frame, write_frame};
use super::protocol::{Answer, HostFacts, PROTOCOL, Request, ToClient, ToServer, WireError};
use super::target::SshTarget;
use super::{fresh_private_dir, machine_id};
use crate::api::{Connection, Host};
use crate::driver::CallOptions;
use crate::driver::request::WireOutput;
use crate::error::{Error, Result};
use luavirt_plugin_api::fsutil::{LockGuard, state_dir_for};
use luavirt_plugin_api::intent::process_start;
use luavirt_plugin_api::{ErrorCode, Uri};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// How long `AwaitGone` waits for an earlier server to end.
const AWAIT_GONE: Duration = Duration::from_secs(120);

/// What the reader thread passes on.
enum Incoming {
    Message(ToServer),
    End(ReadError),
}

fn send(msg: &ToClient) -> std::io::Result<()> {
    write_frame(&mut std::io::stdout().lock(), msg)
}

fn is_terminal(fd: i32) -> bool {
    // SAFETY: isatty only reads the descriptor's kind.
    unsafe { libc::isatty(fd) == 1 }
}

/// Runs the server on standard input and output; returns the exit status.
pub fn serve_stdio(host: &Host) -> i32 {
    if is_terminal(0) || is_terminal(1) {
        eprintln!(
            "luavirt: luavirt serve --stdio speaks luavirt's remote protocol on its standard input and output, and they are a terminal here; it is what ssh runs on this host for a connection such as `luavirt -c qemu+ssh://THIS-HOST/session list`, not a command to run by hand"
        );
        return 1;
    }
    let pid = std::process::id();
    let hello = ToClient::Hello {
        protocol: PROTOCOL,
        luavirt: env!("CARGO_PKG_VERSION").to_string(),
        pid,
        start: process_start(pid).unwrap_or(0),
    };
    if send(&hello).is_err() {
        return 1;
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let rx = spawn_reader(cancel.clone());
    let conn = match rx.recv() {
        Ok(Incoming::Message(ToServer::Open { protocol, luavirt, uri })) => {
            match open(host, protocol, &luavirt, &uri) {
                Ok(c) => c,
                Err(e) => {
                    let _ = send(&ToClient::Refused { error: WireError::from(&e) });
                    return 1;
                }
            }
        }
        Ok(Incoming::Message(_)) => {
            let e = Error::InvalidArg("the client did not begin by opening a connection".to_string());
            let _ = send(&ToClient::Refused { error: WireError::from(&e) });
            return 1;
        }
        Ok(Incoming::End(e)) => return end(e),
        Err(_) => return 1,
    };
    let opened = ToClient::Opened { driver: conn.client.facts().clone(), host: host_facts(conn.uri()) };
    if send(&opened).is_err() {
        return 1;
    }
    let mut server = Server { host, conn: &conn, locks: HashMap::new(), next_lock: 1, folders: Vec::new() };
    let status = loop {
        match rx.recv() {
            Ok(Incoming::Message(ToServer::Request { id, body })) => {
                let result = server.handle(id, body, &cancel).map_err(|e| WireError::from(&e));
                if send(&ToClient::Reply { id, result }).is_err() {
                    // The client is gone; the reader sees the end next.
                    continue;
                }
            }
            Ok(Incoming::Message(other)) => {
                let e = Error::InvalidArg(format!("the client sent {other:?} out of turn"));
                let _ = send(&ToClient::Refused { error: WireError::from(&e) });
                break 1;
            }
            Ok(Incoming::End(e)) => break end(e),
            Err(_) => break 1,
        }
    };
    for f in &server.folders {
        let _ = std::fs::remove_dir_all(f);
    }
    status
}

/// The exit status for how the client's stream ended; an oversized frame is answered first.
fn end(e: ReadError) -> i32 {
    match e {
        ReadError::Closed => 0,
        ReadError::TooLarge(_) | ReadError::Bad(_) => {
            let err = Error::InvalidArg(format!("luavirt serve refused {e}; the connection is closed"));
            let _ = send(&ToClient::Refused { error: WireError::from(&err) });
            eprintln!("luavirt: error (serve): {err}");
            1
        }
        ReadError::Io(io) => {
            eprintln!("luavirt: error (serve): reading the client's requests failed: {io}");
            1
        }
    }
}

/// Reads frames off standard input. A cancel for the request under way sets `cancel`; the
/// end of the stream sets it too, since no one is left to want the call's result.
fn spawn_reader(cancel: Arc<AtomicBool>) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel();
    let current = AtomicU64::new(0);
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        loop {
            match read_frame::<ToServer>(&mut input) {
                Ok(ToServer::Cancel { id }) => {
                    if current.load(Ordering::Relaxed) == id {
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
                Ok(msg) => {
                    if let ToServer::Request { id, .. } = &msg {
                        // Requests come one at a time: this one is now under way.
                        current.store(*id, Ordering::Relaxed);
                        cancel.store(false, Ordering::Relaxed);
                    }
                    if tx.send(Incoming::Message(msg)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    cancel.store(true, Ordering::Relaxed);
                    let _ = tx.send(Incoming::End(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Checks the client's version, then opens `uri` on this host.
fn open(host: &Host, protocol: u32, luavirt: &str, uri: &str) -> Result<Connection> {
    if protocol != PROTOCOL {
        return Err(Error::Driver {
            code: ErrorCode::Unsupported,
            message: format!(
                "luavirt {} on this host speaks remote protocol {PROTOCOL}, and the client (luavirt {luavirt}) speaks {protocol}; install the same luavirt release on both hosts",
                env!("CARGO_PKG_VERSION")
            ),
        });
    }
    let parsed = Uri::parse(uri).map_err(|e| Error::InvalidArg(e.to_string()))?;
    if SshTarget::is_remote(&parsed) {
        return Err(Error::InvalidArg(format!(
            "{uri}: luavirt serve opens connections of its own host only, not of another one through it"
        )));
    }
    host.connect(uri)
}

/// The server's state after the connection opened.
struct Server<'a> {
    host: &'a Host,
    conn: &'a Connection,
    /// Domain locks the client holds.
    locks: HashMap<u64, LockGuard>,
    next_lock: u64,
    /// Tunnel folders made, removed at the end.
    folders: Vec<PathBuf>,
}

impl Server<'_> {
    fn handle(&mut self, id: u64, body: Request, cancel: &AtomicBool) -> Result<Answer> {
        match body {
            Request::Call { call, progress_only_shows } => {
                let local = self.conn.client.local().expect("serve opens connections of its own host");
                let progress = |done: u64, total: u64, stage: &str| {
                    let _ = send(&ToClient::Progress { id, done, total, stage: stage.to_string() });
                };
                // The progress sent on only reaches the client's receiver, as it says.
                let options = CallOptions { progress: Some(&progress), cancel: Some(cancel), progress_only_shows };
                let out = local.run(&call, &options)?;
                Ok(Answer::Output(WireOutput::from(&out)))
            }
            Request::Lock { domain } => {
                let guard = self.conn.lock_file(&domain)?;
                let n = self.next_lock;
                self.next_lock += 1;
                self.locks.insert(n, guard);
                Ok(Answer::Locked(n))
            }
            Request::Unlock { lock } => {
                self.locks.remove(&lock);
                Ok(Answer::Done)
            }
            Request::AwaitGone { pid, start } => {
                let began = Instant::now();
                while process_start(pid) == Some(start) {
                    if began.elapsed() > AWAIT_GONE {
                        return Err(Error::Driver {
                            code: ErrorCode::Busy,
                            message: format!(
                                "the earlier luavirt server (pid {pid}) of the lost connection still runs after {} s",
                                AWAIT_GONE.as_secs()
                            ),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(Answer::Done)
            }
            Request::Files(q) => Ok(Answer::Files(crate::api::files::answer(&q)?)),
            Request::Drivers => Ok(Answer::Drivers(self.host.listing())),
            Request::RemoveFile { path } => crate::api::files::remove_file(&path).map(|()| Answer::Done),
            Request::TunnelDir => {
                let dir = fresh_private_dir(&std::env::temp_dir(), "luavirt-tunnel").map_err(|source| Error::Io {
                    doing: "create a folder in",
                    path: std::env::temp_dir(),
                    source,
                })?;
                self.folders.push(dir.clone());
                Ok(Answer::Folder(dir.display().to_string()))
            }
        }
    }
}

/// Where this host is, for the URI opened.
pub(crate) fn host_facts(uri: &Uri) -> HostFacts {
    HostFacts { state_dir: state_dir_for(uri).display().to_string(), machine: machine_id() }
}
