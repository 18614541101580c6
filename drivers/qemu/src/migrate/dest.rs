//! The destination's side of a migration: prepare (images, a QEMU waiting for the memory,
//! the copied disks exported), finish (commit or undo), and settling a side a killed call left.

use super::{IN_PHASES, made_here};
use crate::intent::Change;
use crate::lifecycle::StartOptions;
use crate::{QemuDriver, images};
use luavirt_plugin_api::abi::{LV_MIGRATE_FAILED, LV_MIGRATE_OFFLINE, LV_MIGRATE_PAUSED, LV_MIGRATE_PERSIST_DEST};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::fsutil::{create_private_dir, remove_durably, write_atomic};
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::records::{
    MigrateAction, MigrateArrived, MigrateDisk, MigrateEndpoints, MigrateListen, MigrateParams,
};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;

/// The destination's side of a migration, as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Incoming {
    /// The migration's id.
    pub id: String,
    /// The definition the domain gets here once committed.
    pub xml: String,
    /// Every image this side makes (none existed when it began).
    pub files: Vec<String>,
    /// Copied disks: the domain's memory and these disks' data come from a running source.
    pub live: bool,
    /// Keep the definition after the domain stops.
    pub persist: bool,
    /// Stay paused once committed.
    pub paused: bool,
}

fn exists(name: &str, what: String) -> DriverError {
    DriverError::new(ErrorCode::Exists, format!("Cannot migrate domain '{name}' here: {what}"))
}

/// A Unix socket path QEMU can bind (the kernel allows 107 bytes).
fn socket(run_dir: &Path, file: &str) -> DriverResult<String> {
    let path = run_dir.join(file).display().to_string();
    if path.len() > 107 {
        return Err(DriverError::new(
            ErrorCode::InvalidArg,
            format!("The socket path {path} is too long for a Unix socket; use a shorter state folder (?state=DIR)"),
        ));
    }
    Ok(path)
}

impl QemuDriver {
    /// Readies domain `xml` to arrive as `name` (see `domain_migrate_prepare`).
    pub(crate) fn migrate_prepare_impl(
        &self,
        name: &str,
        xml: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let offline = flags & LV_MIGRATE_OFFLINE != 0;
        let _lock = self.lock_domain(name, call)?;
        let mut dom = DomainXml::parse(xml, Some("the migrated domain's XML"))
            .map_err(|e| DriverError::new(ErrorCode::Xml, e.to_string()))?;
        if dom.name() != name {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!("The migrated domain's XML names '{}', not '{name}'", dom.name()),
            ));
        }
        if self.state.definition(name)?.exists() {
            return Err(exists(
                name,
                "a domain of that name is defined here; undefine it, or migrate to another host".into(),
            ));
        }
        if let Some(uuid) = dom.uuid()
            && let Some(other) = self.state.uuid_owner(&uuid)?
        {
            return Err(exists(name, format!("its UUID {uuid} belongs to domain '{other}' here")));
        }
        let mut files = Vec::new();
        for d in made_here(&params.disks) {
            let path = d.dest_path(name)?;
            if Path::new(path).exists() || files.iter().any(|f| f == path) {
                return Err(exists(
                    name,
                    format!(
                        "the image {path} for disk {} exists already; remove it, or choose another with «disk_target {}=PATH»",
                        d.target, d.target
                    ),
                ));
            }
            dom.set_disk_source(&d.target, path, &d.format).map_err(|m| DriverError::new(ErrorCode::InvalidArg, m))?;
            files.push(path.to_string());
        }
        let marker = self.state.commit_marker(&params.id)?;
        let incoming = Incoming {
            id: params.id.clone(),
            xml: dom.to_xml(),
            files,
            live: !offline,
            persist: offline || flags & LV_MIGRATE_PERSIST_DEST != 0,
            paused: flags & LV_MIGRATE_PAUSED != 0,
        };
        let mut pending = self.begin(name, Change::MigrateIn(incoming.clone()))?;
        let ready = self.ready_incoming(name, &dom, &incoming, params, call);
        let endpoints = match ready {
            Ok(e) => e,
            Err(e) => {
                // Undo here and now: this call made everything it leaves behind.
                self.undo_incoming(name, &incoming, call)?;
                pending.done()?;
                return Err(e);
            }
        };
        pending.phase("listening")?;
        failpoint::hit("migrate-in:listening");
        pending.hand_on();
        call.emit(&MigrateEndpoints { commit_marker: Some(marker.display().to_string()), ..endpoints });
        Ok(())
    }

    /// Makes the images and, live, the QEMU that waits for the memory.
    fn ready_incoming(
        &self,
        name: &str,
        dom: &DomainXml,
        incoming: &Incoming,
        params: &MigrateParams,
        call: &mut Call,
    ) -> DriverResult<MigrateEndpoints> {
        for d in made_here(&params.disks) {
            let path = d.dest_path(name)?;
            if let Some(dir) = Path::new(path).parent() {
                create_private_dir(dir).map_err(|e| DriverError::io("create", dir, e))?;
            }
            make_image(name, d, path, incoming.live)?;
            failpoint::hit("migrate-in:image");
        }
        if !incoming.live {
            return Ok(MigrateEndpoints::default());
        }
        self.start(dom, &StartOptions { paused: true, migrate_in: true, ..StartOptions::default() }, call)?;
        failpoint::hit("migrate-in:started");
        let mut mon = self.monitor(name)?;
        // The images stay inactive until the guest runs here, so the source can resume on
        // its shared disks if the migration does not commit.
        mon.exec(
            "migrate-set-capabilities",
            json!({ "capabilities": [
                { "capability": "events", "state": true },
                { "capability": "late-block-activate", "state": true },
            ] }),
        )?;
        let copied: Vec<&MigrateDisk> = params.copied().collect();
        let run = self.state.run_dir(name)?;
        let mut disk_uri = None;
        if !copied.is_empty() {
            let uri = match &params.listen {
                None => {
                    let path = socket(&run, "nbd.sock")?;
                    mon.exec("nbd-server-start", json!({ "addr": { "type": "unix", "data": { "path": path } } }))?;
                    format!("unix:{path}")
                }
                Some(l) => listen_tcp(name, l, "the copied disks", |port| {
                    mon.exec(
                        "nbd-server-start",
                        json!({ "addr": { "type": "inet", "data": { "host": l.address, "port": port.to_string() } } }),
                    )
                    .map(drop)
                })?,
            };
            for d in &copied {
                let node = mon.top_node(&d.target)?;
                mon.exec(
                    "block-export-add",
                    json!({ "type": "nbd", "id": super::mirror_node(&d.target), "node-name": node,
                            "name": d.target, "writable": true }),
                )?;
            }
            disk_uri = Some(uri);
        }
        let memory_uri = match &params.listen {
            None => {
                let uri = format!("unix:{}", socket(&run, "mem.sock")?);
                mon.exec("migrate-incoming", json!({ "uri": uri }))?;
                uri
            }
            Some(l) => listen_tcp(name, l, "the memory", |port| {
                mon.exec("migrate-incoming", json!({ "uri": tcp_uri(&l.address, port) })).map(drop)
            })?,
        };
        Ok(MigrateEndpoints { memory_uri: Some(memory_uri), disk_uri, commit_marker: None })
    }

    /// Commits (or with `LV_MIGRATE_FAILED` undoes) the arrival of `name`.
    pub(crate) fn migrate_finish_impl(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let _lock = self.lock_beside(name, call)?;
        let Some(intent) = self.pending_change(name)? else {
            return Err(no_migration(name, &params.id));
        };
        let Change::MigrateIn(incoming) = intent.change.clone() else {
            return Err(no_migration(name, &params.id));
        };
        if incoming.id != params.id {
            return Err(no_migration(name, &params.id));
        }
        let mut pending = self.resume_pending(name, intent)?;
        if flags & LV_MIGRATE_FAILED != 0 {
            self.undo_incoming(name, &incoming, call)?;
            return pending.done();
        }
        failpoint::hit("migrate-in:finishing");
        if let Err(e) = self.check_arrived(name, &incoming) {
            self.undo_incoming(name, &incoming, call)?;
            pending.done()?;
            return Err(e);
        }
        // The commit: from here the domain is this side's, whatever happens next.
        let marker = self.state.commit_marker(&incoming.id)?;
        create_private_dir(marker.parent().expect("markers live in a folder"))
            .map_err(|e| DriverError::io("create", &marker, e))?;
        write_atomic(&marker, incoming.id.as_bytes()).map_err(|e| DriverError::io("write", &marker, e))?;
        pending.phase("committed")?;
        failpoint::hit("migrate-in:committed");
        let note = self.complete_incoming(name, &incoming)?;
        if let Some(note) = note {
            call.log(Level::Warning, &note);
        }
        let arrived = MigrateArrived::measure(params);
        pending.done()?;
        call.emit(&arrived);
        Ok(())
    }

    /// Whether the memory (live) has all arrived; its exports are stopped.
    fn check_arrived(&self, name: &str, incoming: &Incoming) -> DriverResult {
        if !incoming.live {
            return Ok(());
        }
        let mut mon = self.monitor(name)?;
        let status = mon.exec("query-migrate", Value::Null)?;
        if status["status"] != "completed" {
            return Err(DriverError::new(
                ErrorCode::Hypervisor,
                format!(
                    "Domain '{name}' has not arrived here: its incoming migration is {}",
                    status["status"].as_str().unwrap_or("not running")
                ),
            ));
        }
        let _ = mon.exec("nbd-server-stop", Value::Null);
        Ok(())
    }

    /// What follows the commit: the definition, and the guest running here (again safe to
    /// repeat). A note when the guest cannot run.
    fn complete_incoming(&self, name: &str, incoming: &Incoming) -> DriverResult<Option<String>> {
        let dom = DomainXml::parse(&incoming.xml, None).map_err(|e| DriverError::new(ErrorCode::Xml, e.to_string()))?;
        if let Some(uuid) = dom.uuid() {
            self.state.index_uuid(&uuid, name)?;
        }
        self.state.write_definition(name, &incoming.xml)?;
        if !incoming.live {
            return Ok(None);
        }
        if self.running(name)?.is_none() {
            self.state.clear_run(name)?;
            return Ok(Some(format!(
                "domain '{name}': its QEMU here ended after the migration committed; the domain is shut off here"
            )));
        }
        if !incoming.persist {
            let mark = self.state.transient_mark(name)?;
            write_atomic(&mark, b"").map_err(|e| DriverError::io("write", &mark, e))?;
        }
        if !incoming.paused {
            let mut mon = self.monitor(name)?;
            if mon.status()? != "running"
                && let Err(e) = mon.exec("cont", Value::Null)
            {
                return Ok(Some(format!("domain '{name}' arrived but stays paused: {}", e.message)));
            }
        }
        Ok(None)
    }

    /// Removes what this side made: its QEMU, its images.
    fn undo_incoming(&self, name: &str, incoming: &Incoming, call: &mut Call) -> DriverResult {
        if self.running(name)?.is_some() {
            self.stop(name, call)?;
        }
        self.state.clear_run(name)?;
        for f in &incoming.files {
            remove_durably(Path::new(f)).map_err(|e| DriverError::io("remove", Path::new(f), e))?;
        }
        Ok(())
    }

    /// Settles the arrival a killed call left: committed, it completes; else it is undone.
    pub(crate) fn settle_incoming(
        &self,
        name: &str,
        incoming: &Incoming,
        phase: &str,
        call: &mut Call,
    ) -> DriverResult<String> {
        let committed = IN_PHASES.iter().position(|p| *p == phase) >= IN_PHASES.iter().position(|p| *p == "committed");
        if committed {
            return Ok(match self.complete_incoming(name, incoming)? {
                Some(note) => format!("it had committed; {note}"),
                None => "it had committed, and the domain is here now".to_string(),
            });
        }
        self.undo_incoming(name, incoming, call)?;
        Ok("it had not committed: its QEMU here was stopped and the images it made were removed".to_string())
    }
}

/// `tcp:ADDRESS:PORT`, with an IPv6 address in brackets.
fn tcp_uri(address: &str, port: u16) -> String {
    if address.contains(':') { format!("tcp:[{address}]:{port}") } else { format!("tcp:{address}:{port}") }
}

/// Listens on the first port of `l`'s range that `listen` can take; the endpoint's URI.
fn listen_tcp(
    name: &str,
    l: &MigrateListen,
    what: &str,
    mut listen: impl FnMut(u16) -> DriverResult,
) -> DriverResult<String> {
    let mut last = None;
    for port in l.port_min..=l.port_max.max(l.port_min) {
        match listen(port) {
            Ok(()) => return Ok(tcp_uri(&l.address, port)),
            Err(e) => last = Some(e),
        }
    }
    Err(DriverError::new(
        ErrorCode::Hypervisor,
        format!(
            "Migration of domain '{name}': cannot listen for {what} on {} at any port from {} to {}{}; choose another listen address or port range",
            l.address,
            l.port_min,
            l.port_max,
            last.map(|e| format!(" (the last said: {})", e.message)).unwrap_or_default()
        ),
    ))
}

/// Creates the image of a copied or blank disk: empty, or offline for a copied disk, a copy
/// of its source (sparse).
fn make_image(name: &str, d: &MigrateDisk, path: &str, live: bool) -> DriverResult {
    let fail = |e: DriverError| {
        DriverError::new(e.code, format!("Migration of domain '{name}', disk {}: {}", d.target, e.message))
    };
    let cluster = d.cluster_size.filter(|_| d.format == "qcow2").map(|c| format!("cluster_size={c}"));
    let mut args: Vec<String> = Vec::new();
    match (d.action, live, &d.source) {
        (MigrateAction::Copy, false, Some(source)) => {
            args.extend(["convert", "-q", "-O", &d.format].map(String::from));
            if let Some(c) = &cluster {
                args.extend(["-o".to_string(), c.clone()]);
            }
            args.extend([source.clone(), path.to_string()]);
        }
        (MigrateAction::Copy, false, None) => {
            return Err(fail(DriverError::new(ErrorCode::InvalidArg, "the source image is not named".to_string())));
        }
        _ => {
            args.extend(["create", "-q", "-f", &d.format].map(String::from));
            if let Some(c) = &cluster {
                args.extend(["-o".to_string(), c.clone()]);
            }
            args.extend([path.to_string(), d.capacity.to_string()]);
        }
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    images::qemu_img(&refs).map(drop).map_err(fail)?;
    // qemu-img creates files with the umask's mode; images hold guest data.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| DriverError::io("set the mode of", Path::new(path), e))
}

fn no_migration(name: &str, id: &str) -> DriverError {
    DriverError::new(
        ErrorCode::InvalidState,
        format!("Domain '{name}' has no migration {id} arriving here; it was undone (see the log) or never began"),
    )
}
