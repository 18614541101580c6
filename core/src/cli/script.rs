//! `luavirt run` and `luavirt test`.

use super::args::Command;
use super::run::{Output, out};
use luavirt_core::lua::limits::Limits;
use luavirt_core::lua::{RunOptions, run_script, testing};
use luavirt_host::default_uri;
use luavirt_host::{Error, Host, PlannedChange};
use serde_json::json;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// The failure of a command whose details are already printed.
#[derive(Debug)]
pub struct Failed(pub String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

/// Runs `run` or `test`; `connect` holds each `-c URI` given; `json` is `--json`.
pub fn run(host: Rc<Host>, connect: Vec<String>, cmd: Command, json: bool) -> anyhow::Result<Output> {
    match cmd {
        Command::Run { dry_run, max_memory, timeout, script, args } => {
            let limits = Limits { memory: max_memory << 20, time: Duration::from_secs(timeout) };
            let run = ScriptRun { dry_run, limits, script: &script, args: &args };
            if connect.len() > 1 {
                return fleet(&host, &connect, &run);
            }
            let default_uri = connect.into_iter().next().unwrap_or_else(default_uri);
            let planned = run.on(&host, &default_uri).map_err(Failed)?;
            if !dry_run {
                return Ok(out("", json!({ "script": script, "ok": true })));
            }
            let json = json!({ "script": script, "dry_run": true, "planned": planned_json(&planned) });
            Ok(out(planned_text(&planned), json))
        }
        Command::Test { max_memory, timeout, paths } => {
            // Each file gets a temporary host of its own; another connection is not on offer.
            if let Some(uri) = connect.first() {
                return Err(Error::InvalidArg(format!(
                    "-c {uri}: luavirt test runs each file on its own temporary host (qemu:///session?state=TEMPORARY-FOLDER), never on another connection; drop -c"
                ))
                .into());
            }
            let paths = if paths.is_empty() { vec![".".into()] } else { paths };
            let files = testing::find_tests(&paths).map_err(Error::InvalidArg)?;
            if files.is_empty() {
                return Err(Error::InvalidArg(format!(
                    "no *_test.lua files in {}",
                    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ))
                .into());
            }
            let limits = Limits { memory: max_memory << 20, time: Duration::from_secs(timeout) };
            // run_tests gives each file its temporary host's URI.
            let opts = RunOptions { default_uri: String::new(), dry_run: false, confine: None, limits };
            // With --json the report is the JSON document alone: nothing printed as tests run.
            let (mut stdout, mut sink) = (std::io::stdout(), std::io::sink());
            let progress: &mut dyn std::io::Write = if json { &mut sink } else { &mut stdout };
            let prints = if json { testing::Prints::Stderr } else { testing::Prints::Stdout };
            let tally = testing::run_tests(host, &files, &opts, prints, progress);
            if tally.failed > 0 && !json {
                let line = format!("error: {} test(s) failed\n", tally.failed);
                let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            }
            // Failed tests are the report, not an error of luavirt's: exit status 1 all the same.
            let mut o = out("", serde_json::to_value(&tally)?);
            o.status = i32::from(tally.failed > 0);
            Ok(o)
        }
        _ => unreachable!("only run and test come here"),
    }
}

/// One `luavirt run`: the script, its arguments and how it runs.
struct ScriptRun<'a> {
    dry_run: bool,
    limits: Limits,
    script: &'a Path,
    args: &'a [String],
}

impl ScriptRun<'_> {
    /// Runs the script with `uri` as the connection `luavirt.connect()` opens, under the
    /// policies' hooks; returns what a dry run would change, the hooks' changes included.
    fn on(&self, host: &Rc<Host>, uri: &str) -> Result<Vec<(String, PlannedChange)>, String> {
        // The script's operations run the policies' hooks, as the commands' do.
        let policies = luavirt_core::policy::for_command(host, uri, self.dry_run)
            .map_err(|e| luavirt_host::words::render(&e.to_string()))?;
        let opts =
            RunOptions { default_uri: uri.to_string(), dry_run: self.dry_run, confine: None, limits: self.limits };
        let mut report = run_script(host.clone(), self.script, self.args, &opts)?;
        // What the policies' hooks would change in the run is part of what it would change.
        if let Some(set) = policies.filter(|_| self.dry_run) {
            report.planned.extend(set.take_effects().planned);
        }
        Ok(report.planned)
    }
}

/// The script run once on each host of `uris`, one after the other: a host that fails (cannot
/// be reached, or the script fails there) is reported and the others run all the same. Exit
/// status 1 when any failed.
fn fleet(host: &Rc<Host>, uris: &[String], run: &ScriptRun) -> anyhow::Result<Output> {
    if let Some(uri) = uris.iter().enumerate().find_map(|(i, u)| uris[..i].contains(u).then_some(u)) {
        return Err(Error::InvalidArg(format!("-c {uri} is given twice; give each host once")).into());
    }
    let mut text = String::new();
    let mut hosts = Vec::new();
    for uri in uris {
        // Each host's run loads the policies for that host.
        host.hooks().clear();
        let result = run.on(host, uri);
        let (line, entry) = match &result {
            Ok(planned) if run.dry_run => (
                format!("{uri}: dry run, {} change(s) it would make\n{}", planned.len(), changes(planned)),
                json!({ "uri": uri, "ok": true, "planned": planned_json(planned) }),
            ),
            Ok(_) => (format!("{uri}: done\n"), json!({ "uri": uri, "ok": true })),
            Err(e) => {
                // The traceback, if any, is in the JSON; a line per host reads better here.
                let brief = e.split("\nstack traceback:").next().unwrap_or(e);
                (format!("{uri}: failed: {brief}\n"), json!({ "uri": uri, "ok": false, "error": e }))
            }
        };
        text.push_str(&line);
        hosts.push(entry);
    }
    host.hooks().clear();
    let failed = hosts.iter().filter(|h| h["ok"] == false).count();
    let succeeded = hosts.len() - failed;
    text.push_str(&format!(
        "{} ran on {} hosts: {succeeded} succeeded, {failed} failed\n",
        run.script.display(),
        hosts.len()
    ));
    let json = json!({
        "script": run.script, "dry_run": run.dry_run, "hosts": hosts, "succeeded": succeeded, "failed": failed,
    });
    let mut o = out(text, json);
    o.status = i32::from(failed > 0);
    Ok(o)
}

/// A dry run's report of one host.
fn planned_text(planned: &[(String, PlannedChange)]) -> String {
    if planned.is_empty() {
        return "Dry run: the script would change nothing.\n".to_string();
    }
    format!("Dry run: nothing was changed. The script would make {} change(s):\n{}", planned.len(), changes(planned))
}

fn changes(planned: &[(String, PlannedChange)]) -> String {
    planned.iter().map(|(uri, p)| format!("  {uri}  {}: {}\n", p.domain, p.change)).collect()
}

fn planned_json(planned: &[(String, PlannedChange)]) -> Vec<serde_json::Value> {
    planned.iter().map(|(u, p)| json!({ "uri": u, "domain": p.domain, "change": p.change })).collect()
}
