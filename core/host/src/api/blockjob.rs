//! Block jobs on a disk: copy (mirror to a new image), pull (fold backing images into the
//! disk), commit (fold the disk's images down into a backing image), and the job's info,
//! abort and pivot. Long jobs report progress and can be cancelled.

use super::Connection;
use crate::driver::client::BlockJobFlags;
use crate::driver::{CallOptions, ProgressFn};
use crate::error::{Error, Result};
use luavirt_plugin_api::records::{CommitParams, CopyParams, PullParams, Record};
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
    /// `progress` only shows reports (a progress line) and never calls into luavirt, so
    /// drivers may report while holding a domain's lock.
    pub progress_only_shows: bool,
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
/// MiB/s as bytes/s.
fn bytes_per_second(mib: Option<u64>) -> Option<u64> {
    mib.map(|m| m.saturating_mul(1 << 20))
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

impl Connection {
    /// The target of a disk given by target or source path.
    fn disk_target(&self, domain: &str, disk: &str) -> Result<String> {
        let dom = self.read_domain(domain)?;
        super::diskset::resolve(domain, &dom.disks(), disk)
    }

    /// Runs a block job call, or in a dry run records it.
    fn job(
        &self,
        what: &str,
        domain: &str,
        target: &str,
        params: &impl Record,
        control: JobControl,
        run: impl FnOnce(&CallOptions) -> Result<()>,
    ) -> Result<()> {
        let options = CallOptions {
            progress: control.progress,
            cancel: control.cancel,
            progress_only_shows: control.progress_only_shows,
        };
        let change = || format!("{what}: disk {target} {}", describe_params(&params.to_params()));
        self.mutate(domain, change, || run(&options))?;
        Ok(())
    }

    /// Copies a disk to a new image while the domain runs.
    pub fn block_copy(&self, domain: &str, disk: &str, opts: &CopyOptions, control: JobControl) -> Result<()> {
        if (opts.pivot || opts.finish) && !opts.wait {
            return Err(Error::InvalidArg("«pivot» and «finish» need «wait»".into()));
        }
        if opts.pivot && opts.finish {
            return Err(Error::InvalidArg(
                "«pivot» switches to the copy and «finish» stays on the source: choose one".into(),
            ));
        }
        // The driver locks the domain to start the job and to pivot, not while waiting.
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let params = CopyParams {
            dest: opts.dest.clone(),
            format: opts.format.clone(),
            bandwidth: bytes_per_second(opts.bandwidth),
        };
        let flags = BlockJobFlags {
            wait: opts.wait,
            pivot: opts.pivot,
            finish: opts.finish,
            shallow: opts.shallow,
            reuse_external: opts.reuse_external,
        };
        self.job("copy", domain, &target, &params, control, |o| {
            self.client.block_copy(domain, &target, &params, flags, o)
        })
    }

    /// Pulls backing data into a disk, down to `base` (all of it without one).
    pub fn block_pull(&self, domain: &str, disk: &str, opts: &PullOptions, control: JobControl) -> Result<()> {
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let params = PullParams { base: opts.base.clone(), bandwidth: bytes_per_second(opts.bandwidth) };
        let flags = BlockJobFlags { wait: opts.wait, ..BlockJobFlags::default() };
        self.job("pull", domain, &target, &params, control, |o| {
            self.client.block_pull(domain, &target, &params, flags, o)
        })
    }

    /// Commits a disk's images down into a backing image.
    pub fn block_commit(&self, domain: &str, disk: &str, opts: &CommitOptions, control: JobControl) -> Result<()> {
        if opts.pivot && !opts.wait {
            return Err(Error::InvalidArg("«pivot» needs «wait»".into()));
        }
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let params = CommitParams {
            base: opts.base.clone(),
            top: opts.top.clone(),
            bandwidth: bytes_per_second(opts.bandwidth),
        };
        let flags = BlockJobFlags { wait: opts.wait, pivot: opts.pivot, ..BlockJobFlags::default() };
        self.job("commit", domain, &target, &params, control, |o| {
            self.client.block_commit(domain, &target, &params, flags, o)
        })
    }

    /// The disk's block job, if it has one.
    pub fn block_job_info(&self, domain: &str, disk: &str) -> Result<Option<BlockJobInfo>> {
        let target = self.disk_target(domain, disk)?;
        Ok(self.client.block_job_info(domain, &target)?.map(|j| BlockJobInfo {
            kind: j.kind,
            current: j.current,
            end: j.end,
            ready: j.ready,
            status: j.status,
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
        if pivot && finish {
            return Err(Error::InvalidArg(
                "pivot switches to the copy and finish stays on the source: choose one".into(),
            ));
        }
        // The driver takes the domain's lock to pivot, after the wait.
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let options = CallOptions {
            progress: control.progress,
            cancel: control.cancel,
            progress_only_shows: control.progress_only_shows,
        };
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
            || self.client.block_job_wait(domain, &target, pivot, finish, &options),
        )?;
        Ok(())
    }

    /// Ends the disk's block job: cancels it, or with `pivot` switches the disk to the new image.
    pub fn block_job_abort(&self, domain: &str, disk: &str, pivot: bool) -> Result<()> {
        drop(self.lock_domain(domain)?);
        let target = self.disk_target(domain, disk)?;
        let how = if pivot { "pivot" } else { "abort" };
        self.mutate(
            domain,
            || format!("{how} the block job on disk {target}"),
            || self.client.block_job_abort(domain, &target, pivot),
        )?;
        Ok(())
    }
}
