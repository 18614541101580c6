//! Dry runs: a connection in dry-run mode calls no driver function that changes anything. It
//! records what each change would be, and later reads on the same connection see those
//! changes (a domain's XML after a disk-set change, a domain defined earlier in the run, the
//! run state after `start` or `destroy`, the snapshots taken, deleted or reverted to), so a
//! script decides as it would for real. The host enforces this, not drivers or scripts.

use super::Connection;
use super::domain::DomainState;
use super::snapshot::{PlannedMemory, RevertOptions, SnapshotPlan, SnapshotRequest};
use crate::error::{Error, Result};
use luavirt_plugin_api::ErrorCode;
use luavirt_plugin_api::snapshot::{SnapshotTree, SnapshotXml};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// One change a dry run would make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    /// The domain it changes.
    pub domain: String,
    /// What would change, in words.
    pub change: String,
}

/// What a dry run has recorded so far.
#[derive(Default)]
pub(crate) struct DryRun {
    changes: RefCell<Vec<PlannedChange>>,
    /// Definitions as they would be: `Some(xml)` written, `None` undefined. Shared, so that
    /// the many reads of one do not copy it.
    domains: RefCell<BTreeMap<String, Option<Rc<str>>>>,
    /// Run states as they would be, for domains the run started, stopped or defined.
    states: RefCell<BTreeMap<String, DomainState>>,
    /// Snapshot trees as they would be, for domains whose snapshots the run changed.
    snapshots: RefCell<BTreeMap<String, SnapshotTree>>,
}

impl Connection {
    /// Puts the connection in dry-run mode (there is no way back).
    pub fn set_dry_run(&mut self) {
        self.dry_run.get_or_insert_with(DryRun::default);
    }

    /// Whether this connection only records changes.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run.is_some()
    }

    /// The changes recorded by a dry run, in order.
    pub fn planned_changes(&self) -> Vec<PlannedChange> {
        self.dry_run.as_ref().map(|d| d.changes.borrow().clone()).unwrap_or_default()
    }

    /// Forgets what the dry run recorded, changes and planned state alike: later reads see
    /// the domains as they are. `luavirt watch --dry-run` does this after each hook, whose
    /// changes it has logged, so a long run never reads its own old plans.
    pub fn take_planned_changes(&self) -> Vec<PlannedChange> {
        let Some(d) = &self.dry_run else { return Vec::new() };
        d.domains.borrow_mut().clear();
        d.states.borrow_mut().clear();
        d.snapshots.borrow_mut().clear();
        std::mem::take(&mut d.changes.borrow_mut())
    }

    /// Runs `real`, which changes something, or in a dry run records `change` instead
    /// (`None`).
    pub(crate) fn mutate<T>(
        &self,
        domain: &str,
        change: impl FnOnce() -> String,
        real: impl FnOnce() -> Result<T>,
    ) -> Result<Option<T>> {
        self.changed.borrow_mut().insert(domain.to_string());
        match &self.dry_run {
            Some(d) => {
                d.changes.borrow_mut().push(PlannedChange { domain: domain.to_string(), change: change() });
                Ok(None)
            }
            None => real().map(Some),
        }
    }

    /// In a dry run, records the definition `domain` would have (`None`: undefined). A
    /// domain new to the run is shut off and has no snapshots; one that existed keeps its
    /// state.
    pub(crate) fn plan_definition(&self, domain: &str, xml: Option<String>) {
        let Some(d) = &self.dry_run else { return };
        let defined = xml.is_some();
        d.domains.borrow_mut().insert(domain.to_string(), xml.map(Rc::from));
        if !defined {
            d.states.borrow_mut().remove(domain);
        } else if !d.states.borrow().contains_key(domain) {
            let state = match self.domain_state(domain) {
                Ok((s, _)) => s,
                Err(e) if e.code() == ErrorCode::NoDomain => {
                    d.snapshots.borrow_mut().insert(domain.to_string(), SnapshotTree::default());
                    DomainState::ShutOff
                }
                Err(_) => DomainState::ShutOff,
            };
            d.states.borrow_mut().insert(domain.to_string(), state);
        }
    }

    /// In a dry run, the definition of `domain` as it would be, if the run changed it.
    pub(crate) fn planned_definition(&self, domain: &str) -> Option<Result<Rc<str>>> {
        let d = self.dry_run.as_ref()?;
        let planned = d.domains.borrow().get(domain).cloned()?;
        Some(planned.ok_or_else(|| Error::NoDomain {
            name: domain.to_string(),
            uri: self.uri.to_string(),
            close: Vec::new(),
        }))
    }

    /// In a dry run, the domains it defined or undefined: `(name, Some(xml) | None)`.
    pub(crate) fn planned_definitions(&self) -> Vec<(String, Option<Rc<str>>)> {
        self.dry_run
            .as_ref()
            .map(|d| d.domains.borrow().iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// In a dry run, records that `domain` would be in `state`.
    pub(crate) fn plan_state(&self, domain: &str, state: DomainState) {
        if let Some(d) = &self.dry_run {
            d.states.borrow_mut().insert(domain.to_string(), state);
        }
    }

    /// In a dry run, the state of `domain` as the run left it (an error once it undefined it),
    /// if the run changed it.
    pub(crate) fn planned_state(&self, domain: &str) -> Option<Result<(DomainState, Option<i64>)>> {
        let d = self.dry_run.as_ref()?;
        if let Some(Err(e)) = self.planned_definition(domain) {
            return Some(Err(e));
        }
        d.states.borrow().get(domain).map(|s| Ok((*s, None)))
    }

    /// `list` as a dry run left it: the run's states over the driver's.
    pub(crate) fn apply_planned_states(&self, list: &mut [super::DomainInfo]) {
        let Some(d) = &self.dry_run else { return };
        for info in list.iter_mut() {
            if let Some(s) = d.states.borrow().get(&info.name) {
                info.state = *s;
                info.id = info.id.filter(|_| s.is_active());
            }
        }
    }

    /// In a dry run, `domain`'s snapshots as the run left them, if it changed them.
    pub(crate) fn planned_snapshots(&self, domain: &str) -> Option<SnapshotTree> {
        self.dry_run.as_ref()?.snapshots.borrow().get(domain).cloned()
    }

    /// Changes the run's view of `domain`'s snapshots.
    fn change_snapshots(&self, domain: &str, change: impl FnOnce(&mut SnapshotTree)) -> Result<()> {
        let Some(d) = &self.dry_run else { return Ok(()) };
        let mut tree = self.snapshots(domain)?;
        change(&mut tree);
        d.snapshots.borrow_mut().insert(domain.to_string(), tree);
        Ok(())
    }

    /// Records the snapshot `plan` would take (none is listed with `no_metadata`, as for
    /// real); returns it as it would be stored.
    pub(crate) fn plan_snapshot(
        &self,
        domain: &str,
        plan: &SnapshotPlan,
        req: &SnapshotRequest,
    ) -> Result<SnapshotXml> {
        let mut snap = plan.to_snapshot_xml();
        snap.creation_time = Some(luavirt_plugin_api::time::now_secs());
        let state = match (plan.running, &plan.memory) {
            (false, _) => "shutoff",
            (true, PlannedMemory::No) => "disk-snapshot",
            (true, _) => "running",
        };
        snap.state = Some(state.to_string());
        if !req.no_metadata {
            self.change_snapshots(domain, |t| t.add(snap.clone()))?;
            snap.parent = self.snapshots(domain)?.get(&plan.name).and_then(|s| s.parent.clone());
        }
        if req.halt {
            self.plan_state(domain, DomainState::ShutOff);
        }
        Ok(snap)
    }

    /// Records a revert to snapshot `name`: it becomes current, and the domain comes back as
    /// libvirt says: as it was when taken if memory was saved, else shut off, unless `opts`
    /// ask for running or paused.
    pub(crate) fn plan_revert(&self, domain: &str, name: &str, opts: RevertOptions) -> Result<()> {
        let snap = self.snapshot(domain, name)?;
        let memory = snap.memory.as_ref().is_some_and(|m| m.snapshot != "no");
        let state = if opts.paused || (!opts.running && memory && snap.state.as_deref() == Some("paused")) {
            DomainState::Paused
        } else if opts.running || memory {
            DomainState::Running
        } else {
            DomainState::ShutOff
        };
        self.change_snapshots(domain, |t| t.current = Some(name.to_string()))?;
        self.plan_state(domain, state);
        Ok(())
    }

    /// Records that snapshot `name` would be deleted (its children take its parent).
    pub(crate) fn plan_snapshot_deleted(&self, domain: &str, name: &str) -> Result<()> {
        self.change_snapshots(domain, |t| {
            t.remove(name);
        })
    }
}
