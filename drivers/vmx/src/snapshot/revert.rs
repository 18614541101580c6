//! Reverting to a snapshot as Workstation does, with the VM's files: each disk the snapshot
//! took gets a fresh delta on the image the snapshot recorded (so the snapshot stays intact
//! for the next revert), the `.vmx` points at the fresh deltas, and the snapshot becomes
//! current. The deltas that only the discarded state used go: from the disk's current image
//! down its chain, each delta no snapshot recorded and nothing else builds on.
//!
//! Disks the snapshot did not take keep their current images, and so do disks that are
//! independent now or that left the VM. The VM stays shut off: running it, and snapshots that
//! hold memory, need an ESX host. The steps are recorded first (`super::intent`): the
//! discarded deltas go only after the `.vmx` stops naming them.

use super::intent::Change;
use super::{chain, check, delta, files, record};
use crate::blockinfo::resolve;
use crate::vm::vmx_error;
use crate::{VmxDriver, needs_esx};
use luavirt_plugin_api::DriverError;
use luavirt_plugin_api::abi::{LV_SNAPSHOT_REVERT_PAUSED, LV_SNAPSHOT_REVERT_RUNNING};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use std::path::{Path, PathBuf};

impl VmxDriver {
    /// `domain_snapshot_revert`.
    pub(crate) fn snapshot_revert_impl(&self, name: &str, snap: &str, flags: u32, call: &mut Call) -> DriverResult {
        if flags & (LV_SNAPSHOT_REVERT_RUNNING | LV_SNAPSHOT_REVERT_PAUSED) != 0 {
            return Err(needs_esx(
                &format!("Reverting domain '{name}' to snapshot '{snap}' and running it («running» or «paused»)"),
                "revert without «running» or «paused», then start the VM in the VMware client",
            ));
        }
        let l = self.load_snapshots(name, call)?;
        let s = l.snapshot(snap)?.clone();
        if let Some(m) = record::memory_file(&l, &s) {
            return Err(needs_esx(
                &format!(
                    "Reverting domain '{name}' to snapshot '{snap}', which holds the VM's memory ({})",
                    m.display()
                ),
                "revert to it in the VMware client",
            ));
        }
        let ds = &self.stores;
        let chains = check::full(&l, ds)?;
        let recorded = l.recorded_images(ds);
        let mut folders: Vec<&Path> = vec![l.vm.dir()];
        folders.extend(chains.values().flatten().map(|i| i.dir()));
        let images = chain::Images::scan(ds, &folders);

        // Decide every step first: fresh deltas, the .vmx on them, what the discarded state used.
        let folder = l.vm.dir().to_path_buf();
        let mut namer = delta::Namer::new(&folder)?;
        let mut vmx = l.vm.vmx.clone();
        let mut vmsd = l.vmsd.clone();
        let mut deltas = Vec::new();
        let mut discard: Vec<PathBuf> = Vec::new();
        for t in &s.disks {
            let node = t.node.trim().to_ascii_lowercase();
            let Some(i) = l.devices.iter().position(|d| d.id() == node) else {
                call.log(
                    Level::Info,
                    &format!("snapshot '{snap}': disk {node} is no longer in domain '{name}'; skipped"),
                );
                continue;
            };
            let d = &l.devices[i];
            let Some(chain) = chains.get(&i) else {
                call.log(
                    Level::Info,
                    &format!(
                        "snapshot '{snap}': disk {} of domain '{name}' is {} now; it keeps its current image",
                        d.target, d.mode
                    ),
                );
                continue;
            };
            let what = format!("{}:{}: snapshot '{snap}'", l.vmsd.path().display(), t.line);
            let base_path = resolve(ds, l.vm.dir(), &t.file, &what)?;
            // The fresh delta reads through the recorded image's whole chain: check it.
            let base = chain::read(ds, &base_path, &what)?.swap_remove(0);
            let base_name = base_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let delta_name = namer.name(&base_name);
            vmx.set(&format!("{}.fileName", d.node), &delta_name).map_err(vmx_error)?;
            // The discarded state: the deltas above the first image something else needs.
            let mut above: Option<&Path> = None;
            for img in chain {
                let needed = img.path == base_path
                    || recorded.contains(&img.path)
                    || img.descriptor.parent_hint().is_none()
                    || images.children(&img.path).iter().any(|c| Some(c.as_path()) != above);
                if needed {
                    break;
                }
                discard.push(img.path.clone());
                above = Some(&img.path);
            }
            deltas.push((d.target.clone(), delta_name, base));
        }
        vmsd.set_current(s.uid).map_err(vmx_error)?;
        let mut files = l.files(snap, vmx.to_bytes(), &vmsd);
        files.made = deltas.iter().map(|(_, n, _)| folder.join(n)).collect();
        files.removed = discard;
        let pending = self.begin(Change::Revert(files.clone()))?;
        failpoint::hit("vmx-snapshot-revert:begun");
        let mut made: Vec<PathBuf> = Vec::new();
        let result = (|| -> DriverResult {
            for (target, delta_name, base) in &deltas {
                made.push(
                    delta::create(&folder, delta_name, base)
                        .map_err(|e| DriverError::new(e.code, format!("disk {target}: {}", e.message)))?,
                );
            }
            failpoint::hit("vmx-snapshot-revert:deltas");
            files::save(&l.vm, &files.vmx_after, &vmsd)
        })();
        if let Err(e) = result {
            for f in &made {
                let _ = std::fs::remove_file(f);
            }
            pending.done()?;
            return Err(DriverError::new(
                e.code,
                format!(
                    "Cannot revert domain '{name}' to snapshot '{snap}': {}; nothing was changed",
                    e.message.trim_end_matches(" (nothing was changed)")
                ),
            ));
        }
        failpoint::hit("vmx-snapshot-revert:saved");
        self.remove_unnamed(&files, &files.removed, call)?;
        pending.done()
    }
}
