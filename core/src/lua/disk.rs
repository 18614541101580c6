//! Disks as plain tables (`dom:disks()`): `target`, `source`, `format`, `bus`, `device`,
//! `type`, `readonly`, `shareable`, `transient`, `mode`, `snapshot`, `serial`, `boot`, `domain`.
//! Their metatable adds `disk:set_mode(mode)`, which refreshes the table from the definition
//! the host wrote, so the table never disagrees with it.

use super::errors;
use luavirt_host::Connection;
use luavirt_plugin_api::domain::{Disk, DiskMode, DomainXml};
use mlua::{Lua, Table};
use std::rc::Rc;

/// The metatable giving disk tables their `set_mode` method.
fn disk_meta(lua: &Lua, conn: &Rc<Connection>) -> mlua::Result<Table> {
    let conn = conn.clone();
    let methods = lua.create_table()?;
    methods.set(
        "set_mode",
        lua.create_function(move |lua, (disk, mode): (Table, String)| {
            let mode = DiskMode::parse(&mode).map_err(|m| errors::invalid(lua, format!("disk:set_mode: {m}")))?;
            let domain: String = disk.get("domain")?;
            let target: String = disk.get("target")?;
            let (changed, applies) =
                conn.set_disk_mode_as(&domain, &target, mode, Default::default()).map_err(errors::host)?;
            let seen = conn.with_domain(&domain, |dom| {
                let d = dom.disk(&target).ok_or_else(|| {
                    let disks = dom.disks().into_iter().map(|d| d.target).collect();
                    luavirt_host::Error::NoDisk { domain: domain.clone(), disk: target.clone(), disks }
                })?;
                Ok(DiskView::of(dom, d))
            });
            fill(&disk, &seen.and_then(|r| r).map_err(errors::host)?)?;
            let applies = match applies {
                luavirt_host::ModeApplies::Now => "now",
                luavirt_host::ModeApplies::NextStart => "next-start",
            };
            Ok((changed, applies))
        })?,
    )?;
    let meta = lua.create_table()?;
    meta.set("__index", methods)?;
    Ok(meta)
}

/// What a disk table shows of one disk: the disk, its domain's name and the disk's mode.
pub struct DiskView {
    domain: String,
    disk: Disk,
    mode: &'static str,
}

impl DiskView {
    /// Disk `d` of `dom`.
    pub fn of(dom: &DomainXml, d: Disk) -> DiskView {
        DiskView { domain: dom.name(), mode: dom.mode_of(&d).name(), disk: d }
    }

    /// Every disk of `dom`.
    pub fn all(dom: &DomainXml) -> Vec<DiskView> {
        dom.disks().into_iter().map(|d| DiskView::of(dom, d)).collect()
    }
}

/// One disk as a table.
fn disk_table(lua: &Lua, v: &DiskView, meta: &Table) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, FIELDS)?;
    fill(&t, v)?;
    t.set_metatable(Some(meta.clone()))?;
    Ok(t)
}

/// How many fields [`fill`] sets.
const FIELDS: usize = 15;

/// Sets every field of disk table `t` from `v`.
fn fill(t: &Table, v: &DiskView) -> mlua::Result<()> {
    let d = &v.disk;
    t.set("domain", v.domain.as_str())?;
    t.set("target", d.target.as_str())?;
    t.set("source", d.source.display())?;
    t.set("path", d.source.path())?;
    t.set("format", d.format_or_raw())?;
    t.set("bus", d.bus.as_deref())?;
    t.set("device", d.device.as_str())?;
    t.set("type", d.disk_type.as_str())?;
    t.set("readonly", d.readonly)?;
    t.set("shareable", d.shareable)?;
    t.set("transient", d.transient)?;
    t.set("mode", v.mode)?;
    t.set("snapshot", d.snapshot.as_deref())?;
    t.set("serial", d.serial.as_deref())?;
    t.set("boot", d.boot_order)?;
    Ok(())
}

/// One disk, as a table.
pub fn one(lua: &Lua, conn: &Rc<Connection>, v: &DiskView) -> mlua::Result<Table> {
    disk_table(lua, v, &disk_meta(lua, conn)?)
}

/// Disks, as tables.
pub fn disks(lua: &Lua, conn: &Rc<Connection>, views: &[DiskView]) -> mlua::Result<Vec<Table>> {
    let meta = disk_meta(lua, conn)?;
    views.iter().map(|v| disk_table(lua, v, &meta)).collect()
}
