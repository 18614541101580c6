//! Errors as scripts see them. A host error (a driver's, or a bad option) reaches Lua as a
//! table `{code = "no-domain", message = "..."}` whose `tostring` is the message, so `pcall`
//! can branch on `err.code`. At the top of a run, any error becomes one report: the message,
//! where in the script it happened, and the traceback.

use super::limits::LimitError;
use luavirt_host::Error as HostError;
use mlua::{Lua, Table, Value};

/// Turns a host error into a Lua error.
pub fn host(e: HostError) -> mlua::Error {
    mlua::Error::external(e)
}

/// Finds an error of type `T` in `e`'s causes.
pub fn find<T: std::error::Error + 'static>(e: &mlua::Error) -> Option<&T> {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<T>(),
        mlua::Error::CallbackError { cause, .. } => find(cause),
        mlua::Error::WithContext { cause, .. } => find(cause),
        _ => None,
    }
}

/// The limit error in a Lua error value, if it is one.
pub fn limit_of(v: &Value) -> Option<LimitError> {
    match v {
        Value::Error(e) => find::<LimitError>(e).cloned(),
        _ => None,
    }
}

/// Lua's own out-of-memory error.
pub fn is_out_of_memory(v: &Value) -> bool {
    match v {
        Value::Error(e) => matches!(**e, mlua::Error::MemoryError(_)),
        Value::String(s) => s.to_str().is_ok_and(|s| s == "not enough memory"),
        _ => false,
    }
}

/// What `pcall` returns for an error: a `{code, message}` table for host errors, the value
/// itself for errors Lua code raised.
pub fn for_script(lua: &Lua, v: Value) -> mlua::Result<Value> {
    let Value::Error(e) = &v else { return Ok(v) };
    let (code, message) = match find::<HostError>(e) {
        Some(h) => (h.code_name().to_string(), luavirt_host::words::render(&h.to_string())),
        None => ("lua".to_string(), root_message(e)),
    };
    Ok(Value::Table(error_table(lua, &code, &message)?))
}

/// `{code, message}` with `__tostring` giving the message.
pub fn error_table(lua: &Lua, code: &str, message: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("code", code)?;
    t.set("message", message)?;
    let meta = lua.create_table()?;
    meta.set("__tostring", lua.create_function(|_, t: Table| t.get::<String>("message"))?)?;
    t.set_metatable(Some(meta))?;
    Ok(t)
}

/// The innermost message of an error, without mlua's wrapping and traceback.
fn root_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => root_message(cause),
        mlua::Error::ExternalError(inner) => inner.to_string(),
        mlua::Error::RuntimeError(m) => m.split("\nstack traceback:").next().unwrap_or(m).to_string(),
        other => other.to_string(),
    }
}

/// A whole report of an error that ended a script: `file:line: message` and the traceback.
pub fn report(e: &mlua::Error) -> String {
    let traceback = traceback_of(e);
    let message = match (find::<HostError>(e), find::<LimitError>(e)) {
        (Some(h), _) => luavirt_host::words::render(&h.to_string()),
        (_, Some(l)) => l.to_string(),
        _ => root_message(e),
    };
    // Host errors get the script line that called the host; Lua errors carry one already.
    let located = match (find::<HostError>(e).is_some(), first_script_line(&traceback)) {
        (true, Some(at)) => format!("{at}: {message}"),
        _ => message,
    };
    match traceback {
        Some(t) => format!("{located}\n{}", t.trim_end()),
        None => located,
    }
}

fn traceback_of(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::CallbackError { traceback, cause } => traceback_of(cause).or_else(|| Some(traceback.clone())),
        mlua::Error::WithContext { cause, .. } => traceback_of(cause),
        mlua::Error::RuntimeError(m) => m.split_once("\nstack traceback:").map(|(_, t)| format!("stack traceback:{t}")),
        _ => None,
    }
}

/// A short report for a test failure: the message, then the script frames of the traceback
/// (not luavirt's own, not C).
pub fn brief(e: &mlua::Error) -> String {
    let full = report(e);
    let mut lines = full.lines();
    let mut out = lines.next().unwrap_or("").to_string();
    for l in lines.map(str::trim).filter(|l| {
        !l.starts_with("[C]")
            && !l.starts_with("stack traceback")
            && !l.starts_with("luavirt ")
            && !l.starts_with("(...")
    }) {
        out.push_str(&format!("\n  at {l}"));
    }
    out
}

/// `file:line` of the innermost frame of a script in a traceback.
fn first_script_line(traceback: &Option<String>) -> Option<String> {
    traceback
        .as_ref()?
        .lines()
        .map(str::trim)
        .find(|l| !l.starts_with("[C]") && !l.starts_with("stack traceback") && l.contains(':'))
        .map(|l| {
            let mut parts = l.splitn(3, ':');
            format!("{}:{}", parts.next().unwrap_or(""), parts.next().unwrap_or(""))
        })
}

/// An invalid-argument host error (bad options, wrong types) at the script's current line.
pub fn invalid(lua: &Lua, message: String) -> mlua::Error {
    host(HostError::InvalidArg(format!("{message}{}", at_line(lua))))
}

/// ` (at file:line)` of the Lua code calling the current host function.
pub fn at_line(lua: &Lua) -> String {
    lua.inspect_stack(1, |d| {
        let src = d.source().short_src.map(|s| s.to_string()).unwrap_or_default();
        d.current_line().map(|l| format!(" (at {src}:{l})")).unwrap_or_default()
    })
    .unwrap_or_default()
}
