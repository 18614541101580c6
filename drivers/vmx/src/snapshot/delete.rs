//! Deleting a snapshot so that every other snapshot, and the VM's present state, keep their
//! data.
//!
//! For each image B the snapshot recorded: if exactly one image X builds on B (and no other
//! snapshot recorded B, and the VM does not use B itself), X is merged into B with
//! `qemu-img commit`. B's CID changes with the write, so X's `parentCID` is updated at once
//! (its view stays readable until it goes), whatever built on X is rebased onto B
//! (`parentFileNameHint` and `parentCID` in its descriptor), every reference to X (the
//! `.vmx`'s `fileName`, other snapshots' `diskJ.fileName`) becomes B, and X is removed.
//! Otherwise (a revert made a branch on B) the files stay as they are.
//!
//! Then the record goes from the `.vmsd`: its children take its parent, its parent becomes
//! current if it was, and the indexes are renumbered. Its `.vmsn` and `.vmem`, when VMware
//! wrote them, are removed. With `--metadata` only the record goes.
//!
//! Both files are decided first and recorded with the merges (`super::intent`); the merged
//! deltas go only after the files stop naming them, so a kill anywhere is finished by the
//! next call.

use super::intent::Change;
use super::{Loaded, chain, check, delta, files};
use crate::VmxDriver;
use crate::blockinfo::resolve;
use crate::datastore::Datastores;
use crate::devices::Medium;
use crate::qemu_img;
use crate::vm::vmx_error;
use crate::vmdk::Image;
use crate::vmsd::Snapshot;
use luavirt_plugin_api::abi::{
    LV_SNAPSHOT_DELETE_METADATA_ONLY, LV_SNAPSHOT_DELETE_MIRROR_ABORT, LV_SNAPSHOT_DELETE_MIRROR_PIVOT,
};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::{Path, PathBuf};

/// One image of the snapshot to merge away: the delta `top` goes into `base`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Merge {
    /// The disk's node, for messages.
    pub node: String,
    /// The image the snapshot recorded, as the `.vmsd` names it.
    pub base_text: String,
    /// That image.
    pub base: PathBuf,
    /// The delta merged into it.
    pub top: PathBuf,
    /// What builds on `top`.
    pub above: Vec<PathBuf>,
}

/// Decides, for each image `s` recorded, whether it can be merged away.
fn plan(l: &Loaded, ds: &Datastores, s: &Snapshot, call: &mut Call) -> DriverResult<Vec<Merge>> {
    let others: Vec<PathBuf> = {
        let mut all = l.recorded_images(ds);
        for d in &s.disks {
            if let Ok(p) = ds.resolve(l.vm.dir(), &d.file)
                && let Some(i) = all.iter().position(|x| *x == p)
            {
                all.remove(i);
            }
        }
        all
    };
    let in_use: Vec<PathBuf> = l
        .devices
        .iter()
        .filter_map(|d| match &d.medium {
            Medium::Disk(f) => ds.resolve(l.vm.dir(), f).ok(),
            _ => None,
        })
        .collect();
    let mut merges = Vec::new();
    for d in &s.disks {
        let what = format!("{}:{}: snapshot '{}'", l.vmsd.path().display(), d.line, s.name);
        let base = resolve(ds, l.vm.dir(), &d.file, &what)?;
        let base_dir = base.parent().unwrap_or(Path::new("/")).to_path_buf();
        let images = chain::Images::scan(ds, &[l.vm.dir(), &base_dir]);
        let on_base = images.children(&base);
        let keep = |why: String, call: &mut Call| {
            call.log(
                Level::Info,
                &format!("snapshot '{}', disk {}: {why}; the files stay as they are", s.name, d.node),
            );
        };
        if others.contains(&base) {
            keep(format!("another snapshot also recorded {}", base.display()), call);
        } else if in_use.contains(&base) {
            keep(format!("the VM uses {} itself", base.display()), call);
        } else if let [top] = on_base.as_slice() {
            // The merge writes into base: refuse a damaged chain before writing anything.
            chain::read(ds, top, &what)?;
            merges.push(Merge {
                node: d.node.clone(),
                base_text: d.file.clone(),
                base: base.clone(),
                top: top.clone(),
                above: images.children(top),
            });
        } else if !on_base.is_empty() {
            keep(format!("{} images build on {}", on_base.len(), base.display()), call);
        }
    }
    Ok(merges)
}

/// Why a merge failed, and whether it had written into the base by then.
pub(crate) struct Failed {
    /// What failed.
    pub error: DriverError,
    base_written: bool,
}

/// The CID of `path`.
fn cid_of(path: &Path) -> DriverResult<u32> {
    Image::open(path).ok().and_then(|b| b.descriptor.cid()).ok_or_else(|| {
        DriverError::new(ErrorCode::CorruptState, format!("{} cannot be read or has no CID", path.display()))
    })
}

/// Merges `m.top` into `m.base` and rebases what built on `m.top` onto `m.base`. Done again
/// after a kill, it writes the same data and points the deltas at the base's new CID.
pub(crate) fn merge(m: &Merge) -> Result<(), Failed> {
    let untouched = |error| Failed { error, base_written: false };
    let was = cid_of(&m.base).map_err(untouched)?;
    let dir = m.top.parent().unwrap_or(Path::new("/"));
    let name = m.top.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let committed = qemu_img::run(dir, &["commit", "-q", "-f", "vmdk", "-d", &name]);
    // QEMU gives an image a new CID on its first write: an unchanged one was not written.
    let cid = cid_of(&m.base).map_err(|error| Failed { error, base_written: true })?;
    let written = |error| Failed { error, base_written: cid != was };
    let repoint = |path: &Path, hint: Option<String>| -> DriverResult {
        let mut img = Image::open(path)
            .map_err(|_| DriverError::new(ErrorCode::Io, format!("{} cannot be read", path.display())))?;
        if let Some(h) = hint {
            img.descriptor.set_parent_hint(Some(&h));
        }
        img.descriptor.set_parent_cid(Some(cid));
        img.save().map_err(|e| DriverError::io("write the descriptor of", path, e))
    };
    // First the merged delta itself, so its view stays readable until it is removed. Its
    // clusters win over the base's, so this holds after a commit that stopped half-way too.
    if cid != was {
        repoint(&m.top, None).map_err(written)?;
    }
    committed.map_err(written)?;
    for a in &m.above {
        repoint(a, Some(delta::relative(a.parent().unwrap_or(Path::new("/")), &m.base))).map_err(written)?;
    }
    Ok(())
}

impl VmxDriver {
    /// `domain_snapshot_delete`.
    pub(crate) fn snapshot_delete_impl(&self, name: &str, snap: &str, flags: u32, call: &mut Call) -> DriverResult {
        if flags & (LV_SNAPSHOT_DELETE_MIRROR_PIVOT | LV_SNAPSHOT_DELETE_MIRROR_ABORT) != 0 {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "Snapshot '{snap}' of domain '{name}' has no mirror (ESX snapshots are never mirrored); drop «mirror_pivot» or «mirror_abort»"
                ),
            ));
        }
        let l = self.load_snapshots(name, call)?;
        let s = l.snapshot(snap)?.clone();
        let mut vmsd = l.vmsd.clone();
        if flags & LV_SNAPSHOT_DELETE_METADATA_ONLY != 0 {
            vmsd.remove(s.uid).map_err(vmx_error)?;
            return files::save(&l.vm, &l.vm.bytes, &vmsd);
        }
        let ds = &self.stores;
        check::full(&l, ds)?;
        let merges = plan(&l, ds, &s, call)?;
        // Decide both files first: every reference to a merged delta becomes its base.
        let mut vmx = l.vm.vmx.clone();
        for m in &merges {
            for d in &l.devices {
                if let Medium::Disk(f) = &d.medium
                    && ds.resolve(l.vm.dir(), f).ok().as_ref() == Some(&m.top)
                {
                    vmx.set(&format!("{}.fileName", d.node), &m.base_text).map_err(vmx_error)?;
                }
            }
            for o in l.vmsd.snapshots().iter().filter(|o| o.uid != s.uid) {
                for (j, d) in o.disks.iter().enumerate() {
                    if ds.resolve(l.vm.dir(), &d.file).ok().as_ref() == Some(&m.top) {
                        vmsd.set_disk_file(o.uid, j, &m.base_text).map_err(vmx_error)?;
                    }
                }
            }
        }
        vmsd.remove(s.uid).map_err(vmx_error)?;
        let mut files = l.files(snap, vmx.to_bytes(), &vmsd);
        files.removed = merges.iter().map(|m| m.top.clone()).collect();
        files.removed.extend(s.vmsn.iter().flat_map(|v| {
            let p = l.vm.dir().join(v);
            [p.with_extension("vmem"), p]
        }));
        let pending = self.begin(Change::Delete { files: files.clone(), merges: merges.clone() })?;
        failpoint::hit("vmx-snapshot-delete:begun");
        for (k, m) in merges.iter().enumerate() {
            if let Err(f) = merge(m) {
                if k == 0 && !f.base_written {
                    pending.done()?;
                    return Err(DriverError::new(
                        f.error.code,
                        format!(
                            "Cannot delete snapshot '{snap}' of domain '{name}': disk {} could not be merged ({}); nothing was changed",
                            m.node, f.error.message
                        ),
                    ));
                }
                // Merging has begun to write: the delete stays recorded, to be finished.
                return Err(DriverError::new(
                    f.error.code,
                    format!(
                        "Snapshot '{snap}' of domain '{name}': disk {} could not be merged ({}); the delete is recorded and the next change to the domain finishes it once the cause is fixed; every delta stays readable meanwhile",
                        m.node, f.error.message
                    ),
                ));
            }
            failpoint::hit("vmx-snapshot-delete:merged");
        }
        files::save(&l.vm, &files.vmx_after, &vmsd).map_err(|e| {
            DriverError::new(
                e.code,
                format!(
                    "Snapshot '{snap}' of domain '{name}': the deltas were merged, but {}; the next change to the domain finishes the delete",
                    e.message
                ),
            )
        })?;
        failpoint::hit("vmx-snapshot-delete:saved");
        self.remove_unnamed(&files, &files.removed, call)?;
        pending.done()
    }
}
