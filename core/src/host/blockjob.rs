//! Block jobs on a disk: copy (mirror to a new image), pull (fold backing images into the
//! disk), commit (fold the disk's images down into a backing image), and the job's info,
//! abort and pivot. Long jobs report progress and can be cancelled.

use super::{Connection, entry};
use crate::driver::{CallOptions, ProgressFn};
use crate::error::{Error, Result};
use luavirt_plugin_api::abi::{self, LvStr};
use luavirt_plugin_api::{Params, Value};
use serde::Serialize;
use std::sync::atomic::AtomicBool;

/// What a caller lets a long job do: report progress, be cancelled.
#[derive(Default, Clone, Copy)]
pub struct JobControl<'a> {
    /// Receives progress: done, total, stage.
    pub progress: Option<ProgressFn<'a>>,
    /// Set to cancel.
    pub cancel: Option<&'a AtomicBool>,
}

/// `blockcopy` options.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// The destination image.
    pub dest: String,
    /// Its format (default: the disk's).
    pub format: Option<String>,
    /// Copy only the top image; the copy gets the same backing chain.
    pub shallow: bool,
    /// The destination exists already.
    pub reuse_external: bool,
    /// Wait until the copy mirrors every write.
    pub wait: bool,
    /// Then switch the disk to the copy.
    pub pivot: bool,
    /// Then end the job and stay on the source (the copy is kept).
    pub finish: bool,
    /// Speed limit in MiB/s.
    pub bandwidth: Option<u64>,
}

/// `blockpull` options.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Keep this image and those below it (default: pull everything).
    pub base: Option<String>,
    /// Wait until done.
    pub wait: bool,
    /// Speed limit in MiB/s.
    pub bandwidth: Option<u64>,
}

/// `blockcommit` options.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    /// The image to commit into (default: the one below `top`).
    pub base: Option<String>,
    /// The highest image to commit (default: the disk's active image).
    pub top: Option<String>,
    /// Wait until done (or, committing the active image, until ready).
    pub wait: bool,
    /// Committing the active image: then switch the disk to `base`.
    pub pivot: bool,
    /// Speed limit in MiB/s.
    pub bandwidth: Option<u64>,
}

/// Adds a speed limit, in bytes per second, to a job's parameters.
fn with_bandwidth(p: &mut Params, mib: Option<u64>) {
    if let Some(m) = mib {
        p.push("bandwidth", Value::UInt(m.saturating_mul(1 << 20)));
    }
}

/// A running block job.
#[derive(Clone, Debug, Serialize)]
pub struct BlockJobInfo {
    /// copy, pull, commit, active-commit.
    #[serde(rename = "type")]
    pub kind: String,
    /// Units done.
    pub current: u64,
    /// Units in all.
    pub end: u64,
    /// Whether a copy or active commit mirrors every write and can pivot.
    pub ready: bool,
    /// QEMU's status word.
    pub status: String,
}

/// Parameters in words for a dry run's plan: `dest=/x base=/y`.
fn describe_params(p: &Params) -> String {
    p.entries()
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            Value::UInt(n) => format!("{k}={n}"),
            other => format!("{k}={other:?}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn flags_of(pairs: &[(bool, u32)]) -> u32 {
    pairs.iter().filter(|(on, _)| *on).fold(0, |f, (_, bit)| f | bit)
}

impl Connection {
    /// The target of a disk given by target or source path.
    fn disk_target(&self, domain: &str, disk: &str) -> Result<String> {
        let dom = self.read_domain(domain)?;
        super::diskset::resolve(domain, &dom.disks(), disk)
    }

    #[allow(clippy::too_many_arguments)] // the ABI function's own arguments, passed through
    fn call_params(
        &self,
        what: &str,
        f: unsafe extern "C" fn(
            *mut std::ffi::c_void,
            LvStr,
            LvStr,
            *const abi::LvParam,
            usize,
            u32,
            *mut abi::LvCall,
        ) -> i32,
        domain: &str,
        target: &str,
        params: &Params,
        flags: u32,
        control: JobControl,
    ) -> Result<()> {
        let p = params.to_abi();
        let options = CallOptions { progress: control.progress, cancel: control.cancel };
        let change = || format!("{what}: disk {target} {}", describe_params(params));
        self.mutate(domain, change, || {
            self.call(what, &options, |h, c| unsafe {
                f(h, LvStr::from_str(domain), LvStr::from_str(target), p.as_ptr(), p.len(), flags, c)
            })
        })?;
        Ok(())
    }

    /// Copies a disk to a new image while the domain runs.
    pub fn block_copy(&self, domain: &str, disk: &str, opts: &CopyOptions, control: JobControl) -> Result<()> {
        let f = entry!(self, domain_block_copy, "block copy");
        if (opts.pivot || opts.finish) && !opts.wait {
            return Err(Error::InvalidArg("--pivot and --finish need --wait".into()));
        }
        if opts.pivot && opts.finish {
            return Err(Error::InvalidArg(
                "--pivot switches to the copy and --finish stays on the source: choose one".into(),
            ));
        }
        // The driver locks the domain to start the job and to pivot, not while waiting.
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let mut p = Params::new();
        p.push_str("dest", opts.dest.clone());
        if let Some(fmt) = &opts.format {
            p.push_str("format", fmt.clone());
        }
        with_bandwidth(&mut p, opts.bandwidth);
        let flags = flags_of(&[
            (opts.wait, abi::LV_BLOCK_JOB_WAIT),
            (opts.pivot, abi::LV_BLOCK_JOB_PIVOT),
            (opts.finish, abi::LV_BLOCK_JOB_FINISH),
            (opts.shallow, abi::LV_BLOCK_COPY_SHALLOW),
            (opts.reuse_external, abi::LV_BLOCK_COPY_REUSE_EXT),
        ]);
        self.call_params("copying a disk", f, domain, &target, &p, flags, control)
    }

    /// Pulls backing data into a disk, down to `base` (all of it without one).
    pub fn block_pull(&self, domain: &str, disk: &str, opts: &PullOptions, control: JobControl) -> Result<()> {
        let f = entry!(self, domain_block_pull, "block pull");
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let mut p = Params::new();
        if let Some(b) = &opts.base {
            p.push_str("base", b.clone());
        }
        with_bandwidth(&mut p, opts.bandwidth);
        let flags = flags_of(&[(opts.wait, abi::LV_BLOCK_JOB_WAIT)]);
        self.call_params("pulling a disk's backing data", f, domain, &target, &p, flags, control)
    }

    /// Commits a disk's images down into a backing image.
    pub fn block_commit(&self, domain: &str, disk: &str, opts: &CommitOptions, control: JobControl) -> Result<()> {
        let f = entry!(self, domain_block_commit, "block commit");
        if opts.pivot && !opts.wait {
            return Err(Error::InvalidArg("--pivot needs --wait".into()));
        }
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let mut p = Params::new();
        for (k, v) in [("base", &opts.base), ("top", &opts.top)] {
            if let Some(v) = v {
                p.push(k, Value::String(v.clone()));
            }
        }
        with_bandwidth(&mut p, opts.bandwidth);
        let flags = flags_of(&[(opts.wait, abi::LV_BLOCK_JOB_WAIT), (opts.pivot, abi::LV_BLOCK_JOB_PIVOT)]);
        self.call_params("committing a disk", f, domain, &target, &p, flags, control)
    }

    /// The disk's block job, if it has one.
    pub fn block_job_info(&self, domain: &str, disk: &str) -> Result<Option<BlockJobInfo>> {
        let f = entry!(self, domain_block_job_info, "block jobs");
        let target = self.disk_target(domain, disk)?;
        let out = self.call("reading a block job", &Default::default(), |h, c| unsafe {
            f(h, LvStr::from_str(domain), LvStr::from_str(&target), 0, c)
        })?;
        Ok(out.records.first().map(|r| BlockJobInfo {
            kind: r.get_str("type").unwrap_or("").to_string(),
            current: r.get_u64("current").unwrap_or(0),
            end: r.get_u64("end").unwrap_or(0),
            ready: r.get_bool("ready").unwrap_or(false),
            status: r.get_str("status").unwrap_or("").to_string(),
        }))
    }

    /// Waits for the disk's block job (until ready, or done), then with `pivot` switches the
    /// disk to the new image, with `finish` ends a copy on its source.
    pub fn block_job_wait(
        &self,
        domain: &str,
        disk: &str,
        pivot: bool,
        finish: bool,
        control: JobControl,
    ) -> Result<()> {
        let f = entry!(self, domain_block_job_wait, "waiting for block jobs");
        if pivot && finish {
            return Err(Error::InvalidArg(
                "pivot switches to the copy and finish stays on the source: choose one".into(),
            ));
        }
        // The driver takes the domain's lock to pivot, after the wait.
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let flags = flags_of(&[(pivot, abi::LV_BLOCK_JOB_PIVOT), (finish, abi::LV_BLOCK_JOB_FINISH)]);
        let options = CallOptions { progress: control.progress, cancel: control.cancel };
        let then = if pivot {
            " then pivot"
        } else if finish {
            " then finish"
        } else {
            ""
        };
        self.mutate(
            domain,
            || format!("wait for the block job on disk {target}{then}"),
            || {
                self.call("waiting for a block job", &options, |h, c| unsafe {
                    f(h, LvStr::from_str(domain), LvStr::from_str(&target), flags, c)
                })
            },
        )?;
        Ok(())
    }

    /// Ends the disk's block job: cancels it, or with `pivot` switches the disk to the new image.
    pub fn block_job_abort(&self, domain: &str, disk: &str, pivot: bool) -> Result<()> {
        let f = entry!(self, domain_block_job_abort, "block jobs");
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let flags = flags_of(&[(pivot, abi::LV_BLOCK_JOB_PIVOT)]);
        let how = if pivot { "pivot" } else { "abort" };
        self.mutate(
            domain,
            || format!("{how} the block job on disk {target}"),
            || {
                self.call("ending a block job", &Default::default(), |h, c| unsafe {
                    f(h, LvStr::from_str(domain), LvStr::from_str(&target), flags, c)
                })
            },
        )?;
        Ok(())
    }
}
