//! Lua scripting: one sandboxed interpreter per run, with the `luavirt` module.
//!
//! Each Lua-visible type lives in its own file and holds names, not copies of state: `conn`
//! ([`conn`]), `dom` ([`domain`]), disks as plain tables ([`disk`]), `set` ([`diskset`]),
//! `snap` ([`snapshot`]), `job` ([`job`]), several hosts at once ([`fleet`]). Every method
//! calls the host API, so a script and the `luavirt` command cannot behave differently.
//! [`sandbox`] and [`limits`] keep a script to itself; a dry run records changes instead of
//! making them (the host enforces it).
//! A policy is a script whose [`hooks`] luavirt keeps and runs (see `crate::policy`).

pub mod attach;
pub mod conn;
pub mod disk;
pub mod diskset;
pub mod domain;
pub mod errors;
pub mod fleet;
pub mod hooks;
pub mod job;
pub mod limits;
pub mod migrate;
pub mod options;
pub mod power;
pub mod repl;
pub mod sandbox;
pub mod save;
pub mod snapshot;
pub mod testing;

use crate::{Connection, Host};
use limits::{LimitState, Limits};
use luavirt_host::PlannedChange;
use mlua::{Lua, Table, Value};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// What every Lua-visible function can reach: the host, the run's settings, the
/// connections the script opened.
pub struct Context {
    /// The loaded drivers.
    pub host: Rc<Host>,
    /// What `luavirt.connect()` opens without a URI.
    pub default_uri: String,
    /// Record changes instead of making them.
    pub dry_run: bool,
    /// When set, `luavirt.connect` reaches only URIs inside this folder (`luavirt test`).
    pub confine: Option<PathBuf>,
    /// Every connection the script opened, for the dry run's report.
    pub connections: RefCell<Vec<Rc<Connection>>>,
    /// The run's limits.
    pub limits: Arc<LimitState>,
    /// Set in a policy: where its hooks and log lines go.
    pub policy: Option<hooks::PolicyParts>,
}

impl Context {
    /// The context of the running interpreter.
    pub fn get(lua: &Lua) -> mlua::Result<Rc<Context>> {
        lua.app_data_ref::<Rc<Context>>()
            .map(|c| c.clone())
            .ok_or_else(|| mlua::Error::runtime("luavirt context missing"))
    }
}

/// How to run a script.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// `luavirt.connect()`'s default URI.
    pub default_uri: String,
    /// Record changes instead of making them.
    pub dry_run: bool,
    /// Connections only inside this folder (a test's temporary host).
    pub confine: Option<PathBuf>,
    /// Memory and time limits.
    pub limits: Limits,
}

/// The `luavirt` module table.
fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("connect", lua.create_function(conn::connect)?)?;
    m.set("connect_all", lua.create_function(fleet::connect_all)?)?;
    m.set("on", lua.create_function(hooks::on)?)?;
    m.set("watch", lua.create_function(hooks::watch)?)?;
    m.set("log", lua.create_function(hooks::log)?)?;
    m.set("version", env!("CARGO_PKG_VERSION"))?;
    m.set("dry_run", Context::get(lua)?.dry_run)?;
    let modes: Vec<&str> = luavirt_plugin_api::domain::DiskMode::SETTABLE.iter().map(|m| m.name()).collect();
    m.set("disk_modes", modes)?;
    Ok(m)
}

/// A sandboxed interpreter for scripts in `script_dir`, with the `luavirt` module.
pub fn interpreter(host: Rc<Host>, script_dir: &Path, opts: &RunOptions) -> mlua::Result<(Lua, Rc<Context>)> {
    interpreter_with(host, script_dir, opts, None)
}

/// [`interpreter`], for a policy when `policy` is given: its `luavirt.on` and
/// `luavirt.watch` register hooks there.
pub fn interpreter_with(
    host: Rc<Host>,
    script_dir: &Path,
    opts: &RunOptions,
    policy: Option<hooks::PolicyParts>,
) -> mlua::Result<(Lua, Rc<Context>)> {
    // From here on, messages name options as this script's table keys.
    luavirt_host::words::set_door(luavirt_host::words::Door::Lua);
    let (lua, limits) = sandbox::new_lua(script_dir, opts.limits)?;
    let ctx = Rc::new(Context {
        host,
        default_uri: opts.default_uri.clone(),
        dry_run: opts.dry_run,
        confine: opts.confine.clone(),
        connections: RefCell::new(Vec::new()),
        limits,
        policy,
    });
    lua.set_app_data(ctx.clone());
    sandbox::preload(&lua, "luavirt", module(&lua)?)?;
    Ok((lua, ctx))
}

/// What a run of a script did.
pub struct RunReport {
    /// Changes a dry run recorded: (connection URI, change).
    pub planned: Vec<(String, PlannedChange)>,
}

/// The report of an error that ended a script; a limit the script hit explains itself.
pub fn report_with_limits(e: &mlua::Error, ctx: &Context) -> String {
    if matches!(e, mlua::Error::MemoryError(_))
        || errors::find::<mlua::Error>(e).is_some_and(|x| matches!(x, mlua::Error::MemoryError(_)))
    {
        return ctx.limits.memory_exceeded(None).to_string();
    }
    match ctx.limits.check() {
        Some(limit) if errors::find::<limits::LimitError>(e).is_none() => limit.to_string(),
        _ => errors::report(e),
    }
}

/// Makes the global `luavirt` the module `require("luavirt")` returns.
pub fn set_module_global(lua: &Lua) -> mlua::Result<()> {
    let module: Value = lua.globals().get::<mlua::Function>("require")?.call("luavirt")?;
    lua.globals().set("luavirt", module)
}

/// The most a script or module may hold: far more than any script needs, and a bound on
/// reading what is not a script (`luavirt run /dev/zero`).
pub const MAX_SCRIPT_BYTES: u64 = 16 << 20;

/// Reads the script (or module, or test file) at `path`, up to [`MAX_SCRIPT_BYTES`].
pub fn read_script(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut text = String::new();
    std::fs::File::open(path).map_err(cannot)?.take(MAX_SCRIPT_BYTES + 1).read_to_string(&mut text).map_err(cannot)?;
    if text.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(format!(
            "{}: a script may hold at most {} MiB, and this one holds more; is it the file you meant?",
            path.display(),
            MAX_SCRIPT_BYTES >> 20
        ));
    }
    Ok(text)
}

/// Runs the script at `path` with `args` (in `arg` and `...`). A syntax error runs nothing.
pub fn run_script(host: Rc<Host>, path: &Path, args: &[String], opts: &RunOptions) -> Result<RunReport, String> {
    let source = read_script(path)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let script = Script { text: source, name: path.display().to_string(), dir: dir.to_path_buf(), global: false };
    run_source(host, &script, args, opts)
}

/// A script's text and where it came from.
pub struct Script {
    /// The Lua source.
    pub text: String,
    /// How messages name it (a path, `(-e)`, `(stdin)`); also `arg[0]`.
    pub name: String,
    /// Where `require` looks first.
    pub dir: PathBuf,
    /// Whether the module is also the global `luavirt` (`-e` code is too short for a
    /// `require` line).
    pub global: bool,
}

/// The largest script [`read_stdin`] takes: the same as a file's.
pub fn read_stdin() -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_SCRIPT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the script from standard input: {e}"))?;
    if text.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(format!("standard input: a script may hold at most {} MiB", MAX_SCRIPT_BYTES >> 20));
    }
    Ok(text)
}

/// Runs `script` with `args` (in `arg` and `...`). A syntax error runs nothing.
pub fn run_source(host: Rc<Host>, script: &Script, args: &[String], opts: &RunOptions) -> Result<RunReport, String> {
    let (lua, ctx) = interpreter(host, &script.dir, opts).map_err(|e| errors::report(&e))?;
    let run = || -> mlua::Result<()> {
        let arg = lua.create_sequence_from(args.iter().map(String::as_str))?;
        arg.raw_set(0, script.name.as_str())?;
        lua.globals().set("arg", arg)?;
        if script.global {
            set_module_global(&lua)?;
        }
        // "@" marks a chunk as a script: messages and the sandbox name its file:line.
        let chunk = lua
            .load(script.text.as_str())
            .set_name(format!("@{}", script.name))
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function()?;
        chunk.call::<Value>(mlua::MultiValue::from_iter(
            args.iter().map(|a| Value::String(lua.create_string(a).expect("small"))),
        ))?;
        Ok(())
    };
    run().map_err(|e| report_with_limits(&e, &ctx))?;
    let planned = ctx
        .connections
        .borrow()
        .iter()
        .flat_map(|c| c.planned_changes().into_iter().map(|p| (c.uri().to_string(), p)))
        .collect();
    Ok(RunReport { planned })
}
