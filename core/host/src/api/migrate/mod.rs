//! Migration of a domain from one connection to another, with the disks chosen per disk
//! (copy, blank, shared; see [`plan`]), live or offline, in the drivers' five phases:
//! begin (source), prepare (destination), perform (source, live), finish (destination),
//! confirm (source). A phase that fails has the other side put back: the source keeps running
//! on its own disks and the destination is cleaned up. A killed luavirt leaves each side's
//! record, which the next call on that side settles.

mod lost;
mod plan;
mod transport;

pub use plan::{DEFAULT_MIGRATE_SET, MigrateRequest, PlannedMigrateDisk};
pub use transport::{DEFAULT_PORTS, Transport, parse_ports};

use super::hooks::{Done, Request};
use super::{Connection, JobControl};
use crate::driver::CallOptions;
use crate::driver::client::MigrateFlags;
use crate::error::{Error, Result};
use luavirt_plugin_api::domain::generate_uuid;
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::records::{MigrateAction, MigrateParams};
use serde::Serialize;
use std::time::Instant;

/// What a migration will do, disk by disk.
#[derive(Clone, Debug, Serialize)]
pub struct MigrationPlan {
    /// The domain.
    pub domain: String,
    /// The source's URI.
    pub from: String,
    /// The destination's URI.
    pub to: String,
    /// A shut-off domain: only its definition and disks move.
    pub offline: bool,
    /// The guest keeps running while its memory moves.
    pub live: bool,
    /// How the memory and the copied disks travel.
    pub transport: Transport,
    /// Each disk.
    pub disks: Vec<PlannedMigrateDisk>,
}

/// The bytes a copied disk's image holds at the destination.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiskBytes {
    /// The disk's target.
    pub disk: String,
    /// Bytes.
    pub bytes: u64,
}

/// What a migration did.
#[derive(Clone, Debug, Serialize)]
pub struct MigrateReport {
    /// The plan it carried out.
    pub plan: MigrationPlan,
    /// Bytes of memory sent (live).
    pub memory_bytes: u64,
    /// For each copied disk, the bytes its image holds at the destination: the data moved.
    pub disk_bytes: Vec<DiskBytes>,
    /// Seconds it took.
    pub seconds: f64,
    /// Nothing was done: a dry run.
    pub dry_run: bool,
}

impl Connection {
    /// The plan of migrating `name` to `dest` as `req` asks. Reads only.
    pub fn migration_plan(&self, name: &str, dest: &Connection, req: &MigrateRequest) -> Result<MigrationPlan> {
        let dom = self.read_domain(name)?;
        let (state, _) = self.domain_state(name)?;
        let offline = !state.is_active();
        if offline && req.live {
            return Err(Error::InvalidArg(format!(
                "Domain '{name}' is shut off: it migrates offline, so «live» does not apply"
            )));
        }
        if offline && req.paused {
            return Err(Error::InvalidArg(format!(
                "Domain '{name}' is shut off: it migrates offline and stays shut off, so «paused» does not apply"
            )));
        }
        let transport = transport::choose(self, dest, req, offline)?;
        let default_dir = dest.state_dir().join("images").join(name);
        let disks = plan::resolve(&dom, req, |d| self.client.block_info(name, &d.target), &default_dir)?;
        if offline
            && !self.same_machine(dest)
            && let Some(d) = disks.iter().find(|d| d.action == MigrateAction::Copy)
        {
            return Err(Error::InvalidArg(format!(
                "Domain '{name}' is shut off, and an offline migration copies disk {} with qemu-img at the destination, which cannot read {} on another machine; start the domain and migrate it live, or copy the image there yourself and migrate the disk as shared",
                d.target,
                d.source.as_deref().unwrap_or("its image")
            )));
        }
        Ok(MigrationPlan {
            domain: name.to_string(),
            from: self.uri().to_string(),
            to: dest.uri().to_string(),
            offline,
            live: req.live,
            transport,
            disks,
        })
    }

    /// Migrates `name` to `dest`, after the `migrate:before` hooks (which may refuse it or
    /// change the request).
    pub fn migrate(
        &self,
        name: &str,
        dest: &Connection,
        req: &MigrateRequest,
        control: JobControl,
    ) -> Result<MigrateReport> {
        let mut req = req.clone();
        let to = dest.uri().to_string();
        self.hooks_before(name, Request::Migrate { to: &to, request: &mut req })?;
        let report = self.migrate_requested(name, dest, &req, control)?;
        self.hooks_after(name, Done::Migrate { to: &to });
        Ok(report)
    }

    fn migrate_requested(
        &self,
        name: &str,
        dest: &Connection,
        req: &MigrateRequest,
        control: JobControl,
    ) -> Result<MigrateReport> {
        for (conn, side) in [(self, "source"), (dest, "destination")] {
            if !conn.client.has_migration() {
                return Err(Error::Unsupported {
                    driver: conn.driver().name.clone(),
                    operation: format!("migration (it is the {side})"),
                });
            }
        }
        if self.driver().name != dest.driver().name {
            return Err(Error::InvalidArg(format!(
                "Domain '{name}' cannot migrate from a {} host to a {} host",
                self.driver().name,
                dest.driver().name
            )));
        }
        if self.same_host(dest) {
            return Err(Error::InvalidArg(format!(
                "{} and {} are the same host (the same state folder); migrate to another, e.g. {}?state=DIR",
                self.uri(),
                dest.uri(),
                dest.uri().to_string().split('?').next().unwrap_or("")
            )));
        }
        // The plan first: a refused one changes nothing on either side, not even lock files.
        let plan = self.migration_plan(name, dest, req)?;
        // Settle what an earlier, killed migration left on either side.
        drop(self.lock_domain(name)?);
        drop(dest.lock_domain(name)?);
        match dest.domain_state(name) {
            Ok(_) => {
                return Err(Error::InvalidArg(format!(
                    "{} already has a domain named '{name}'; remove it there first, or migrate to another host",
                    dest.uri()
                )));
            }
            Err(e) if e.code() == luavirt_plugin_api::ErrorCode::NoDomain => {}
            Err(e) => return Err(e),
        }
        let began = Instant::now();
        let describe = || {
            let disks: Vec<String> = plan.disks.iter().map(|d| format!("{}={}", d.target, d.action.as_str())).collect();
            format!("migrate to {}: {}", dest.uri(), disks.join(" "))
        };
        let done = self.mutate(name, describe, || self.run_migration(name, dest, req, &plan, control))?;
        let (memory_bytes, disk_bytes) = done.clone().unwrap_or_default();
        Ok(MigrateReport {
            plan,
            memory_bytes,
            disk_bytes,
            seconds: began.elapsed().as_secs_f64(),
            dry_run: done.is_none(),
        })
    }

    /// The five phases. Returns memory bytes sent and the copied disks' bytes.
    fn run_migration(
        &self,
        name: &str,
        dest: &Connection,
        req: &MigrateRequest,
        plan: &MigrationPlan,
        control: JobControl,
    ) -> Result<(u64, Vec<DiskBytes>)> {
        let id = generate_uuid().map_err(|e| Error::InvalidArg(format!("Cannot make a migration id: {e}")))?;
        let mut params = MigrateParams {
            id,
            disks: plan.disks.iter().map(PlannedMigrateDisk::to_params).collect(),
            bandwidth: req.bandwidth.map(|m| m.saturating_mul(1 << 20)),
            timeout: req.timeout,
            endpoints: Default::default(),
            listen: plan.transport.listen(),
        };
        let flags = MigrateFlags {
            live: req.live,
            persist: req.persistent || plan.offline,
            undefine_source: req.undefine_source,
            paused: req.paused,
            offline: plan.offline,
            failed: false,
        };
        let failed = MigrateFlags { failed: true, ..flags };
        let options = CallOptions {
            progress: control.progress,
            cancel: control.cancel,
            progress_only_shows: control.progress_only_shows,
        };
        let xml = self.client.migrate_begin(name, &params, flags)?;
        let answered = dest
            .client
            .migrate_prepare(name, &xml, &params, flags, &options)
            .map_err(|e| lost::source_runs_on(e, name, dest, false))?;
        // The tunnel's forwards, if any, last until the migration ends (dropped on return).
        let (endpoints, _tunnel) = match transport::reach(&plan.transport, self, dest, &answered, &params.id) {
            Ok(r) => r,
            Err(e) => return Err(with_cleanup(e, dest.client.migrate_finish(name, &params, failed).map(drop), dest)),
        };
        params.endpoints = endpoints;
        failpoint::hit("migrate:prepared");
        let mut memory = 0;
        if !plan.offline {
            match self.client.migrate_perform(name, &params, flags, &options) {
                Ok(sent) => memory = sent.memory,
                Err(e) => {
                    return Err(with_cleanup(e, dest.client.migrate_finish(name, &params, failed).map(drop), dest));
                }
            }
            failpoint::hit("migrate:performed");
        }
        let arrived = match dest.client.migrate_finish(name, &params, flags) {
            Ok(a) => a,
            Err(e) if lost::outcome_unknown(&e) => match dest.arrived_after_loss(name) {
                Ok(true) => lost::arrived_anyway(name, dest),
                Ok(false) => {
                    let undone = self.client.migrate_confirm(name, &params, failed);
                    return Err(with_cleanup(lost::source_runs_on(e, name, dest, true), undone, self));
                }
                Err(again) => return Err(lost::unsure(name, self, dest, &e, &again)),
            },
            Err(e) => {
                let undone = self.client.migrate_confirm(name, &params, failed);
                let e = if undone.is_ok() { lost::source_runs_on(e, name, dest, false) } else { e };
                return Err(with_cleanup(e, undone, self));
            }
        };
        failpoint::hit("migrate:finished");
        self.client.migrate_confirm(name, &params, flags).map_err(|e| {
            Error::InvalidArg(format!(
                "Domain '{name}' is now on {}, but its source could not be cleaned up: {e}; the next change to it on {} finishes that",
                dest.uri(),
                self.uri()
            ))
        })?;
        let copied = plan.disks.iter().filter(|d| d.action == MigrateAction::Copy).map(|d| d.target.clone());
        let disk_bytes = copied
            .map(|t| DiskBytes { bytes: arrived.disks.iter().find(|(d, _)| *d == t).map_or(0, |(_, b)| *b), disk: t })
            .collect();
        Ok((memory, disk_bytes))
    }

    /// Aborts the migration of `name` that another luavirt runs; it then puts everything back.
    pub fn abort_job(&self, name: &str) -> Result<()> {
        self.client.abort_job(name)
    }
}

/// A phase's error, with what putting the other side back gave when that failed too.
fn with_cleanup(error: Error, cleanup: Result<()>, other: &Connection) -> Error {
    match cleanup {
        Ok(()) => error,
        Err(c) => Error::InvalidArg(format!(
            "{error}; and {} could not be cleaned up: {c}; the next change to the domain there finishes that",
            other.uri()
        )),
    }
}
