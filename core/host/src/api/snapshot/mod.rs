//! Snapshots: the plan (which disks, how), and create, list, revert, delete through the
//! driver. The host decides what is hypervisor-neutral (the plan, the order of deletes, the
//! flags that cannot go together); the driver does the rest.

mod edit;
mod info;
mod plan;
mod spec;

pub use info::SnapshotInfo;
pub use plan::{PlannedDisk, PlannedMemory, SnapshotPlan, check_snapshot_name, default_overlay};
pub use spec::{DiskSpec, MemSpec, SnapshotRequest};

use super::blockjob::JobControl;
use super::hooks::{Done, Request};
use super::{Connection, suggest};
use crate::driver::CallOptions;
use crate::driver::client::{SnapshotCreateFlags, SnapshotDeleteFlags, SnapshotRevertFlags};
use crate::error::{Error, Result};
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
        if wants_memory && !self.driver().runs_domains() {
            return Err(Error::Unsupported {
                driver: self.driver().name.clone(),
                operation: format!(
                    "snapshots with memory of domain '{domain}': it cannot run domains ({}), and only a running hypervisor has memory to save",
                    self.driver().description
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
        // The files are the domain's host's: a remote host is asked. A question that fails
        // (a lost connection) fails the plan.
        let failed = std::cell::RefCell::new(None);
        let exists = |p: &str| {
            self.path_exists(p).unwrap_or_else(|e| {
                failed.borrow_mut().get_or_insert(e);
                false
            })
        };
        let plan = SnapshotPlan::resolve_asking(
            &dom,
            req,
            state.is_active(),
            &|target| self.is_overlay(domain, &dom, target),
            &exists,
        );
        match failed.into_inner() {
            Some(e) => Err(e),
            None => plan,
        }
    }

    /// Whether the disk's image has a backing image, as far as the driver reports images.
    fn is_overlay(&self, domain: &str, dom: &luavirt_plugin_api::domain::DomainXml, target: &str) -> bool {
        self.client.has_block_info()
            && dom.disk(target).is_some_and(|d| d.source.path().is_some() && !d.transient)
            && self.client.block_info(domain, target).is_ok_and(|i| !i.backing.is_empty())
    }

    /// Takes a snapshot; returns the plan it followed and the snapshot as stored. The
    /// `snapshot:before` hooks see the request first and may refuse or adjust it.
    pub fn snapshot_create(&self, domain: &str, req: &SnapshotRequest) -> Result<(SnapshotPlan, SnapshotXml)> {
        self.take_snapshot(domain, req, false, JobControl::default())
    }

    /// [`Connection::snapshot_create`], reporting the progress of saving memory (bytes) to
    /// `control`, which may also cancel it.
    pub fn snapshot_create_with(
        &self,
        domain: &str,
        req: &SnapshotRequest,
        control: JobControl,
    ) -> Result<(SnapshotPlan, SnapshotXml)> {
        self.take_snapshot(domain, req, false, control)
    }

    /// Takes a snapshot through the hooks; a `save` one writes luavirt's save header into its
    /// memory file.
    pub(crate) fn take_snapshot(
        &self,
        domain: &str,
        req: &SnapshotRequest,
        save: bool,
        control: JobControl,
    ) -> Result<(SnapshotPlan, SnapshotXml)> {
        let mut req = req.clone();
        self.hooks_before(domain, Request::Snapshot(&mut req))?;
        let (plan, stored) = self.snapshot_create_locked(domain, &req, save, control)?;
        self.hooks_after(domain, Done::Snapshot { name: stored.name.as_deref().unwrap_or(&plan.name) });
        Ok((plan, stored))
    }

    fn snapshot_create_locked(
        &self,
        domain: &str,
        req: &SnapshotRequest,
        save: bool,
        control: JobControl,
    ) -> Result<(SnapshotPlan, SnapshotXml)> {
        let _lock = self.lock_domain(domain)?;
        let plan = self.snapshot_plan(domain, req)?;
        let flags = SnapshotCreateFlags {
            no_metadata: req.no_metadata,
            halt: req.halt,
            disk_only: req.disk_only,
            reuse_external: req.reuse_external,
            live: req.live,
            save,
        };
        let xml = plan.to_snapshot_xml().to_xml();
        let out = self.mutate(
            domain,
            || format!("take snapshot {}", plan.summary()),
            || {
                let options = CallOptions {
                    progress: control.progress,
                    cancel: control.cancel,
                    progress_only_shows: control.progress_only_shows,
                };
                self.client.snapshot_create(domain, &xml, flags, &options)
            },
        )?;
        let stored = match out {
            Some(text) => SnapshotXml::parse(&text).map_err(Error::from)?,
            None => self.plan_snapshot(domain, &plan, req)?,
        };
        Ok((plan, stored))
    }

    /// Every snapshot of the domain, as a tree.
    pub fn snapshots(&self, domain: &str) -> Result<SnapshotTree> {
        if let Some(planned) = self.planned_snapshots(domain) {
            return Ok(planned);
        }
        let (texts, current) = self.client.snapshot_list(domain).map_err(|e| self.explain_missing(domain, e))?;
        let snaps = texts.iter().map(|t| SnapshotXml::parse(t)).collect::<Result<Vec<_>, _>>()?;
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

    /// Reverts the domain to a snapshot, after the `revert:before` hooks.
    pub fn snapshot_revert(&self, domain: &str, name: &str, opts: RevertOptions) -> Result<()> {
        let mut opts = opts;
        self.hooks_before(domain, Request::Revert { snapshot: name, options: &mut opts })?;
        self.snapshot_revert_locked(domain, name, opts)?;
        self.hooks_after(domain, Done::Revert { snapshot: name });
        Ok(())
    }

    fn snapshot_revert_locked(&self, domain: &str, name: &str, opts: RevertOptions) -> Result<()> {
        if opts.running && opts.paused {
            return Err(Error::InvalidArg("«running» and «paused» cannot go together".to_string()));
        }
        let _lock = self.lock_domain(domain)?;
        self.snapshot(domain, name)?;
        let flags = SnapshotRevertFlags { running: opts.running, paused: opts.paused, force: opts.force };
        let ran = self.mutate(
            domain,
            || format!("revert to snapshot '{name}'"),
            || self.client.snapshot_revert(domain, name, flags),
        )?;
        if ran.is_none() {
            self.plan_revert(domain, name, opts)?;
        }
        Ok(())
    }

    /// Deletes a snapshot (with `children`, its descendants first; with `children_only`, only
    /// them), after the `delete:before` hooks. Returns the names deleted, in order.
    pub fn snapshot_delete(&self, domain: &str, name: &str, opts: DeleteOptions) -> Result<Vec<String>> {
        let mut opts = opts;
        self.hooks_before(domain, Request::Delete { snapshot: name, options: &mut opts })?;
        let deleted = self.snapshot_delete_locked(domain, name, opts)?;
        self.hooks_after(domain, Done::Delete { deleted: &deleted });
        Ok(deleted)
    }

    fn snapshot_delete_locked(&self, domain: &str, name: &str, opts: DeleteOptions) -> Result<Vec<String>> {
        if opts.mirror_pivot && opts.mirror_abort {
            return Err(Error::InvalidArg(
                "«mirror_pivot» keeps the mirror and «mirror_abort» keeps the source: choose one".to_string(),
            ));
        }
        if opts.children && opts.children_only {
            return Err(Error::InvalidArg("«children» and «children_only» cannot go together".to_string()));
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
        let flags = SnapshotDeleteFlags {
            metadata_only: opts.metadata_only,
            mirror_pivot: opts.mirror_pivot,
            mirror_abort: opts.mirror_abort,
        };
        let mut done = Vec::new();
        for snap in order {
            let r = self.mutate(
                domain,
                || format!("delete snapshot '{snap}'"),
                || self.client.snapshot_delete(domain, &snap, flags),
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
