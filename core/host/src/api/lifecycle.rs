//! A running domain's everyday lifecycle: a graceful shutdown (the guest asked through ACPI,
//! waited for with a time limit, destroyed after it if asked), a reset, a pause and a resume.
//! Each is one step for the driver; the host does the waiting, by reading the state.

use super::Connection;
use super::domain::DomainState;
use crate::error::{Error, Result};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a wait for a shutdown reads the domain's state.
const POLL: Duration = Duration::from_millis(200);

/// What `shutdown` does after asking the guest.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShutdownOptions<'a> {
    /// Wait until the domain is shut off: `Some(None)` without a limit, `Some(Some(t))` at most
    /// `t`; `None` returns once the guest was asked.
    pub wait: Option<Option<Duration>>,
    /// Destroy the domain when it is still running at the end of the wait.
    pub destroy_after: bool,
    /// Set to stop waiting (Ctrl-C, a script's deadline); the guest goes on shutting down.
    pub cancel: Option<&'a AtomicBool>,
}

/// How a shutdown ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownOutcome {
    /// The guest was asked; nobody waited.
    Requested,
    /// The guest shut down within the wait.
    ShutOff,
    /// The guest did not shut down in time, and the domain was destroyed.
    Destroyed,
}

impl Connection {
    /// Asks the guest of running domain `name` to shut down (ACPI), then waits and destroys as
    /// `opts` say. A guest still running at the end of a wait without `destroy_after` is an
    /// error saying so.
    pub fn shutdown(&self, name: &str, opts: ShutdownOptions) -> Result<ShutdownOutcome> {
        if opts.destroy_after && !matches!(opts.wait, Some(Some(_))) {
            return Err(Error::InvalidArg(format!(
                "Domain '{name}': «destroy» destroys the domain when it is still running after «timeout SECONDS»; give the time limit"
            )));
        }
        // Asked and not waited for, the domain still runs: a dry run's later reads see that.
        let after = opts.wait.map(|_| DomainState::ShutOff);
        self.one_step(name, "shutdown", &[DomainState::Running, DomainState::Paused], after, || {
            self.client.shutdown(name)
        })?;
        let Some(limit) = opts.wait else { return Ok(ShutdownOutcome::Requested) };
        if self.is_dry_run() {
            return Ok(ShutdownOutcome::ShutOff);
        }
        let start = Instant::now();
        loop {
            if self.domain_state(name)?.0 == DomainState::ShutOff {
                return Ok(ShutdownOutcome::ShutOff);
            }
            if opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(Error::Driver {
                    code: luavirt_plugin_api::ErrorCode::Cancelled,
                    message: format!(
                        "Stopped waiting for domain '{name}' to shut down after {} s; its guest was asked and may still do it",
                        start.elapsed().as_secs()
                    ),
                });
            }
            if let Some(t) = limit
                && start.elapsed() >= t
            {
                if opts.destroy_after {
                    self.destroy(name)?;
                    return Ok(ShutdownOutcome::Destroyed);
                }
                return Err(Error::Driver {
                    code: luavirt_plugin_api::ErrorCode::InvalidState,
                    message: format!(
                        "Domain '{name}' did not shut down within {} s and still runs (its guest may ignore ACPI requests); «do:destroy {name}» stops it at once, or add «destroy» to do that after the time limit",
                        t.as_secs()
                    ),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Resets running domain `name` at once: its guest restarts without being asked.
    pub fn reset(&self, name: &str) -> Result<()> {
        self.one_step(name, "reset", &[DomainState::Running, DomainState::Paused], None, || self.client.reset(name))
    }

    /// Pauses running domain `name`; `false` when it was paused already (nothing done).
    pub fn suspend(&self, name: &str) -> Result<bool> {
        if self.domain_state(name)?.0 == DomainState::Paused {
            return Ok(false);
        }
        self.one_step(name, "suspend", &[DomainState::Running], Some(DomainState::Paused), || {
            self.client.suspend(name)
        })?;
        Ok(true)
    }

    /// Resumes paused domain `name`; `false` when it was running already (nothing done).
    pub fn resume(&self, name: &str) -> Result<bool> {
        if self.domain_state(name)?.0 == DomainState::Running {
            return Ok(false);
        }
        self.one_step(name, "resume", &[DomainState::Paused], Some(DomainState::Running), || self.client.resume(name))?;
        Ok(true)
    }

    /// Runs a one-step change `real` under the domain's lock when the domain is in one of
    /// `from` (else an error naming its state), or in a dry run records it and the state
    /// `to` it leaves, if it changes.
    fn one_step(
        &self,
        name: &str,
        what: &str,
        from: &[DomainState],
        to: Option<DomainState>,
        real: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let _lock = self.lock_domain(name)?;
        let (state, _) = self.domain_state(name)?;
        if !from.contains(&state) {
            let hint = match state {
                DomainState::ShutOff => format!("; «do:start {name}» starts it"),
                DomainState::Paused => format!("; «do:resume {name}» resumes it"),
                _ => String::new(),
            };
            return Err(Error::Driver {
                code: luavirt_plugin_api::ErrorCode::InvalidState,
                message: format!("Cannot {what} domain '{name}': it is {}{hint}", state.as_str()),
            });
        }
        let ran = self.mutate(name, || what.to_string(), || real().map_err(|e| self.explain_missing(name, e)))?;
        if let (None, Some(to)) = (ran, to) {
            self.plan_state(name, to);
        }
        Ok(())
    }
}
