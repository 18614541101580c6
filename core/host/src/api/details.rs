//! `dominfo`: what a domain is, from its definition and the driver's view of it.

use super::Connection;
use super::domain::DomainState;
use crate::error::Result;
use luavirt_plugin_api::xml::Element;
use serde::Serialize;

/// A domain's facts, as `dominfo` shows them.
#[derive(Clone, Debug, Serialize)]
pub struct DomainDetails {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// The hypervisor's id while it runs.
    pub id: Option<i64>,
    /// Its state.
    pub state: DomainState,
    /// The OS type (`hvm`, `xen`, `linux`, ...), when the definition says.
    pub os_type: Option<String>,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// `<memory>` in KiB.
    pub max_memory_kib: Option<u64>,
    /// `<currentMemory>` in KiB (else `<memory>`).
    pub used_memory_kib: Option<u64>,
    /// It has a persistent definition.
    pub persistent: bool,
    /// The driver serving it.
    pub driver: String,
    /// Its disks' targets.
    pub disks: Vec<String>,
    /// How many snapshots it has (`None`: the driver keeps none).
    pub snapshots: Option<usize>,
    /// Its current snapshot.
    pub current_snapshot: Option<String>,
    /// Its disk sets with members.
    pub disk_sets: Vec<String>,
}

/// A libvirt memory element's value in KiB (its `unit`, KiB when none).
fn kib(e: &Element) -> Option<u64> {
    let value: u64 = e.text().trim().parse().ok()?;
    let bytes: u64 = match e.attr("unit").as_deref().unwrap_or("KiB") {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    Some(value.saturating_mul(bytes) / 1024)
}

impl Connection {
    /// The facts of domain `name`.
    pub fn domain_details(&self, name: &str) -> Result<DomainDetails> {
        let dom = self.read_domain(name)?;
        let (state, id) = self.domain_state(name)?;
        let listed = self.list_domains()?.into_iter().find(|d| d.name == name);
        let root = &dom.document().root;
        let max = root.child("memory").and_then(kib);
        let (snapshots, current) = if self.driver().has_function("domain_snapshot_list") {
            let tree = self.snapshots(name)?;
            (Some(tree.all().len()), tree.current.clone())
        } else {
            (None, None)
        };
        Ok(DomainDetails {
            name: name.to_string(),
            uuid: dom.uuid().unwrap_or_default(),
            id,
            state,
            os_type: root.child("os").and_then(|o| o.child("type")).map(|t| t.text().trim().to_string()),
            vcpus: root.child("vcpu").and_then(|v| v.text().trim().parse().ok()).unwrap_or(1),
            max_memory_kib: max,
            used_memory_kib: root.child("currentMemory").and_then(kib).or(max),
            persistent: listed.is_none_or(|d| d.persistent),
            driver: self.driver().name.clone(),
            disks: dom.disks().into_iter().map(|d| d.target).collect(),
            snapshots,
            current_snapshot: current,
            disk_sets: dom.disk_sets().names().map(str::to_string).collect(),
        })
    }
}
