//! The source's side of a migration: begin (checks), perform (disks, then memory), confirm
//! (stop, or put back), abort from another process, and settling a side a killed call left.

use super::{Marker, OUT_PHASES, mirror_node};
use crate::QemuDriver;
use crate::intent::Change;
use crate::monitor::{Monitor, Until};
use luavirt_plugin_api::abi::{LV_MIGRATE_FAILED, LV_MIGRATE_LIVE, LV_MIGRATE_OFFLINE, LV_MIGRATE_UNDEFINE_SOURCE};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::fsutil::remove_durably;
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::records::{MigrateParams, MigrateSent};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the memory's move is looked at.
const TICK: Duration = Duration::from_millis(200);

/// The source's side of a migration, as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Outgoing {
    /// The migration's id.
    pub id: String,
    /// How the source sees that the destination committed.
    pub marker: Marker,
    /// The disks being copied (each has a mirror job and an NBD node, `lv-mig-TARGET`).
    pub copied: Vec<String>,
    /// The guest was running when the migration began (so putting it back resumes it).
    pub was_running: bool,
    /// Remove the definition here once the destination has the domain.
    pub undefine: bool,
}

/// The NBD server of a disk endpoint, as QEMU's `blockdev-add` takes it: `unix:PATH` or
/// `tcp:HOST:PORT` (`tcp:[V6]:PORT`).
fn nbd_server(uri: &str) -> Option<Value> {
    if let Some(path) = uri.strip_prefix("unix:") {
        return Some(json!({ "type": "unix", "path": path }));
    }
    let (host, port) = uri.strip_prefix("tcp:")?.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    port.parse::<u16>().ok()?;
    Some(json!({ "type": "inet", "host": host, "port": port }))
}

fn refuse(code: ErrorCode, message: String) -> DriverError {
    DriverError::new(code, message)
}

impl QemuDriver {
    /// Checks that `name` can migrate as `params` plan it; emits its XML.
    pub(crate) fn migrate_begin_impl(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let _lock = self.lock_domain(name, call)?;
        let (text, dom) = self.state.read_definition(name)?;
        let (state, _) = self.state_of(name, call)?;
        let offline = flags & LV_MIGRATE_OFFLINE != 0;
        if offline && state.is_active() {
            return Err(refuse(
                ErrorCode::InvalidState,
                format!("Domain '{name}' is {}; an offline migration moves a shut-off domain", state.as_str()),
            ));
        }
        if !offline && !state.is_active() {
            return Err(refuse(
                ErrorCode::InvalidState,
                format!("Domain '{name}' is shut off; it migrates offline (its definition and disks only)"),
            ));
        }
        if flags & LV_MIGRATE_UNDEFINE_SOURCE != 0 {
            let snapshots = self.read_tree(name)?.all().len();
            if snapshots > 0 {
                return Err(refuse(
                    ErrorCode::InvalidState,
                    format!(
                        "Domain '{name}' has {snapshots} snapshot(s), whose records stay with its definition here; delete them first (with «metadata» to keep their files), or migrate without «undefine_source»"
                    ),
                ));
            }
        }
        let disks = dom.disks();
        for d in &params.disks {
            if !disks.iter().any(|x| x.target == d.target) {
                return Err(refuse(ErrorCode::NoDisk, format!("Domain '{name}' has no disk '{}'", d.target)));
            }
        }
        if let Some(missing) = disks.iter().find(|x| !params.disks.iter().any(|d| d.target == x.target)) {
            return Err(refuse(
                ErrorCode::InvalidArg,
                format!("The migration plan of domain '{name}' leaves out disk {}; plan every disk", missing.target),
            ));
        }
        if !offline {
            let mut mon = self.monitor(name)?;
            let jobs = mon.exec("query-block-jobs", Value::Null)?;
            if let Some(job) = jobs.as_array().and_then(|j| j.first()) {
                return Err(refuse(
                    ErrorCode::InvalidState,
                    format!(
                        "Domain '{name}' has a block job ({}) running; wait for it or abort it first, then migrate",
                        job["device"].as_str().unwrap_or("?")
                    ),
                ));
            }
        }
        call.emit_text(&text);
        Ok(())
    }

    /// Moves the copied disks and the memory of `name` to the destination's endpoints.
    pub(crate) fn migrate_perform_impl(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let lock = self.lock_domain(name, call)?;
        let mut mon = self.monitor(name)?;
        let was_running = mon.status()? == "running";
        let out = Outgoing {
            id: params.id.clone(),
            marker: Marker { path: params.endpoints.commit_marker.clone() },
            copied: params.copied().map(|d| d.target.clone()).collect(),
            was_running,
            undefine: flags & LV_MIGRATE_UNDEFINE_SOURCE != 0,
        };
        let mut pending = self.begin(name, Change::MigrateOut(out.clone()))?;
        // Others see the migration in progress through its record; the waits hold no lock.
        drop(lock);
        let moved = self.send(&mut mon, name, params, flags, &mut pending, call);
        let _lock = self.state.lock(name)?;
        match moved {
            Ok(sent) => {
                pending.phase("migrated")?;
                failpoint::hit("migrate-out:migrated");
                pending.hand_on();
                call.emit(&sent);
                Ok(())
            }
            Err(e) => {
                let aborted = self.take_abort_request(name)?;
                drop(mon);
                self.put_back(name, &out)?;
                pending.done()?;
                Err(match aborted {
                    true => DriverError::new(
                        ErrorCode::Cancelled,
                        format!("The migration of domain '{name}' was aborted; the domain is here as before"),
                    ),
                    false => DriverError::new(
                        e.code,
                        format!("{}; the migration was undone and domain '{name}' is here as before", e.message),
                    ),
                })
            }
        }
    }

    /// The steps of perform that talk to QEMU.
    fn send(
        &self,
        mon: &mut Monitor,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        pending: &mut crate::intent::Pending,
        call: &mut Call,
    ) -> DriverResult<MigrateSent> {
        let memory_uri = params.endpoints.memory_uri.as_deref().ok_or_else(|| {
            DriverError::new(ErrorCode::InvalidArg, format!("The migration of domain '{name}' has no memory endpoint"))
        })?;
        mon.exec(
            "migrate-set-capabilities",
            json!({ "capabilities": [
                { "capability": "events", "state": true },
                { "capability": "pause-before-switchover", "state": true },
            ] }),
        )?;
        mon.exec("migrate-set-parameters", json!({ "max-bandwidth": params.bandwidth.unwrap_or(0) }))?;
        let copied: Vec<String> = params.copied().map(|d| d.target.clone()).collect();
        if !copied.is_empty() {
            let server = params.endpoints.disk_uri.as_deref().and_then(nbd_server).ok_or_else(|| {
                DriverError::new(
                    ErrorCode::InvalidArg,
                    format!(
                        "The migration of domain '{name}' copies disks but has no disk endpoint it can use ({})",
                        params.endpoints.disk_uri.as_deref().unwrap_or("none")
                    ),
                )
            })?;
            pending.phase("mirroring")?;
            for target in &copied {
                let node = mon.top_node(target)?;
                let mirror = mirror_node(target);
                mon.exec(
                    "blockdev-add",
                    json!({ "driver": "nbd", "node-name": mirror, "server": server, "export": target }),
                )?;
                let mut job = json!({ "job-id": mirror, "device": node, "target": mirror, "sync": "full" });
                if let Some(b) = params.bandwidth {
                    job["speed"] = json!(b);
                }
                mon.exec("blockdev-mirror", job)?;
            }
            failpoint::hit("migrate-out:mirroring");
            for target in &copied {
                mon.wait_block_job(&mirror_node(target), Until::Ready, call, &format!("copying disk {target}"))?;
            }
        }
        if flags & LV_MIGRATE_LIVE == 0 && mon.status()? == "running" {
            mon.exec("stop", Value::Null)?;
        }
        pending.phase("memory")?;
        failpoint::hit("migrate-out:memory");
        mon.exec("migrate", json!({ "uri": memory_uri }))?;
        self.wait_memory(mon, name, params.timeout, "pre-switchover", call)?;
        // The guest is paused: end each mirror in step, then the memory's last pass.
        for target in &copied {
            mon.complete_mirror_on_source(&mirror_node(target))?;
            mon.exec("blockdev-del", json!({ "node-name": mirror_node(target) }))?;
        }
        failpoint::hit("migrate-out:switchover");
        mon.exec("migrate-continue", json!({ "state": "pre-switchover" }))?;
        let info = self.wait_memory(mon, name, None, "completed", call)?;
        Ok(MigrateSent { memory: info["ram"]["transferred"].as_u64().unwrap_or(0) })
    }

    /// Waits for the memory's move to reach `until`, reporting progress; pauses the guest once
    /// `timeout` seconds have gone by so that the move can end. Returns `query-migrate`.
    fn wait_memory(
        &self,
        mon: &mut Monitor,
        name: &str,
        timeout: Option<u64>,
        until: &str,
        call: &mut Call,
    ) -> DriverResult<Value> {
        let began = Instant::now();
        let mut paused = false;
        loop {
            let info = mon.exec("query-migrate", Value::Null)?;
            let status = info["status"].as_str().unwrap_or("");
            if status == until {
                return Ok(info);
            }
            if matches!(status, "failed" | "cancelled" | "completed") {
                let why = info["error-desc"].as_str().unwrap_or(status);
                return Err(DriverError::new(
                    ErrorCode::Hypervisor,
                    format!("Moving the memory of domain '{name}' failed: {why}"),
                ));
            }
            if call.is_cancelled() {
                let _ = mon.exec("migrate_cancel", Value::Null);
                return Err(DriverError::new(
                    ErrorCode::Cancelled,
                    format!("The migration of domain '{name}' was cancelled"),
                ));
            }
            if let Some(t) = timeout
                && !paused
                && began.elapsed() >= Duration::from_secs(t)
                && mon.status()? == "running"
            {
                mon.exec("stop", Value::Null)?;
                paused = true;
                call.log(
                    Level::Warning,
                    &format!(
                        "domain '{name}': its memory had not moved after {t} s; the guest is paused so that it does"
                    ),
                );
            }
            let ram = &info["ram"];
            call.progress(
                ram["transferred"].as_u64().unwrap_or(0),
                ram["total"].as_u64().unwrap_or(0),
                "moving memory",
            );
            mon.next_event(TICK)?;
        }
    }

    /// Puts the source back as it was before perform: no migration, no mirrors, running if it
    /// ran. Safe to repeat.
    fn put_back(&self, name: &str, out: &Outgoing) -> DriverResult {
        if self.running(name)?.is_none() {
            return Ok(());
        }
        let mut mon = self.monitor(name)?;
        let status = mon.exec("query-migrate", Value::Null)?;
        if matches!(status["status"].as_str(), Some("active" | "pre-switchover" | "setup" | "device")) {
            let _ = mon.exec("migrate_cancel", Value::Null);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let s = mon.exec("query-migrate", Value::Null)?;
                if !matches!(
                    s["status"].as_str(),
                    Some("active" | "pre-switchover" | "setup" | "device" | "cancelling")
                ) {
                    break;
                }
                mon.next_event(TICK)?;
            }
        }
        for target in &out.copied {
            mon.cancel_job(&mirror_node(target));
            let _ = mon.exec("blockdev-del", json!({ "node-name": mirror_node(target) }));
        }
        if out.was_running && mon.status()? != "running" {
            mon.exec("cont", Value::Null)?;
        }
        Ok(())
    }

    /// Ends the migration of `name` at the source: stops it, or with `LV_MIGRATE_FAILED` puts
    /// it back.
    pub(crate) fn migrate_confirm_impl(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let _lock = self.lock_beside(name, call)?;
        if flags & LV_MIGRATE_OFFLINE != 0 {
            // Nothing ran here: only the definition may go.
            if flags & (LV_MIGRATE_UNDEFINE_SOURCE | LV_MIGRATE_FAILED) == LV_MIGRATE_UNDEFINE_SOURCE {
                self.forget_definition(name)?;
            }
            return Ok(());
        }
        let intent = self.pending_change(name)?;
        let Some(intent) = intent.filter(|i| matches!(&i.change, Change::MigrateOut(o) if o.id == params.id)) else {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!("Domain '{name}' has no migration {} leaving; it was settled already", params.id),
            ));
        };
        let Change::MigrateOut(out) = intent.change.clone() else { unreachable!("checked above") };
        let mut pending = self.resume_pending(name, intent)?;
        if flags & LV_MIGRATE_FAILED != 0 {
            self.put_back(name, &out)?;
            return pending.done();
        }
        pending.phase("confirming")?;
        self.leave(name, &out, call)?;
        pending.done()
    }

    /// The source's last steps once the destination has the domain.
    fn leave(&self, name: &str, out: &Outgoing, call: &mut Call) -> DriverResult {
        if self.running(name)?.is_some() {
            self.stop(name, call)?;
        }
        failpoint::hit("migrate-out:stopped");
        if out.undefine {
            self.forget_definition(name)?;
        }
        if let Some(m) = &out.marker.path {
            remove_durably(Path::new(m)).map_err(|e| DriverError::io("remove", Path::new(m), e))?;
        }
        Ok(())
    }

    fn forget_definition(&self, name: &str) -> DriverResult {
        let def = self.state.definition(name)?;
        remove_durably(&def).map_err(|e| DriverError::io("remove", &def, e))?;
        self.state.clear_run(name)
    }

    /// Settles the leaving a killed call left: the destination committed, the source stops;
    /// else it is put back. When the destination cannot be seen from here and the guest had
    /// moved, the source stays paused: resuming it could run the guest twice.
    pub(crate) fn settle_outgoing(
        &self,
        name: &str,
        out: &Outgoing,
        phase: &str,
        call: &mut Call,
    ) -> DriverResult<String> {
        let at = |p: &str| OUT_PHASES.iter().position(|o| *o == p);
        if at(phase) >= at("confirming") || out.marker.committed() == Some(true) {
            self.leave(name, out, call)?;
            return Ok(format!(
                "the destination had committed, so the domain's copy here was stopped{}",
                if out.undefine { " and its definition removed" } else { "" }
            ));
        }
        let moved = match self.running(name)? {
            Some(_) => self.monitor(name)?.status()? == "postmigrate",
            None => false,
        };
        if moved && out.marker.committed().is_none() {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "domain '{name}' had moved its memory to a destination this host cannot see, so it stays paused here; if the domain runs at the destination, destroy it here, else resume it here"
                ),
            ));
        }
        self.put_back(name, out)?;
        Ok(if self.running(name)?.is_some() {
            "the destination had not committed, so the migration was undone and the domain runs on here".to_string()
        } else {
            "the destination had not committed; the domain is shut off here (its QEMU had ended)".to_string()
        })
    }

    /// Aborts the migration of `name` that another process runs.
    pub(crate) fn abort_job_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        let none = || {
            DriverError::new(ErrorCode::InvalidState, format!("Domain '{name}' has no migration in progress to abort"))
        };
        let intent = self.pending_change(name)?.filter(|i| i.owner_alive()).ok_or_else(none)?;
        let Change::MigrateOut(out) = &intent.change else { return Err(none()) };
        let at = |p: &str| OUT_PHASES.iter().position(|o| *o == p);
        if at(&intent.phase) >= at("migrated") {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "The migration of domain '{name}' is committing at its destination and can no longer be aborted"
                ),
            ));
        }
        let flag = self.state.run_dir(name)?.join("abort");
        luavirt_plugin_api::fsutil::write_atomic(&flag, format!("{}", std::process::id()).as_bytes())
            .map_err(|e| DriverError::io("write", &flag, e))?;
        let mut mon = self.monitor(name)?;
        let _ = mon.exec("migrate_cancel", Value::Null);
        for target in &out.copied {
            let _ = mon.exec("block-job-cancel", json!({ "device": mirror_node(target), "force": true }));
        }
        call.log(Level::Info, &format!("domain '{name}': its migration (pid {}) was asked to stop", intent.pid));
        Ok(())
    }

    /// Whether another process asked to abort the migration of `name` (the request is taken).
    fn take_abort_request(&self, name: &str) -> DriverResult<bool> {
        let flag = self.state.run_dir(name)?.join("abort");
        let asked = flag.exists();
        remove_durably(&flag).map_err(|e| DriverError::io("remove", &flag, e))?;
        Ok(asked)
    }
}
