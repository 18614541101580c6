//! `luavirt run` (a file, `-e CODE` or standard input), `luavirt repl` and `luavirt test`.

use super::args::Command;
use super::run::{Output, out};
use luavirt_core::lua::limits::Limits;
use luavirt_core::lua::{RunOptions, Script, read_stdin, repl, run_script, run_source, testing};
use luavirt_host::default_uri;
use luavirt_host::{Error, Host};
use serde_json::json;
use std::io::IsTerminal;
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

/// Runs `run`, `repl` or `test`; `connect` is `-c URI`, if given; `json` is `--json`.
pub fn run(host: Rc<Host>, connect: Option<String>, cmd: Command, json: bool) -> anyhow::Result<Output> {
    match cmd {
        Command::Run { dry_run, code, max_memory, timeout, script, args } => {
            let default_uri = connect.unwrap_or_else(default_uri);
            // The script's operations run the policies' hooks, as the commands' do.
            let policies = luavirt_core::policy::for_command(&host, &default_uri, dry_run)?;
            let limits = Limits { memory: max_memory << 20, time: Duration::from_secs(timeout) };
            let opts = RunOptions { default_uri, dry_run, confine: None, limits };
            let here = std::path::PathBuf::from(".");
            let name = match (&code, &script) {
                (Some(_), _) => "(-e)".to_string(),
                (None, Some(p)) if p.as_os_str() == "-" => "stdin".to_string(),
                (None, p) => p.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            };
            let mut report = match (code, script) {
                // With -e every positional is the script's argument.
                (Some(code), first) => {
                    let args: Vec<String> = first.map(|p| p.display().to_string()).into_iter().chain(args).collect();
                    let script = Script { text: code, name: name.clone(), dir: here, global: true };
                    run_source(host, &script, &args, &opts)
                }
                (None, Some(p)) if p.as_os_str() == "-" => {
                    let text = read_stdin().map_err(Failed)?;
                    run_source(host, &Script { text, name: name.clone(), dir: here, global: false }, &args, &opts)
                }
                (None, Some(p)) => run_script(host, &p, &args, &opts),
                (None, None) => unreachable!("clap requires a script or -e"),
            }
            .map_err(Failed)?;
            let script = name;
            if !dry_run {
                return Ok(out("", json!({ "script": script, "ok": true })));
            }
            // What the policies' hooks would change in the run is part of what it would change.
            if let Some(set) = policies {
                report.planned.extend(set.take_effects().planned);
            }
            let mut text = String::new();
            if report.planned.is_empty() {
                text.push_str("Dry run: the script would change nothing.\n");
            } else {
                text.push_str(&format!(
                    "Dry run: nothing was changed. The script would make {} change(s):\n",
                    report.planned.len()
                ));
                for (uri, p) in &report.planned {
                    text.push_str(&format!("  {uri}  {}: {}\n", p.domain, p.change));
                }
            }
            let planned: Vec<_> = report
                .planned
                .iter()
                .map(|(u, p)| json!({ "uri": u, "domain": p.domain, "change": p.change }))
                .collect();
            Ok(out(text, json!({ "script": script, "dry_run": true, "planned": planned })))
        }
        Command::Test { max_memory, timeout, paths } => {
            // Each file gets a temporary host of its own; another connection is not on offer.
            if let Some(uri) = connect {
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
            let default_uri = connect.unwrap_or_else(default_uri);
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
