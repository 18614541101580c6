//! `luavirt migrate`: the plan (`--print-plan`), the migration with progress, `--abort`.

use super::args::MigrateArgs;
use super::progress;
use super::run::{Output, out};
use super::table::{human_size, render};
use luavirt_host::migrate::{MigrateReport, MigrateRequest, MigrationPlan, parse_ports};
use luavirt_host::{Connection, Error, Host, JobControl};
use luavirt_plugin_api::records::MigrateAction;
use serde_json::json;

/// Runs `migrate` from `conn` (the source).
pub fn run(host: &Host, conn: &Connection, args: MigrateArgs, json: bool) -> anyhow::Result<Output> {
    if args.abort {
        conn.abort_job(&args.domain)?;
        return Ok(out(
            format!("Asked the migration of domain '{}' to stop; it puts everything back\n", args.domain),
            json!({ "domain": args.domain, "aborted": true }),
        ));
    }
    let dest_uri = args.dest_uri.clone().expect("clap requires it without --abort");
    let dest = host.connect(&dest_uri)?;
    let req = request(&args)?;
    if args.print_plan {
        let plan = conn.migration_plan(&args.domain, &dest, &req)?;
        return Ok(out(plan_table(&plan), serde_json::to_value(&plan)?));
    }
    progress::catch_interrupt();
    let draw = if json { progress::json_event as fn(u64, u64, &str) } else { progress::draw };
    let shown = json || progress::wanted(args.verbose);
    let control = JobControl {
        progress: shown.then_some(&draw as &dyn Fn(u64, u64, &str)),
        cancel: Some(&progress::CANCEL),
        progress_only_shows: true,
    };
    let report = conn.migrate(&args.domain, &dest, &req, control);
    progress::finish();
    let report = report?;
    Ok(out(summary(&report), serde_json::to_value(&report)?))
}

/// The request the flags make.
fn request(a: &MigrateArgs) -> anyhow::Result<MigrateRequest> {
    let disk_targets = a
        .disk_target
        .iter()
        .map(|t| {
            t.split_once('=')
                .filter(|(d, p)| !d.is_empty() && !p.is_empty())
                .map(|(d, p)| (d.to_string(), p.to_string()))
                .ok_or_else(|| Error::InvalidArg(format!("--disk-target {t}: write it as DISK=PATH")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MigrateRequest {
        migrate_disks: a.migrate_disks.iter().filter(|d| !d.is_empty()).cloned().collect(),
        disk_set: a.with_disk_set.clone(),
        blank_disks: a.blank_disks.iter().filter(|d| !d.is_empty()).cloned().collect(),
        shared_disks: a.shared_disks.iter().filter(|d| !d.is_empty()).cloned().collect(),
        copy_storage_all: a.copy_storage_all,
        disk_targets,
        target_dir: a.target_dir.clone(),
        live: a.live,
        persistent: a.persistent,
        undefine_source: a.undefine_source,
        paused: a.paused,
        bandwidth: a.bandwidth,
        timeout: a.timeout,
        tunnelled: a.tunnelled,
        listen_address: a.listen_address.clone(),
        port_range: a.port_range.as_deref().map(parse_ports).transpose()?,
    })
}

/// The plan as a table.
fn plan_table(plan: &MigrationPlan) -> String {
    let rows: Vec<Vec<String>> = plan
        .disks
        .iter()
        .map(|d| {
            vec![
                d.target.clone(),
                d.action.as_str().to_string(),
                d.source.clone().unwrap_or_else(|| "-".into()),
                d.dest.clone().unwrap_or_else(|| "(same storage)".into()),
                if d.action == MigrateAction::Shared { "-".into() } else { human_size(d.capacity) },
                d.why.clone(),
            ]
        })
        .collect();
    let kind = match (plan.offline, plan.live) {
        (true, _) => "offline (the domain is shut off)",
        (false, true) => "live",
        (false, false) => "paused while the memory moves",
    };
    format!(
        "Migration of domain '{}' from {} to {}, {kind}:\n{}Data travels: {}\n",
        plan.domain,
        plan.from,
        plan.to,
        render(&["Disk", "Action", "Source", "Destination", "Size", "Why"], &rows),
        plan.transport.describe()
    )
}

/// One line per migration: where it went and what moved.
fn summary(r: &MigrateReport) -> String {
    if r.dry_run {
        return format!("Would migrate domain '{}' to {} (dry run: nothing was done)\n", r.plan.domain, r.plan.to);
    }
    let disks: Vec<String> = r
        .plan
        .disks
        .iter()
        .map(|d| match d.action {
            MigrateAction::Copy => {
                let bytes = r.disk_bytes.iter().find(|b| b.disk == d.target).map_or(0, |b| b.bytes);
                format!("{} copied ({})", d.target, human_size(bytes))
            }
            MigrateAction::Blank => format!("{} made blank", d.target),
            MigrateAction::Shared => format!("{} shared", d.target),
        })
        .collect();
    let memory = if r.plan.offline { String::new() } else { format!("memory {}; ", human_size(r.memory_bytes)) };
    format!(
        "Domain '{}' migrated to {} in {:.1} s: {memory}{}\n",
        r.plan.domain,
        r.plan.to,
        r.seconds,
        if disks.is_empty() { "no disks".to_string() } else { disks.join(", ") }
    )
}
