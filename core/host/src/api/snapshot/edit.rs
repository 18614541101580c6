//! Snapshots named by their XML and edited: `snapshot-create DOM FILE.xml` (virsh's form: a
//! new snapshot's `<domainsnapshot>`, read into the same request `snapshot-create-as` makes),
//! `snapshot-edit` (only the description of a stored record may change, as libvirt allows
//! without `--rename`/`--clone`) and `snapshot-parent`.

use super::{DiskSpec, MemSpec, SnapshotRequest};
use crate::api::Connection;
use crate::error::{Error, Result};
use luavirt_plugin_api::snapshot::SnapshotXml;

impl SnapshotRequest {
    /// The request a new snapshot's `<domainsnapshot>` document makes (`source` names it in
    /// errors). A stored snapshot's record (with its time, state, parent or domain) is
    /// refused: it describes a snapshot taken, not one to take.
    pub fn from_xml(text: &str, source: &str) -> Result<SnapshotRequest> {
        let snap = SnapshotXml::parse(text).map_err(|e| e.with_source(source))?;
        let stored = [
            ("creationTime", snap.creation_time.is_some()),
            ("state", snap.state.is_some()),
            ("parent", snap.parent.is_some()),
            ("domain", snap.domain.is_some()),
        ];
        if let Some((el, _)) = stored.iter().find(|(_, present)| *present) {
            return Err(Error::InvalidArg(format!(
                "{source}: <{el}> belongs to the record of a snapshot already taken (`snapshot-dumpxml` output); a new snapshot's XML has <name>, <description>, <memory> and <disks> only"
            )));
        }
        Ok(SnapshotRequest {
            name: snap.name,
            description: snap.description,
            memory: snap.memory.map(|m| MemSpec { snapshot: Some(m.snapshot), file: m.file }),
            disks: snap
                .disks
                .into_iter()
                .map(|d| DiskSpec {
                    disk: d.name,
                    snapshot: d.snapshot,
                    driver: d.driver_type,
                    file: d.source_file,
                    mirror: d.mirror_file,
                })
                .collect(),
            ..SnapshotRequest::default()
        })
    }
}

impl Connection {
    /// The parent of snapshot `name` of `domain`, if it has one.
    pub fn snapshot_parent(&self, domain: &str, name: &str) -> Result<Option<String>> {
        Ok(self.snapshot(domain, name)?.parent)
    }

    /// Replaces snapshot `name`'s record by `edited` (its `<domainsnapshot>` as edited): only
    /// the description may differ. Returns false when nothing differs (nothing written).
    pub fn snapshot_edit(&self, domain: &str, name: &str, edited: &str) -> Result<bool> {
        let _lock = self.lock_domain(domain)?;
        let old = self.snapshot(domain, name)?;
        let new = SnapshotXml::parse(edited).map_err(|e| e.with_source(format!("the edited snapshot '{name}'")))?;
        let differs = |what: &str| {
            Error::InvalidArg(format!(
                "Snapshot '{name}' of domain '{domain}': only its <description> can be changed, and the edit changes {what} (nothing was written)"
            ))
        };
        if new.name != old.name {
            return Err(differs("<name>"));
        }
        if new.creation_time != old.creation_time || new.state != old.state || new.parent != old.parent {
            return Err(differs("<creationTime>, <state> or <parent>"));
        }
        if new.memory != old.memory || new.disks != old.disks {
            return Err(differs("<memory> or <disks>"));
        }
        let same_domain = match (&new.domain, &old.domain) {
            (Some(a), Some(b)) => a.same_content(b),
            (None, None) => true,
            _ => false,
        };
        if !same_domain {
            return Err(differs("<domain>"));
        }
        let description = new.description.filter(|d| !d.is_empty());
        if description == old.description {
            return Ok(false);
        }
        let mut record = old;
        record.description = description;
        let xml = record.to_xml();
        self.mutate(
            domain,
            || format!("change the description of snapshot '{name}'"),
            || self.client.snapshot_redefine(domain, &xml).map_err(|e| self.explain_missing(domain, e)),
        )?;
        Ok(true)
    }
}
