//! `luavirt run` (a file, `-e CODE` or standard input), `luavirt repl` and `luavirt test`.

use super::args::Command;
use super::run::{Output, out};
use luavirt_core::lua::limits::Limits;
use luavirt_core::lua::{RunOptions, Script, read_stdin, repl, run_script, run_source, testing};
use luavirt_host::default_uri;
use luavirt_host::{Error, Host, PlannedChange};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
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

/// Runs `run`, `repl` or `test`; `connect` holds each `-c URI` given (several only for
/// `run`); `json` is `--json`.
pub fn run(host: Rc<Host>, connect: Vec<String>, cmd: Command, json: bool) -> anyhow::Result<Output> {
    match cmd {
        Command::Run { dry_run, code, max_memory, timeout, script, args } => {
            let limits = Limits { memory: max_memory << 20, time: Duration::from_secs(timeout) };
            let here = PathBuf::from(".");
            let name = match (&code, &script) {
                (Some(_), _) => "(-e)".to_string(),
                (None, Some(p)) if p.as_os_str() == "-" => "stdin".to_string(),
                (None, p) => p.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            };
            let (source, args) = match (code, script) {
                // With -e every positional is the script's argument.
                (Some(code), first) => {
                    let args: Vec<String> = first.map(|p| p.display().to_string()).into_iter().chain(args).collect();
                    (Source::Text(Script { text: code, name: name.clone(), dir: here, global: true }), args)
                }
                // Read once, whatever the number of hosts.
                (None, Some(p)) if p.as_os_str() == "-" => {
                    let text = read_stdin().map_err(Failed)?;
                    (Source::Text(Script { text, name: name.clone(), dir: here, global: false }), args)
                }
                (None, Some(p)) => (Source::File(p), args),
                (None, None) => unreachable!("clap requires a script or -e"),
            };
            let run = ScriptRun { dry_run, limits, source: &source, name: &name, args: &args };
            if connect.len() > 1 {
                return fleet(&host, &connect, &run);
            }
            let default_uri = connect.into_iter().next().unwrap_or_else(default_uri);
            let planned = run.on(&host, &default_uri)?;
            let script = name;
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
        Command::Repl { max_memory, timeout } => {
            let default_uri = connect.into_iter().next().unwrap_or_else(default_uri);
            luavirt_core::policy::for_command(&host, &default_uri, false)?;
            let limits = Limits { memory: max_memory << 20, time: Duration::from_secs(timeout) };
            let opts = RunOptions { default_uri, dry_run: false, confine: None, limits };
            let stdin = std::io::stdin();
            let prompt = stdin.is_terminal();
            let terminal = repl::Terminal {
                input: &mut stdin.lock(),
                out: &mut std::io::stdout(),
                err: &mut std::io::stderr(),
                prompt,
            };
            match repl::run(host, &opts, terminal).map_err(Failed)? {
                0 => Ok(out("", json!({ "ok": true }))),
                n => Err(Failed(format!("{n} entr{} failed", if n == 1 { "y" } else { "ies" })).into()),
            }
        }
        _ => unreachable!("only run, repl and test come here"),
    }
}

/// Where a script's text comes from.
enum Source {
    /// A file (read on each run).
    File(PathBuf),
    /// `-e` code, or standard input read once.
    Text(Script),
}

/// One `luavirt run`: the script, its arguments and how it runs.
struct ScriptRun<'a> {
    dry_run: bool,
    limits: Limits,
    source: &'a Source,
    /// How messages and the report name the script.
    name: &'a str,
    args: &'a [String],
}

impl ScriptRun<'_> {
    /// Runs the script with `uri` as the connection `luavirt.connect()` opens, under the
    /// policies' hooks; returns what a dry run would change, the hooks' changes included.
    fn on(&self, host: &Rc<Host>, uri: &str) -> anyhow::Result<Vec<(String, PlannedChange)>> {
        // The script's operations run the policies' hooks, as the commands' do.
        let policies = luavirt_core::policy::for_command(host, uri, self.dry_run)?;
        let opts =
            RunOptions { default_uri: uri.to_string(), dry_run: self.dry_run, confine: None, limits: self.limits };
        let mut report = match self.source {
            Source::File(p) => run_script(host.clone(), p, self.args, &opts),
            Source::Text(script) => run_source(host.clone(), script, self.args, &opts),
        }
        .map_err(Failed)?;
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
        let result = run.on(host, uri).map_err(|e| luavirt_host::words::render(&e.to_string()));
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
    text.push_str(&format!("{} ran on {} hosts: {succeeded} succeeded, {failed} failed\n", run.name, hosts.len()));
    let json = json!({
        "script": run.name, "dry_run": run.dry_run, "hosts": hosts, "succeeded": succeeded, "failed": failed,
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
