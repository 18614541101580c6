//! The snapshot tree of each domain, one file per domain under `<state>/qemu/snapshots/`,
//! written atomically so a change to the tree is all or nothing.

use crate::QemuDriver;
use crate::state::ensure_parent;
use luavirt_plugin_api::fsutil::write_atomic;
use luavirt_plugin_api::kit::DriverResult;
use luavirt_plugin_api::snapshot::SnapshotTree;
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::PathBuf;

impl QemuDriver {
    fn snapshots_file(&self, name: &str) -> DriverResult<PathBuf> {
        self.state.snapshots_file(name)
    }

    /// The snapshots of `name` (none when it has no file yet).
    pub(crate) fn read_tree(&self, name: &str) -> DriverResult<SnapshotTree> {
        let path = self.snapshots_file(name)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => SnapshotTree::parse(&text).map_err(|e| {
                DriverError::new(
                    ErrorCode::CorruptState,
                    format!("The snapshot metadata of domain '{name}' is corrupt: {}: {e}; fix or move the file (nothing was changed)", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SnapshotTree::default()),
            Err(e) => Err(DriverError::io("read", &path, e)),
        }
    }

    /// Stores the snapshots of `name`; an empty tree removes the file.
    pub(crate) fn write_tree(&self, name: &str, tree: &SnapshotTree) -> DriverResult {
        let path = self.snapshots_file(name)?;
        if tree.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::io("remove", &path, e)),
                _ => Ok(()),
            };
        }
        ensure_parent(&path)?;
        write_atomic(&path, tree.to_xml().as_bytes()).map_err(|e| DriverError::io("write", &path, e))
    }
}

impl QemuDriver {
    /// `domain_snapshot_redefine`: replaces the stored record of the snapshot `xml` names.
    pub(crate) fn snapshot_redefine_impl(
        &self,
        name: &str,
        xml: &str,
        call: &mut luavirt_plugin_api::kit::Call,
    ) -> DriverResult {
        let new = luavirt_plugin_api::snapshot::SnapshotXml::parse(xml)
            .map_err(|e| DriverError::new(ErrorCode::Xml, format!("The snapshot record: {e}")))?;
        let snap = new.name.clone().unwrap_or_default();
        self.state.read_definition(name)?;
        let _lock = self.lock_domain(name, call)?;
        let mut tree = self.read_tree(name)?;
        let Some(slot) = tree.get_mut(&snap) else {
            return Err(DriverError::new(ErrorCode::NoSnapshot, format!("Domain '{name}' has no snapshot '{snap}'")));
        };
        *slot = new;
        self.write_tree(name, &tree)
    }
}
