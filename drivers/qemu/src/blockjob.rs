//! Block jobs: `drive-mirror` (copy), `block-stream` (pull), `block-commit` (commit), and
//! their info, cancel and pivot. Pull and commit also work on a shut-off domain through
//! `qemu-img` (`rebase`, `commit`). A pivot points the definition at the new image.
//!
//! The domain's lock is held to start a job and to pivot, not while waiting: other calls
//! (a disk-set change, `blockjob --abort`) go on meanwhile. A job the call is to end (wait,
//! then pivot or finish) is recorded ([`Ending`]), and so is a pivot ([`Pivot`]): if luavirt
//! is killed, the next call finishes the pivot QEMU made (the definition follows the disk)
//! or cancels the job and removes the copy it made.

use crate::QemuDriver;
use crate::images::{self, qemu_img};
use crate::intent::Change;
use crate::monitor::{Monitor, Until};
use crate::snapshot::{known_images, mirror_job};
use luavirt_plugin_api::abi::{
    LV_BLOCK_COPY_REUSE_EXT, LV_BLOCK_COPY_SHALLOW, LV_BLOCK_JOB_FINISH, LV_BLOCK_JOB_PIVOT, LV_BLOCK_JOB_WAIT,
};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::Level;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::records::{BlockJob, CommitParams, CopyParams, PullParams};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

/// Job ids luavirt gives block jobs on disk `target`, and the kind each is.
fn job_ids(target: &str) -> [(String, &'static str); 4] {
    [
        (format!("copy-{target}"), "copy"),
        (format!("pull-{target}"), "pull"),
        (format!("commit-{target}"), "commit"),
        (mirror_job(target), "copy"),
    ]
}

/// Adds a speed limit (bytes/s) as QMP's `speed`.
fn with_speed(mut args: serde_json::Value, bandwidth: Option<u64>) -> serde_json::Value {
    if let Some(bps) = bandwidth {
        args["speed"] = json!(bps);
    }
    args
}

fn invalid(m: String) -> DriverError {
    DriverError::new(ErrorCode::InvalidArg, m)
}

/// A copy or commit the call waits for and then ends, as recorded before the job starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Ending {
    /// `copy` or `commit`.
    pub kind: String,
    /// QEMU's job id.
    pub job: String,
    /// The disk.
    pub disk: String,
    /// Its image when the job began.
    pub source: String,
    /// Where the disk goes at a pivot: the copy, or the commit's base.
    pub target: String,
    /// luavirt made `target` (a copy without `--reuse-external`): it goes if undone.
    pub created: bool,
    /// Switch to `target` when ready.
    pub pivot: bool,
    /// End a copy on the source when ready, keeping the copy.
    pub finish: bool,
}

/// A pivot to a new image, as recorded before QEMU is asked to make it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Pivot {
    /// The disk.
    pub disk: String,
    /// The job that pivots.
    pub job: String,
    /// The image the disk goes to, when known (a copy's file, a commit's base).
    pub to: Option<String>,
}

impl QemuDriver {
    /// The block job running on disk `target`: `(job id, kind, QEMU's entry)`.
    fn job_on(
        &self,
        mon: &mut Monitor,
        target: &str,
    ) -> DriverResult<Option<(String, &'static str, serde_json::Value)>> {
        for (id, kind) in job_ids(target) {
            if let Some(info) = mon.block_job(&id)? {
                let kind = if kind == "commit" && info["type"] == "mirror" { "active-commit" } else { kind };
                return Ok(Some((id, kind, info)));
            }
        }
        Ok(None)
    }

    /// After a pivot: the definition follows the image QEMU now uses for `target`.
    fn follow_pivot(&self, name: &str, mon: &mut Monitor, target: &str) -> DriverResult {
        let (file, format) = mon.active_image(target)?;
        let (_, mut dom) = self.state.read_definition(name)?;
        if dom.disk(target).and_then(|d| d.source.path().map(str::to_string)).as_deref() == Some(file.as_str()) {
            return Ok(());
        }
        dom.set_disk_source(target, &file, &format).map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
        self.state.write_definition(name, &dom.to_xml())?;
        failpoint::hit("pivot:definition");
        Ok(())
    }

    /// Completes the ready job `job` on `target`, so QEMU switches the disk to `to`, then
    /// points the definition there; recorded first, so a kill half-way is finished later.
    fn pivot(
        &self,
        name: &str,
        mon: &mut Monitor,
        target: &str,
        job: &str,
        to: Option<String>,
        call: &mut Call,
    ) -> DriverResult {
        let pending = self.begin(name, Change::Pivot(Pivot { disk: target.to_string(), job: job.to_string(), to }))?;
        failpoint::hit("pivot:begun");
        mon.exec("block-job-complete", json!({ "device": job }))?;
        mon.wait_block_job(job, Until::Done, call, "switching to the new image")?;
        failpoint::hit("pivot:switched");
        self.follow_pivot(name, mon, target)?;
        pending.done()
    }

    /// Settles a pivot a killed call left: the definition follows the disk if QEMU switched
    /// it, and a ready job is completed. Says what it did.
    pub(crate) fn settle_pivot(&self, name: &str, p: &Pivot, call: &mut Call) -> DriverResult<String> {
        if self.running(name)?.is_none() {
            return Ok(format!("QEMU is not running, so the definition keeps disk {} where it was", p.disk));
        }
        let mut mon = self.monitor(name)?;
        if let Some(info) = mon.block_job(&p.job)?
            && info["ready"].as_bool() == Some(true)
        {
            mon.exec("block-job-complete", json!({ "device": p.job }))?;
            mon.wait_block_job(&p.job, Until::Done, call, "switching to the new image")?;
        }
        if mon.block_job(&p.job)?.is_some() {
            return Ok(format!("the job on disk {} is not ready and goes on; the disk stays where it was", p.disk));
        }
        self.follow_pivot(name, &mut mon, &p.disk)?;
        Ok(format!("the definition now names the image QEMU uses for disk {}", p.disk))
    }

    /// Settles a job a killed call was to end: if QEMU switched the disk the definition
    /// follows; else the job is cancelled and a copy luavirt made removed.
    pub(crate) fn settle_ending(&self, name: &str, e: &Ending, phase: &str, call: &mut Call) -> DriverResult<String> {
        if self.running(name)?.is_some() {
            let mut mon = self.monitor(name)?;
            let (file, _) = mon.active_image(&e.disk)?;
            if file == e.target && file != e.source {
                self.follow_pivot(name, &mut mon, &e.disk)?;
                return Ok(format!("QEMU had switched disk {}; the definition now names {}", e.disk, e.target));
            }
            if mon.block_job(&e.job)?.is_some() {
                mon.exec("block-job-cancel", json!({ "device": e.job, "force": true }))?;
                let _ = mon.wait_block_job(&e.job, Until::Done, call, "cancelling the job");
            } else if phase == "finishing" {
                return Ok(format!("the copy ended on the source; {} is kept", e.target));
            }
        } else if phase == "pivoting" {
            return Ok(format!(
                "QEMU is not running, so it cannot say whether it switched disk {}: the definition keeps {}, and {} stays as it is",
                e.disk, e.source, e.target
            ));
        }
        self.remove_unnamed(name, e.created.then_some(e.target.as_str()), call)?;
        Ok(format!(
            "the {} job on disk {} was cancelled{}; the disk stays on {}",
            e.kind,
            e.disk,
            if e.created { " and its copy removed" } else { "" },
            e.source
        ))
    }

    /// Removes `file` unless the definition or a snapshot names it.
    fn remove_unnamed(&self, name: &str, file: Option<&str>, call: &mut Call) -> DriverResult {
        let Some(file) = file else { return Ok(()) };
        let (_, dom) = self.state.read_definition(name)?;
        if known_images(&dom, &self.read_tree(name)?).contains(file) {
            return Ok(());
        }
        if let Err(e) = std::fs::remove_file(file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            call.log(Level::Warning, &format!("domain '{name}': could not remove {file}: {e}"));
        }
        Ok(())
    }

    /// `domain_block_copy`.
    pub(crate) fn block_copy_impl(
        &self,
        name: &str,
        target: &str,
        params: &CopyParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let lock = self.lock_domain(name, call)?;
        let dest = params.dest.clone();
        if dest.is_empty() {
            return Err(invalid("Block copy needs a destination".into()));
        }
        if !Path::new(&dest).is_absolute() {
            return Err(invalid(format!("The copy's destination {dest} must be an absolute path")));
        }
        let reuse = flags & LV_BLOCK_COPY_REUSE_EXT != 0;
        match (Path::new(&dest).exists(), reuse) {
            (true, false) => {
                return Err(invalid(format!(
                    "{dest} already exists; pass «reuse_external» to copy into it, or choose another file"
                )));
            }
            (false, true) => {
                return Err(invalid(format!(
                    "{dest} does not exist, and «reuse_external» copies into an existing file"
                )));
            }
            _ => {}
        }
        let mut mon = self.monitor(name)?;
        if let Some((id, ..)) = self.job_on(&mut mon, target)? {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "Disk {target} of domain '{name}' already has block job {id}; end it first (abort the block job of disk {target})"
                ),
            ));
        }
        let node = mon.top_node(target)?;
        let (source, source_format) = mon.active_image(target)?;
        let format = params.format.clone().unwrap_or(source_format);
        let job = format!("copy-{target}");
        let copy = Ending {
            kind: "copy".to_string(),
            job: job.clone(),
            disk: target.to_string(),
            source,
            target: dest.clone(),
            created: !reuse,
            pivot: flags & LV_BLOCK_JOB_PIVOT != 0,
            finish: flags & LV_BLOCK_JOB_FINISH != 0,
        };
        // A job the call will end is recorded; one left running is the user's to end.
        let ends = flags & LV_BLOCK_JOB_WAIT != 0 && (copy.pivot || copy.finish);
        let pending = if ends { Some(self.begin(name, Change::BlockJob(copy.clone()))?) } else { None };
        let started = mon.exec(
            "drive-mirror",
            with_speed(
                json!({
                    "job-id": job, "device": node, "target": dest, "format": format,
                    "sync": if flags & LV_BLOCK_COPY_SHALLOW != 0 { "top" } else { "full" },
                    "mode": if reuse { "existing" } else { "absolute-paths" },
                }),
                params.bandwidth,
            ),
        );
        if let Err(e) = started {
            if let Some(p) = pending {
                p.done()?;
            }
            return Err(e);
        }
        failpoint::hit("block-copy:started");
        drop(lock);
        if flags & LV_BLOCK_JOB_WAIT == 0 {
            return Ok(());
        }
        let ready = mon.wait_block_job(&job, Until::Ready, call, "copying");
        let Some(mut pending) = pending else { return ready };
        let _lock = self.state.lock(name)?;
        if let Err(e) = ready {
            // Cancelled here or by `blockjob --abort`, or failed: the job is gone.
            self.remove_unnamed(name, copy.created.then_some(copy.target.as_str()), call)?;
            pending.done()?;
            return Err(e);
        }
        failpoint::hit("block-copy:ready");
        if copy.pivot {
            pending.phase("pivoting")?;
            mon.exec("block-job-complete", json!({ "device": job }))?;
            mon.wait_block_job(&job, Until::Done, call, "switching to the copy")?;
            failpoint::hit("block-copy:pivoted");
            self.follow_pivot(name, &mut mon, target)?;
        } else if copy.finish {
            pending.phase("finishing")?;
            mon.exec("block-job-cancel", json!({ "device": job }))?;
            mon.wait_block_job(&job, Until::Done, call, "finishing the copy")?;
        }
        pending.done()
    }

    /// `domain_block_pull`.
    pub(crate) fn block_pull_impl(
        &self,
        name: &str,
        target: &str,
        params: &PullParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let lock = self.lock_domain(name, call)?;
        let base = params.base.clone();
        if self.running(name)?.is_none() {
            let (image, _) = self.offline_image(name, target)?;
            self.check_in_chain(name, target, &image, base.as_deref())?;
            let (b, f) = match &base {
                Some(b) => (b.clone(), images::format_of(b)?),
                None => (String::new(), String::new()),
            };
            let mut args = vec!["rebase", "-q"];
            if !f.is_empty() {
                args.extend(["-F", f.as_str()]);
            }
            args.extend(["-b", b.as_str(), image.as_str()]);
            return qemu_img(&args).map(|_| ());
        }
        let mut mon = self.monitor(name)?;
        let device = mon.top_node(target)?;
        let mut args = json!({ "job-id": format!("pull-{target}"), "device": device });
        if let Some(b) = &base {
            let node = mon.node_of_file(b)?.ok_or_else(|| {
                invalid(format!("{b} is not in the backing chain of disk {target} of domain '{name}'"))
            })?;
            args["base-node"] = json!(node);
        }
        mon.exec("block-stream", with_speed(args, params.bandwidth))?;
        failpoint::hit("block-pull:started");
        // A pull changes no definition: QEMU rewrites the image's backing when it ends.
        drop(lock);
        if flags & LV_BLOCK_JOB_WAIT != 0 {
            mon.wait_block_job(&format!("pull-{target}"), Until::Done, call, "pulling")?;
        }
        Ok(())
    }

    /// `domain_block_commit`.
    pub(crate) fn block_commit_impl(
        &self,
        name: &str,
        target: &str,
        params: &CommitParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let lock = self.lock_domain(name, call)?;
        let base = params.base.clone();
        let top = params.top.clone();
        if self.running(name)?.is_none() {
            let (image, _) = self.offline_image(name, target)?;
            let top = top.unwrap_or(image.clone());
            self.check_in_chain(name, target, &image, Some(&top))?;
            let base = match base {
                Some(b) => b,
                None => images::backing_of(&top)?
                    .ok_or_else(|| invalid(format!("{top} has no backing image to commit into")))?,
            };
            self.check_in_chain(name, target, &top, Some(&base))?;
            // The top keeps its data: a kill before the definition moves loses nothing.
            qemu_img(&["commit", "-q", "-b", &base, &top])?;
            failpoint::hit("block-commit:committed");
            if top == image && flags & LV_BLOCK_JOB_PIVOT != 0 {
                let (_, mut dom) = self.state.read_definition(name)?;
                dom.set_disk_source(target, &base, &images::format_of(&base)?)
                    .map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
                self.state.write_definition(name, &dom.to_xml())?;
            }
            return Ok(());
        }
        let mut mon = self.monitor(name)?;
        let device = mon.top_node(target)?;
        let top_node = match &top {
            Some(t) => mon.node_of_file(t)?.ok_or_else(|| {
                invalid(format!("{t} is not in the backing chain of disk {target} of domain '{name}'"))
            })?,
            None => device.clone(),
        };
        let job = format!("commit-{target}");
        // Without a base, the image right below the top, as offline (QEMU's own default
        // would be the bottom of the chain).
        let top_file = match &top {
            Some(t) => t.clone(),
            None => mon.active_image(target)?.0,
        };
        let base_file = match &base {
            Some(b) => b.clone(),
            None => images::backing_of(&top_file)?
                .ok_or_else(|| invalid(format!("{top_file} has no backing image to commit into")))?,
        };
        let base_node = mon.node_of_file(&base_file)?.ok_or_else(|| {
            invalid(format!("{base_file} is not in the backing chain of disk {target} of domain '{name}'"))
        })?;
        let args = json!({ "job-id": job, "device": device, "top-node": top_node, "base-node": base_node });
        let base_file = Some(base_file);
        let pivot = flags & LV_BLOCK_JOB_WAIT != 0 && flags & LV_BLOCK_JOB_PIVOT != 0 && top_node == device;
        let ending = Ending {
            kind: "commit".to_string(),
            job: job.clone(),
            disk: target.to_string(),
            source: mon.active_image(target)?.0,
            target: base_file.clone().unwrap_or_default(),
            created: false,
            pivot: true,
            finish: false,
        };
        let pending = if pivot { Some(self.begin(name, Change::BlockJob(ending))?) } else { None };
        if let Err(e) = mon.exec("block-commit", with_speed(args, params.bandwidth)) {
            if let Some(p) = pending {
                p.done()?;
            }
            return Err(e);
        }
        failpoint::hit("block-commit:started");
        drop(lock);
        if flags & LV_BLOCK_JOB_WAIT == 0 {
            return Ok(());
        }
        if top_node != device {
            return mon.wait_block_job(&job, Until::Done, call, "committing");
        }
        let ready = mon.wait_block_job(&job, Until::Ready, call, "committing");
        let Some(mut pending) = pending else { return ready };
        let _lock = self.state.lock(name)?;
        if let Err(e) = ready {
            pending.done()?;
            return Err(e);
        }
        pending.phase("pivoting")?;
        failpoint::hit("block-commit:ready");
        mon.exec("block-job-complete", json!({ "device": job }))?;
        mon.wait_block_job(&job, Until::Done, call, "switching to the base")?;
        failpoint::hit("block-commit:pivoted");
        self.follow_pivot(name, &mut mon, target)?;
        pending.done()
    }

    /// `domain_block_job_info`.
    pub(crate) fn block_job_info_impl(&self, name: &str, target: &str, call: &mut Call) -> DriverResult {
        if self.running(name)?.is_none() {
            return Ok(());
        }
        let mut mon = self.monitor(name)?;
        if let Some((_, kind, info)) = self.job_on(&mut mon, target)? {
            call.emit(&BlockJob {
                kind: kind.to_string(),
                current: info["offset"].as_u64().unwrap_or(0),
                end: info["len"].as_u64().unwrap_or(0),
                ready: info["ready"].as_bool().unwrap_or(false),
                status: info["status"].as_str().unwrap_or("").to_string(),
            });
        }
        Ok(())
    }

    /// `domain_block_job_wait`.
    pub(crate) fn block_job_wait_impl(&self, name: &str, target: &str, flags: u32, call: &mut Call) -> DriverResult {
        let mut mon = self.monitor(name)?;
        let (job, kind, _) = self.job_on(&mut mon, target)?.ok_or_else(|| {
            DriverError::new(ErrorCode::InvalidState, format!("Disk {target} of domain '{name}' has no block job"))
        })?;
        let mirrors = matches!(kind, "copy" | "active-commit");
        mon.wait_block_job(&job, if mirrors { Until::Ready } else { Until::Done }, call, kind)?;
        if !mirrors || flags & (LV_BLOCK_JOB_PIVOT | LV_BLOCK_JOB_FINISH) == 0 {
            return Ok(());
        }
        // Ending the job changes the definition: take the domain's lock for it.
        let _lock = self.lock_domain(name, call)?;
        if flags & LV_BLOCK_JOB_PIVOT != 0 {
            return self.pivot(name, &mut mon, target, &job, None, call);
        }
        mon.exec("block-job-cancel", json!({ "device": job }))?;
        mon.wait_block_job(&job, Until::Done, call, "finishing")
    }

    /// `domain_block_job_abort`.
    pub(crate) fn block_job_abort_impl(&self, name: &str, target: &str, flags: u32, call: &mut Call) -> DriverResult {
        let pivot = flags & LV_BLOCK_JOB_PIVOT != 0;
        // Cancelling may end a copy another call waits for (it then cleans up); a pivot may not.
        let _lock = if pivot { self.lock_domain(name, call)? } else { self.lock_beside(name, call)? };
        let mut mon = self.monitor(name)?;
        let (job, kind, info) = self.job_on(&mut mon, target)?.ok_or_else(|| {
            DriverError::new(ErrorCode::InvalidState, format!("Disk {target} of domain '{name}' has no block job"))
        })?;
        if job == mirror_job(target) {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "Disk {target} of domain '{name}' is mirrored by a snapshot; end it by deleting that snapshot with «mirror_pivot» or «mirror_abort»"
                ),
            ));
        }
        if pivot {
            if info["ready"].as_bool() != Some(true) {
                return Err(DriverError::new(
                    ErrorCode::InvalidState,
                    format!(
                        "The {kind} job on disk {target} of domain '{name}' is not ready to pivot yet; wait for it (its block job info says when it is ready)"
                    ),
                ));
            }
            return self.pivot(name, &mut mon, target, &job, None, call);
        }
        mon.exec("block-job-cancel", json!({ "device": job, "force": true }))?;
        match mon.wait_block_job(&job, Until::Done, call, "cancelling") {
            Err(e) if e.code != ErrorCode::Cancelled => Err(e),
            _ => Ok(()),
        }
    }

    /// The image of `target` in the definition of shut-off domain `name`.
    fn offline_image(&self, name: &str, target: &str) -> DriverResult<(String, String)> {
        let (_, dom) = self.state.read_definition(name)?;
        let d = dom
            .disk(target)
            .ok_or_else(|| DriverError::new(ErrorCode::NoDisk, format!("Domain '{name}' has no disk '{target}'")))?;
        let path =
            d.source.path().ok_or_else(|| invalid(format!("Disk {target} of domain '{name}' has no local image")))?;
        Ok((path.to_string(), d.format_or_raw().to_string()))
    }

    /// Checks that `wanted` is `image` or below it in its backing chain.
    fn check_in_chain(&self, name: &str, target: &str, image: &str, wanted: Option<&str>) -> DriverResult {
        let Some(wanted) = wanted else { return Ok(()) };
        let mut cur = Some(image.to_string());
        while let Some(c) = cur {
            if c == wanted {
                return Ok(());
            }
            cur = images::backing_of(&c)?;
        }
        Err(invalid(format!("{wanted} is not in the backing chain of disk {target} of domain '{name}'")))
    }
}
