//! `dom:attach_disk{}` and `dom:detach_disk{}`.

use super::errors;
use super::options::Opts;
use luavirt_host::{Affect, Connection, NewDisk};
use luavirt_plugin_api::domain::DiskMode;
use mlua::{Lua, LuaSerdeExt, Table, Value};

fn required(lua: &Lua, value: Option<String>, what: &str, key: &str) -> mlua::Result<String> {
    value.ok_or_else(|| errors::invalid(lua, format!("{what}: option '{key}' is required")))
}

fn affect(o: &mut Opts) -> mlua::Result<Affect> {
    Ok(Affect { live: o.boolean("live")?, config: o.boolean("config")? })
}

/// `dom:attach_disk{ source, target, format?, bus?, device?, readonly?, shareable?, serial?,
/// mode?, live?, config? }`: returns `{target, live, config, left_sets}`.
pub fn attach(lua: &Lua, conn: &Connection, domain: &str, opts: Table) -> mlua::Result<Value> {
    let mut o = Opts::new(lua, Some(opts), "dom:attach_disk");
    let source = o.string("source")?;
    let target = o.string("target")?;
    let mode = match o.string("mode")? {
        Some(m) => Some(DiskMode::parse(&m).map_err(|e| o.bad("mode", &e))?),
        None => None,
    };
    let mut new = NewDisk {
        format: o.string("format")?,
        bus: o.string("bus")?,
        device: o.string("device")?,
        source_type: o.string("source_type")?,
        readonly: o.boolean("readonly")?,
        shareable: o.boolean("shareable")?,
        serial: o.string("serial")?,
        mode,
        ..NewDisk::default()
    };
    let want = affect(&mut o)?;
    // Unknown keys first: a misspelt `target` is named as such, not reported missing.
    o.finish()?;
    new.source = required(lua, source, "dom:attach_disk", "source")?;
    new.target = required(lua, target, "dom:attach_disk", "target")?;
    let built = conn.build_disk(&new).map_err(errors::host)?;
    let change = conn.attach_disk(domain, &built.xml, want).map_err(errors::host)?;
    lua.to_value(&change)
}

/// `dom:detach_disk{ disk, live?, config? }`: returns `{target, live, config, left_sets}`.
pub fn detach(lua: &Lua, conn: &Connection, domain: &str, opts: Table) -> mlua::Result<Value> {
    let mut o = Opts::new(lua, Some(opts), "dom:detach_disk");
    let disk = o.string("disk")?;
    let want = affect(&mut o)?;
    o.finish()?;
    let disk = required(lua, disk, "dom:detach_disk", "disk")?;
    let change = conn.detach_disk(domain, &disk, want).map_err(errors::host)?;
    lua.to_value(&change)
}
