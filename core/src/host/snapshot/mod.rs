//! Snapshots: the plan (which disks, how), and create, list, revert, delete through the
//! driver. The host decides what is hypervisor-neutral (the plan, the order of deletes, the
//! flags that cannot go together); the driver does the rest.

mod plan;
mod spec;

pub use plan::{PlannedDisk, PlannedMemory, SnapshotPlan, check_snapshot_name, default_overlay};
pub use spec::{DiskSpec, MemSpec, SnapshotRequest};

use super::{Connection, entry, suggest};
use crate::error::{Error, Result};
use luavirt_plugin_api::abi::{self, LvStr};
use luavirt_plugin_api::snapshot::{SnapshotTree, SnapshotXml};

/// How a revert leaves the domain.
#[derive(Clone, Copy, Debug, Default)]
pub struct RevertOptions {
    /// Running afterwards.
    pub running: bool,
    /// Paused afterwards.
    pub paused: bool,
    /// virsh's `--force`, passed on to the driver; no driver of luavirt refuses a revert
    /// that `--force` would allow, so none reads it.
    pub force: bool,
}

/// What a delete takes with it.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeleteOptions {
    /// The snapshot and all its descendants.
    pub children: bool,
    /// Only its descendants.
    pub children_only: bool,
    /// Only metadata; images stay as they are.
    pub metadata_only: bool,
    /// End its mirrors on the mirror.
    pub mirror_pivot: bool,
    /// End its mirrors on the source.
    pub mirror_abort: bool,
}

impl Connection {
    /// Resolves a snapshot request against the domain as it is now.
    pub fn snapshot_plan(&self, domain: &str, req: &SnapshotRequest) -> Result<SnapshotPlan> {
        let dom = self.read_domain(domain)?;
        let wants_memory = req.memory.as_ref().is_some_and(|m| m.snapshot.as_deref() != Some("no"));
        if wants_memory && self.driver.capabilities & abi::LV_CAP_LIFECYCLE == 0 {
            return Err(Error::Unsupported {
                driver: self.driver.name.clone(),
                operation: format!(
                    "snapshots with memory of domain '{domain}': it cannot run domains ({}), and only a running hypervisor has memory to save",
                    self.driver.description
                ),
            });
        }
        if let Some(name) = &req.name
            && self.snapshots(domain)?.get(name).is_some()
        {
            return Err(Error::InvalidArg(format!(
                "Domain '{domain}' already has a snapshot named '{name}'; choose another name"
            )));
        }
        let (state, _) = self.domain_state(domain)?;
        let plan = SnapshotPlan::resolve(&dom, req, state.is_active(), &self.overlay_disks(domain, &dom))?;
        Ok(plan)
    }

    /// The disks whose image has a backing image, as far as the driver reports images.
    fn overlay_disks(&self, domain: &str, dom: &luavirt_plugin_api::domain::DomainXml) -> Vec<String> {
        let Some(f) = self.driver.vtable().domain_get_block_info else { return Vec::new() };
        dom.disks()
            .into_iter()
            .filter(|d| d.source.path().is_some() && !d.transient)
            .filter(|d| {
                self.call("reading disk image details", &Default::default(), |h, c| unsafe {
                    f(h, LvStr::from_str(domain), LvStr::from_str(&d.target), 0, c)
                })
                .is_ok_and(|out| out.records.first().is_some_and(|r| r.get("backing").is_some()))
            })
            .map(|d| d.target)
            .collect()
    }

    /// Takes a snapshot; returns the plan it followed and the snapshot as stored.
    pub fn snapshot_create(&self, domain: &str, req: &SnapshotRequest) -> Result<(SnapshotPlan, SnapshotXml)> {
        let f = entry!(self, domain_snapshot_create, "snapshots");
        let _lock = self.lock_domain(domain)?;
        let plan = self.snapshot_plan(domain, req)?;
        let mut flags = 0;
        for (on, flag) in [
            (req.disk_only, abi::LV_SNAPSHOT_CREATE_DISK_ONLY),
            (req.halt, abi::LV_SNAPSHOT_CREATE_HALT),
            (req.reuse_external, abi::LV_SNAPSHOT_CREATE_REUSE_EXT),
            (req.no_metadata, abi::LV_SNAPSHOT_CREATE_NO_METADATA),
            (req.live, abi::LV_SNAPSHOT_CREATE_LIVE),
            (true, abi::LV_SNAPSHOT_CREATE_ATOMIC),
        ] {
            if on {
                flags |= flag;
            }
        }
        let xml = plan.to_snapshot_xml().to_xml();
        let out = self.mutate(
            domain,
            || format!("take snapshot {}", plan.summary()),
            || {
                self.call("taking a snapshot", &Default::default(), |h, c| unsafe {
                    f(h, LvStr::from_str(domain), LvStr::from_str(&xml), flags, c)
                })
            },
        )?;
        let stored = match out {
            Some(out) => SnapshotXml::parse(&out.into_text()).map_err(Error::from)?,
            None => self.plan_snapshot(domain, &plan, req)?,
        };
        Ok((plan, stored))
    }

    /// Every snapshot of the domain, as a tree.
    pub fn snapshots(&self, domain: &str) -> Result<SnapshotTree> {
        let f = entry!(self, domain_snapshot_list, "snapshots");
        if let Some(planned) = self.planned_snapshots(domain) {
            return Ok(planned);
        }
        let out = self.call_domain("listing snapshots", f, domain, 0).map_err(|e| self.explain_missing(domain, e))?;
        let current = out.records.first().and_then(|r| r.get_str("current").map(str::to_string));
        let snaps = out.texts.iter().map(|t| SnapshotXml::parse(t)).collect::<Result<Vec<_>, _>>()?;
        Ok(SnapshotTree::new(current, snaps))
    }

    /// One snapshot, or an error that suggests close names.
    pub fn snapshot(&self, domain: &str, name: &str) -> Result<SnapshotXml> {
        let tree = self.snapshots(domain)?;
        tree.get(name).cloned().ok_or_else(|| {
            let names: Vec<String> = tree.all().iter().filter_map(|s| s.name.clone()).collect();
            Error::NoSnapshot {
                domain: domain.to_string(),
                name: name.to_string(),
                close: suggest::close_names(name, &names),
            }
        })
    }

    /// Reverts the domain to a snapshot.
    pub fn snapshot_revert(&self, domain: &str, name: &str, opts: RevertOptions) -> Result<()> {
        let f = entry!(self, domain_snapshot_revert, "reverting to snapshots");
        if opts.running && opts.paused {
            return Err(Error::InvalidArg("--running and --paused cannot go together".to_string()));
        }
        let _lock = self.lock_domain(domain)?;
        self.snapshot(domain, name)?;
        let mut flags = 0;
        for (on, flag) in [
            (opts.running, abi::LV_SNAPSHOT_REVERT_RUNNING),
            (opts.paused, abi::LV_SNAPSHOT_REVERT_PAUSED),
            (opts.force, abi::LV_SNAPSHOT_REVERT_FORCE),
        ] {
            if on {
                flags |= flag;
            }
        }
        let ran = self.mutate(
            domain,
            || format!("revert to snapshot '{name}'"),
            || {
                self.call("reverting to a snapshot", &Default::default(), |h, c| unsafe {
                    f(h, LvStr::from_str(domain), LvStr::from_str(name), flags, c)
                })
            },
        )?;
        if ran.is_none() {
            self.plan_revert(domain, name, opts)?;
        }
        Ok(())
    }

    /// Deletes a snapshot (with `children`, its descendants first; with `children_only`, only
    /// them). Returns the names deleted, in order.
    pub fn snapshot_delete(&self, domain: &str, name: &str, opts: DeleteOptions) -> Result<Vec<String>> {
        let f = entry!(self, domain_snapshot_delete, "deleting snapshots");
        if opts.mirror_pivot && opts.mirror_abort {
            return Err(Error::InvalidArg(
                "--mirror-pivot keeps the mirror and --mirror-abort keeps the source: choose one".to_string(),
            ));
        }
        if opts.children && opts.children_only {
            return Err(Error::InvalidArg("--children and --children-only cannot go together".to_string()));
        }
        let _lock = self.lock_domain(domain)?;
        self.snapshot(domain, name)?;
        let tree = self.snapshots(domain)?;
        let mut order = Vec::new();
        if opts.children || opts.children_only {
            order.extend(tree.descendants(name));
        }
        if !opts.children_only {
            order.push(name.to_string());
        }
        let mut flags = 0;
        for (on, flag) in [
            (opts.metadata_only, abi::LV_SNAPSHOT_DELETE_METADATA_ONLY),
            (opts.mirror_pivot, abi::LV_SNAPSHOT_DELETE_MIRROR_PIVOT),
            (opts.mirror_abort, abi::LV_SNAPSHOT_DELETE_MIRROR_ABORT),
        ] {
            if on {
                flags |= flag;
            }
        }
        let mut done = Vec::new();
        for snap in order {
            let r = self.mutate(
                domain,
                || format!("delete snapshot '{snap}'"),
                || {
                    self.call("deleting a snapshot", &Default::default(), |h, c| unsafe {
                        f(h, LvStr::from_str(domain), LvStr::from_str(&snap), flags, c)
                    })
                },
            );
            if let Ok(None) = r {
                self.plan_snapshot_deleted(domain, &snap)?;
            }
            if let Err(e) = r {
                if done.is_empty() {
                    return Err(e);
                }
                return Err(Error::Driver {
                    code: e.code(),
                    message: format!("{e} (already deleted: {})", done.join(", ")),
                });
            }
            done.push(snap);
        }
        Ok(done)
    }
}
