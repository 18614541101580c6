//! Save and restore: a running domain's memory and the disks chosen (a disk set, named disks,
//! else every disk a snapshot can take) kept together in one step, as a snapshot whose memory
//! file is the save file. The disks are taken as overlays, so the images below hold their saved
//! state and the memory matches them; the file's header (`luavirt_plugin_api::savefile`) says
//! so, and `restore` starts the domain from it with each saved disk back at that state.

use super::Connection;
use super::snapshot::{DiskSpec, MemSpec, RevertOptions, SnapshotRequest};
use crate::error::{Error, Result};
use luavirt_plugin_api::ErrorCode;
use luavirt_plugin_api::domain::{Disk, DiskMode, DomainXml};
use luavirt_plugin_api::savefile;
use serde::Serialize;

/// What `save` is asked.
#[derive(Clone, Debug, Default)]
pub struct SaveRequest {
    /// The save file (absolute).
    pub file: String,
    /// Keep the disks of this set.
    pub disk_set: Option<String>,
    /// Else keep these disks (`snapshot=external`, the default, or `no`; `file=` names the
    /// overlay that takes the writes after the save).
    pub disks: Vec<DiskSpec>,
    /// The domain runs on after the save (else it stops).
    pub live: bool,
}

/// What a save did.
#[derive(Clone, Debug, Serialize)]
pub struct SaveReport {
    /// The domain.
    pub domain: String,
    /// The save file.
    pub file: String,
    /// The snapshot the save took (deleting it deletes the save file too).
    pub snapshot: String,
    /// Whether the domain runs on.
    pub live: bool,
    /// Each disk: kept at its saved state, or used as it is when restored.
    pub disks: Vec<savefile::SavedDisk>,
}

/// Whether a snapshot can take `d` when nothing names it.
fn takeable(dom: &DomainXml, d: &Disk) -> bool {
    d.source.path().is_some()
        && !d.readonly
        && d.device != "cdrom"
        && !d.transient
        && matches!(dom.disk_mode(&d.target), Some(DiskMode::Persistent) | None)
}

impl Connection {
    /// Saves domain `domain` (see the module).
    pub fn save(&self, domain: &str, req: &SaveRequest) -> Result<SaveReport> {
        self.save_with(domain, req, super::blockjob::JobControl::default())
    }

    /// [`Connection::save`], reporting the progress of saving memory (bytes) to `control`.
    pub fn save_with(
        &self,
        domain: &str,
        req: &SaveRequest,
        control: super::blockjob::JobControl,
    ) -> Result<SaveReport> {
        let (state, _) = self.domain_state(domain)?;
        if !state.is_active() {
            return Err(Error::InvalidArg(format!(
                "Domain '{domain}' is shut off, so it has no memory to save; a snapshot keeps its disks"
            )));
        }
        if !req.file.starts_with('/') {
            return Err(Error::InvalidArg(format!("The save file {} must be an absolute path", req.file)));
        }
        let dom = self.read_domain(domain)?;
        let disks = dom.disks();
        let kept = self.kept_disks(domain, &dom, &disks, req)?;
        let specs = disks
            .iter()
            .map(|d| match kept.iter().find(|s| s.disk == d.target) {
                Some(s) => DiskSpec { snapshot: Some("external".into()), ..s.clone() },
                None => DiskSpec { disk: d.target.clone(), snapshot: Some("no".into()), ..DiskSpec::default() },
            })
            .collect();
        let tree = self.snapshots(domain)?;
        let stamp = luavirt_plugin_api::time::now_secs();
        let name = (1..)
            .map(|n| if n == 1 { format!("save-{stamp}") } else { format!("save-{stamp}-{n}") })
            .find(|n| tree.get(n).is_none())
            .expect("some name is free");
        let snap = SnapshotRequest {
            name: Some(name.clone()),
            description: Some(format!("saved to {}", req.file)),
            disks: specs,
            memory: Some(MemSpec { snapshot: Some("external".into()), file: Some(req.file.clone()) }),
            live: req.live,
            halt: !req.live,
            ..SnapshotRequest::default()
        };
        self.take_snapshot(domain, &snap, true, control)?;
        let header = if self.is_dry_run() { None } else { self.save_header(&req.file)? };
        Ok(SaveReport {
            domain: domain.to_string(),
            file: req.file.clone(),
            snapshot: name,
            live: req.live,
            disks: header.map(|(h, _)| h.disks).unwrap_or_default(),
        })
    }

    /// The disks a save keeps, as specs of their targets.
    fn kept_disks(&self, domain: &str, dom: &DomainXml, disks: &[Disk], req: &SaveRequest) -> Result<Vec<DiskSpec>> {
        if !req.disks.is_empty() {
            let mut kept = Vec::new();
            for s in &req.disks {
                let target = super::diskset::resolve(domain, disks, &s.disk)?;
                match s.snapshot.as_deref() {
                    None | Some("external") => kept.push(DiskSpec { disk: target, ..s.clone() }),
                    Some("no") => {}
                    Some(other) => {
                        return Err(Error::InvalidArg(format!(
                            "Save of domain '{domain}': disk {target} is asked to be taken {other}; a save keeps its disks as overlays (snapshot=external), or leaves them out (snapshot=no)"
                        )));
                    }
                }
            }
            return Ok(kept);
        }
        if let Some(set) = &req.disk_set {
            let members = dom.disk_sets().members(set).to_vec();
            if members.is_empty() {
                return Err(Error::InvalidArg(format!(
                    "Save of domain '{domain}': disk set '{set}' has no disks; add some with «do:diskset add {domain} DISK --set {set}»"
                )));
            }
            return Ok(members.into_iter().map(|m| DiskSpec { disk: m, ..DiskSpec::default() }).collect());
        }
        Ok(disks
            .iter()
            .filter(|d| takeable(dom, d))
            .map(|d| DiskSpec { disk: d.target.clone(), ..DiskSpec::default() })
            .collect())
    }

    /// Starts the domain saved in `file` from it: its memory, and each saved disk at its saved
    /// state. Returns the domain's name.
    pub fn restore(&self, file: &str, paused: bool) -> Result<String> {
        let (header, _) = self.save_header(file)?.ok_or_else(|| {
            Error::InvalidArg(format!(
                "{file} is not a luavirt save file (it does not start with {}); restore files that «do:save» wrote",
                savefile::MAGIC
            ))
        })?;
        let domain = header.domain.clone();
        let dom = match self.read_domain(&domain) {
            Ok(d) => d,
            Err(e) if e.code() == ErrorCode::NoDomain => {
                return Err(Error::InvalidArg(format!(
                    "{file} holds domain '{domain}', which is not defined on {}; restore it where it was saved",
                    self.uri()
                )));
            }
            Err(e) => return Err(e),
        };
        if header.uuid.is_some() && dom.uuid() != header.uuid {
            return Err(Error::InvalidArg(format!(
                "{file} holds domain '{domain}' with UUID {}, and the domain of that name here has UUID {}; it is another domain",
                header.uuid.as_deref().unwrap_or(""),
                dom.uuid().unwrap_or_default()
            )));
        }
        let (state, _) = self.domain_state(&domain)?;
        if state.is_active() {
            return Err(Error::InvalidArg(format!(
                "Domain '{domain}' is {}; destroy it first (what it did since would be lost), then restore",
                state.as_str()
            )));
        }
        let snap = self.snapshot(&domain, &header.snapshot).map_err(|e| match e.code() {
            ErrorCode::NoSnapshot => Error::InvalidArg(format!(
                "The save in {file} was snapshot '{}' of domain '{domain}', which is gone (deleted?), so it no longer restores",
                header.snapshot
            )),
            _ => e,
        })?;
        let named = snap.memory.as_ref().and_then(|m| m.file.clone()).unwrap_or_default();
        if !self.same_file(&named, file)? {
            return Err(Error::InvalidArg(format!(
                "{file} is a copy of the save in {named}; restore reads that file: restore it, or move this one back there"
            )));
        }
        self.snapshot_revert(&domain, &header.snapshot, RevertOptions { running: !paused, paused, force: false })?;
        Ok(domain)
    }
}
