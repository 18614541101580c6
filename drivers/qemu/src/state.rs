//! Where the QEMU driver keeps things under its state folder, and how it reads them back.
//!
//! ```text
//! <state>/qemu/domains/NAME.xml      definitions, as defined (lossless)
//! <state>/qemu/run/NAME/state.json   the running QEMU: pid, its start time, monitor socket
//! <state>/qemu/run/NAME/qmp-K.sock   its QMP monitors (K < MONITORS), each claimed through
//!                                    qmp-K.lock by one luavirt call at a time
//! <state>/qemu/log/NAME.log          QEMU's output, appended at each start
//! <state>/qemu/locks/NAME.lock       held while a call changes NAME
//! <state>/qemu/intents/NAME.json     a change to NAME in progress (see crate::intent)
//! <state>/qemu/uuids/UUID            the name of the domain with that UUID (an index, so a
//!                                    define checks UUIDs in one lookup, not one per domain)
//! <state>/qemu/snapshots/NAME.xml    the snapshot tree of NAME
//! <state>/qemu/migrations/ID         exists once migration ID committed here (the source
//!                                    reads it to know whether to stop or resume its copy)
//! <state>/qemu/run/NAME/transient    NAME was migrated in without a definition to keep: it
//!                                    is forgotten when its QEMU ends
//! ```
//!
//! Every folder is created 0700 and every file 0600, whatever the umask: the monitors run
//! commands as QEMU's user, and memory files hold guest RAM.

use luavirt_plugin_api::domain::{DomainXml, ParseMemo, check_domain_name};
use luavirt_plugin_api::fsutil::{LockGuard, create_private_dir, lock_exclusive, try_lock_exclusive, write_atomic};
use luavirt_plugin_api::intent::IntentFile;
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How many QMP monitors each QEMU offers. QMP serves one client per monitor, so this many
/// luavirt calls can talk to one domain at once (a long block job wait holds one).
pub const MONITORS: usize = 4;

/// The driver's folders.
pub struct StateDir {
    root: PathBuf,
    /// The last definition read or written, parsed: a read of the same text needs no parse.
    parsed: ParseMemo,
}

/// What `state.json` records about a running QEMU.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunState {
    /// QEMU's process id.
    pub pid: i32,
    /// The process's start time (field 22 of /proc/PID/stat), to tell it from a later
    /// process that reuses the pid.
    pub start_time: u64,
    /// When it was started, seconds since the epoch.
    pub started_at: u64,
}

impl StateDir {
    /// The QEMU driver's folder inside luavirt's state folder `base`.
    pub fn new(base: &Path) -> StateDir {
        StateDir { root: base.join("qemu"), parsed: ParseMemo::new() }
    }

    fn checked(name: &str) -> Result<&str, DriverError> {
        check_domain_name(name).map_err(|m| DriverError::new(ErrorCode::InvalidArg, m))?;
        Ok(name)
    }

    /// The definition file of `name`.
    pub fn definition(&self, name: &str) -> Result<PathBuf, DriverError> {
        Ok(self.root.join("domains").join(format!("{}.xml", Self::checked(name)?)))
    }

    /// The run folder of `name`.
    pub fn run_dir(&self, name: &str) -> Result<PathBuf, DriverError> {
        Ok(self.root.join("run").join(Self::checked(name)?))
    }

    /// Monitor socket `k` of `name`.
    pub fn monitor_socket(&self, name: &str, k: usize) -> Result<PathBuf, DriverError> {
        Ok(self.run_dir(name)?.join(format!("qmp-{k}.sock")))
    }

    /// Claims a free monitor of `name`: its socket, and the lock that keeps it ours. When all
    /// are busy, waits for one.
    pub fn claim_monitor(&self, name: &str) -> Result<(PathBuf, LockGuard), DriverError> {
        let dir = self.run_dir(name)?;
        for k in 0..MONITORS {
            let lock = dir.join(format!("qmp-{k}.lock"));
            if let Some(guard) = try_lock_exclusive(&lock).map_err(|e| DriverError::io("lock", &lock, e))? {
                return Ok((self.monitor_socket(name, k)?, guard));
            }
        }
        let k = std::process::id() as usize % MONITORS;
        let lock = dir.join(format!("qmp-{k}.lock"));
        let guard = lock_exclusive(&lock).map_err(|e| DriverError::io("lock", &lock, e))?;
        Ok((self.monitor_socket(name, k)?, guard))
    }

    /// QEMU's log of `name`.
    pub fn log_file(&self, name: &str) -> Result<PathBuf, DriverError> {
        Ok(self.root.join("log").join(format!("{}.log", Self::checked(name)?)))
    }

    /// The folders that hold state files written atomically.
    pub fn folders(&self) -> [PathBuf; 5] {
        ["domains", "snapshots", "intents", "uuids", "migrations"].map(|d| self.root.join(d))
    }

    /// Names of domains with a change recorded (a migration coming in has no definition yet).
    pub fn names_with_intents(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root.join("intents")) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_string))
            .filter(|n| check_domain_name(n).is_ok())
            .collect()
    }

    /// The record of a change to `name` in progress.
    pub fn intents(&self, name: &str) -> Result<IntentFile, DriverError> {
        Ok(IntentFile::new(self.root.join("intents").join(format!("{}.json", Self::checked(name)?))))
    }

    /// Takes the lock of `name` (callers that change the domain use
    /// `QemuDriver::lock_domain`, which also reconciles).
    pub fn lock(&self, name: &str) -> Result<DomainLock, DriverError> {
        let path = self.root.join("locks").join(format!("{}.lock", Self::checked(name)?));
        let guard = lock_exclusive(&path).map_err(|e| DriverError::io("lock", &path, e))?;
        LOCKS_HELD.with(|n| n.set(n.get() + 1));
        Ok(DomainLock { _guard: guard })
    }

    /// Names of all defined domains, sorted.
    pub fn domain_names(&self) -> Result<Vec<String>, DriverError> {
        let dir = self.root.join("domains");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(DriverError::io("read", &dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".xml")).map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads the definition of `name`: its text and parsed form.
    pub fn read_definition(&self, name: &str) -> Result<(String, DomainXml), DriverError> {
        self.read_checked(name, DomainXml::clone)
    }

    /// Reads the definition of `name` and checks it, as [`StateDir::read_definition`] does,
    /// without copying the parse: for a caller that needs only the text.
    pub fn read_definition_text(&self, name: &str) -> Result<String, DriverError> {
        self.read_checked(name, |_| ()).map(|(text, ())| text)
    }

    /// The UUID in the definition of `name`, checked as [`StateDir::read_definition`] does.
    pub fn read_uuid(&self, name: &str) -> Result<Option<String>, DriverError> {
        self.read_checked(name, DomainXml::uuid).map(|(_, uuid)| uuid)
    }

    /// Reads the file of `name`, checks that it holds that domain, and applies `f` to it.
    fn read_checked<R>(&self, name: &str, f: impl FnOnce(&DomainXml) -> R) -> Result<(String, R), DriverError> {
        let path = self.definition(name)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DriverError::new(ErrorCode::NoDomain, format!("Domain '{name}' is not defined")));
            }
            Err(e) => return Err(DriverError::io("read", &path, e)),
        };
        let checked = self.parsed.with(&text, Some(&path.display().to_string()), |dom| {
            let held = dom.name();
            (held == name).then(|| f(dom)).ok_or(held)
        });
        let held = checked.map_err(|e| {
            DriverError::new(ErrorCode::CorruptState, format!("The stored definition of domain '{name}' is corrupt: {e}; fix the file or move it away (nothing was changed)"))
        })?;
        match held {
            Ok(out) => Ok((text, out)),
            Err(held) => Err(DriverError::new(
                ErrorCode::CorruptState,
                format!(
                    "{} holds domain '{held}', not '{name}'; rename the file or fix its <name> (nothing was changed)",
                    path.display(),
                ),
            )),
        }
    }

    /// Keeps `dom`, parsed from `text`, for the next read of that text.
    pub fn keep_parsed(&self, text: String, dom: DomainXml) {
        self.parsed.keep(text, dom);
    }

    /// Stores the definition of a domain.
    pub fn write_definition(&self, name: &str, xml: &str) -> Result<(), DriverError> {
        let path = self.definition(name)?;
        ensure_parent(&path)?;
        write_atomic(&path, xml.as_bytes()).map_err(|e| DriverError::io("write", &path, e))
    }

    /// The domain that has `uuid`, if any, from the index (built once from the definitions
    /// when a state folder has none). An entry is checked against its definition, so one
    /// left by a killed define or an undefine counts for nothing.
    pub fn uuid_owner(&self, uuid: &str) -> Result<Option<String>, DriverError> {
        let dir = self.root.join("uuids");
        if !dir.is_dir() {
            for name in self.domain_names()? {
                if let Ok(Some(u)) = self.read_uuid(&name) {
                    self.index_uuid(&u, &name)?;
                }
            }
            create_private_dir(&dir).map_err(|e| DriverError::io("create", &dir, e))?;
        }
        let entry = self.uuid_entry(uuid)?;
        let name = match std::fs::read_to_string(&entry) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DriverError::io("read", &entry, e)),
        };
        let owns = self.read_uuid(&name).is_ok_and(|u| u.as_deref() == Some(uuid));
        Ok(owns.then_some(name))
    }

    /// Records that domain `name` has `uuid` (nothing to write when it says so already).
    pub fn index_uuid(&self, uuid: &str, name: &str) -> Result<(), DriverError> {
        let entry = self.uuid_entry(uuid)?;
        if std::fs::read(&entry).is_ok_and(|n| n == name.as_bytes()) {
            return Ok(());
        }
        ensure_parent(&entry)?;
        write_atomic(&entry, Self::checked(name)?.as_bytes()).map_err(|e| DriverError::io("write", &entry, e))
    }

    fn uuid_entry(&self, uuid: &str) -> Result<PathBuf, DriverError> {
        if uuid.is_empty() || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(DriverError::new(ErrorCode::InvalidArg, format!("Invalid UUID {uuid:?}")));
        }
        Ok(self.root.join("uuids").join(uuid))
    }

    /// Reads `state.json` of `name`, if the domain was started.
    pub fn read_run_state(&self, name: &str) -> Result<Option<RunState>, DriverError> {
        let path = self.run_dir(name)?.join("state.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                DriverError::new(
                    ErrorCode::CorruptState,
                    format!("The run state {} of domain '{name}' is corrupt ({e}); if no QEMU of it runs, remove the file (nothing was changed)", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DriverError::io("read", &path, e)),
        }
    }

    /// Writes `state.json` of `name`.
    pub fn write_run_state(&self, name: &str, state: &RunState) -> Result<(), DriverError> {
        let path = self.run_dir(name)?.join("state.json");
        ensure_parent(&path)?;
        let json = serde_json::to_vec_pretty(state).expect("run state serializes");
        write_atomic(&path, &json).map_err(|e| DriverError::io("write", &path, e))
    }

    /// The snapshot tree file of `name`.
    pub fn snapshots_file(&self, name: &str) -> Result<PathBuf, DriverError> {
        Ok(self.root.join("snapshots").join(format!("{}.xml", Self::checked(name)?)))
    }

    /// The file that says migration `id` committed here.
    pub fn commit_marker(&self, id: &str) -> Result<PathBuf, DriverError> {
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(DriverError::new(ErrorCode::InvalidArg, format!("Invalid migration id {id:?}")));
        }
        Ok(self.root.join("migrations").join(id))
    }

    /// The mark of a domain that lives only as long as its QEMU.
    pub fn transient_mark(&self, name: &str) -> Result<PathBuf, DriverError> {
        Ok(self.run_dir(name)?.join("transient"))
    }

    /// Whether `name` lives only as long as its QEMU.
    pub fn is_transient(&self, name: &str) -> Result<bool, DriverError> {
        Ok(self.transient_mark(name)?.exists())
    }

    /// Removes the run folder of `name` (after QEMU stopped). A domain that lived only as long
    /// as its QEMU goes with it, unless it has snapshots since (their records need it).
    pub fn clear_run(&self, name: &str) -> Result<(), DriverError> {
        if self.is_transient(name)? && !self.snapshots_file(name)?.exists() {
            let def = self.definition(name)?;
            match std::fs::remove_file(&def) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(DriverError::io("remove", &def, e)),
                _ => {}
            }
        }
        let dir = self.run_dir(name)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::io("remove", &dir, e)),
            _ => Ok(()),
        }
    }
}

thread_local! {
    /// How many domain locks this thread holds.
    static LOCKS_HELD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A domain's lock, held until dropped.
pub struct DomainLock {
    _guard: LockGuard,
}

impl Drop for DomainLock {
    fn drop(&mut self) {
        LOCKS_HELD.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Whether progress may be reported now: when this thread holds no domain lock, or when the
/// host says the report only shows (nothing can call back and wait for that lock).
pub fn may_report(call: &luavirt_plugin_api::kit::Call) -> bool {
    !holds_a_lock() || !call.progress_may_reenter()
}

/// Whether this thread holds a domain's lock. Progress reports go to the caller's code (a
/// Lua callback) that may change a domain: they are held back meanwhile, or it would wait
/// for the lock its own call holds.
pub fn holds_a_lock() -> bool {
    LOCKS_HELD.with(|n| n.get() > 0)
}

/// Creates the folder `path` goes in (0700).
pub fn ensure_parent(path: &Path) -> Result<(), DriverError> {
    match path.parent() {
        Some(dir) => create_private_dir(dir).map_err(|e| DriverError::io("create", dir, e)),
        None => Ok(()),
    }
}
