//! Taking a snapshot as ESX does, with the VM's files: for each persistent disk a delta on
//! its current image, the `.vmx` pointed at the deltas (one `fileName` line each), and the
//! snapshot added to the `.vmsd` as a child of the current one, recording the images the
//! deltas now sit on. All or nothing: a failure half-way removes the deltas already made,
//! and the `.vmx` and `.vmsd` stay as they were; a kill half-way is settled by the next call
//! (`super::intent`).
//!
//! No `.vmsn` is written: VMware's is a binary checkpoint of the VM's configuration that
//! luavirt cannot make. The `.vmsd` names it as VMware would (`<vm>-Snapshot<uid>.vmsn`).

use super::intent::Change;
use super::{check, delta, files, record, request};
use crate::VmxDriver;
use crate::devices::Medium;
use crate::vm::{stem_name, vmx_error};
use crate::vmsd::{NewSnapshot, time};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::snapshot::SnapshotXml;
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::PathBuf;

impl VmxDriver {
    /// `domain_snapshot_create`.
    pub(crate) fn snapshot_create_impl(&self, name: &str, xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        let req = SnapshotXml::parse(xml)
            .map_err(|e| DriverError::new(ErrorCode::Xml, format!("Snapshot request for domain '{name}': {e}")))?;
        let snap = req.name.clone().ok_or_else(|| {
            DriverError::new(ErrorCode::InvalidArg, format!("The snapshot request for domain '{name}' has no <name>"))
        })?;
        let mut l = self.load_snapshots(name, call)?;
        if let Some(s) = l.vmsd.by_name(&snap) {
            return Err(DriverError::new(
                ErrorCode::Exists,
                format!(
                    "Domain '{name}' already has a snapshot named '{snap}' ({}:{}); choose another name",
                    l.vmsd.path().display(),
                    s.line
                ),
            ));
        }
        let taken = request::disks_taken(name, &req, flags, &l.devices, &l.vm.path)?;
        let chains = check::full(&l, &self.stores)?;
        let folder = l.vm.dir().to_path_buf();
        let mut namer = delta::Namer::new(&folder)?;
        // Decide every step first: the deltas, the .vmx on them, the snapshot in the .vmsd.
        let mut vmx = l.vm.vmx.clone();
        let mut vmsd = l.vmsd.clone();
        let mut deltas = Vec::new();
        let mut disks = Vec::new();
        for &i in &taken {
            let d = &l.devices[i];
            let Medium::Disk(file) = &d.medium else {
                unreachable!("only disks are taken");
            };
            let current = &chains[&i][0];
            let current_name = current.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let delta_name = namer.name(&current_name);
            vmx.set(&format!("{}.fileName", d.node), &delta_name).map_err(vmx_error)?;
            deltas.push((d.target.clone(), delta_name, current));
            disks.push((file.clone(), d.id()));
        }
        let new = NewSnapshot {
            name: snap.clone(),
            description: req.description.clone().unwrap_or_default(),
            vmsn: format!("{}-Snapshot{}.vmsn", stem_name(&l.vm.path), vmsd.next_uid().map_err(vmx_error)?),
            created: time::now_micros(),
            disks,
        };
        vmsd.add(&new).map_err(vmx_error)?;
        let mut files = l.files(&snap, vmx.to_bytes(), &vmsd);
        files.made = deltas.iter().map(|(_, n, _)| folder.join(n)).collect();
        let pending = self.begin(Change::Create(files.clone()))?;
        failpoint::hit("vmx-snapshot-create:begun");
        let mut made: Vec<PathBuf> = Vec::new();
        let result = (|| -> DriverResult {
            for (target, delta_name, current) in &deltas {
                let path = delta::create(&folder, delta_name, current)
                    .map_err(|e| DriverError::new(e.code, format!("disk {target}: {}", e.message)))?;
                made.push(path);
            }
            failpoint::hit("vmx-snapshot-create:deltas");
            files::save(&l.vm, &files.vmx_after, &vmsd)
        })();
        if let Err(e) = result {
            for f in &made {
                if let Err(r) = std::fs::remove_file(f) {
                    call.log(
                        Level::Error,
                        &format!("rolling back snapshot '{snap}': cannot remove {}: {r}", f.display()),
                    );
                }
            }
            pending.done()?;
            return Err(DriverError::new(
                e.code,
                format!(
                    "Snapshot '{snap}' of domain '{name}': {}; nothing was changed",
                    e.message.trim_end_matches(" (nothing was changed)")
                ),
            ));
        }
        pending.done()?;
        l.vm = crate::vm::Vm::load(&l.vm.path)?;
        l.devices = l.vm.devices()?;
        l.vmsd = vmsd;
        let deltas = record::Deltas::gather(&l, &self.stores);
        let s = l.vmsd.by_name(&snap).expect("just added");
        call.emit_text(&record::xml(&l, &self.stores, &deltas, s).to_xml());
        Ok(())
    }
}
