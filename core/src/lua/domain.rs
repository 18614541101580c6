//! `dom`: a domain handle. It holds the domain's name; every method asks the host afresh, so a
//! domain removed meanwhile gives a clear error instead of stale data.

use super::disk;
use super::diskset::LuaDiskSet;
use super::errors;
use super::job::LuaJob;
use super::options::Opts;
use super::snapshot::LuaSnapshot;
use luavirt_host::Connection;
use luavirt_host::snapshot::{DiskSpec, MemSpec, SnapshotRequest};
use luavirt_host::{CommitOptions, CopyOptions, PullOptions};
use luavirt_plugin_api::domain::DEFAULT_SET;
use mlua::{AnyUserData, Lua, LuaSerdeExt, Table, UserData, UserDataMethods, Value};
use std::rc::Rc;

/// A domain handle.
#[derive(Clone)]
pub struct LuaDomain {
    conn: Rc<Connection>,
    name: String,
}

impl LuaDomain {
    /// The handle of domain `name`.
    pub fn new(conn: &Rc<Connection>, name: &str) -> LuaDomain {
        LuaDomain { conn: conn.clone(), name: name.to_string() }
    }
}

/// A snapshot request's names and flags, the keys `dom:snapshot{}` and a hook's
/// `ev.request` share.
pub(crate) fn snapshot_flags(o: &mut Opts<'_>) -> mlua::Result<SnapshotRequest> {
    Ok(SnapshotRequest {
        name: o.string("name")?,
        description: o.string("description")?,
        disk_set: o.string("disk_set")?,
        disk_only: o.boolean("disk_only")?,
        live: o.boolean("live")?,
        halt: o.boolean("halt")?,
        reuse_external: o.boolean("reuse_external")?,
        no_metadata: o.boolean("no_metadata")?,
        atomic: o.optional_boolean("atomic")?,
        ..SnapshotRequest::default()
    })
}

/// The diskspec of `disk` from a disk entry's `snapshot`, `driver`, `file` and `mirror`.
pub(crate) fn disk_spec(d: &mut Opts<'_>, disk: String) -> mlua::Result<DiskSpec> {
    Ok(DiskSpec {
        disk,
        snapshot: d.string("snapshot")?,
        driver: d.string("driver")?,
        file: d.string("file")?,
        mirror: d.string("mirror")?,
    })
}

/// Reads `dom:snapshot{...}` options into a request.
fn snapshot_request(lua: &Lua, opts: Option<Table>, what: &'static str) -> mlua::Result<SnapshotRequest> {
    let mut o = Opts::new(lua, opts, what);
    let mut req = snapshot_flags(&mut o)?;
    match o.string("memory")? {
        None => {}
        Some(m) if ["no", "internal"].contains(&m.as_str()) => {
            req.memory = Some(MemSpec { snapshot: Some(m), file: None })
        }
        Some(file) => req.memory = Some(MemSpec { snapshot: Some("external".into()), file: Some(file) }),
    }
    match o.value("disks")? {
        Value::Nil => {}
        // A disk set handle: its members take part.
        Value::UserData(ud) if ud.is::<LuaDiskSet>() => {
            req.disk_set = Some(ud.borrow::<LuaDiskSet>()?.name().to_string())
        }
        Value::Table(t) if t.raw_len() > 0 => {
            for v in t.sequence_values::<String>() {
                req.disks.push(DiskSpec { disk: v?, ..DiskSpec::default() });
            }
        }
        Value::Table(t) => {
            for pair in t.pairs::<String, Value>() {
                let (disk, how) = pair?;
                let spec = match how {
                    Value::String(mode) => {
                        DiskSpec { disk, snapshot: Some(mode.to_str()?.to_string()), ..DiskSpec::default() }
                    }
                    Value::Table(d) => {
                        let mut d = Opts::new(lua, Some(d), "dom:snapshot disks entry");
                        let spec = disk_spec(&mut d, disk)?;
                        d.finish()?;
                        spec
                    }
                    other => {
                        return Err(o.bad(
                            "disks",
                            &format!("maps disk names to a mode or a table, not {}", other.type_name()),
                        ));
                    }
                };
                req.disks.push(spec);
            }
            // pairs() has no order: keep the domain's order out of it by sorting names.
            req.disks.sort_by(|a, b| a.disk.cmp(&b.disk));
        }
        other => {
            return Err(
                o.bad("disks", &format!("must be a disk set, a list of disks or a map, not {}", other.type_name()))
            );
        }
    }
    o.finish()?;
    Ok(req)
}

impl UserData for LuaDomain {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("name", |_, this, ()| Ok(this.name.clone()));
        m.add_method("state", |_, this, ()| Ok(this.conn.domain_state(&this.name).map_err(errors::host)?.0.as_str()));
        m.add_method("start", |_, this, ()| this.conn.start(&this.name).map_err(errors::host));
        m.add_method("destroy", |_, this, ()| this.conn.destroy(&this.name).map_err(errors::host));
        m.add_method("undefine", |lua, this, opts: Option<Table>| {
            let mut o = Opts::new(lua, opts, "dom:undefine");
            let snapshots_metadata = o.boolean("snapshots_metadata")?;
            let all = o.boolean("remove_all_storage")?;
            let storage = match o.value("storage")? {
                Value::Nil => None,
                Value::Table(t) => Some(t.sequence_values::<String>().collect::<mlua::Result<Vec<_>>>()?),
                other => return Err(o.bad("storage", &format!("must be a list of disks, not {}", other.type_name()))),
            };
            o.finish()?;
            let storage = match (all, storage) {
                (true, Some(_)) => {
                    return Err(errors::invalid(
                        lua,
                        "dom:undefine: remove_all_storage and storage cannot go together".into(),
                    ));
                }
                (true, None) => luavirt_host::StorageRemoval::All,
                (false, Some(list)) => luavirt_host::StorageRemoval::Disks(list),
                (false, None) => luavirt_host::StorageRemoval::Keep,
            };
            let opts = luavirt_host::UndefineOptions { snapshots_metadata, storage };
            let mut report = this.conn.undefine_with(&this.name, &opts).map_err(errors::host)?;
            for k in &mut report.kept {
                k.reason = luavirt_host::words::render(&k.reason);
            }
            lua.to_value(&report)
        });
        m.add_method("info", |lua, this, ()| {
            let d = this.conn.domain_details(&this.name).map_err(errors::host)?;
            let t = lua.to_value(&d)?;
            // The state in the words dom:state() uses.
            if let Value::Table(t) = &t {
                t.set("state", d.state.as_str())?;
            }
            Ok(t)
        });
        m.add_method("block_info", |lua, this, disk: String| {
            lua.to_value(&this.conn.block_device(&this.name, &disk).map_err(errors::host)?)
        });
        m.add_method("shutdown", |lua, this, opts: Option<Table>| {
            super::power::shutdown(lua, &this.conn, &this.name, opts)
        });
        m.add_method("attach_disk", |lua, this, opts: Table| super::attach::attach(lua, &this.conn, &this.name, opts));
        m.add_method("detach_disk", |lua, this, opts: Table| super::attach::detach(lua, &this.conn, &this.name, opts));
        m.add_method("reset", |_, this, ()| this.conn.reset(&this.name).map_err(errors::host));
        m.add_method("suspend", |_, this, ()| this.conn.suspend(&this.name).map_err(errors::host));
        m.add_method("resume", |_, this, ()| this.conn.resume(&this.name).map_err(errors::host));
        m.add_method("xml", |_, this, ()| this.conn.domain_xml(&this.name, true).map_err(errors::host));
        m.add_method("disks", |lua, this, ()| {
            // Plain data out of the parse first: making tables runs Lua (its collector).
            let views = this.conn.with_domain(&this.name, disk::DiskView::all).map_err(errors::host)?;
            disk::disks(lua, &this.conn, &views)
        });
        m.add_method("disk", |lua, this, name: String| {
            let d = this.conn.disk(&this.name, &name).map_err(errors::host)?;
            let view = this.conn.with_domain(&this.name, |dom| disk::DiskView::of(dom, d)).map_err(errors::host)?;
            disk::one(lua, &this.conn, &view)
        });
        m.add_method("diskset", |_, this, name: Option<String>| {
            let name = name.unwrap_or_else(|| DEFAULT_SET.to_string());
            this.conn.diskset(&this.name, &name).map_err(errors::host)?;
            Ok(LuaDiskSet::new(&this.conn, &this.name, &name))
        });
        m.add_method("disksets", |_, this, ()| this.conn.diskset_names(&this.name).map_err(errors::host));
        m.add_method("snapshot", |lua, this, opts: Option<Table>| {
            let req = snapshot_request(lua, opts, "dom:snapshot")?;
            let (_, stored) = this.conn.snapshot_create(&this.name, &req).map_err(errors::host)?;
            Ok(LuaSnapshot::new(&this.conn, &this.name, stored.name.as_deref().unwrap_or("")))
        });
        m.add_method("snapshot_plan", |lua, this, opts: Option<Table>| {
            let req = snapshot_request(lua, opts, "dom:snapshot_plan")?;
            let plan = this.conn.snapshot_plan(&this.name, &req).map_err(errors::host)?;
            lua.to_value(&plan)
        });
        m.add_method("snapshots", |_, this, ()| {
            let tree = this.conn.snapshots(&this.name).map_err(errors::host)?;
            Ok(tree
                .all()
                .iter()
                .filter_map(|s| s.name.as_deref())
                .map(|n| LuaSnapshot::new(&this.conn, &this.name, n))
                .collect::<Vec<_>>())
        });
        m.add_method("find_snapshot", |_, this, name: String| {
            this.conn.snapshot(&this.name, &name).map_err(errors::host)?;
            Ok(LuaSnapshot::new(&this.conn, &this.name, &name))
        });
        m.add_method("current_snapshot", |_, this, ()| {
            let tree = this.conn.snapshots(&this.name).map_err(errors::host)?;
            Ok(tree.current.map(|c| LuaSnapshot::new(&this.conn, &this.name, &c)))
        });
        m.add_method("block_copy", |lua, this, opts: Table| {
            let mut o = Opts::new(lua, Some(opts), "dom:block_copy");
            let disk = o.string("disk")?.ok_or_else(|| o.bad("disk", "is required"))?;
            let dest = o.string("dest")?.ok_or_else(|| o.bad("dest", "is required"))?;
            let copy = CopyOptions {
                dest,
                format: o.string("format")?,
                shallow: o.boolean("shallow")?,
                reuse_external: o.boolean("reuse_external")?,
                bandwidth: o.count("bandwidth")?,
                ..CopyOptions::default()
            };
            o.finish()?;
            this.conn.block_copy(&this.name, &disk, &copy, Default::default()).map_err(errors::host)?;
            Ok(LuaJob::new(&this.conn, &this.name, &disk))
        });
        m.add_method("block_pull", |lua, this, opts: Table| {
            let mut o = Opts::new(lua, Some(opts), "dom:block_pull");
            let disk = o.string("disk")?.ok_or_else(|| o.bad("disk", "is required"))?;
            let pull = PullOptions { base: o.string("base")?, bandwidth: o.count("bandwidth")?, wait: false };
            o.finish()?;
            this.conn.block_pull(&this.name, &disk, &pull, Default::default()).map_err(errors::host)?;
            Ok(LuaJob::new(&this.conn, &this.name, &disk))
        });
        m.add_method("block_commit", |lua, this, opts: Table| {
            let mut o = Opts::new(lua, Some(opts), "dom:block_commit");
            let disk = o.string("disk")?.ok_or_else(|| o.bad("disk", "is required"))?;
            let commit = CommitOptions {
                base: o.string("base")?,
                top: o.string("top")?,
                bandwidth: o.count("bandwidth")?,
                ..CommitOptions::default()
            };
            o.finish()?;
            this.conn.block_commit(&this.name, &disk, &commit, Default::default()).map_err(errors::host)?;
            Ok(LuaJob::new(&this.conn, &this.name, &disk))
        });
        m.add_method("save", |lua, this, opts: Table| super::save::save(lua, &this.conn, &this.name, opts));
        m.add_method("migrate", |lua, this, opts: Table| super::migrate::migrate(lua, &this.conn, &this.name, opts));
        m.add_method("migration_plan", |lua, this, opts: Table| {
            super::migrate::plan(lua, &this.conn, &this.name, opts)
        });
        m.add_method("block_job", |_, this, disk: String| {
            let info = this.conn.block_job_info(&this.name, &disk).map_err(errors::host)?;
            Ok(info.map(|_| LuaJob::new(&this.conn, &this.name, &disk)))
        });
        m.add_meta_method("__tostring", |_, this, ()| Ok(format!("luavirt.domain({})", this.name)));
        m.add_meta_method("__eq", |_, this, other: AnyUserData| {
            Ok(other.borrow::<LuaDomain>().is_ok_and(|o| o.name == this.name && o.conn.uri() == this.conn.uri()))
        });
    }
}
