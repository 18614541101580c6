//! `set`: a named disk set of a domain (`dom:diskset(name)`). Holds names only: each call
//! reads the domain afresh.

use super::errors;
use luavirt_host::Connection;
use luavirt_host::DiskSetChange;
use mlua::{UserData, UserDataMethods};
use std::rc::Rc;

/// A disk set handle.
#[derive(Clone)]
pub struct LuaDiskSet {
    conn: Rc<Connection>,
    domain: String,
    set: String,
}

impl LuaDiskSet {
    /// The set `set` of `domain`.
    pub fn new(conn: &Rc<Connection>, domain: &str, set: &str) -> LuaDiskSet {
        LuaDiskSet { conn: conn.clone(), domain: domain.to_string(), set: set.to_string() }
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        &self.set
    }
}

impl UserData for LuaDiskSet {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        fn ops(this: &LuaDiskSet) -> mlua::Result<luavirt_host::DiskSetOps<'_>> {
            this.conn.diskset(&this.domain, &this.set).map_err(errors::host)
        }
        m.add_method("name", |_, this, ()| Ok(this.set.clone()));
        m.add_method("add", |_, this, disk: String| {
            Ok(ops(this)?.add(&disk).map_err(errors::host)? == DiskSetChange::Changed)
        });
        m.add_method("remove", |_, this, disk: String| {
            Ok(ops(this)?.remove(&disk).map_err(errors::host)? == DiskSetChange::Changed)
        });
        m.add_method("add_all", |_, this, ()| ops(this)?.add_all().map_err(errors::host));
        m.add_method("remove_all", |_, this, ()| ops(this)?.remove_all().map_err(errors::host));
        m.add_method("list", |_, this, ()| ops(this)?.list().map_err(errors::host));
        m.add_method("size", |_, this, ()| ops(this)?.size().map_err(errors::host));
        m.add_method("contains", |_, this, disk: String| ops(this)?.contains(&disk).map_err(errors::host));
        m.add_meta_method("__tostring", |_, this, ()| Ok(format!("luavirt.diskset({}/{})", this.domain, this.set)));
    }
}
