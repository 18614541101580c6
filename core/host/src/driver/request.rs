//! A driver call as data: one [`Call`] per function of the typed client, and what a call
//! emitted ([`WireOutput`]). The typed client builds a `Call` for every method and reads the
//! output back the same way whether the driver is loaded here or serves behind
//! `luavirt serve` on another host (see [`crate::remote`]); the local side and the server
//! both run it with [`super::local::LocalConn::run`]. Everything here is serde, so a call
//! crosses the remote protocol as it is.

use super::CallOutput;
use luavirt_plugin_api::{Params, Value};
use serde::{Deserialize, Serialize};

/// One call of the typed client: its function, its arguments, and its flags as the ABI
/// takes them (the client computed the bits).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "call")]
pub enum Call {
    /// `connect_list_domains`.
    ListDomains,
    /// `domain_define_xml`.
    DefineXml {
        /// The domain XML.
        xml: String,
    },
    /// `domain_undefine`.
    Undefine {
        /// Domain.
        name: String,
    },
    /// `domain_get_xml`.
    DomainXml {
        /// Domain.
        name: String,
        /// Flag bits.
        flags: u32,
    },
    /// `domain_get_state`.
    DomainState {
        /// Domain.
        name: String,
    },
    /// `domain_create`.
    Start {
        /// Domain.
        name: String,
    },
    /// `domain_destroy`.
    Destroy {
        /// Domain.
        name: String,
    },
    /// `domain_get_block_info`.
    BlockInfo {
        /// Domain.
        name: String,
        /// Disk target.
        disk: String,
    },
    /// `domain_snapshot_create`.
    SnapshotCreate {
        /// Domain.
        name: String,
        /// The resolved `<domainsnapshot>`.
        xml: String,
        /// Flag bits.
        flags: u32,
    },
    /// `domain_snapshot_list`.
    SnapshotList {
        /// Domain.
        name: String,
    },
    /// `domain_snapshot_revert`.
    SnapshotRevert {
        /// Domain.
        name: String,
        /// Snapshot.
        snapshot: String,
        /// Flag bits.
        flags: u32,
    },
    /// `domain_snapshot_delete`.
    SnapshotDelete {
        /// Domain.
        name: String,
        /// Snapshot.
        snapshot: String,
        /// Flag bits.
        flags: u32,
    },
    /// `domain_block_copy`, `domain_block_pull`, `domain_block_commit` and the five
    /// migration phases: a function taking a domain, a disk (or XML) and typed parameters.
    WithParams {
        /// Which function.
        function: ParamsFunction,
        /// Domain.
        name: String,
        /// Disk target, or the domain XML for `migrate_prepare`, or empty.
        arg: String,
        /// Typed parameters.
        params: WireParams,
        /// Flag bits.
        flags: u32,
    },
    /// `domain_block_job_info`.
    BlockJobInfo {
        /// Domain.
        name: String,
        /// Disk target.
        disk: String,
    },
    /// `domain_block_job_abort`.
    BlockJobAbort {
        /// Domain.
        name: String,
        /// Disk target.
        disk: String,
        /// Flag bits.
        flags: u32,
    },
    /// `domain_block_job_wait`.
    BlockJobWait {
        /// Domain.
        name: String,
        /// Disk target.
        disk: String,
        /// Flag bits.
        flags: u32,
    },
    /// `domain_abort_job`.
    AbortJob {
        /// Domain.
        name: String,
    },
    /// `domain_reconcile`.
    Reconcile {
        /// Domain.
        name: String,
    },
    /// `domain_shutdown`.
    Shutdown {
        /// Domain.
        name: String,
    },
    /// `domain_reset`.
    Reset {
        /// Domain.
        name: String,
    },
    /// `domain_suspend`.
    Suspend {
        /// Domain.
        name: String,
    },
    /// `domain_resume`.
    Resume {
        /// Domain.
        name: String,
    },
    /// `domain_attach_disk`.
    AttachDisk {
        /// Domain.
        name: String,
        /// The `<disk>` element.
        xml: String,
        /// Flag bits (live, config).
        flags: u32,
    },
    /// `domain_detach_disk`.
    DetachDisk {
        /// Domain.
        name: String,
        /// Disk target.
        disk: String,
        /// Flag bits (live, config).
        flags: u32,
    },
    /// `domain_snapshot_redefine`.
    SnapshotRedefine {
        /// Domain.
        name: String,
        /// The snapshot's new `<domainsnapshot>`.
        xml: String,
    },
}

/// The functions that take a domain, a string and typed parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamsFunction {
    /// `domain_block_copy`.
    BlockCopy,
    /// `domain_block_pull`.
    BlockPull,
    /// `domain_block_commit`.
    BlockCommit,
    /// `domain_migrate_begin`.
    MigrateBegin,
    /// `domain_migrate_prepare`.
    MigratePrepare,
    /// `domain_migrate_perform`.
    MigratePerform,
    /// `domain_migrate_finish`.
    MigrateFinish,
    /// `domain_migrate_confirm`.
    MigrateConfirm,
}

impl Call {
    /// The domain the call is about, if any.
    pub fn domain(&self) -> Option<&str> {
        match self {
            Call::ListDomains | Call::DefineXml { .. } => None,
            Call::Undefine { name }
            | Call::DomainXml { name, .. }
            | Call::DomainState { name }
            | Call::Start { name }
            | Call::Destroy { name }
            | Call::BlockInfo { name, .. }
            | Call::SnapshotCreate { name, .. }
            | Call::SnapshotList { name }
            | Call::SnapshotRevert { name, .. }
            | Call::SnapshotDelete { name, .. }
            | Call::WithParams { name, .. }
            | Call::BlockJobInfo { name, .. }
            | Call::BlockJobAbort { name, .. }
            | Call::BlockJobWait { name, .. }
            | Call::AbortJob { name }
            | Call::Reconcile { name }
            | Call::Shutdown { name }
            | Call::Reset { name }
            | Call::Suspend { name }
            | Call::Resume { name }
            | Call::AttachDisk { name, .. }
            | Call::DetachDisk { name, .. }
            | Call::SnapshotRedefine { name, .. } => Some(name),
        }
    }
}

/// A typed value as it crosses the wire: a double travels as its bits, so every value
/// (NaN included) comes back exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireValue {
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    Uint(u64),
    /// A double's bits (`f64::to_bits`).
    Double(u64),
    /// Boolean.
    Bool(bool),
    /// String.
    String(String),
}

/// A typed parameter list as it crosses the wire: ordered, keys may repeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireParams(pub Vec<(String, WireValue)>);

impl From<&Params> for WireParams {
    fn from(p: &Params) -> WireParams {
        WireParams(
            p.entries()
                .iter()
                .map(|(k, v)| {
                    let w = match v {
                        Value::Int(n) => WireValue::Int(*n),
                        Value::UInt(n) => WireValue::Uint(*n),
                        Value::Double(d) => WireValue::Double(d.to_bits()),
                        Value::Bool(b) => WireValue::Bool(*b),
                        Value::String(s) => WireValue::String(s.clone()),
                    };
                    (k.clone(), w)
                })
                .collect(),
        )
    }
}

impl From<&WireParams> for Params {
    fn from(w: &WireParams) -> Params {
        let mut p = Params::new();
        for (k, v) in &w.0 {
            let value = match v {
                WireValue::Int(n) => Value::Int(*n),
                WireValue::Uint(n) => Value::UInt(*n),
                WireValue::Double(bits) => Value::Double(f64::from_bits(*bits)),
                WireValue::Bool(b) => Value::Bool(*b),
                WireValue::String(s) => Value::String(s.clone()),
            };
            p.push(k.clone(), value);
        }
        p
    }
}

/// What a call emitted, as it crosses the wire.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WireOutput {
    /// Text results, in order.
    pub texts: Vec<String>,
    /// Records, in order.
    pub records: Vec<WireParams>,
}

impl From<&CallOutput> for WireOutput {
    fn from(o: &CallOutput) -> WireOutput {
        WireOutput { texts: o.texts.clone(), records: o.records.iter().map(WireParams::from).collect() }
    }
}

impl From<WireOutput> for CallOutput {
    fn from(w: WireOutput) -> CallOutput {
        CallOutput { texts: w.texts, records: w.records.iter().map(Params::from).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_calls_cross_the_wire_unchanged() {
        let mut p = Params::new();
        p.push_str("disk", "vda")
            .push("bandwidth", Value::UInt(u64::MAX))
            .push_str("disk", "vdb")
            .push("offset", Value::Int(-3))
            .push("ratio", Value::Double(f64::NAN))
            .push("live", Value::Bool(true));
        let call = Call::WithParams {
            function: ParamsFunction::MigratePrepare,
            name: "d".into(),
            arg: "<domain/>".into(),
            params: WireParams::from(&p),
            flags: 5,
        };
        let text = serde_json::to_string(&call).unwrap();
        let Call::WithParams { params, .. } = serde_json::from_str::<Call>(&text).unwrap() else { panic!("{text}") };
        let back = Params::from(&params);
        assert_eq!(back.get_strs("disk"), ["vda", "vdb"]);
        assert_eq!(back.get_u64("bandwidth"), Some(u64::MAX));
        assert_eq!(back.get_i64("offset"), Some(-3));
        assert!(matches!(back.get("ratio"), Some(Value::Double(d)) if d.is_nan()));
        assert_eq!(back.entries()[5], p.entries()[5]);
    }
}
