//! `undefine` with virsh's extras: `--snapshots-metadata` forgets the domain's snapshots
//! first (their files stay), `--remove-all-storage` / `--storage` remove disk images once the
//! definition is gone (the definition never names a removed file). An image is kept, and the
//! report says why, when it is not a plain image file of this domain alone: a CD-ROM, a
//! read-only or shareable disk (unless named), a block device, a VMDK (whose extents are
//! the driver's), or an image another domain uses. Backing images always stay: other images
//! may build on them.

use super::Connection;
use super::snapshot::DeleteOptions;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeSet;

/// Which disk images `undefine` removes.
#[derive(Clone, Debug, Default)]
pub enum StorageRemoval {
    /// None.
    #[default]
    Keep,
    /// Every disk's image that is this domain's alone.
    All,
    /// These disks' images (targets or source paths).
    Disks(Vec<String>),
}

/// What `undefine` does besides removing the definition.
#[derive(Clone, Debug, Default)]
pub struct UndefineOptions {
    /// Forget the domain's snapshots first (their files stay).
    pub snapshots_metadata: bool,
    /// Images to remove.
    pub storage: StorageRemoval,
}

/// What `undefine` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UndefineReport {
    /// Snapshots forgotten.
    pub snapshots_forgotten: Vec<String>,
    /// Image files removed.
    pub removed: Vec<String>,
    /// Files kept, and why.
    pub kept: Vec<KeptFile>,
}

/// A file `undefine` kept, and why.
#[derive(Clone, Debug, Serialize)]
pub struct KeptFile {
    /// The file.
    pub path: String,
    /// Why it stays.
    pub reason: String,
}

impl KeptFile {
    fn new(path: impl Into<String>, reason: impl Into<String>) -> KeptFile {
        KeptFile { path: path.into(), reason: reason.into() }
    }
}

impl Connection {
    /// Removes the definition of `name`, with the extras `opts` ask for.
    pub fn undefine_with(&self, name: &str, opts: &UndefineOptions) -> Result<UndefineReport> {
        let mut report = UndefineReport::default();
        let dom = self.read_domain(name)?;
        if self.domain_state(name)?.0.is_active() {
            return Err(Error::Driver {
                code: luavirt_plugin_api::ErrorCode::InvalidState,
                message: format!("Domain '{name}' is running; destroy it first («do:destroy {name}»)"),
            });
        }
        // Which files go, decided before anything changes.
        let (remove, kept) = self.images_to_remove(name, &dom, &opts.storage)?;
        report.kept = kept;
        if self.driver().has_function("domain_snapshot_list") {
            let tree = self.snapshots(name)?;
            if !tree.is_empty() && !opts.snapshots_metadata {
                return Err(Error::InvalidArg(format!(
                    "Domain '{name}' has {} snapshot(s); delete them first, or add «snapshots_metadata» to forget them with the domain (their files stay) (nothing was changed)",
                    tree.all().len()
                )));
            }
            let metadata_only = DeleteOptions { children: true, metadata_only: true, ..DeleteOptions::default() };
            for root in tree.children(None) {
                report.snapshots_forgotten.extend(self.snapshot_delete(name, &root, metadata_only)?);
            }
            luavirt_plugin_api::failpoint::hit("undefine:snapshots-forgotten");
        }
        self.undefine(name)?;
        // Killed from here on, images are left that nothing names: never one still named.
        luavirt_plugin_api::failpoint::hit("undefine:undefined");
        for path in remove {
            let ran = self.mutate(name, || format!("remove image {path}"), || self.remove_host_file(&path));
            match ran {
                Ok(_) => report.removed.push(path),
                Err(e) => report.kept.push(KeptFile::new(path, format!("removing it failed: {e}"))),
            }
        }
        Ok(report)
    }

    /// The images `storage` asks to remove, and those kept with the reason.
    fn images_to_remove(
        &self,
        name: &str,
        dom: &luavirt_plugin_api::domain::DomainXml,
        storage: &StorageRemoval,
    ) -> Result<(Vec<String>, Vec<KeptFile>)> {
        let disks = dom.disks();
        let chosen: Vec<String> = match storage {
            StorageRemoval::Keep => return Ok((Vec::new(), Vec::new())),
            StorageRemoval::All => disks.iter().map(|d| d.target.clone()).collect(),
            StorageRemoval::Disks(list) => {
                list.iter().map(|d| super::diskset::resolve(name, &disks, d)).collect::<Result<_>>()?
            }
        };
        let named = matches!(storage, StorageRemoval::Disks(_));
        let others = self.images_of_other_domains(name)?;
        let (mut remove, mut kept) = (Vec::new(), Vec::new());
        for d in disks.iter().filter(|d| chosen.contains(&d.target)) {
            let Some(path) = d.source.path() else { continue };
            let why = if d.disk_type != "file" {
                Some(format!("disk {} is a {} source, not an image file", d.target, d.disk_type))
            } else if d.device != "disk" && !named {
                Some(format!("disk {} is a {} (name it with «storage {}» to remove it)", d.target, d.device, d.target))
            } else if (d.readonly || d.shareable) && !named {
                Some(format!(
                    "disk {} is read-only or shareable (name it with «storage {}» to remove it)",
                    d.target, d.target
                ))
            } else if d.format.as_deref() == Some("vmdk") {
                Some(format!(
                    "disk {} is a VMDK, whose extents its driver knows: remove them with VMware's tools",
                    d.target
                ))
            } else if !path.starts_with('/') {
                Some(format!("disk {} names no local file (a datastore path?): remove it where it lives", d.target))
            } else if !self.path_exists(path)? {
                Some(format!("nothing to remove: disk {}'s image does not exist", d.target))
            } else {
                others.iter().find(|(_, p)| p == path).map(|(o, _)| format!("domain '{o}' uses it too"))
            };
            match why {
                Some(w) => kept.push(KeptFile::new(path, w)),
                None => {
                    if self.client.has_block_info() {
                        let info = self.client.block_info(name, &d.target)?;
                        for b in info.backing {
                            kept.push(KeptFile::new(
                                b.path,
                                format!("a backing image of disk {}: other images may build on it", d.target),
                            ));
                        }
                    }
                    remove.push(path.to_string());
                }
            }
        }
        let mut seen = BTreeSet::new();
        remove.retain(|p| seen.insert(p.clone()));
        Ok((remove, kept))
    }

    /// `(domain, image)` of every other domain's disks on this connection.
    fn images_of_other_domains(&self, name: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for d in self.list_domains()?.into_iter().filter(|d| d.name != name) {
            if let Ok(dom) = self.read_domain(&d.name) {
                out.extend(
                    dom.disks().into_iter().filter_map(|x| x.source.path().map(|p| (d.name.clone(), p.to_string()))),
                );
            }
        }
        Ok(out)
    }
}
