//! `dom:save{file = ..., disk_set = ..., disks = {...}, live = bool}` and
//! `conn:restore(file, {paused = bool})`: the host's save and restore.

use super::errors;
use super::options::Opts;
use luavirt_host::Connection;
use luavirt_host::save::SaveRequest;
use luavirt_host::snapshot::DiskSpec;
use mlua::{Lua, LuaSerdeExt, Table, Value};

/// `dom:save{...}`: returns the report (file, snapshot, live, disks = {{target, saved, image}}).
pub fn save(lua: &Lua, conn: &Connection, domain: &str, opts: Table) -> mlua::Result<Value> {
    let mut o = Opts::new(lua, Some(opts), "dom:save");
    let file = o.string("file")?.ok_or_else(|| o.bad("file", "is required: the save file"))?;
    let disk_set = match o.value("disk_set")? {
        Value::Nil => None,
        Value::String(s) => Some(s.to_str()?.to_string()),
        Value::UserData(ud) => Some(
            ud.borrow::<super::diskset::LuaDiskSet>()
                .map_err(|_| o.bad("disk_set", "must be a set name or a disk set"))?
                .name()
                .to_string(),
        ),
        other => return Err(o.bad("disk_set", &format!("must be a set name, not {}", other.type_name()))),
    };
    let disks: Vec<DiskSpec> =
        o.disk_names("disks")?.into_iter().map(|disk| DiskSpec { disk, ..DiskSpec::default() }).collect();
    if disk_set.is_some() && !disks.is_empty() {
        return Err(o.bad("disks", "and disk_set choose the same thing: give one"));
    }
    let live = o.boolean("live")?;
    o.finish()?;
    let report = conn.save(domain, &SaveRequest { file, disk_set, disks, live }).map_err(errors::host)?;
    lua.to_value(&report)
}

/// `conn:restore(file, {paused = bool})`: returns the domain's name.
pub fn restore(lua: &Lua, conn: &Connection, file: String, opts: Option<Table>) -> mlua::Result<String> {
    let mut o = Opts::new(lua, opts, "conn:restore");
    let paused = o.boolean("paused")?;
    o.finish()?;
    conn.restore(&file, paused).map_err(errors::host)
}
