//! An operation's request as `before` hooks see it (`ev.request`, a plain table) and as it is
//! read back once they ran: strictly, so a key a hook misspells is an error, not ignored.

use crate::lua::domain::{disk_spec, snapshot_flags};
use crate::lua::options::Opts;
use luavirt_host::hooks::Request;
use luavirt_host::migrate::MigrateRequest;
use luavirt_host::snapshot::MemSpec;
use mlua::{Lua, Table, Value};

const WHAT: &str = "ev.request";

/// The request as a table.
pub fn to_table(lua: &Lua, request: &Request<'_>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    match request {
        Request::Snapshot(r) => {
            t.set("name", r.name.as_deref())?;
            t.set("description", r.description.as_deref())?;
            t.set("disk_set", r.disk_set.as_deref())?;
            let disks = lua.create_table()?;
            for d in &r.disks {
                let e = lua.create_table()?;
                e.set("disk", d.disk.as_str())?;
                e.set("snapshot", d.snapshot.as_deref())?;
                e.set("driver", d.driver.as_deref())?;
                e.set("file", d.file.as_deref())?;
                e.set("mirror", d.mirror.as_deref())?;
                disks.push(e)?;
            }
            t.set("disks", disks)?;
            if let Some(m) = &r.memory {
                let e = lua.create_table()?;
                e.set("snapshot", m.snapshot.as_deref())?;
                e.set("file", m.file.as_deref())?;
                t.set("memory", e)?;
            }
            t.set("disk_only", r.disk_only)?;
            t.set("live", r.live)?;
            t.set("halt", r.halt)?;
            t.set("reuse_external", r.reuse_external)?;
            t.set("no_metadata", r.no_metadata)?;
            t.set("atomic", r.atomic)?;
        }
        Request::Revert { options, .. } => {
            t.set("running", options.running)?;
            t.set("paused", options.paused)?;
            t.set("force", options.force)?;
        }
        Request::Delete { options, .. } => {
            t.set("children", options.children)?;
            t.set("children_only", options.children_only)?;
            t.set("metadata", options.metadata_only)?;
            t.set("mirror_pivot", options.mirror_pivot)?;
            t.set("mirror_abort", options.mirror_abort)?;
        }
        Request::Define { xml } => t.set("xml", xml.as_str())?,
        Request::Migrate { request: r, .. } => {
            t.set("migrate_disks", r.migrate_disks.clone())?;
            t.set("disk_set", r.disk_set.as_deref())?;
            t.set("blank_disks", r.blank_disks.clone())?;
            t.set("shared_disks", r.shared_disks.clone())?;
            t.set("copy_storage_all", r.copy_storage_all)?;
            let targets = lua.create_table()?;
            for (disk, path) in &r.disk_targets {
                targets.set(disk.as_str(), path.as_str())?;
            }
            t.set("disk_targets", targets)?;
            t.set("target_dir", r.target_dir.as_deref())?;
            t.set("live", r.live)?;
            t.set("persistent", r.persistent)?;
            t.set("undefine_source", r.undefine_source)?;
            t.set("paused", r.paused)?;
            t.set("bandwidth", r.bandwidth)?;
            t.set("timeout", r.timeout)?;
            t.set("tunnelled", r.tunnelled)?;
            t.set("listen_address", r.listen_address.as_deref())?;
            t.set("port_range", r.port_range.map(|(a, b)| format!("{a}-{b}")))?;
        }
    }
    Ok(t)
}

/// Reads the table back into the request.
pub fn from_table(lua: &Lua, t: Table, request: &mut Request<'_>) -> mlua::Result<()> {
    let mut o = Opts::new(lua, Some(t), WHAT);
    match request {
        Request::Snapshot(r) => {
            let mut new = snapshot_flags(&mut o)?;
            match o.value("disks")? {
                Value::Nil => {}
                Value::Table(list) => {
                    for entry in list.sequence_values::<Table>() {
                        let mut d = Opts::new(lua, Some(entry?), "ev.request.disks entry");
                        let disk = d.string("disk")?.ok_or_else(|| d.bad("disk", "is required"))?;
                        new.disks.push(disk_spec(&mut d, disk)?);
                        d.finish()?;
                    }
                }
                other => return Err(o.bad("disks", &format!("must be a list of tables, not {}", other.type_name()))),
            }
            match o.value("memory")? {
                Value::Nil => {}
                Value::Table(m) => {
                    let mut m = Opts::new(lua, Some(m), "ev.request.memory");
                    new.memory = Some(MemSpec { snapshot: m.string("snapshot")?, file: m.string("file")? });
                    m.finish()?;
                }
                other => return Err(o.bad("memory", &format!("must be a table, not {}", other.type_name()))),
            }
            o.finish()?;
            **r = new;
        }
        Request::Revert { options, .. } => {
            options.running = o.boolean("running")?;
            options.paused = o.boolean("paused")?;
            options.force = o.boolean("force")?;
            o.finish()?;
        }
        Request::Delete { options, .. } => {
            options.children = o.boolean("children")?;
            options.children_only = o.boolean("children_only")?;
            options.metadata_only = o.boolean("metadata")?;
            options.mirror_pivot = o.boolean("mirror_pivot")?;
            options.mirror_abort = o.boolean("mirror_abort")?;
            o.finish()?;
        }
        Request::Define { xml } => {
            let new = o.string("xml")?.ok_or_else(|| o.bad("xml", "is required"))?;
            o.finish()?;
            **xml = new;
        }
        Request::Migrate { request: r, .. } => {
            let mut new = MigrateRequest {
                disk_set: o.string("disk_set")?,
                copy_storage_all: o.boolean("copy_storage_all")?,
                target_dir: o.string("target_dir")?,
                live: o.boolean("live")?,
                persistent: o.boolean("persistent")?,
                undefine_source: o.boolean("undefine_source")?,
                paused: o.boolean("paused")?,
                bandwidth: o.count("bandwidth")?,
                timeout: o.count("timeout")?,
                tunnelled: o.boolean("tunnelled")?,
                listen_address: o.string("listen_address")?,
                ..MigrateRequest::default()
            };
            if let Some(r) = o.string("port_range")? {
                new.port_range =
                    Some(luavirt_host::migrate::parse_ports(&r).map_err(|e| o.bad("port_range", &e.to_string()))?);
            }
            new.migrate_disks = o.disk_names("migrate_disks")?;
            new.blank_disks = o.disk_names("blank_disks")?;
            new.shared_disks = o.disk_names("shared_disks")?;
            new.disk_targets = o.disk_paths("disk_targets")?;
            o.finish()?;
            **r = new;
        }
    }
    Ok(())
}
