//! Policies: the Lua files of a policy folder, each in its own sandboxed interpreter, whose
//! hooks luavirt runs. `luavirt watch` runs all their hooks; every command that runs an
//! operation with hooks (snapshot, revert, delete, define, migrate, and `luavirt run`) loads them and
//! registers their operation hooks with the host ([`ops`]), so a policy sees the operation
//! whichever door it comes through.
//!
//! - The folder and each file must pass the trust check drivers pass (`luavirt_host::trust`):
//!   owned by root or the user luavirt runs as, writable by no one else. A policy runs with
//!   luavirt's rights.
//! - A file's top level runs at each load: it registers hooks (and may open connections).
//! - A reload that fails keeps the version that ran before.
//! - Each hook run has the script limits: memory per policy, time per run (`lua::limits`).

pub mod ops;
mod request;

use crate::lua::hooks::{Hook, PolicyParts};
use crate::lua::limits::Limits;
use crate::lua::{Context, RunOptions, errors, interpreter_with, read_script, report_with_limits};
use luavirt_host::trust::{Holds, check_file, check_folder};
use luavirt_host::words::{Door, current_door, set_door};
use luavirt_host::{Connection, Host, PlannedChange};
use mlua::{Lua, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The policy folder: `LUAVIRT_POLICY_DIR`, else `/etc/luavirt/policies`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("LUAVIRT_POLICY_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/luavirt/policies"))
}

/// The limits of each hook run when no option sets them: 256 MiB per policy, 60 s per run.
pub const HOOK_LIMITS: Limits = Limits { memory: 256 << 20, time: std::time::Duration::from_secs(60) };

/// Loads the policy folder's operation hooks into `host` for one command, if the folder
/// exists: then every operation with hooks runs them. A policy that cannot be loaded (the
/// folder or a file refused by the trust check, an error in a file) refuses the command, since
/// a policy that cannot be asked does not say yes. Log lines go to standard error (policies'
/// own lines with `LUAVIRT_LOG=info`).
pub fn for_command(host: &Rc<Host>, default_uri: &str, dry_run: bool) -> luavirt_host::Result<Option<Rc<PolicySet>>> {
    let dir = default_dir();
    if !dir.exists() {
        return Ok(None);
    }
    let log: LogFn = Rc::new(|r: Record| {
        let level = match r.level {
            Level::Error => luavirt_host::log::Level::Error,
            Level::Warning => luavirt_host::log::Level::Warning,
            Level::Info => luavirt_host::log::Level::Info,
        };
        let text = match &r.at {
            Some(at) => format!("{at}: {}", r.message),
            None => r.message.clone(),
        };
        luavirt_host::log::write(level, "policy", &text);
    });
    let opts = Options { dir: dir.clone(), default_uri: default_uri.to_string(), dry_run, limits: HOOK_LIMITS };
    let set = PolicySet::new(host.clone(), opts, log);
    let refuse = |why: String| {
        luavirt_host::Error::InvalidArg(format!(
            "{why}; operations that policies see (snapshots, reverts, deletes, defines, migrations, scripts) do not run until it loads: fix it, or move it out of {}",
            dir.display()
        ))
    };
    let failed = set.load_all().map_err(refuse)?;
    if let Some((file, e)) = failed.into_iter().next() {
        return Err(refuse(format!("policy {} cannot be loaded: {e}", file.display())));
    }
    host.hooks().add(set.clone());
    Ok(Some(set))
}

/// How policies run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The policy folder.
    pub dir: PathBuf,
    /// What `luavirt.connect()` opens without a URI, and what `domain:changed` follows.
    pub default_uri: String,
    /// Hooks record changes instead of making them.
    pub dry_run: bool,
    /// Memory per policy, time per hook run.
    pub limits: Limits,
}

/// How much a log line matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// A hook or a policy failed.
    Error,
    /// Something went on anyway.
    Warning,
    /// What happened.
    Info,
}

impl Level {
    /// Its name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        }
    }
}

/// One line of the policies' log.
#[derive(Clone, Debug)]
pub struct Record {
    /// How much it matters.
    pub level: Level,
    /// What kind of line: `log` (a policy's `luavirt.log`), `hook-error`, `loaded`, ...
    pub kind: &'static str,
    /// The policy file, `file:line` where known.
    pub at: Option<String>,
    /// What happened.
    pub message: String,
}

/// Where log lines go.
pub type LogFn = Rc<dyn Fn(Record)>;

/// One loaded policy file.
pub struct Policy {
    /// The file.
    pub file: PathBuf,
    lua: Lua,
    ctx: Rc<Context>,
    /// Hook runs under way in this interpreter (one inside another when a hook's operation
    /// runs another hook of the same file): only the outermost starts and stops the clock.
    active: Cell<usize>,
    /// Connections for events' domain handles, by (URI, dry run).
    conns: RefCell<BTreeMap<(String, bool), Rc<Connection>>>,
}

impl Policy {
    /// Its hooks, in the order the file registered them.
    pub fn hooks(&self) -> Vec<Rc<Hook>> {
        self.ctx.policy.as_ref().map(|p| p.hooks.borrow().clone()).unwrap_or_default()
    }

    /// Runs `hook` with the event `make` builds, within the limits; `None` when the hook is
    /// running already (it is never entered again from inside itself).
    pub fn run(&self, hook: &Hook, make: impl FnOnce(&Lua) -> mlua::Result<Value>) -> Option<Result<Value, String>> {
        if hook.running.get() {
            return None;
        }
        let door = current_door();
        set_door(Door::Lua);
        hook.running.set(true);
        if self.active.get() == 0 {
            self.ctx.limits.arm();
        }
        self.active.set(self.active.get() + 1);
        let result = make(&self.lua).and_then(|ev| hook.function.call::<Value>(ev));
        self.active.set(self.active.get() - 1);
        if self.active.get() == 0 {
            self.ctx.limits.disarm();
        }
        hook.running.set(false);
        let result = result.map_err(|e| report_with_limits(&e, &self.ctx));
        set_door(door);
        Some(result)
    }

    /// A connection to `uri` for events' handles (a dry run's own when `dry_run`).
    pub fn connection(&self, uri: &str, dry_run: bool) -> luavirt_host::Result<Rc<Connection>> {
        let key = (uri.to_string(), dry_run || self.ctx.dry_run);
        if let Some(c) = self.conns.borrow().get(&key) {
            return Ok(c.clone());
        }
        let mut conn = self.ctx.host.connect(uri)?;
        if key.1 {
            conn.set_dry_run();
        }
        let conn = Rc::new(conn);
        self.ctx.connections.borrow_mut().push(conn.clone());
        self.conns.borrow_mut().insert(key, conn.clone());
        Ok(conn)
    }

    /// What its hooks changed since the last call: the domains (by URI) and, in a dry run,
    /// the changes recorded (which are then forgotten, so later reads see the truth).
    pub fn take_effects(&self) -> Effects {
        let mut out = Effects::default();
        for c in self.ctx.connections.borrow().iter() {
            let uri = c.uri().to_string();
            out.changed.extend(c.take_changed_domains().into_iter().map(|d| (uri.clone(), d)));
            out.planned.extend(c.take_planned_changes().into_iter().map(|p| (uri.clone(), p)));
        }
        out
    }

    /// The interpreter (to build events).
    pub fn lua(&self) -> &Lua {
        &self.lua
    }
}

/// What hooks changed.
#[derive(Default, Debug)]
pub struct Effects {
    /// (URI, domain) of each domain changed, or that a dry run would have changed.
    pub changed: Vec<(String, String)>,
    /// (URI, change) recorded by dry runs.
    pub planned: Vec<(String, PlannedChange)>,
}

/// One line of `luavirt hooks list`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Listed {
    /// The policy file.
    pub file: PathBuf,
    /// The event: `snapshot:before`, `domain:changed URI`, `watch FOLDER PATTERN`.
    pub event: String,
    /// `file:line` of the registration.
    pub at: String,
}

/// Every policy of a folder.
pub struct PolicySet {
    host: Rc<Host>,
    opts: Options,
    log: LogFn,
    policies: RefCell<Vec<Rc<Policy>>>,
}

impl PolicySet {
    /// An empty set for the policies of `opts.dir`; [`PolicySet::load_all`] reads them.
    pub fn new(host: Rc<Host>, opts: Options, log: LogFn) -> Rc<PolicySet> {
        Rc::new(PolicySet { host, opts, log, policies: RefCell::new(Vec::new()) })
    }

    /// The options it runs with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Writes a log line.
    pub fn log(&self, level: Level, kind: &'static str, at: Option<String>, message: String) {
        (self.log)(Record { level, kind, at, message });
    }

    /// The loaded policies, by file name.
    pub fn policies(&self) -> Vec<Rc<Policy>> {
        self.policies.borrow().clone()
    }

    /// Checks the folder and loads every `*.lua` in it (by name). The folder refused is the
    /// error; each file that failed is returned with its error, and the others load.
    pub fn load_all(&self) -> Result<Vec<(PathBuf, String)>, String> {
        let files = self.files()?;
        let mut failed = Vec::new();
        let mut loaded = Vec::new();
        for f in files {
            match self.load_file(&f) {
                Ok(p) => loaded.push(Rc::new(p)),
                Err(e) => failed.push((f, e)),
            }
        }
        *self.policies.borrow_mut() = loaded;
        Ok(failed)
    }

    /// The `*.lua` files of the folder, sorted, once the folder passed the trust check.
    pub fn files(&self) -> Result<Vec<PathBuf>, String> {
        let dir = &self.opts.dir;
        check_folder(dir, Holds::Policy).map_err(|e| format!("policy folder {}: {e}", dir.display()))?;
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read policy folder {}: {e}", dir.display()))?;
        let mut files: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_policy_file(p)).collect();
        files.sort();
        Ok(files)
    }

    /// Loads (or reloads) one file. On failure a loaded version stays as it was and the
    /// error (with `file:line`) is returned; a file that is gone is unloaded (`Ok(false)`).
    pub fn reload(&self, file: &Path) -> Result<bool, String> {
        if !file.exists() {
            self.policies.borrow_mut().retain(|p| p.file != file);
            return Ok(false);
        }
        let policy = Rc::new(self.load_file(file)?);
        let mut list = self.policies.borrow_mut();
        list.retain(|p| p.file != file);
        list.push(policy);
        list.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(true)
    }

    /// Loads one policy file: trust check, then its top level, within the limits.
    fn load_file(&self, file: &Path) -> Result<Policy, String> {
        let real = check_file(file, Holds::Policy).map_err(|e| format!("{}: {e}", file.display()))?;
        let source = read_script(&real)?;
        let log = self.log.clone();
        let parts = PolicyParts {
            hooks: RefCell::new(Vec::new()),
            log: Box::new(move |at: &str, message: &str| {
                log(Record { level: Level::Info, kind: "log", at: Some(at.to_string()), message: message.to_string() })
            }),
        };
        let opts = RunOptions {
            default_uri: self.opts.default_uri.clone(),
            dry_run: self.opts.dry_run,
            confine: None,
            limits: self.opts.limits,
        };
        let door = current_door();
        let made = interpreter_with(self.host.clone(), &self.opts.dir, &opts, Some(parts));
        let (lua, ctx) = made.map_err(|e| errors::report(&e))?;
        let ran =
            lua.load(source).set_name(format!("@{}", file.display())).set_mode(mlua::chunk::ChunkMode::Text).exec();
        ctx.limits.disarm();
        set_door(door);
        ran.map_err(|e| report_with_limits(&e, &ctx))?;
        Ok(Policy { file: file.to_path_buf(), lua, ctx, active: Cell::new(0), conns: RefCell::new(BTreeMap::new()) })
    }

    /// Every hook of every policy, for `luavirt hooks list`.
    pub fn list(&self) -> Vec<Listed> {
        self.policies()
            .iter()
            .flat_map(|p| {
                p.hooks().into_iter().map(|h| Listed {
                    file: p.file.clone(),
                    event: h.trigger.describe(),
                    at: h.at.clone(),
                })
            })
            .collect()
    }

    /// What every policy's hooks changed since the last call.
    pub fn take_effects(&self) -> Effects {
        let mut out = Effects::default();
        for p in self.policies() {
            let e = p.take_effects();
            out.changed.extend(e.changed);
            out.planned.extend(e.planned);
        }
        out
    }
}

/// Whether `path` is a policy file by its name: `*.lua`, not hidden (editors' swap and
/// backup files are hidden or end otherwise).
pub fn is_policy_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.ends_with(".lua") && !name.starts_with('.') && !name.ends_with("_test.lua")
}
