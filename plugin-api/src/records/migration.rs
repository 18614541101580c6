//! The parameters and records of a migration's five calls (see `LvDriverVtable`'s ABI 1.3
//! functions): one parameter list for all of them, with a group of keys per disk.

use super::Record;
use crate::abi::{
    LV_KEY_ACTION, LV_KEY_ALLOCATION, LV_KEY_BANDWIDTH, LV_KEY_CAPACITY, LV_KEY_CLUSTER_SIZE, LV_KEY_COMMIT_MARKER,
    LV_KEY_DISK, LV_KEY_DISK_URI, LV_KEY_FORMAT, LV_KEY_LISTEN_ADDRESS, LV_KEY_MEMORY, LV_KEY_MEMORY_URI,
    LV_KEY_MIGRATION, LV_KEY_PATH, LV_KEY_PORT_MAX, LV_KEY_PORT_MIN, LV_KEY_SOURCE, LV_KEY_TIMEOUT,
};
use crate::{Params, Value};

/// What a migration does with one disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrateAction {
    /// The destination sees the same storage; nothing moves.
    #[default]
    Shared,
    /// Its content moves to a new image at the destination.
    Copy,
    /// The destination gets a new empty image of the same format and size.
    Blank,
}

impl MigrateAction {
    /// Its word in parameters and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrateAction::Shared => "shared",
            MigrateAction::Copy => "copy",
            MigrateAction::Blank => "blank",
        }
    }

    /// Reads the word back; unknown words read as `Shared` (nothing moves).
    pub fn parse(word: &str) -> MigrateAction {
        match word {
            "copy" => MigrateAction::Copy,
            "blank" => MigrateAction::Blank,
            _ => MigrateAction::Shared,
        }
    }
}

/// One disk of a migration.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MigrateDisk {
    /// Its target (`vda`).
    pub target: String,
    /// What happens to it.
    pub action: MigrateAction,
    /// Its image at the destination (copy and blank).
    pub path: Option<String>,
    /// Its image's format.
    pub format: String,
    /// Its virtual size in bytes.
    pub capacity: u64,
    /// Its cluster size in bytes, for formats that have one.
    pub cluster_size: Option<u64>,
    /// Its image at the source.
    pub source: Option<String>,
}

impl MigrateDisk {
    /// The image at the destination of a copied or blank disk; an error naming the domain
    /// when the plan gives no absolute path.
    pub fn dest_path(&self, domain: &str) -> Result<&str, crate::DriverError> {
        self.path.as_deref().filter(|p| p.starts_with('/')).ok_or_else(|| {
            crate::DriverError::new(
                crate::ErrorCode::InvalidArg,
                format!(
                    "Migration of domain '{domain}': disk {} is to be {} but has no absolute image path at the destination",
                    self.target,
                    self.action.as_str()
                ),
            )
        })
    }
}

/// The parameters of every call of one migration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrateParams {
    /// The migration's id, the same in every call.
    pub id: String,
    /// Each disk of the domain.
    pub disks: Vec<MigrateDisk>,
    /// A speed limit in bytes per second.
    pub bandwidth: Option<u64>,
    /// Seconds the memory may take to move before the domain is paused so that it finishes.
    pub timeout: Option<u64>,
    /// What prepare answered (perform on).
    pub endpoints: MigrateEndpoints,
    /// Prepare: listen on TCP here, for a source on another machine (else on Unix sockets).
    pub listen: Option<MigrateListen>,
}

/// Where a migration's destination listens on TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateListen {
    /// The host name or address to listen on.
    pub address: String,
    /// The lowest port it may take.
    pub port_min: u16,
    /// The highest port it may take.
    pub port_max: u16,
}

impl MigrateParams {
    /// The disks whose content moves.
    pub fn copied(&self) -> impl Iterator<Item = &MigrateDisk> {
        self.disks.iter().filter(|d| d.action == MigrateAction::Copy)
    }
}

impl Record for MigrateParams {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.push_str(LV_KEY_MIGRATION, self.id.clone());
        if let Some(b) = self.bandwidth {
            p.push(LV_KEY_BANDWIDTH, Value::UInt(b));
        }
        if let Some(t) = self.timeout {
            p.push(LV_KEY_TIMEOUT, Value::UInt(t));
        }
        p.extend(&self.endpoints.to_params());
        if let Some(l) = &self.listen {
            p.push_str(LV_KEY_LISTEN_ADDRESS, l.address.clone())
                .push(LV_KEY_PORT_MIN, Value::UInt(l.port_min.into()))
                .push(LV_KEY_PORT_MAX, Value::UInt(l.port_max.into()));
        }
        for d in &self.disks {
            p.push_str(LV_KEY_DISK, d.target.clone())
                .push_str(LV_KEY_ACTION, d.action.as_str())
                .push_str(LV_KEY_FORMAT, d.format.clone())
                .push(LV_KEY_CAPACITY, Value::UInt(d.capacity));
            if let Some(path) = &d.path {
                p.push_str(LV_KEY_PATH, path.clone());
            }
            if let Some(c) = d.cluster_size {
                p.push(LV_KEY_CLUSTER_SIZE, Value::UInt(c));
            }
            if let Some(s) = &d.source {
                p.push_str(LV_KEY_SOURCE, s.clone());
            }
        }
        p
    }

    fn from_params(p: &Params) -> Self {
        let (head, groups) = p.groups(LV_KEY_DISK);
        let text = |g: &Params, k: &str| g.get_str(k).map(str::to_string);
        MigrateParams {
            id: head.get_str(LV_KEY_MIGRATION).unwrap_or_default().to_string(),
            bandwidth: head.get_u64(LV_KEY_BANDWIDTH),
            timeout: head.get_u64(LV_KEY_TIMEOUT),
            endpoints: MigrateEndpoints::from_params(&head),
            listen: head.get_str(LV_KEY_LISTEN_ADDRESS).map(|address| MigrateListen {
                address: address.to_string(),
                port_min: head.get_u64(LV_KEY_PORT_MIN).and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                port_max: head.get_u64(LV_KEY_PORT_MAX).and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            }),
            disks: groups
                .iter()
                .map(|g| MigrateDisk {
                    target: text(g, LV_KEY_DISK).unwrap_or_default(),
                    action: MigrateAction::parse(g.get_str(LV_KEY_ACTION).unwrap_or("")),
                    path: text(g, LV_KEY_PATH),
                    format: text(g, LV_KEY_FORMAT).unwrap_or_default(),
                    capacity: g.get_u64(LV_KEY_CAPACITY).unwrap_or(0),
                    cluster_size: g.get_u64(LV_KEY_CLUSTER_SIZE),
                    source: text(g, LV_KEY_SOURCE),
                })
                .collect(),
        }
    }
}

/// What `domain_migrate_prepare` emits: where perform sends things, and how the source sees
/// that the destination committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrateEndpoints {
    /// Where the memory goes (live).
    pub memory_uri: Option<String>,
    /// Where the copied disks' data goes (live, with disks to copy).
    pub disk_uri: Option<String>,
    /// A file that exists once the destination committed, where the source can see it.
    pub commit_marker: Option<String>,
}

impl Record for MigrateEndpoints {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        for (k, v) in [
            (LV_KEY_MEMORY_URI, &self.memory_uri),
            (LV_KEY_DISK_URI, &self.disk_uri),
            (LV_KEY_COMMIT_MARKER, &self.commit_marker),
        ] {
            if let Some(v) = v {
                p.push_str(k, v.clone());
            }
        }
        p
    }

    fn from_params(p: &Params) -> Self {
        MigrateEndpoints {
            memory_uri: p.get_str(LV_KEY_MEMORY_URI).map(str::to_string),
            disk_uri: p.get_str(LV_KEY_DISK_URI).map(str::to_string),
            commit_marker: p.get_str(LV_KEY_COMMIT_MARKER).map(str::to_string),
        }
    }
}

/// What `domain_migrate_perform` emits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrateSent {
    /// Bytes of memory sent.
    pub memory: u64,
}

impl Record for MigrateSent {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.push(LV_KEY_MEMORY, Value::UInt(self.memory));
        p
    }

    fn from_params(p: &Params) -> Self {
        MigrateSent { memory: p.get_u64(LV_KEY_MEMORY).unwrap_or(0) }
    }
}

/// What `domain_migrate_finish` emits: the bytes each copied disk's image uses at the
/// destination (its data, which is what moved).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrateArrived {
    /// Target and bytes, for each copied disk.
    pub disks: Vec<(String, u64)>,
}

impl MigrateArrived {
    /// The bytes each copied disk's image uses at the destination, read from the files.
    pub fn measure(params: &MigrateParams) -> MigrateArrived {
        use std::os::unix::fs::MetadataExt;
        MigrateArrived {
            disks: params
                .copied()
                .filter_map(|d| {
                    let path = d.path.as_deref()?;
                    Some((d.target.clone(), std::fs::metadata(path).map(|m| m.blocks() * 512).unwrap_or(0)))
                })
                .collect(),
        }
    }
}

impl Record for MigrateArrived {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        for (target, bytes) in &self.disks {
            p.push_str(LV_KEY_DISK, target.clone()).push(LV_KEY_ALLOCATION, Value::UInt(*bytes));
        }
        p
    }

    fn from_params(p: &Params) -> Self {
        let (_, groups) = p.groups(LV_KEY_DISK);
        MigrateArrived {
            disks: groups
                .iter()
                .map(|g| {
                    (g.get_str(LV_KEY_DISK).unwrap_or_default().to_string(), g.get_u64(LV_KEY_ALLOCATION).unwrap_or(0))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_parameters_keep_each_disk_in_its_group() {
        let p = MigrateParams {
            id: "m1".into(),
            bandwidth: Some(1 << 20),
            timeout: None,
            endpoints: MigrateEndpoints {
                memory_uri: Some("unix:/r/mem.sock".into()),
                disk_uri: None,
                commit_marker: Some("/s/m1".into()),
            },
            listen: Some(MigrateListen { address: "::1".into(), port_min: 49152, port_max: 49215 }),
            disks: vec![
                MigrateDisk {
                    target: "vda".into(),
                    action: MigrateAction::Copy,
                    path: Some("/d/a.qcow2".into()),
                    format: "qcow2".into(),
                    capacity: 1 << 30,
                    cluster_size: Some(65536),
                    source: Some("/s/a.qcow2".into()),
                },
                MigrateDisk { target: "vdb".into(), format: "raw".into(), capacity: 4096, ..MigrateDisk::default() },
            ],
        };
        let list = p.to_params();
        assert_eq!(list.get_strs(LV_KEY_DISK), ["vda", "vdb"], "the disks repeat their key, in order");
        assert_eq!(MigrateParams::from_params(&list), p);
        let arrived = MigrateArrived { disks: vec![("vda".into(), 8 << 20), ("vdc".into(), 0)] };
        assert_eq!(MigrateArrived::from_params(&arrived.to_params()), arrived);
    }
}
