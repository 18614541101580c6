//! Snapshots as `<domainsnapshot>` XML, in `.vmsd` order: the `displayName` as name, the
//! description, the creation time, the parent's name, and every disk of the VM, the ones the
//! snapshot took with `snapshot='external'` and the delta made on the image it recorded (as
//! libvirt shows an external snapshot's overlay), the others with `snapshot='no'`.
//!
//! The state is `shutoff` and there is no memory, unless VMware saved memory with the
//! snapshot (a `.vmem` beside its `.vmsn`): then it is `running` with that file.

use super::{Loaded, chain};
use crate::VmxDriver;
use crate::datastore::Datastores;
use crate::devices::Medium;
use crate::vmsd::Snapshot;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::records::SnapshotCurrent;
use luavirt_plugin_api::snapshot::{SnapshotDisk, SnapshotMemory, SnapshotXml};
use std::path::{Path, PathBuf};

/// The chains that show which delta was made on each recorded image: the `.vmx`'s disks
/// first, then each snapshot's images, each by disk node.
pub struct Deltas {
    chains: Vec<(String, Vec<PathBuf>)>,
}

impl Deltas {
    /// Reads the chains of `l`, as far as they can be read.
    pub fn gather(l: &Loaded, ds: &Datastores) -> Deltas {
        let mut chains = Vec::new();
        for d in &l.devices {
            if let Medium::Disk(f) = &d.medium
                && let Ok(top) = ds.resolve(l.vm.dir(), f)
            {
                chains.push((d.id(), chain::paths(ds, &top)));
            }
        }
        for s in l.vmsd.snapshots() {
            for d in &s.disks {
                if let Ok(top) = ds.resolve(l.vm.dir(), &d.file) {
                    chains.push((d.node.trim().to_ascii_lowercase(), chain::paths(ds, &top)));
                }
            }
        }
        Deltas { chains }
    }

    /// The delta built on `image` for disk `node`.
    pub fn on(&self, node: &str, image: &Path) -> Option<&PathBuf> {
        self.chains.iter().filter(|(n, _)| n == node).find_map(|(_, chain)| {
            let i = chain.iter().position(|p| p == image)?;
            i.checked_sub(1).map(|above| &chain[above])
        })
    }
}

/// The `.vmem` VMware saved with snapshot `s`, if there is one.
pub fn memory_file(l: &Loaded, s: &Snapshot) -> Option<PathBuf> {
    let vmem = l.vm.dir().join(s.vmsn.as_deref()?).with_extension("vmem");
    vmem.is_file().then_some(vmem)
}

/// Snapshot `s` of `l` as XML.
pub fn xml(l: &Loaded, ds: &Datastores, deltas: &Deltas, s: &Snapshot) -> SnapshotXml {
    let memory = memory_file(l, s);
    let mut disks = Vec::new();
    for d in &l.devices {
        let node = d.id();
        let taken = s.disks.iter().find(|x| x.node.trim().eq_ignore_ascii_case(&node));
        disks.push(match taken {
            Some(t) => external(d.target.clone(), &node, &t.file, l, ds, deltas),
            None => SnapshotDisk { name: d.target.clone(), snapshot: Some("no".into()), ..SnapshotDisk::default() },
        });
    }
    // Disks the VM no longer has are named by the image the snapshot recorded.
    for t in s.disks.iter().filter(|t| super::device_at(&l.devices, &t.node).is_none()) {
        let node = t.node.trim().to_ascii_lowercase();
        disks.push(external(ds.display(l.vm.dir(), &t.file), &node, &t.file, l, ds, deltas));
    }
    SnapshotXml {
        name: Some(s.name.clone()),
        description: Some(s.description.clone()).filter(|d| !d.is_empty()),
        memory: Some(SnapshotMemory {
            snapshot: if memory.is_some() { "external" } else { "no" }.into(),
            file: memory.as_ref().map(|m| ds.display_path(m)),
        }),
        disks,
        creation_time: s.created.map(|us| us.div_euclid(1_000_000)),
        state: Some(if memory.is_some() { "running" } else { "shutoff" }.into()),
        parent: s.parent.and_then(|p| l.vmsd.by_uid(p)).map(|p| p.name.clone()),
        domain: None,
    }
}

/// A disk the snapshot took: `external`, with the delta made on its recorded image.
fn external(name: String, node: &str, file: &str, l: &Loaded, ds: &Datastores, deltas: &Deltas) -> SnapshotDisk {
    let delta = ds.resolve(l.vm.dir(), file).ok().and_then(|image| deltas.on(node, &image).cloned());
    SnapshotDisk {
        name,
        snapshot: Some("external".into()),
        source_type: delta.as_ref().map(|_| "file".to_string()),
        source_file: delta.as_ref().map(|p| ds.display_path(p)),
        driver_type: delta.as_ref().map(|_| "vmdk".to_string()),
        mirror_file: None,
    }
}

impl VmxDriver {
    /// `domain_snapshot_list`: each snapshot's XML, then the current one.
    pub(crate) fn snapshot_list_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        let l = self.read_snapshots(name)?;
        let deltas = Deltas::gather(&l, &self.stores);
        for s in l.vmsd.snapshots() {
            call.emit_text(&xml(&l, &self.stores, &deltas, s).to_xml());
        }
        call.emit(&SnapshotCurrent { current: l.vmsd.current().map(|c| c.name.clone()) });
        Ok(())
    }
}
