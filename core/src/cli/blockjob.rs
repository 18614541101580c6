//! The block job verbs: blockcopy, blockpull, blockcommit, blockjob.

use super::args::{Command, WaitArgs};
use super::progress;
use super::run::{Output, out};
use luavirt_host::Connection;
use luavirt_host::error::Error;
use luavirt_host::{CommitOptions, CopyOptions, JobControl, PullOptions};
use serde_json::json;

/// Runs one block job command.
pub fn run(conn: &Connection, cmd: Command) -> anyhow::Result<Output> {
    let result = run_job(conn, cmd);
    progress::finish();
    result
}

fn run_job(conn: &Connection, cmd: Command) -> anyhow::Result<Output> {
    let draw = progress::draw;
    let control = |w: &WaitArgs| {
        if w.wait {
            progress::catch_interrupt();
        }
        JobControl {
            progress: (w.wait && progress::wanted(w.verbose)).then_some(&draw as &dyn Fn(u64, u64, &str)),
            cancel: Some(&progress::CANCEL),
            progress_only_shows: true,
        }
    };
    Ok(match cmd {
        Command::Blockcopy { domain, disk, dest, format, shallow, reuse_external, wait, pivot, finish } => {
            let opts = CopyOptions {
                dest: dest.clone(),
                format,
                shallow,
                reuse_external,
                wait: wait.wait,
                pivot,
                finish,
                bandwidth: wait.bandwidth,
            };
            conn.block_copy(&domain, &disk, &opts, control(&wait))?;
            let text = match (wait.wait, pivot, finish) {
                (false, ..) => "Block Copy started\n",
                (true, true, _) => "Successfully pivoted\n",
                (true, _, true) => "Successfully copied\n",
                _ => "Now in mirroring phase\n",
            };
            out(text, json!({ "domain": domain, "disk": disk, "dest": dest, "waited": wait.wait, "pivoted": pivot }))
        }
        Command::Blockpull { domain, disk, base, wait } => {
            conn.block_pull(
                &domain,
                &disk,
                &PullOptions { base: base.clone(), wait: wait.wait, bandwidth: wait.bandwidth },
                control(&wait),
            )?;
            let text = if wait.wait { "Pull complete\n" } else { "Block Pull started\n" };
            out(text, json!({ "domain": domain, "disk": disk, "base": base, "waited": wait.wait }))
        }
        Command::Blockcommit { domain, disk, base, top, active, pivot, wait } => {
            if active && let Some(t) = &top {
                active_is_top(conn, &domain, &disk, t)?;
            }
            let opts = CommitOptions {
                base: base.clone(),
                top: top.clone(),
                wait: wait.wait,
                pivot,
                bandwidth: wait.bandwidth,
            };
            conn.block_commit(&domain, &disk, &opts, control(&wait))?;
            let text = match (wait.wait, pivot) {
                (false, _) => "Block Commit started\n",
                (true, true) => "Successfully pivoted\n",
                (true, false) => "Commit complete (an active commit now mirrors until blockjob --pivot or --abort)\n",
            };
            out(
                text,
                json!({ "domain": domain, "disk": disk, "base": base, "top": top, "waited": wait.wait, "pivoted": pivot }),
            )
        }
        Command::Blockjob { domain, disk, info: _, abort, pivot } => {
            if abort || pivot {
                conn.block_job_abort(&domain, &disk, pivot)?;
                let text = if pivot { "Successfully pivoted\n" } else { "Job aborted\n" };
                return Ok(out(text, json!({ "domain": domain, "disk": disk, "pivoted": pivot })));
            }
            match conn.block_job_info(&domain, &disk)? {
                None => out(
                    format!("No current block job for {disk}\n"),
                    json!({ "domain": domain, "disk": disk, "job": null }),
                ),
                Some(j) => {
                    let pct = (j.current * 100).checked_div(j.end).unwrap_or(100);
                    let kind = match j.kind.as_str() {
                        "copy" => "Block Copy",
                        "pull" => "Block Pull",
                        "active-commit" => "Active Block Commit",
                        _ => "Block Commit",
                    };
                    let ready = if j.ready { " (ready to pivot)" } else { "" };
                    out(format!("{kind}: [{pct:3} %]{ready}\n"), json!({ "domain": domain, "disk": disk, "job": j }))
                }
            }
        }
        _ => unreachable!("only block job commands come here"),
    })
}

/// `--active` commits the disk's active image, which is what no `--top` means; a `--top`
/// naming another image contradicts it (libvirt refuses that too).
fn active_is_top(conn: &Connection, domain: &str, disk: &str, top: &str) -> anyhow::Result<()> {
    let devices = conn.block_devices(domain, luavirt_host::ImageDetails::None)?;
    match devices.iter().find(|d| d.target == disk || d.source == disk) {
        Some(d) if d.source != top => Err(Error::InvalidArg(format!(
            "--active commits disk {}'s active image {}, and --top names {top}: drop --active to commit {top} into its backing image, or drop --top",
            d.target, d.source
        ))
        .into()),
        // The active image itself, or a disk the host call below explains.
        _ => Ok(()),
    }
}
