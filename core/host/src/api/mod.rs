//! The host API: every operation luavirt offers, written once. The CLI and Lua scripts both
//! call these functions; drivers are reached only through the ABI. Operations that
//! policies may refuse or adjust call the [`hooks`] first.

mod attach;
mod blockjob;
mod confine;
mod details;
mod diskmode;
mod diskset;
mod domain;
mod dryrun;
pub mod files;
pub mod hooks;
mod lifecycle;
mod lock;
mod lookup;
pub mod migrate;
mod newdisk;
pub mod save;
pub mod snapshot;
mod suggest;
mod undefine;

pub use crate::driver::client::Affect;
pub use attach::DeviceChange;
pub use blockjob::{BlockJobInfo, CommitOptions, CopyOptions, JobControl, PullOptions};
pub use details::DomainDetails;
pub use diskmode::ModeApplies;
pub use diskset::{DiskSetChange, DiskSetOps};
pub use domain::{BlockDevice, DefineOutcome, DomainInfo, DomainState, ImageDetails};
pub use dryrun::PlannedChange;
pub use lifecycle::{ShutdownOptions, ShutdownOutcome};
pub use newdisk::{BuiltDisk, NewDisk};
pub use undefine::{KeptFile, StorageRemoval, UndefineOptions, UndefineReport};

use crate::driver::client::DriverConn;
use crate::driver::{self, DriverFacts, LoadedDriver, RefusedDriver};
use crate::error::{Error, Result};
use crate::remote::{RemoteLink, SshTarget};
use luavirt_plugin_api::Uri;
use luavirt_plugin_api::domain::ParseMemo;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// The URI used when none is given: `LUAVIRT_DEFAULT_URI`, else `qemu:///session`.
pub fn default_uri() -> String {
    std::env::var("LUAVIRT_DEFAULT_URI").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "qemu:///session".to_string())
}

/// The loaded drivers, and those refused.
pub struct Host {
    drivers: Vec<Arc<LoadedDriver>>,
    refused: Vec<RefusedDriver>,
    /// The folders searched for drivers.
    searched: Vec<PathBuf>,
    hooks: Rc<hooks::HookRegistry>,
}

impl Host {
    /// Loads the drivers found on the search path (see [`driver::loader::search_path`]).
    pub fn load() -> Host {
        Host::load_from(&driver::loader::search_path())
    }

    /// Loads the drivers found in `dirs` (`true` = only `libluavirt_*.so`).
    pub fn load_from(dirs: &[(PathBuf, bool)]) -> Host {
        let (loaded, refused) = driver::loader::load_all(dirs);
        let searched = dirs.iter().map(|(d, _)| d.clone()).collect();
        Host { drivers: loaded.into_iter().map(Arc::new).collect(), refused, searched, hooks: Rc::default() }
    }

    /// The folders searched for drivers, in order, each with a note when it does not exist.
    pub fn searched(&self) -> String {
        let each: Vec<String> = self
            .searched
            .iter()
            .map(|d| if d.is_dir() { d.display().to_string() } else { format!("{} (missing)", d.display()) })
            .collect();
        each.join(", ")
    }

    /// Fails when no driver loaded (every verb would fail), saying where drivers were looked
    /// for and why any found were refused.
    pub fn require_drivers(&self) -> Result<()> {
        if !self.drivers.is_empty() {
            return Ok(());
        }
        let refused: Vec<String> = self.refused.iter().map(|r| format!("{}: {}", r.path.display(), r.reason)).collect();
        Err(Error::NoDrivers {
            searched: self.searched(),
            refused: if refused.is_empty() { String::new() } else { format!("; refused: {}", refused.join("; ")) },
        })
    }

    /// Drivers that loaded.
    pub fn drivers(&self) -> &[Arc<LoadedDriver>] {
        &self.drivers
    }

    /// Shared objects that were refused, with reasons.
    pub fn refused(&self) -> &[RefusedDriver] {
        &self.refused
    }

    /// The drivers loaded and refused, as listed.
    pub fn listing(&self) -> crate::driver::HostDrivers {
        crate::driver::HostDrivers {
            loaded: self
                .drivers
                .iter()
                .map(|d| crate::driver::DriverListing { facts: d.facts(), path: d.path.clone(), note: d.abi_note() })
                .collect(),
            refused: self.refused.clone(),
        }
    }

    /// The operation hooks every connection of this host runs (see [`hooks`]).
    pub fn hooks(&self) -> &hooks::HookRegistry {
        &self.hooks
    }

    /// Opens a connection to `uri` with the driver that serves its scheme: loaded here, or
    /// for `DRIVER+ssh://HOST/...`, on that host behind `luavirt serve` (see [`crate::remote`]).
    pub fn connect(&self, uri: &str) -> Result<Connection> {
        let parsed = Uri::parse(uri).map_err(|e| Error::InvalidArg(e.to_string()))?;
        if SshTarget::is_remote(&parsed) {
            return self.connect_remote(parsed);
        }
        if let Some((_, transport)) = parsed.scheme.split_once('+') {
            return Err(Error::InvalidArg(format!(
                "{uri}: luavirt reaches other hosts over ssh only (DRIVER+ssh://HOST/...), not over '{transport}'"
            )));
        }
        let driver =
            self.drivers.iter().find(|d| d.serves(&parsed.scheme)).cloned().ok_or_else(|| Error::NoDriver {
                uri: uri.to_string(),
                scheme: parsed.scheme.clone(),
                loaded: {
                    let s: Vec<String> = self.drivers.iter().flat_map(|d| d.schemes.clone()).collect();
                    if s.is_empty() { format!("none; looked in {}", self.searched()) } else { s.join(", ") }
                },
            })?;
        let client = DriverConn::open(driver, &parsed)?;
        let place = Place {
            state_dir: luavirt_plugin_api::fsutil::state_dir_for(&parsed),
            machine: crate::remote::machine_id(),
            remote: false,
        };
        Ok(self.connection(client, parsed, place))
    }

    fn connect_remote(&self, parsed: Uri) -> Result<Connection> {
        let target = SshTarget::parse(&parsed)?;
        let opened = RemoteLink::open(&target)?;
        let host = opened.link.host().clone();
        let place = Place { state_dir: PathBuf::from(host.state_dir), machine: host.machine, remote: true };
        let client = DriverConn::remote(Rc::new(opened.link), opened.driver);
        Ok(self.connection(client, parsed, place))
    }

    fn connection(&self, client: DriverConn, uri: Uri, place: Place) -> Connection {
        Connection {
            client,
            uri,
            place,
            dry_run: None,
            hooks: self.hooks.clone(),
            changed: RefCell::default(),
            parsed: ParseMemo::new(),
        }
    }
}

/// Where a connection's host is: the machine and the state folder of its URI there.
struct Place {
    state_dir: PathBuf,
    machine: String,
    remote: bool,
}

/// An open connection: a driver's typed client, and the URI it serves.
pub struct Connection {
    pub(crate) client: DriverConn,
    uri: Uri,
    place: Place,
    /// Set in a dry run: changes are recorded, not made.
    dry_run: Option<dryrun::DryRun>,
    /// The host's operation hooks.
    hooks: Rc<hooks::HookRegistry>,
    /// Domains this connection changed (or, in a dry run, would have), since last asked.
    changed: RefCell<BTreeSet<String>>,
    /// The last definition read or written, parsed: a read of the same text needs no parse.
    parsed: ParseMemo,
}

impl Connection {
    /// The URI as given.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The driver serving it (here, or on the remote host).
    pub fn driver(&self) -> &DriverFacts {
        self.client.facts()
    }

    /// A second connection to the same remote host, over a new ssh connection (this one's
    /// was lost); it runs the same hooks.
    pub(crate) fn reopen(&self) -> Result<Connection> {
        let link = self.client.remote_link().ok_or_else(|| {
            Error::InvalidArg(format!("{} is not a remote connection, so it cannot be reopened", self.uri))
        })?;
        let opened = RemoteLink::open(link.target())?;
        let host = opened.link.host().clone();
        let place = Place { state_dir: PathBuf::from(host.state_dir), machine: host.machine, remote: true };
        let client = DriverConn::remote(Rc::new(opened.link), opened.driver);
        Ok(Connection {
            client,
            uri: self.uri.clone(),
            place,
            dry_run: None,
            hooks: self.hooks.clone(),
            changed: RefCell::default(),
            parsed: ParseMemo::new(),
        })
    }

    /// Whether it reaches another host (`DRIVER+ssh://`).
    pub fn is_remote(&self) -> bool {
        self.place.remote
    }

    /// The drivers the remote host loaded and refused; `None` for a connection of this
    /// machine (whose drivers [`Host::listing`] gives).
    pub fn remote_drivers(&self) -> Option<Result<crate::driver::HostDrivers>> {
        self.client.remote_link().map(|l| l.drivers())
    }

    /// The state folder of its host, as that host sees it.
    pub fn state_dir(&self) -> &Path {
        &self.place.state_dir
    }

    /// Whether `other` reaches the same machine (its files are this one's files).
    pub fn same_machine(&self, other: &Connection) -> bool {
        self.place.machine == other.place.machine
    }

    /// Whether `other` is the same host: the same machine and state folder.
    pub fn same_host(&self, other: &Connection) -> bool {
        self.same_machine(other) && self.place.state_dir == other.place.state_dir
    }

    /// The domains this connection changed (or a dry run would have) since the last call;
    /// `luavirt watch` reads them after each hook, so a hook's own change is not reported
    /// back to it as news.
    pub fn take_changed_domains(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.changed.borrow_mut())
    }

    /// Where this (local) connection's host-side locks live: the URI's `?state=DIR` or the
    /// default state folder, then one folder per scheme and path. Other query parameters do
    /// not matter: `vmx:///ds` and `vmx:///ds?datastore=x` change the same files. A remote
    /// connection's locks are its server's, on its host.
    fn lock_dir(&self) -> PathBuf {
        let key = format!("{}://{}{}", self.uri.scheme, self.uri.host, self.uri.path);
        // FNV-1a: a stable short name for the key.
        let hash = key.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        self.place.state_dir.join("locks").join(format!("{}-{hash:016x}", self.uri.scheme))
    }
}
