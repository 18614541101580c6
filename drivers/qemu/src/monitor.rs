//! A running domain's QMP monitor, with what snapshot and block-job work needs on top of raw
//! QMP: finding a disk's nodes, waiting for jobs by their events (with progress reports and
//! cancellation), and errors that name the domain.

use crate::QemuDriver;
use crate::qmp::{Qmp, QmpError};
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a monitor command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a running QEMU may take to greet a new monitor client (it does at once unless
/// it is stopped or hung).
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a wait reports progress and checks for cancellation when QEMU is quiet.
const TICK: Duration = Duration::from_millis(250);

/// The monitor of one running domain.
pub struct Monitor {
    qmp: Qmp,
    domain: String,
    /// Keeps the monitor ours while connected.
    _claim: luavirt_plugin_api::fsutil::LockGuard,
}

/// What to wait for in a block job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// `BLOCK_JOB_READY`: a copy or active commit mirrors every new write.
    Ready,
    /// `BLOCK_JOB_COMPLETED`: the job finished.
    Done,
}

impl QemuDriver {
    /// Connects to the monitor of `name`, which must be running.
    pub(crate) fn monitor(&self, name: &str) -> DriverResult<Monitor> {
        if self.running(name)?.is_none() {
            return Err(DriverError::new(ErrorCode::InvalidState, format!("Domain '{name}' is not running")));
        }
        let (sock, claim) = self.state.claim_monitor(name)?;
        let qmp = Qmp::connect(&sock, GREETING_TIMEOUT, COMMAND_TIMEOUT).map_err(|e| {
            DriverError::new(ErrorCode::Hypervisor, format!("Cannot reach the QEMU monitor of domain '{name}': {e}"))
        })?;
        Ok(Monitor { qmp, domain: name.to_string(), _claim: claim })
    }
}

impl Monitor {
    fn fail(&self, what: &str, e: QmpError) -> DriverError {
        DriverError::new(ErrorCode::Hypervisor, format!("QEMU of domain '{}' refused {what}: {e}", self.domain))
    }

    /// Runs a QMP command.
    pub fn exec(&mut self, command: &str, args: Value) -> DriverResult<Value> {
        let args = if args.is_null() { None } else { Some(args) };
        self.qmp.execute(command, args).map_err(|e| self.fail(command, e))
    }

    /// QEMU's run status (`running`, `paused`, `postmigrate`, ...).
    pub fn status(&mut self) -> DriverResult<String> {
        Ok(self.exec("query-status", Value::Null)?["status"].as_str().unwrap_or("").to_string())
    }

    /// The node at the top of disk `target` (the one its device writes to). Asked of the
    /// device itself (`qom-get drive`), not of `query-block`, whose reply nests one level per
    /// backing image: a chain of hundreds of images is too deep to parse.
    pub fn top_node(&mut self, target: &str) -> DriverResult<String> {
        let path = format!("/machine/peripheral/{target}");
        let node = match self.qmp.execute("qom-get", Some(json!({ "path": path, "property": "drive" }))) {
            Ok(v) => v.as_str().unwrap_or("").to_string(),
            Err(QmpError::Command(_)) => {
                return Err(DriverError::new(
                    ErrorCode::NoDisk,
                    format!("QEMU of domain '{}' has no disk '{target}'", self.domain),
                ));
            }
            Err(e) => return Err(self.fail("qom-get", e)),
        };
        if node.is_empty() {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!("Disk {target} of domain '{}' has no medium", self.domain),
            ));
        }
        Ok(node)
    }

    /// Whether QEMU has a device with id `id` (a disk's target, a controller).
    pub fn has_device(&mut self, id: &str) -> DriverResult<bool> {
        let path = format!("/machine/peripheral/{id}");
        match self.qmp.execute("qom-get", Some(json!({ "path": path, "property": "type" }))) {
            Ok(_) => Ok(true),
            Err(QmpError::Command(_)) => Ok(false),
            Err(e) => Err(self.fail("qom-get", e)),
        }
    }

    /// Whether QEMU has a block node named `node`.
    pub fn has_node(&mut self, node: &str) -> DriverResult<bool> {
        let nodes = self.exec("query-named-block-nodes", json!({ "flat": true }))?;
        Ok(nodes.as_array().into_iter().flatten().any(|n| n["node-name"] == node))
    }

    /// Disk `target`'s active image file and format, as QEMU sees them (always a plain
    /// path: definitions hold nothing else).
    pub fn active_image(&mut self, target: &str) -> DriverResult<(String, String)> {
        let node = self.top_node(target)?;
        let nodes = self.exec("query-named-block-nodes", json!({ "flat": true }))?;
        let n = nodes.as_array().into_iter().flatten().find(|n| n["node-name"] == node.as_str()).ok_or_else(|| {
            DriverError::new(
                ErrorCode::Hypervisor,
                format!("QEMU of domain '{}' names node {node} for disk {target} but does not list it", self.domain),
            )
        })?;
        Ok((plain_file(n["file"].as_str().unwrap_or("")), n["drv"].as_str().unwrap_or("").to_string()))
    }

    /// The format node reading `file`, if QEMU has the file open: not its protocol node,
    /// nor a filter a job put above it (which reports the same file).
    pub fn node_of_file(&mut self, file: &str) -> DriverResult<Option<String>> {
        const NOT_FORMATS: &[&str] = &[
            "file",
            "host_device",
            "mirror_top",
            "commit_top",
            "copy-before-write",
            "copy-on-read",
            "throttle",
            "preallocate",
            "compress",
            "blkdebug",
        ];
        let nodes = self.exec("query-named-block-nodes", json!({ "flat": true }))?;
        Ok(nodes
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["file"].as_str() == Some(file) && !NOT_FORMATS.contains(&n["drv"].as_str().unwrap_or("")))
            .and_then(|n| n["node-name"].as_str().map(str::to_string)))
    }

    /// A node name starting with `prefix` that no node has (QEMU needs one for each new
    /// overlay; names are at most 31 characters). Made from the time, the process and a
    /// counter rather than asked of QEMU, whose list of nodes grows with the backing chain; a
    /// clash would only make QEMU refuse the whole transaction, which changes nothing.
    pub fn fresh_node_name(&mut self, prefix: &str) -> DriverResult<String> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mix = (nanos as u32) ^ std::process::id().rotate_left(16) ^ n.wrapping_mul(0x9e37_79b9);
        Ok(format!("{prefix}-{mix:08x}"))
    }

    /// Waits for block job `job` to be ready or done, reporting progress and honouring
    /// cancellation (the job is then cancelled and `Cancelled` returned).
    pub fn wait_block_job(&mut self, job: &str, until: Until, call: &mut Call, stage: &str) -> DriverResult<()> {
        loop {
            if call.is_cancelled() {
                let _ = self.qmp.execute("block-job-cancel", Some(json!({ "device": job, "force": true })));
                self.wait_gone(job);
                return Err(DriverError::new(
                    ErrorCode::Cancelled,
                    format!("{stage} on domain '{}' was cancelled; the job was stopped", self.domain),
                ));
            }
            let event = self.qmp.next_event(TICK).map_err(|e| self.fail("waiting for a block job", e))?;
            let Some(ev) = event else {
                match self.block_job(job)? {
                    Some(info) => {
                        if crate::state::may_report(call) {
                            call.progress(
                                info["offset"].as_u64().unwrap_or(0),
                                info["len"].as_u64().unwrap_or(0),
                                stage,
                            );
                        }
                        if until == Until::Ready && info["ready"].as_bool() == Some(true) {
                            return Ok(());
                        }
                    }
                    // Finished between two looks, and its event went to another client.
                    None => return Ok(()),
                }
                continue;
            };
            if ev["data"]["device"].as_str() != Some(job) {
                continue;
            }
            match ev["event"].as_str().unwrap_or("") {
                "BLOCK_JOB_READY" if until == Until::Ready => {
                    if crate::state::may_report(call) {
                        let d = &ev["data"];
                        call.progress(d["offset"].as_u64().unwrap_or(0), d["len"].as_u64().unwrap_or(0), stage);
                    }
                    return Ok(());
                }
                "BLOCK_JOB_COMPLETED" => {
                    if let Some(err) = ev["data"]["error"].as_str() {
                        return Err(DriverError::new(
                            ErrorCode::Hypervisor,
                            format!("{stage} on domain '{}' failed: {err}", self.domain),
                        ));
                    }
                    let len = ev["data"]["len"].as_u64().unwrap_or(0);
                    if crate::state::may_report(call) {
                        call.progress(len, len, stage);
                    }
                    return Ok(());
                }
                "BLOCK_JOB_CANCELLED" => {
                    return Err(DriverError::new(
                        ErrorCode::Cancelled,
                        format!("{stage} on domain '{}' was cancelled", self.domain),
                    ));
                }
                _ => {}
            }
        }
    }

    /// The next event, waiting up to `timeout`; `None` when none came.
    pub fn next_event(&mut self, timeout: Duration) -> DriverResult<Option<Value>> {
        self.qmp.next_event(timeout).map_err(|e| self.fail("waiting for an event", e))
    }

    /// Ends ready mirror `job` with its target in step with the source (`block-job-cancel`
    /// of a ready job), and waits until it has.
    pub fn complete_mirror_on_source(&mut self, job: &str) -> DriverResult {
        self.exec("block-job-cancel", json!({ "device": job }))?;
        loop {
            let ev = self.next_event(COMMAND_TIMEOUT)?.ok_or_else(|| {
                DriverError::new(
                    ErrorCode::Hypervisor,
                    format!("QEMU of domain '{}' did not end job {job} in {COMMAND_TIMEOUT:?}", self.domain),
                )
            })?;
            if ev["data"]["device"].as_str() != Some(job) {
                continue;
            }
            match ev["event"].as_str() {
                Some("BLOCK_JOB_COMPLETED") => match ev["data"]["error"].as_str() {
                    Some(err) => {
                        return Err(DriverError::new(
                            ErrorCode::Hypervisor,
                            format!("Job {job} of domain '{}' failed: {err}", self.domain),
                        ));
                    }
                    None => return Ok(()),
                },
                Some("BLOCK_JOB_CANCELLED") => {
                    return Err(DriverError::new(
                        ErrorCode::Cancelled,
                        format!("Job {job} of domain '{}' was cancelled before its copy was complete", self.domain),
                    ));
                }
                _ => {}
            }
        }
    }

    /// Stops block job `job` at once, if QEMU has it, and waits until it has gone.
    pub fn cancel_job(&mut self, job: &str) {
        if self.qmp.execute("block-job-cancel", Some(json!({ "device": job, "force": true }))).is_ok() {
            self.wait_gone(job);
        }
    }

    /// Waits until block job `job` has gone (after a cancel).
    fn wait_gone(&mut self, job: &str) {
        loop {
            match self.qmp.next_event(COMMAND_TIMEOUT) {
                Ok(Some(ev))
                    if ev["data"]["device"].as_str() == Some(job)
                        && matches!(ev["event"].as_str(), Some("BLOCK_JOB_CANCELLED" | "BLOCK_JOB_COMPLETED")) =>
                {
                    return;
                }
                Ok(Some(_)) => {}
                _ => return,
            }
        }
    }

    /// The `query-block-jobs` entry of job `job`.
    pub fn block_job(&mut self, job: &str) -> DriverResult<Option<Value>> {
        let jobs = self.exec("query-block-jobs", Value::Null)?;
        Ok(jobs.as_array().into_iter().flatten().find(|j| j["device"].as_str() == Some(job)).cloned())
    }

    /// Runs a job command (`snapshot-save`, ...) with `job-id` and waits for it to conclude;
    /// returns its error, then dismisses it.
    pub fn run_job(&mut self, command: &str, mut args: Value, id: &str) -> DriverResult<()> {
        args["job-id"] = json!(id);
        self.exec(command, args)?;
        loop {
            let ev = self.qmp.next_event(COMMAND_TIMEOUT).map_err(|e| self.fail(command, e))?;
            let Some(ev) = ev else {
                return Err(DriverError::new(
                    ErrorCode::Hypervisor,
                    format!("QEMU of domain '{}' did not finish {command}", self.domain),
                ));
            };
            if ev["event"] == "JOB_STATUS_CHANGE" && ev["data"]["id"] == id && ev["data"]["status"] == "concluded" {
                break;
            }
        }
        let jobs = self.exec("query-jobs", Value::Null)?;
        let error = jobs
            .as_array()
            .into_iter()
            .flatten()
            .find(|j| j["id"] == id)
            .and_then(|j| j["error"].as_str().map(str::to_string));
        self.exec("job-dismiss", json!({ "id": id }))?;
        match error {
            Some(e) => Err(DriverError::new(
                ErrorCode::Hypervisor,
                format!("QEMU of domain '{}' failed {command}: {e}", self.domain),
            )),
            None => Ok(()),
        }
    }

    /// Waits for job `id` (if QEMU has it) to conclude, then dismisses it: what a killed
    /// call that ran the job would have done.
    pub fn settle_job(&mut self, id: &str) -> DriverResult {
        let find = |mon: &mut Monitor| -> DriverResult<Option<String>> {
            let jobs = mon.exec("query-jobs", Value::Null)?;
            Ok(jobs
                .as_array()
                .into_iter()
                .flatten()
                .find(|j| j["id"] == id)
                .map(|j| j["status"].as_str().unwrap_or("").to_string()))
        };
        let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
        loop {
            match find(self)?.as_deref() {
                None => return Ok(()),
                Some("concluded") => {
                    self.exec("job-dismiss", json!({ "id": id }))?;
                    return Ok(());
                }
                Some(_) if std::time::Instant::now() >= deadline => {
                    return Err(DriverError::new(
                        ErrorCode::Hypervisor,
                        format!("QEMU of domain '{}' did not finish job {id} in {COMMAND_TIMEOUT:?}", self.domain),
                    ));
                }
                Some(_) => {
                    let _ = self.qmp.next_event(TICK).map_err(|e| self.fail("waiting for a job", e))?;
                }
            }
        }
    }

    /// Waits for an incoming or outgoing migration to end; `Ok` when it completed.
    pub fn wait_migration(&mut self, call: &mut Call, stage: &str) -> DriverResult<()> {
        loop {
            let info = self.exec("query-migrate", Value::Null)?;
            match info["status"].as_str().unwrap_or("") {
                "completed" => {
                    // The whole of it moved: the last report says so.
                    let total = info["ram"]["total"].as_u64().unwrap_or(0);
                    if total > 0 && crate::state::may_report(call) {
                        call.progress(total, total, stage);
                    }
                    return Ok(());
                }
                "failed" | "cancelled" => {
                    let why = info["error-desc"].as_str().unwrap_or("no reason given");
                    return Err(DriverError::new(
                        ErrorCode::Hypervisor,
                        format!("{stage} of domain '{}' failed: {why}", self.domain),
                    ));
                }
                _ => {
                    let ram = &info["ram"];
                    if crate::state::may_report(call) {
                        call.progress(
                            ram["transferred"].as_u64().unwrap_or(0),
                            ram["total"].as_u64().unwrap_or(0),
                            stage,
                        );
                    }
                }
            }
            // MIGRATION events wake this up as soon as the state changes.
            let _ = self.qmp.next_event(TICK).map_err(|e| self.fail("waiting for a migration", e))?;
        }
    }
}

/// Quotes `s` for a POSIX shell (QEMU runs `exec:` migration URIs through `sh -c`).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The image file QEMU names `file`: itself, or for a `json:{...}` description (an image
/// opened with options, such as an overlay whose backing QEMU set) the filename inside it.
pub fn plain_file(file: &str) -> String {
    fn find(v: &Value) -> Option<String> {
        if let Some(f) = v.get("filename").and_then(Value::as_str) {
            return Some(f.to_string());
        }
        v.get("file").and_then(find)
    }
    file.strip_prefix("json:")
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .and_then(|v| find(&v))
        .unwrap_or_else(|| file.to_string())
}
