//! `fleet`: several hosts at once, from `luavirt.connect_all{uri, ...}`. A host that cannot
//! be reached is kept as a failure instead of ending the script, and `fleet:apply(fn)` runs
//! one policy on every host: a host where it fails is reported, and the others run all the
//! same. Limits are not failures of a host: they end the script, as everywhere.

use super::Context;
use super::conn::{LuaConn, open};
use super::errors::{self, error_table, invalid};
use super::limits::LimitError;
use luavirt_host::Connection;
use mlua::{Function, Lua, Table, UserData, UserDataMethods, Value};
use std::rc::Rc;

/// One host of a fleet: its connection, or why it could not be opened (code, message).
pub type Member = (String, Result<Rc<Connection>, (String, String)>);

/// The hosts of one `connect_all`, in the order given.
pub struct LuaFleet(pub Vec<Member>);

/// `luavirt.connect_all{uri, ...}`: opens a connection to each host.
pub fn connect_all(lua: &Lua, uris: Table) -> mlua::Result<LuaFleet> {
    let ctx = Context::get(lua)?;
    let what = "luavirt.connect_all";
    let n = uris.raw_len();
    let mut list: Vec<String> = Vec::new();
    for pair in uris.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let key = match &k {
            Value::Integer(i) if *i >= 1 && *i as usize <= n => continue,
            Value::String(s) => format!("'{}'", s.to_string_lossy()),
            other => format!("a key of type {}", other.type_name()),
        };
        return Err(invalid(lua, format!("{what}: takes a list of URIs, without keys; {key} is not a position in it")));
    }
    for (i, v) in uris.sequence_values::<Value>().enumerate() {
        match v? {
            Value::String(s) => list.push(s.to_str()?.to_string()),
            other => {
                return Err(invalid(
                    lua,
                    format!("{what}: entry {} must be a URI string, not {}", i + 1, other.type_name()),
                ));
            }
        }
    }
    if list.is_empty() {
        return Err(invalid(lua, format!("{what}: give at least one URI")));
    }
    if let Some(uri) = list.iter().enumerate().find_map(|(i, u)| list[..i].contains(u).then_some(u)) {
        return Err(invalid(lua, format!("{what}: {uri} is listed twice; list each host once")));
    }
    let members = list
        .into_iter()
        .map(|uri| {
            let conn =
                open(&ctx, &uri).map_err(|e| (e.code_name().to_string(), luavirt_host::words::render(&e.to_string())));
            (uri, conn)
        })
        .collect();
    Ok(LuaFleet(members))
}

/// Whether `e` is a limit of the run (time or memory), which no host's failure may hide.
fn is_limit(e: &mlua::Error, ctx: &Context) -> bool {
    matches!(e, mlua::Error::MemoryError(_))
        || errors::find::<mlua::Error>(e).is_some_and(|x| matches!(x, mlua::Error::MemoryError(_)))
        || errors::find::<LimitError>(e).is_some()
        || ctx.limits.check().is_some()
}

/// `fleet:apply(fn)`: `fn(conn)` on each reached host in turn. Returns `{ hosts = { {uri,
/// ok, result | error = {code, message}}, ... }, succeeded, failed, summary }`.
fn apply(lua: &Lua, fleet: &LuaFleet, f: Function) -> mlua::Result<Table> {
    let ctx = Context::get(lua)?;
    let hosts = lua.create_table()?;
    let mut failed = 0;
    for (uri, conn) in &fleet.0 {
        let entry = lua.create_table()?;
        entry.set("uri", uri.as_str())?;
        let outcome = match conn {
            Ok(c) => match f.call::<Value>(LuaConn(c.clone())) {
                Ok(v) => Ok(v),
                Err(e) if is_limit(&e, &ctx) => return Err(e),
                Err(e) => Err(errors::for_script(lua, Value::Error(Box::new(e)))?),
            },
            Err((code, message)) => Err(Value::Table(error_table(lua, code, message)?)),
        };
        match outcome {
            Ok(v) => {
                entry.set("ok", true)?;
                entry.set("result", v)?;
            }
            Err(e) => {
                failed += 1;
                entry.set("ok", false)?;
                entry.set("error", e)?;
            }
        }
        hosts.push(entry)?;
    }
    let total = fleet.0.len();
    let report = lua.create_table()?;
    report.set("hosts", hosts)?;
    report.set("succeeded", total - failed)?;
    report.set("failed", failed)?;
    let hosts = if total == 1 { "host" } else { "hosts" };
    report.set("summary", format!("{total} {hosts}: {} succeeded, {failed} failed", total - failed))?;
    Ok(report)
}

impl UserData for LuaFleet {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("apply", |lua, this, f: Function| apply(lua, this, f));
        m.add_method("connections", |_, this, ()| {
            Ok(this.0.iter().filter_map(|(_, c)| c.as_ref().ok().map(|c| LuaConn(c.clone()))).collect::<Vec<_>>())
        });
        m.add_method("uris", |_, this, ()| Ok(this.0.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>()));
        m.add_meta_method("__tostring", |_, this, ()| {
            let reached = this.0.iter().filter(|(_, c)| c.is_ok()).count();
            Ok(format!("luavirt.fleet({} hosts, {reached} reached)", this.0.len()))
        });
    }
}
