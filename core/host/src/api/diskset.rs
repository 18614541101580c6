//! Disk-set operations. Each change is a read-modify-write of the domain's definition under
//! the domain's lock, and writes only when the set really changes.

use super::Connection;
use crate::error::{Error, Result};
use luavirt_plugin_api::domain::{Disk, DiskSets, check_set_name};
use serde::Serialize;

/// Whether an add or remove changed the set. Neither is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskSetChange {
    /// The disk was added or removed.
    Changed,
    /// `add`: the disk was already in the set.
    AlreadyMember,
    /// `remove`: the disk was not in the set.
    AlreadyAbsent,
}

/// Operations on one named disk set of one domain. Holds names only: every call reads the
/// domain afresh, so a domain removed meanwhile gives a clear error.
pub struct DiskSetOps<'a> {
    conn: &'a Connection,
    domain: String,
    set: String,
}

impl Connection {
    /// The disk set `set` of `domain` (the set need not have members yet).
    pub fn diskset(&self, domain: &str, set: &str) -> Result<DiskSetOps<'_>> {
        check_set_name(set).map_err(Error::InvalidArg)?;
        Ok(DiskSetOps { conn: self, domain: domain.to_string(), set: set.to_string() })
    }

    /// Names of the domain's disk sets that have members.
    pub fn diskset_names(&self, domain: &str) -> Result<Vec<String>> {
        self.with_domain(domain, |d| d.disk_sets().names().map(str::to_string).collect())
    }
}

/// Finds a disk by target name, or by source path.
pub(crate) fn resolve(domain: &str, disks: &[Disk], name: &str) -> Result<String> {
    disks
        .iter()
        .find(|d| d.target == name)
        .or_else(|| disks.iter().find(|d| d.source.path() == Some(name)))
        .map(|d| d.target.clone())
        .ok_or_else(|| Error::NoDisk {
            domain: domain.to_string(),
            disk: name.to_string(),
            disks: disks.iter().map(|d| d.target.clone()).collect(),
        })
}

impl DiskSetOps<'_> {
    /// The domain's name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        &self.set
    }

    /// Applies `change` to the domain's sets under its lock; writes the definition back only
    /// if the sets changed.
    fn modify<R>(&self, change: impl FnOnce(&mut DiskSets, &[Disk]) -> Result<R>) -> Result<R> {
        let _lock = self.conn.lock_domain(&self.domain)?;
        let mut read = self.conn.read_domain_to_change(&self.domain)?;
        let before = read.dom.disk_sets();
        let mut sets = before.clone();
        let result = change(&mut sets, &read.dom.disks())?;
        if sets == before {
            self.conn.unchanged(read);
            return Ok(result);
        }
        read.dom.set_disk_sets(&sets);
        let (was, now) = (before.members(&self.set).join(", "), sets.members(&self.set).join(", "));
        self.conn.redefine(read.dom, || format!("disk set '{}': [{was}] -> [{now}]", self.set))?;
        Ok(result)
    }

    /// Adds a disk (target or source path).
    pub fn add(&self, disk: &str) -> Result<DiskSetChange> {
        self.modify(|sets, disks| {
            let target = resolve(&self.domain, disks, disk)?;
            Ok(if sets.add(&self.set, &target) { DiskSetChange::Changed } else { DiskSetChange::AlreadyMember })
        })
    }

    /// Removes a disk (target or source path).
    pub fn remove(&self, disk: &str) -> Result<DiskSetChange> {
        self.modify(|sets, disks| {
            let target = resolve(&self.domain, disks, disk)?;
            Ok(if sets.remove(&self.set, &target) { DiskSetChange::Changed } else { DiskSetChange::AlreadyAbsent })
        })
    }

    /// Adds every disk of the domain; returns those that were not members yet.
    pub fn add_all(&self) -> Result<Vec<String>> {
        self.modify(|sets, disks| {
            let added = disks.iter().filter(|d| sets.add(&self.set, &d.target)).map(|d| d.target.clone()).collect();
            let targets: Vec<String> = disks.iter().map(|d| d.target.clone()).collect();
            sets.keep_only(&targets);
            Ok(added)
        })
    }

    /// Empties the set; returns the disks it held.
    pub fn remove_all(&self) -> Result<Vec<String>> {
        self.modify(|sets, _| {
            let members = sets.members(&self.set).to_vec();
            sets.clear(&self.set);
            Ok(members)
        })
    }

    /// Members, in the order the domain lists its disks.
    pub fn list(&self) -> Result<Vec<String>> {
        self.conn.with_domain(&self.domain, |d| d.disk_sets().members(&self.set).to_vec())
    }

    /// Number of members.
    pub fn size(&self) -> Result<usize> {
        Ok(self.list()?.len())
    }

    /// Whether a disk (target or source path) is a member. An unknown disk is an error.
    pub fn contains(&self, disk: &str) -> Result<bool> {
        self.conn.with_domain(&self.domain, |dom| {
            let target = resolve(&self.domain, &dom.disks(), disk)?;
            Ok(dom.disk_sets().contains(&self.set, &target))
        })?
    }
}
