//! `dom:migrate{...}` and `dom:migration_plan{...}`: the host's migration, with options as a
//! table.
//!
//! ```lua
//! dom:migrate{ to = lv.connect("qemu:///session?state=/b"), disk_set = "selected",
//!              blank = { "vdc" }, live = true, persistent = true,
//!              on_progress = function(done, total, stage) end }
//! ```
//! `disks` lists disks to copy; `disk_set` names a set to copy (`true`: `selected`); `blank`
//! and `shared` list disks; `targets` maps disks to image paths at the destination. Between
//! machines, `tunnelled = true` sends the data through ssh, else over TCP to
//! `listen_address` (default: the destination's host) on a port of `port_range` ("MIN-MAX").

use super::conn::LuaConn;
use super::options::Opts;
use super::{Context, errors};
use luavirt_host::migrate::{DEFAULT_MIGRATE_SET, MigrateRequest, parse_ports};
use luavirt_host::{Connection, JobControl};
use mlua::{AnyUserData, Lua, LuaSerdeExt, Table, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// The destination connection and the request in `opts`.
fn request(
    lua: &Lua,
    opts: Table,
    what: &'static str,
) -> mlua::Result<(Rc<Connection>, MigrateRequest, Option<mlua::Function>)> {
    let mut o = Opts::new(lua, Some(opts), what);
    let to = match o.value("to")? {
        Value::UserData(ud) => {
            ud.borrow::<LuaConn>().map(|c| c.0.clone()).map_err(|_| o.bad("to", "must be a connection"))?
        }
        Value::String(s) => {
            let uri = s.to_str()?.to_string();
            super::conn::connect(lua, Some(uri))?.0
        }
        _ => return Err(o.bad("to", "is required: a connection (lv.connect(uri)) or a URI")),
    };
    let disk_set = match o.value("disk_set")? {
        Value::Nil | Value::Boolean(false) => None,
        Value::Boolean(true) => Some(DEFAULT_MIGRATE_SET.to_string()),
        Value::String(s) => Some(s.to_str()?.to_string()),
        Value::UserData(ud) => Some(set_name(&ud).map_err(|_| o.bad("disk_set", "must be a set name or a disk set"))?),
        other => return Err(o.bad("disk_set", &format!("must be a set name, not {}", other.type_name()))),
    };
    let disk_targets = o.disk_paths("targets")?;
    let req = MigrateRequest {
        migrate_disks: o.disk_names("disks")?,
        disk_set,
        blank_disks: o.disk_names("blank")?,
        shared_disks: o.disk_names("shared")?,
        copy_storage_all: o.boolean("copy_storage_all")?,
        disk_targets,
        target_dir: o.string("target_dir")?,
        live: o.boolean("live")?,
        persistent: o.boolean("persistent")?,
        undefine_source: o.boolean("undefine_source")?,
        paused: o.boolean("paused")?,
        bandwidth: o.count("bandwidth")?,
        timeout: o.count("timeout")?,
        tunnelled: o.boolean("tunnelled")?,
        listen_address: o.string("listen_address")?,
        port_range: match o.string("port_range")? {
            Some(r) => Some(parse_ports(&r).map_err(|e| o.bad("port_range", &e.to_string()))?),
            None => None,
        },
    };
    let on_progress = o.function("on_progress")?;
    o.finish()?;
    Ok((to, req, on_progress))
}

fn set_name(ud: &AnyUserData) -> mlua::Result<String> {
    Ok(ud.borrow::<super::diskset::LuaDiskSet>()?.name().to_string())
}

/// `dom:migration_plan{...}`: the plan, disk by disk; changes nothing.
pub fn plan(lua: &Lua, conn: &Connection, domain: &str, opts: Table) -> mlua::Result<Value> {
    let (to, req, _) = request(lua, opts, "dom:migration_plan")?;
    let plan = conn.migration_plan(domain, &to, &req).map_err(errors::host)?;
    lua.to_value(&plan)
}

/// `dom:migrate{...}`: migrates; returns the report (plan, memory_bytes, disk_bytes, seconds).
pub fn migrate(lua: &Lua, conn: &Connection, domain: &str, opts: Table) -> mlua::Result<Value> {
    let (to, req, on_progress) = request(lua, opts, "dom:migrate")?;
    let ctx = Context::get(lua)?;
    // A Lua error in the callback cannot cross the driver; keep it and raise it after.
    let failed: RefCell<Option<mlua::Error>> = RefCell::new(None);
    let report = |done: u64, total: u64, stage: &str| {
        if let Some(f) = &on_progress
            && failed.borrow().is_none()
            && let Err(e) = f.call::<()>((done, total, stage))
        {
            *failed.borrow_mut() = Some(e);
        }
    };
    let control = JobControl { progress: Some(&report), cancel: Some(&ctx.limits.cancel), progress_only_shows: false };
    let result = conn.migrate(domain, &to, &req, control);
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    if let Some(limit) = ctx.limits.check() {
        return Err(mlua::Error::external(limit));
    }
    lua.to_value(&result.map_err(errors::host)?)
}
