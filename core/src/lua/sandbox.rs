//! The sandbox every script runs in.
//!
//! - Libraries: base, table, string, math, utf8, coroutine. `os` keeps only `time`, `clock`,
//!   `date` and `getenv`; `io`, the rest of `os`, `dofile` and `loadfile` say they are not
//!   available; `load` takes text only (bytecode can crash the interpreter).
//! - `require` finds modules in the script's folder, then among the shipped `scripts/`; the
//!   module `luavirt` is the API. A module whose real path (symlinks resolved) leaves the
//!   script's folder is refused.
//! - `pcall`, `xpcall`, `coroutine.resume` and `coroutine.close` return host errors as
//!   `{code, message}` tables and never swallow a limit error (see `limits.rs`); `load` calls
//!   a reader function itself, since Lua's `load` would swallow the reader's errors.
//! - Scripts and modules are read up to [`super::MAX_SCRIPT_BYTES`].

use super::errors;
use super::limits::LimitState;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

include!(concat!(env!("OUT_DIR"), "/shipped_scripts.rs"));

/// Wraps the error-catching functions so they translate host errors and re-raise limits.
const GUARDS: &str = r#"
local limit, translate = ...
local raw_pcall, raw_xpcall, raw_resume, raw_close, raw_error = pcall, xpcall, coroutine.resume, coroutine.close, error
local type, concat = type, table.concat
local function pass(ok, ...)
  if ok then return true, ... end
  local e = ...
  if limit(e) then raw_error(e, 0) end
  return false, translate(e)
end
pcall = function(f, ...) return pass(raw_pcall(f, ...)) end
xpcall = function(f, handler, ...)
  return pass(raw_xpcall(f, function(e)
    if limit(e) then return e end
    return handler(translate(e))
  end, ...))
end
coroutine.resume = function(co, ...) return pass(raw_resume(co, ...)) end
coroutine.close = function(co) return pass(raw_close(co)) end
local raw_load = load
load = function(chunk, name, _mode, env)
  if type(chunk) == "function" then
    local parts = {}
    while true do
      local piece = chunk()
      if piece == nil or piece == "" then break end
      if type(piece) ~= "string" then raw_error("load: the reader function must return strings", 2) end
      parts[#parts + 1] = piece
    end
    chunk = concat(parts)
  end
  return raw_load(chunk, name, "t", env)
end
"#;

/// A table whose every missing key is a function raising "`prefix.key` is not available".
fn unavailable(lua: &Lua, prefix: &'static str, base: Table) -> mlua::Result<Table> {
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        lua.create_function(move |lua, (_, key): (Table, String)| {
            let name = format!("{prefix}.{key}");
            lua.create_function(move |lua, _: MultiValue| -> mlua::Result<()> {
                Err(refusal(lua, &format!("{name} is not available in luavirt scripts")))
            })
        })?,
    )?;
    base.set_metatable(Some(meta))?;
    Ok(base)
}

/// A new interpreter with the sandbox, the limits and `require` rooted at `script_dir`.
pub fn new_lua(script_dir: &Path, limits: super::limits::Limits) -> mlua::Result<(Lua, Arc<LimitState>)> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE | StdLib::OS,
        LuaOptions::default(),
    )?;
    let g = lua.globals();

    // os: only the clock and environment readers.
    let os: Table = g.get("os")?;
    let safe_os = lua.create_table()?;
    for f in ["time", "clock", "date", "getenv"] {
        safe_os.set(f, os.get::<Function>(f)?)?;
    }
    g.set("os", unavailable(&lua, "os", safe_os)?)?;
    g.set("io", unavailable(&lua, "io", lua.create_table()?)?)?;
    for f in ["dofile", "loadfile"] {
        g.set(
            f,
            lua.create_function(move |lua, _: MultiValue| -> mlua::Result<()> {
                Err(refusal(lua, &format!("{f} is not available in luavirt scripts; use require")))
            })?,
        )?;
    }

    let limits = LimitState::install(&lua, limits)?;
    let for_limit = limits.clone();
    let limit = lua.create_function(move |lua, e: Value| {
        if errors::limit_of(&e).is_some() {
            return Ok(true);
        }
        if errors::is_out_of_memory(&e) {
            for_limit.memory_exceeded(script_position(lua));
            return Ok(true);
        }
        Ok(false)
    })?;
    let translate = lua.create_function(errors::for_script)?;
    lua.load(GUARDS).set_name("=luavirt sandbox").call::<()>((limit, translate))?;

    install_require(&lua, script_dir.to_path_buf())?;
    Ok((lua, limits))
}

/// The sandbox's refusal of what the script at hand does, naming its `file:line` first.
fn refusal(lua: &Lua, message: &str) -> mlua::Error {
    match script_position(lua) {
        Some(at) => mlua::Error::runtime(format!("{at}: {message}")),
        None => mlua::Error::runtime(message.to_string()),
    }
}

/// `file:line` of the innermost script frame on the stack (not the sandbox's own code).
fn script_position(lua: &Lua) -> Option<String> {
    (1..64).find_map(|level| {
        lua.inspect_stack(level, |d| {
            let src = d.source();
            let from_script = src.source.as_deref().is_some_and(|s| s.starts_with('@'));
            from_script
                .then(|| d.current_line().map(|l| format!("{}:{l}", src.short_src.as_deref().unwrap_or("?"))))
                .flatten()
        })
        .flatten()
    })
}

/// `require(name)`: the script's folder, then the shipped scripts; loaded once each.
fn install_require(lua: &Lua, script_dir: PathBuf) -> mlua::Result<()> {
    let loaded = lua.create_table()?;
    lua.set_named_registry_value("luavirt.loaded", loaded)?;
    let require = lua.create_function(move |lua, name: String| {
        let loaded: Table = lua.named_registry_value("luavirt.loaded")?;
        if let Some(v) = loaded.get::<Option<Value>>(name.as_str())? {
            return Ok(v);
        }
        if name.is_empty() || name.split('.').any(|p| p.is_empty() || p.starts_with('.') || p.contains('/')) {
            return Err(errors::invalid(lua, format!("require: invalid module name {name:?}")));
        }
        let rel = format!("{}.lua", name.replace('.', "/"));
        let local = script_dir.join(&rel);
        let (chunk_name, source) = if local.is_file() {
            let real = within(&script_dir, &local).map_err(|m| errors::invalid(lua, format!("require: {m}")))?;
            // Read the checked path, so a symlink changed meanwhile cannot lead elsewhere.
            let text = super::read_script(&real).map_err(mlua::Error::runtime)?;
            (local.display().to_string(), text)
        } else if let Some((_, path, text)) = SHIPPED.iter().find(|(m, _, _)| *m == name) {
            (format!("scripts/{path}"), text.to_string())
        } else {
            return Err(errors::invalid(
                lua,
                format!(
                    "require: module '{name}' not found: no {} and no shipped module of that name",
                    local.display()
                ),
            ));
        };
        let value: Value = lua
            .load(source)
            .set_name(format!("@{chunk_name}"))
            .set_mode(mlua::chunk::ChunkMode::Text)
            .call(name.clone())?;
        let value = if value.is_nil() { Value::Boolean(true) } else { value };
        loaded.set(name, value.clone())?;
        Ok(value)
    })?;
    lua.globals().set("require", require)
}

/// The real path of module file `file` if it lies in the script's folder `dir` (whose own real
/// path counts), else why not: a symlink must not lead `require` out of the folder.
fn within(dir: &Path, file: &Path) -> Result<PathBuf, String> {
    let cannot = |p: &Path, e: std::io::Error| format!("cannot resolve {}: {e}", p.display());
    let root = dir.canonicalize().map_err(|e| cannot(dir, e))?;
    let real = file.canonicalize().map_err(|e| cannot(file, e))?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(format!(
            "{} leads to {}, outside the script's folder {}; scripts require modules from their own folder and the shipped scripts only: copy the module into the folder",
            file.display(),
            real.display(),
            root.display()
        ))
    }
}

/// Makes `module` what `require(name)` returns.
pub fn preload(lua: &Lua, name: &str, module: Table) -> mlua::Result<()> {
    let loaded: Table = lua.named_registry_value("luavirt.loaded")?;
    loaded.set(name, module)
}
