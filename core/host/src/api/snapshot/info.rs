//! What `snapshot-info` and Lua's `snap:info()` show of one snapshot: gathered here, once.

use crate::Connection;
use crate::error::Result;
use serde::Serialize;

/// The facts of one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotInfo {
    /// Its name.
    pub name: String,
    /// Its domain.
    pub domain: String,
    /// Whether it is the current snapshot.
    pub current: bool,
    /// The domain's state when it was taken (`running`, `shutoff`, `disk-snapshot`, ...).
    pub state: Option<String>,
    /// Where its data lives: `internal`, `external`, `mixed` or `none`.
    pub location: &'static str,
    /// Its parent.
    pub parent: Option<String>,
    /// Its children, by name.
    pub children: Vec<String>,
    /// How many snapshots descend from it.
    pub descendants: usize,
    /// Whether the host keeps a record of its own (virsh's "Metadata"): luavirt's record holds
    /// the domain as it was; a snapshot read from the hypervisor's own files (a VMware `.vmsd`)
    /// has none. One taken without metadata is never listed at all.
    pub metadata: bool,
    /// When it was taken, seconds since the epoch.
    pub creation_time: Option<i64>,
    /// Its description.
    pub description: Option<String>,
    /// Its memory: `no`, `internal` or `external`.
    pub memory: String,
    /// Each disk and how it was taken (`no`, `internal`, `external`, `manual`).
    pub disks: std::collections::BTreeMap<String, String>,
}

impl Connection {
    /// The facts of snapshot `name` of `domain`.
    pub fn snapshot_info(&self, domain: &str, name: &str) -> Result<SnapshotInfo> {
        let s = self.snapshot(domain, name)?;
        let tree = self.snapshots(domain)?;
        let memory = s.memory.as_ref().map(|m| m.snapshot.clone()).unwrap_or_else(|| "no".to_string());
        let modes: Vec<&str> = s.disks.iter().filter_map(|d| d.snapshot.as_deref()).collect();
        let internal = modes.contains(&"internal") || memory == "internal";
        let external = modes.contains(&"external") || memory == "external";
        Ok(SnapshotInfo {
            name: name.to_string(),
            domain: domain.to_string(),
            current: tree.current.as_deref() == Some(name),
            state: s.state.clone(),
            location: match (internal, external) {
                (true, true) => "mixed",
                (true, false) => "internal",
                (false, true) => "external",
                (false, false) => "none",
            },
            parent: s.parent.clone(),
            children: tree.children(Some(name)),
            descendants: tree.descendants(name).len(),
            metadata: s.domain.is_some(),
            creation_time: s.creation_time,
            description: s.description.clone(),
            memory,
            disks: s
                .disks
                .iter()
                .map(|d| (d.name.clone(), d.snapshot.clone().unwrap_or_else(|| "no".to_string())))
                .collect(),
        })
    }
}
