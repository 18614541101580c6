//! The typed records and parameters that cross the ABI as [`Params`] lists.
//!
//! A driver emits these through the kit and the host reads them through its driver client;
//! both sides go through the types here, so neither spells a key (the keys are the `LV_KEY_*`
//! constants of the header, for C authors). Reading is lenient where the ABI says a field is
//! optional, and a missing required field reads as its zero value: a driver of an older minor
//! may not send a field added later.

use crate::abi::{
    LV_KEY_ALLOCATION, LV_KEY_BACKING, LV_KEY_BACKING_FORMAT, LV_KEY_BANDWIDTH, LV_KEY_BASE, LV_KEY_CAPACITY,
    LV_KEY_CLUSTER_SIZE, LV_KEY_CURRENT, LV_KEY_DEST, LV_KEY_END, LV_KEY_FORMAT, LV_KEY_ID, LV_KEY_NAME,
    LV_KEY_PERSISTENT, LV_KEY_PHYSICAL, LV_KEY_READY, LV_KEY_REASON, LV_KEY_STATE, LV_KEY_STATUS, LV_KEY_TOP,
    LV_KEY_TYPE, LV_KEY_UUID, LV_STATE_BLOCKED, LV_STATE_CRASHED, LV_STATE_NOSTATE, LV_STATE_PAUSED,
    LV_STATE_PMSUSPENDED, LV_STATE_RUNNING, LV_STATE_SHUTDOWN, LV_STATE_SHUTOFF,
};
use crate::{Params, Value};

mod migration;
pub use migration::{
    MigrateAction, MigrateArrived, MigrateDisk, MigrateEndpoints, MigrateListen, MigrateParams, MigrateSent,
};

/// A record or parameter list with a fixed shape.
pub trait Record: Sized {
    /// The list that crosses the ABI.
    fn to_params(&self) -> Params;
    /// Reads it back.
    fn from_params(p: &Params) -> Self;
}

/// A domain's run state, as libvirt names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainState {
    /// No state.
    #[default]
    NoState,
    /// Running.
    Running,
    /// Blocked on a resource.
    Blocked,
    /// Paused.
    Paused,
    /// Shutting down.
    InShutdown,
    /// Defined, not running.
    ShutOff,
    /// Crashed.
    Crashed,
    /// Suspended by guest power management.
    PmSuspended,
}

impl DomainState {
    /// Reads an `LV_STATE_*` number; unknown numbers are `NoState`.
    pub fn from_abi(n: u64) -> DomainState {
        match n {
            LV_STATE_RUNNING => DomainState::Running,
            LV_STATE_BLOCKED => DomainState::Blocked,
            LV_STATE_PAUSED => DomainState::Paused,
            LV_STATE_SHUTDOWN => DomainState::InShutdown,
            LV_STATE_SHUTOFF => DomainState::ShutOff,
            LV_STATE_CRASHED => DomainState::Crashed,
            LV_STATE_PMSUSPENDED => DomainState::PmSuspended,
            _ => DomainState::NoState,
        }
    }

    /// Its `LV_STATE_*` number.
    pub fn to_abi(self) -> u64 {
        match self {
            DomainState::NoState => LV_STATE_NOSTATE,
            DomainState::Running => LV_STATE_RUNNING,
            DomainState::Blocked => LV_STATE_BLOCKED,
            DomainState::Paused => LV_STATE_PAUSED,
            DomainState::InShutdown => LV_STATE_SHUTDOWN,
            DomainState::ShutOff => LV_STATE_SHUTOFF,
            DomainState::Crashed => LV_STATE_CRASHED,
            DomainState::PmSuspended => LV_STATE_PMSUSPENDED,
        }
    }

    /// The words virsh prints.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::NoState => "no state",
            DomainState::Running => "running",
            DomainState::Blocked => "idle",
            DomainState::Paused => "paused",
            DomainState::InShutdown => "in shutdown",
            DomainState::ShutOff => "shut off",
            DomainState::Crashed => "crashed",
            DomainState::PmSuspended => "pmsuspended",
        }
    }

    /// Whether the domain has a running hypervisor process.
    pub fn is_active(self) -> bool {
        !matches!(self, DomainState::ShutOff | DomainState::NoState | DomainState::Crashed)
    }
}

/// One domain of `connect_list_domains`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainSummary {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub uuid: String,
    /// Its run state.
    pub state: DomainState,
    /// The hypervisor's id while it runs, else -1.
    pub id: i64,
    /// It has a persistent definition.
    pub persistent: bool,
}

impl Record for DomainSummary {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.push_str(LV_KEY_NAME, self.name.clone())
            .push_str(LV_KEY_UUID, self.uuid.clone())
            .push(LV_KEY_STATE, Value::UInt(self.state.to_abi()))
            .push(LV_KEY_ID, Value::Int(self.id))
            .push(LV_KEY_PERSISTENT, Value::Bool(self.persistent));
        p
    }

    fn from_params(p: &Params) -> Self {
        DomainSummary {
            name: p.get_str(LV_KEY_NAME).unwrap_or_default().to_string(),
            uuid: p.get_str(LV_KEY_UUID).unwrap_or_default().to_string(),
            state: DomainState::from_abi(p.get_u64(LV_KEY_STATE).unwrap_or(0)),
            id: p.get_i64(LV_KEY_ID).unwrap_or(-1),
            persistent: p.get_bool(LV_KEY_PERSISTENT).unwrap_or(true),
        }
    }
}

/// What `domain_define_xml` defined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defined {
    /// The domain's name.
    pub name: String,
    /// Its UUID.
    pub uuid: String,
}

impl Record for Defined {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.push_str(LV_KEY_NAME, self.name.clone()).push_str(LV_KEY_UUID, self.uuid.clone());
        p
    }

    fn from_params(p: &Params) -> Self {
        Defined {
            name: p.get_str(LV_KEY_NAME).unwrap_or_default().to_string(),
            uuid: p.get_str(LV_KEY_UUID).unwrap_or_default().to_string(),
        }
    }
}

/// A domain's state, from `domain_get_state`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainStatus {
    /// Its run state.
    pub state: DomainState,
    /// The hypervisor's id while it runs, else -1.
    pub id: i64,
    /// Why it is in that state, when the driver says (a change in progress, ...).
    pub reason: Option<String>,
}

impl Record for DomainStatus {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.push(LV_KEY_STATE, Value::UInt(self.state.to_abi())).push(LV_KEY_ID, Value::Int(self.id));
        if let Some(r) = &self.reason {
            p.push_str(LV_KEY_REASON, r.clone());
        }
        p
    }

    fn from_params(p: &Params) -> Self {
        DomainStatus {
            state: DomainState::from_abi(p.get_u64(LV_KEY_STATE).unwrap_or(0)),
            id: p.get_i64(LV_KEY_ID).unwrap_or(-1),
            reason: p.get_str(LV_KEY_REASON).map(str::to_string),
        }
    }
}

/// One image below a disk's image.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackingImage {
    /// Its path.
    pub path: String,
    /// Its format.
    pub format: String,
}

/// A disk's image, from `domain_get_block_info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockInfo {
    /// The image's format.
    pub format: String,
    /// Its virtual size in bytes.
    pub capacity: u64,
    /// Bytes it uses on the host, when known.
    pub allocation: Option<u64>,
    /// Its backing chain, nearest first.
    pub backing: Vec<BackingImage>,
    /// Its cluster size in bytes, for formats that have one (ABI 1.3).
    pub cluster_size: Option<u64>,
    /// The bytes its file takes as a file (its length; a block device's size), when known
    /// (ABI 1.3).
    pub physical: Option<u64>,
}

impl Record for BlockInfo {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.push_str(LV_KEY_FORMAT, self.format.clone()).push(LV_KEY_CAPACITY, Value::UInt(self.capacity));
        if let Some(a) = self.allocation {
            p.push(LV_KEY_ALLOCATION, Value::UInt(a));
        }
        if let Some(c) = self.cluster_size {
            p.push(LV_KEY_CLUSTER_SIZE, Value::UInt(c));
        }
        if let Some(n) = self.physical {
            p.push(LV_KEY_PHYSICAL, Value::UInt(n));
        }
        for b in &self.backing {
            p.push_str(LV_KEY_BACKING, b.path.clone()).push_str(LV_KEY_BACKING_FORMAT, b.format.clone());
        }
        p
    }

    fn from_params(p: &Params) -> Self {
        let formats = p.get_strs(LV_KEY_BACKING_FORMAT);
        BlockInfo {
            format: p.get_str(LV_KEY_FORMAT).unwrap_or_default().to_string(),
            capacity: p.get_u64(LV_KEY_CAPACITY).unwrap_or(0),
            allocation: p.get_u64(LV_KEY_ALLOCATION),
            cluster_size: p.get_u64(LV_KEY_CLUSTER_SIZE),
            physical: p.get_u64(LV_KEY_PHYSICAL),
            backing: p
                .get_strs(LV_KEY_BACKING)
                .into_iter()
                .enumerate()
                .map(|(k, path)| BackingImage {
                    path: path.to_string(),
                    format: formats.get(k).copied().unwrap_or_default().to_string(),
                })
                .collect(),
        }
    }
}

/// The record that ends `domain_snapshot_list`: the current snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotCurrent {
    /// Its name, if there is one.
    pub current: Option<String>,
}

impl Record for SnapshotCurrent {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        if let Some(c) = &self.current {
            p.push_str(LV_KEY_CURRENT, c.clone());
        }
        p
    }

    fn from_params(p: &Params) -> Self {
        SnapshotCurrent { current: p.get_str(LV_KEY_CURRENT).map(str::to_string) }
    }
}

/// A disk's block job, from `domain_block_job_info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockJob {
    /// `copy`, `pull`, `commit` or `active-commit`.
    pub kind: String,
    /// Units done.
    pub current: u64,
    /// Units in all.
    pub end: u64,
    /// A copy or active commit mirrors every write and can pivot.
    pub ready: bool,
    /// The hypervisor's word for its status.
    pub status: String,
}

impl Record for BlockJob {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.push_str(LV_KEY_TYPE, self.kind.clone())
            .push(LV_KEY_CURRENT, Value::UInt(self.current))
            .push(LV_KEY_END, Value::UInt(self.end))
            .push(LV_KEY_READY, Value::Bool(self.ready))
            .push_str(LV_KEY_STATUS, self.status.clone());
        p
    }

    fn from_params(p: &Params) -> Self {
        BlockJob {
            kind: p.get_str(LV_KEY_TYPE).unwrap_or_default().to_string(),
            current: p.get_u64(LV_KEY_CURRENT).unwrap_or(0),
            end: p.get_u64(LV_KEY_END).unwrap_or(0),
            ready: p.get_bool(LV_KEY_READY).unwrap_or(false),
            status: p.get_str(LV_KEY_STATUS).unwrap_or_default().to_string(),
        }
    }
}

/// `domain_block_copy`'s parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyParams {
    /// The destination image.
    pub dest: String,
    /// Its format (default: the disk's).
    pub format: Option<String>,
    /// A speed limit in bytes per second.
    pub bandwidth: Option<u64>,
}

impl Record for CopyParams {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.push_str(LV_KEY_DEST, self.dest.clone());
        if let Some(f) = &self.format {
            p.push_str(LV_KEY_FORMAT, f.clone());
        }
        push_bandwidth(&mut p, self.bandwidth);
        p
    }

    fn from_params(p: &Params) -> Self {
        CopyParams {
            dest: p.get_str(LV_KEY_DEST).unwrap_or_default().to_string(),
            format: p.get_str(LV_KEY_FORMAT).map(str::to_string),
            bandwidth: p.get_u64(LV_KEY_BANDWIDTH),
        }
    }
}

/// `domain_block_pull`'s parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullParams {
    /// Keep this image and those below it (default: pull everything).
    pub base: Option<String>,
    /// A speed limit in bytes per second.
    pub bandwidth: Option<u64>,
}

impl Record for PullParams {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        if let Some(b) = &self.base {
            p.push_str(LV_KEY_BASE, b.clone());
        }
        push_bandwidth(&mut p, self.bandwidth);
        p
    }

    fn from_params(p: &Params) -> Self {
        PullParams { base: p.get_str(LV_KEY_BASE).map(str::to_string), bandwidth: p.get_u64(LV_KEY_BANDWIDTH) }
    }
}

/// `domain_block_commit`'s parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitParams {
    /// The image to commit into (default: the one right below `top`).
    pub base: Option<String>,
    /// The highest image to commit (default: the disk's active image).
    pub top: Option<String>,
    /// A speed limit in bytes per second.
    pub bandwidth: Option<u64>,
}

impl Record for CommitParams {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        if let Some(b) = &self.base {
            p.push_str(LV_KEY_BASE, b.clone());
        }
        if let Some(t) = &self.top {
            p.push_str(LV_KEY_TOP, t.clone());
        }
        push_bandwidth(&mut p, self.bandwidth);
        p
    }

    fn from_params(p: &Params) -> Self {
        CommitParams {
            base: p.get_str(LV_KEY_BASE).map(str::to_string),
            top: p.get_str(LV_KEY_TOP).map(str::to_string),
            bandwidth: p.get_u64(LV_KEY_BANDWIDTH),
        }
    }
}

fn push_bandwidth(p: &mut Params, bandwidth: Option<u64>) {
    if let Some(b) = bandwidth {
        p.push(LV_KEY_BANDWIDTH, Value::UInt(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<R: Record + PartialEq + std::fmt::Debug>(r: R) {
        assert_eq!(R::from_params(&r.to_params()), r);
    }

    #[test]
    fn every_record_reads_back_what_was_written() {
        round_trip(DomainSummary {
            name: "a".into(),
            uuid: "u".into(),
            state: DomainState::Running,
            id: 42,
            persistent: true,
        });
        round_trip(Defined { name: "a".into(), uuid: "u".into() });
        round_trip(DomainStatus { state: DomainState::ShutOff, id: -1, reason: Some("why".into()) });
        round_trip(DomainStatus { state: DomainState::Paused, id: -1, reason: None });
        round_trip(BlockInfo {
            format: "qcow2".into(),
            capacity: 1 << 30,
            allocation: Some(4096),
            backing: vec![
                BackingImage { path: "/i/b".into(), format: "qcow2".into() },
                BackingImage { path: "/i/c".into(), format: "raw".into() },
            ],
            cluster_size: Some(65536),
            physical: Some(200_704),
        });
        round_trip(SnapshotCurrent { current: Some("s1".into()) });
        round_trip(SnapshotCurrent { current: None });
        round_trip(BlockJob { kind: "copy".into(), current: 1, end: 2, ready: true, status: "ready".into() });
        round_trip(CopyParams { dest: "/d".into(), format: Some("raw".into()), bandwidth: Some(1 << 20) });
        round_trip(PullParams { base: Some("/b".into()), bandwidth: None });
        round_trip(CommitParams { base: None, top: Some("/t".into()), bandwidth: Some(5) });
    }
}
