//! `shutdown`, `reboot` (reset), `suspend` and `resume`: a running domain's buttons.

use super::args::{Command, ShutdownArgs};
use super::progress;
use super::run::{Output, out};
use luavirt_host::{Connection, ShutdownOptions, ShutdownOutcome};
use serde_json::json;
use std::time::Duration;

/// Runs one of the lifecycle verbs.
pub fn run(conn: &Connection, cmd: Command) -> anyhow::Result<Output> {
    Ok(match cmd {
        Command::Shutdown(a) => shutdown(conn, a)?,
        Command::Reboot { domain } => {
            conn.reset(&domain)?;
            out(
                format!("Domain '{domain}' was reset: its guest restarts (it was not asked to shut down first)\n"),
                json!({ "domain": domain, "reset": true }),
            )
        }
        Command::Suspend { domain } => {
            let changed = conn.suspend(&domain)?;
            let text = if changed {
                format!("Domain '{domain}' suspended\n")
            } else {
                format!("Domain '{domain}' is already paused\n")
            };
            out(text, json!({ "domain": domain, "state": "paused", "changed": changed }))
        }
        Command::Resume { domain } => {
            let changed = conn.resume(&domain)?;
            let text = if changed {
                format!("Domain '{domain}' resumed\n")
            } else {
                format!("Domain '{domain}' is already running\n")
            };
            out(text, json!({ "domain": domain, "state": "running", "changed": changed }))
        }
        _ => unreachable!("only lifecycle verbs come here"),
    })
}

fn shutdown(conn: &Connection, a: ShutdownArgs) -> anyhow::Result<Output> {
    let wait = match (a.wait, a.timeout) {
        (_, Some(t)) => Some(Some(Duration::from_secs(t))),
        (true, None) => Some(None),
        (false, None) => None,
    };
    if wait.is_some() {
        // Ctrl-C stops the wait, not luavirt in the middle of it.
        progress::catch_interrupt();
    }
    let opts = ShutdownOptions { wait, destroy_after: a.destroy, cancel: Some(&progress::CANCEL) };
    let outcome = conn.shutdown(&a.domain, opts)?;
    let d = &a.domain;
    let text = match outcome {
        ShutdownOutcome::Requested => {
            format!("Domain '{d}' is being shut down (its guest was asked through ACPI; --wait waits for it)\n")
        }
        ShutdownOutcome::ShutOff => format!("Domain '{d}' is shut off\n"),
        ShutdownOutcome::Destroyed => {
            format!("Domain '{d}' did not shut down within {} s and was destroyed\n", a.timeout.unwrap_or_default())
        }
    };
    Ok(out(text, json!({ "domain": d, "outcome": outcome })))
}
