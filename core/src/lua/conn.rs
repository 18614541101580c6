//! `conn`: a connection handle, from `luavirt.connect(uri)`.

use super::domain::LuaDomain;
use super::{Context, errors};
use luavirt_host::Connection;
use mlua::{Lua, UserData, UserDataMethods};
use std::rc::Rc;

/// A connection, shared by the handles made from it.
#[derive(Clone)]
pub struct LuaConn(pub Rc<Connection>);

/// `luavirt.connect(uri?)`: opens a connection (the run's default URI when none is given).
pub fn connect(lua: &Lua, uri: Option<String>) -> mlua::Result<LuaConn> {
    let ctx = Context::get(lua)?;
    let uri = uri.unwrap_or_else(|| ctx.default_uri.clone());
    Ok(LuaConn(open(&ctx, &uri).map_err(errors::host)?))
}

/// Opens `uri` as the run allows (confined, dry run) and keeps it for the dry run's report.
pub fn open(ctx: &Context, uri: &str) -> luavirt_host::Result<Rc<Connection>> {
    let mut conn = match &ctx.confine {
        Some(root) => ctx.host.connect_within(uri, root),
        None => ctx.host.connect(uri),
    }?;
    if ctx.dry_run {
        conn.set_dry_run();
    }
    let conn = Rc::new(conn);
    ctx.connections.borrow_mut().push(conn.clone());
    Ok(conn)
}

impl UserData for LuaConn {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("uri", |_, this, ()| Ok(this.0.uri().to_string()));
        m.add_method("domains", |_, this, ()| {
            let list = this.0.list_domains().map_err(errors::host)?;
            Ok(list.into_iter().map(|d| LuaDomain::new(&this.0, &d.name)).collect::<Vec<_>>())
        });
        m.add_method("domain", |_, this, reference: String| {
            // A name, a UUID or an Id; resolved now, so a wrong one fails here with close names.
            let name = this.0.lookup(&reference).map_err(errors::host)?;
            this.0.domain_state(&name).map_err(errors::host)?;
            Ok(LuaDomain::new(&this.0, &name))
        });
        m.add_method("define", |_, this, xml: String| {
            let outcome = this.0.define(&xml, Some("the script's XML")).map_err(errors::host)?;
            Ok(LuaDomain::new(&this.0, &outcome.name))
        });
        m.add_method("restore", |lua, this, (file, opts): (String, Option<mlua::Table>)| {
            let name = super::save::restore(lua, &this.0, file, opts)?;
            Ok(LuaDomain::new(&this.0, &name))
        });
        m.add_meta_method("__tostring", |_, this, ()| Ok(format!("luavirt.conn({})", this.0.uri())));
    }
}
