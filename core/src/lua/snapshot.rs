//! `snap`: a snapshot handle (`dom:snapshot{}`, `dom:snapshots()`), with tree navigation.

use super::errors;
use super::options::Opts;
use luavirt_host::Connection;
use luavirt_host::snapshot::{DeleteOptions, RevertOptions};
use mlua::{Lua, LuaSerdeExt, Table, UserData, UserDataMethods};
use std::rc::Rc;

/// A snapshot handle: a domain and a snapshot name, resolved on each call.
#[derive(Clone)]
pub struct LuaSnapshot {
    conn: Rc<Connection>,
    domain: String,
    name: String,
}

impl LuaSnapshot {
    /// The handle of snapshot `name` of `domain`.
    pub fn new(conn: &Rc<Connection>, domain: &str, name: &str) -> LuaSnapshot {
        LuaSnapshot { conn: conn.clone(), domain: domain.to_string(), name: name.to_string() }
    }

    fn handle(&self, name: &str) -> LuaSnapshot {
        LuaSnapshot::new(&self.conn, &self.domain, name)
    }
}

/// The snapshot's facts (the host's [`luavirt_host::snapshot::SnapshotInfo`]) as a table.
fn info(lua: &Lua, this: &LuaSnapshot) -> mlua::Result<mlua::Value> {
    let info = this.conn.snapshot_info(&this.domain, &this.name).map_err(errors::host)?;
    lua.to_value_with(&info, mlua::serde::SerializeOptions::new().serialize_none_to_null(false))
}

impl UserData for LuaSnapshot {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("name", |_, this, ()| Ok(this.name.clone()));
        m.add_method("info", |lua, this, ()| info(lua, this));
        m.add_method("xml", |_, this, ()| {
            Ok(this.conn.snapshot(&this.domain, &this.name).map_err(errors::host)?.to_xml())
        });
        m.add_method("set_description", |_, this, text: String| {
            let mut record = this.conn.snapshot(&this.domain, &this.name).map_err(errors::host)?;
            record.description = Some(text);
            this.conn.snapshot_edit(&this.domain, &this.name, &record.to_xml()).map_err(errors::host)
        });
        m.add_method("parent", |_, this, ()| {
            let s = this.conn.snapshot(&this.domain, &this.name).map_err(errors::host)?;
            Ok(s.parent.map(|p| this.handle(&p)))
        });
        m.add_method("children", |_, this, ()| {
            this.conn.snapshot(&this.domain, &this.name).map_err(errors::host)?;
            let tree = this.conn.snapshots(&this.domain).map_err(errors::host)?;
            Ok(tree.children(Some(&this.name)).iter().map(|c| this.handle(c)).collect::<Vec<_>>())
        });
        m.add_method("descendants", |_, this, ()| {
            this.conn.snapshot(&this.domain, &this.name).map_err(errors::host)?;
            let tree = this.conn.snapshots(&this.domain).map_err(errors::host)?;
            Ok(tree.descendants(&this.name).iter().map(|c| this.handle(c)).collect::<Vec<_>>())
        });
        m.add_method("is_current", |_, this, ()| {
            Ok(this.conn.snapshots(&this.domain).map_err(errors::host)?.current.as_deref() == Some(this.name.as_str()))
        });
        m.add_method("revert", |lua, this, opts: Option<Table>| {
            let mut o = Opts::new(lua, opts, "snap:revert");
            let r = RevertOptions {
                running: o.boolean("running")?,
                paused: o.boolean("paused")?,
                force: o.boolean("force")?,
            };
            o.finish()?;
            this.conn.snapshot_revert(&this.domain, &this.name, r).map_err(errors::host)
        });
        m.add_method("delete", |lua, this, opts: Option<Table>| {
            let mut o = Opts::new(lua, opts, "snap:delete");
            let d = DeleteOptions {
                children: o.boolean("children")?,
                children_only: o.boolean("children_only")?,
                metadata_only: o.boolean("metadata")?,
                mirror_pivot: o.boolean("mirror_pivot")?,
                mirror_abort: o.boolean("mirror_abort")?,
            };
            o.finish()?;
            this.conn.snapshot_delete(&this.domain, &this.name, d).map_err(errors::host)
        });
        m.add_meta_method("__tostring", |_, this, ()| Ok(format!("luavirt.snapshot({}/{})", this.domain, this.name)));
    }
}
