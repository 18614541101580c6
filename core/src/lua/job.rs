//! `job`: the block job on one disk (`dom:block_copy{}`, `dom:block_pull{}`,
//! `dom:block_commit{}`, `dom:block_job(disk)`).

use super::options::Opts;
use super::{Context, errors};
use luavirt_host::Connection;
use luavirt_host::JobControl;
use mlua::{Lua, LuaSerdeExt, Table, UserData, UserDataMethods};
use std::cell::RefCell;
use std::rc::Rc;

/// A block job handle: a domain and a disk.
#[derive(Clone)]
pub struct LuaJob {
    conn: Rc<Connection>,
    domain: String,
    disk: String,
}

impl LuaJob {
    /// The job on `disk` of `domain`.
    pub fn new(conn: &Rc<Connection>, domain: &str, disk: &str) -> LuaJob {
        LuaJob { conn: conn.clone(), domain: domain.to_string(), disk: disk.to_string() }
    }
}

/// `job:wait{on_progress = fn(done, total, stage), pivot = bool, finish = bool}`.
fn wait(lua: &Lua, this: &LuaJob, opts: Option<Table>) -> mlua::Result<()> {
    let mut o = Opts::new(lua, opts, "job:wait");
    let on_progress = o.function("on_progress")?;
    let pivot = o.boolean("pivot")?;
    let finish = o.boolean("finish")?;
    o.finish()?;
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
    let result = this.conn.block_job_wait(&this.domain, &this.disk, pivot, finish, control);
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    if let Some(limit) = ctx.limits.check() {
        return Err(mlua::Error::external(limit));
    }
    result.map_err(errors::host)
}

impl UserData for LuaJob {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("disk", |_, this, ()| Ok(this.disk.clone()));
        m.add_method("info", |lua, this, ()| {
            let info = this.conn.block_job_info(&this.domain, &this.disk).map_err(errors::host)?;
            info.map(|i| lua.to_value(&i)).transpose()
        });
        m.add_method("wait", |lua, this, opts: Option<Table>| wait(lua, this, opts));
        m.add_method("abort", |_, this, ()| {
            this.conn.block_job_abort(&this.domain, &this.disk, false).map_err(errors::host)
        });
        m.add_method("pivot", |_, this, ()| {
            this.conn.block_job_abort(&this.domain, &this.disk, true).map_err(errors::host)
        });
        m.add_meta_method("__tostring", |_, this, ()| Ok(format!("luavirt.job({}/{})", this.domain, this.disk)));
    }
}
