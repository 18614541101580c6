//! Runs one parsed command against the host API and prints the result. Exit status: 0 on
//! success (also "already in set"), 1 on error; clap exits with 2 on usage errors. A reader
//! that goes away early (`luavirt list | head -1`) ends nothing and is not an error.

use super::args::{Cli, Command, DisksetCommand, SetArgs};
use super::table::{human_size, render};
use luavirt_host::remote::SshTarget;
use luavirt_host::save::SaveRequest;
use luavirt_host::snapshot::DiskSpec;
use luavirt_host::{Affect, ModeApplies, StorageRemoval, UndefineOptions};
use luavirt_host::{Connection, Error, Host};
use luavirt_host::{DiskSetChange, DomainState, ImageDetails, default_uri};
use luavirt_plugin_api::domain::DiskMode;
use serde_json::json;
use std::io::{Read, Write};
use std::rc::Rc;

/// The version of the JSON shapes `--json` prints (docs/json.md); `drivers --json` says it.
pub const JSON_VERSION: u32 = 1;

/// What a command prints: text for people, JSON for `--json`, and its exit status (0 but
/// for a report of failures, like `driver-check`'s).
pub struct Output {
    text: String,
    json: serde_json::Value,
    pub status: i32,
}

/// An output of `text` and `json`.
pub fn out(text: impl Into<String>, json: serde_json::Value) -> Output {
    Output { text: text.into(), json, status: 0 }
}

/// Runs the command; returns the exit status.
pub fn run(cli: Cli) -> i32 {
    let json = cli.json;
    super::table::FULL.store(cli.full, std::sync::atomic::Ordering::Relaxed);
    let result = match one_connection(&cli) {
        Ok(connect) => {
            if let Command::Serve { stdio } = cli.command {
                return super::serve::run(stdio, connect.as_deref());
            }
            execute(cli, connect)
        }
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(o) => {
            let text = if json {
                format!("{}\n", serde_json::to_string_pretty(&o.json).expect("JSON values serialize"))
            } else {
                o.text
            };
            match write_output(&text) {
                0 => o.status,
                failed => failed,
            }
        }
        Err(e) => {
            let message = luavirt_host::words::render(&e.to_string());
            let text = if json {
                format!("{}\n", json!({ "error": { "code": error_code(&e), "message": message } }))
            } else {
                format!("error: {message}\n")
            };
            // Nowhere left to report a failure to write this.
            let _ = std::io::stderr().write_all(text.as_bytes());
            1
        }
    }
}

/// Prints a successful command's output; returns the exit status. A closed pipe means the
/// reader has what it wanted: quiet, and still a success. Any other failure (a full disk)
/// would lose output unseen, so it is an error.
fn write_output(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write the output: {e}");
            1
        }
    }
}

fn error_code(e: &anyhow::Error) -> &'static str {
    // A script that failed has printed its own report; its code says so.
    if e.downcast_ref::<super::script::Failed>().is_some() {
        return "script";
    }
    e.downcast_ref::<Error>().map_or("internal", |e| e.code_name())
}

/// Whether the command runs an operation that policies' hooks see (a plan or XML printed
/// runs none).
fn runs_hooked_operation(cmd: &Command) -> bool {
    match cmd {
        Command::SnapshotCreateAs(a) => !a.print_plan && !a.print_xml,
        Command::Migrate(a) => !a.print_plan && !a.abort,
        Command::Undefine { snapshots_metadata, .. } => *snapshots_metadata,
        Command::Define { .. }
        | Command::Edit { .. }
        | Command::SnapshotCreate { .. }
        | Command::SnapshotRevert { .. }
        | Command::SnapshotDelete { .. }
        | Command::Save { .. }
        | Command::Restore { .. } => true,
        _ => false,
    }
}

/// The `-c URI` of a command, if given: one, but for `run`, which takes several (its
/// `connect` is then the first; the script module runs it on each).
fn one_connection(cli: &Cli) -> Result<Option<String>, Error> {
    match cli.connect.as_slice() {
        [_, _, ..] if !matches!(cli.command, Command::Run { .. }) => Err(Error::InvalidArg(format!(
            "-c was given {} times; only `luavirt run` takes several (it runs the script on each host); every other command works on one",
            cli.connect.len()
        ))),
        list => Ok(list.first().cloned()),
    }
}

fn execute(cli: Cli, connect: Option<String>) -> anyhow::Result<Output> {
    // Generated from the command line's definition; no driver is needed.
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        super::help::completions(shell, &mut script);
        let script = String::from_utf8(script)?;
        return Ok(out(script.clone(), json!({ "shell": shell.to_string(), "script": script })));
    }
    if let Command::Man { dir } = &cli.command {
        let pages = super::help::man_pages(dir).map_err(|source| Error::Io {
            doing: "write man pages into",
            path: dir.clone(),
            source,
        })?;
        let text = format!("Wrote {} man pages into {}\n", pages.len(), dir.display());
        return Ok(out(text, json!({ "dir": dir, "pages": pages })));
    }
    let host = Rc::new(Host::load());
    if let Command::Watch(a) = cli.command {
        return super::watch::watch(host, connect, cli.json, a);
    }
    if let Command::Hooks(cmd) = cli.command {
        return super::watch::hooks(host, connect, cmd);
    }
    if let Command::Drivers = cli.command {
        return drivers(&host, connect.as_deref());
    }
    if let Command::DriverCheck { path, uri, writable } = &cli.command {
        return Ok(driver_check(path, uri.clone(), *writable));
    }
    if let cmd @ (Command::Run { .. } | Command::Repl { .. } | Command::Test { .. }) = cli.command {
        return super::script::run(host, cli.connect, cmd, cli.json);
    }
    let uri = connect.unwrap_or_else(default_uri);
    if runs_hooked_operation(&cli.command) {
        luavirt_core::policy::for_command(&host, &uri, false)?;
    }
    let conn = host.connect(&uri)?;
    let mut cli = cli;
    if let Some(domain) = cli.command.domain_mut() {
        *domain = conn.lookup(domain)?;
    }
    if let Command::Migrate(args) = cli.command {
        return super::migrate::run(&host, &conn, args, cli.json);
    }
    Ok(match cli.command {
        Command::Drivers
        | Command::Serve { .. }
        | Command::DriverCheck { .. }
        | Command::Run { .. }
        | Command::Repl { .. }
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Test { .. }
        | Command::Watch(_)
        | Command::Hooks(_) => {
            unreachable!("handled above")
        }
        Command::List { all, inactive, name } => list(&conn, all, inactive, name)?,
        Command::Define { file } => {
            let (text, source) = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                (s, "standard input".to_string())
            } else {
                let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                    doing: "read",
                    path: file.clone(),
                    source,
                })?;
                (text, file.display().to_string())
            };
            let o = conn.define(&text, Some(&source))?;
            let mut msg = format!("Domain '{}' defined from {source}\n", o.name);
            for (set, disk) in &o.left_sets {
                msg.push_str(&format!("Disk {disk} is no longer in the domain and left set '{set}'\n"));
            }
            if !o.kept_sets.is_empty() {
                let sets: Vec<String> = o.kept_sets.iter().map(|(s, d)| format!("{d} in '{s}'")).collect();
                msg.push_str(&format!("The XML has no disk sets, so the domain keeps its own: {}\n", sets.join(", ")));
            }
            out(msg, serde_json::to_value(&o)?)
        }
        Command::Undefine { domain, snapshots_metadata, remove_all_storage, storage } => {
            let storage = match (remove_all_storage, storage.is_empty()) {
                (true, _) => StorageRemoval::All,
                (false, false) => StorageRemoval::Disks(storage),
                (false, true) => StorageRemoval::Keep,
            };
            let mut r = conn.undefine_with(&domain, &UndefineOptions { snapshots_metadata, storage })?;
            for k in &mut r.kept {
                k.reason = luavirt_host::words::render(&k.reason);
            }
            let mut text = String::new();
            if !r.snapshots_forgotten.is_empty() {
                text.push_str(&format!(
                    "Forgot {} snapshot(s) of domain '{domain}' (their files stay): {}\n",
                    r.snapshots_forgotten.len(),
                    r.snapshots_forgotten.join(", ")
                ));
            }
            text.push_str(&format!("Domain '{domain}' has been undefined\n"));
            for p in &r.removed {
                text.push_str(&format!("Removed image {p}\n"));
            }
            for k in &r.kept {
                text.push_str(&format!("Kept {}: {}\n", k.path, k.reason));
            }
            let mut j = serde_json::to_value(&r)?;
            j["domain"] = json!(domain);
            j["undefined"] = json!(true);
            out(text, j)
        }
        Command::Dumpxml { domain, inactive } => {
            let xml = conn.domain_xml(&domain, inactive)?;
            let text = if xml.ends_with('\n') { xml.clone() } else { format!("{xml}\n") };
            out(text, json!({ "domain": domain, "xml": xml }))
        }
        Command::Domstate { domain, reason } => {
            let (state, id) = conn.domain_state(&domain)?;
            let why = if reason { conn.domain_state_reason(&domain)? } else { None };
            let text = match &why {
                Some(r) => format!("{} ({r})\n", state.as_str()),
                None => format!("{}\n", state.as_str()),
            };
            let mut j = json!({ "domain": domain, "state": state, "id": id });
            if reason {
                j["reason"] = json!(why);
            }
            out(text, j)
        }
        Command::Migrate(_) => unreachable!("handled above"),
        Command::Save { domain, file, disk_set, diskspec, live, verbose } => {
            let disks = diskspec.iter().map(|s| DiskSpec::parse(s)).collect::<Result<Vec<_>, _>>()?;
            let file = host_path(&conn, &file)?;
            let draw = super::progress::draw;
            let control = luavirt_host::JobControl {
                progress: super::progress::wanted(verbose).then_some(&draw as &dyn Fn(u64, u64, &str)),
                cancel: None,
                progress_only_shows: true,
            };
            let saved = conn.save_with(&domain, &SaveRequest { file, disk_set, disks, live }, control);
            super::progress::finish();
            let report = saved?;
            let kept: Vec<&str> = report.disks.iter().filter(|d| d.saved).map(|d| d.target.as_str()).collect();
            let text = format!(
                "Domain '{domain}' saved to {} with disk(s) {} (snapshot '{}'){}\n",
                report.file,
                if kept.is_empty() { "none".to_string() } else { kept.join(", ") },
                report.snapshot,
                if live { "; it runs on" } else { "; it is shut off" }
            );
            out(text, serde_json::to_value(&report)?)
        }
        Command::Restore { file, paused } => {
            let file = host_path(&conn, &file)?;
            let domain = conn.restore(&file, paused)?;
            out(
                format!("Domain '{domain}' restored from {file}{}\n", if paused { " (paused)" } else { "" }),
                json!({ "domain": domain, "file": file, "paused": paused }),
            )
        }
        Command::Domjobabort { domain } => {
            conn.abort_job(&domain)?;
            out(
                format!("Asked the migration of domain '{domain}' to stop; it puts everything back\n"),
                json!({ "domain": domain, "aborted": true }),
            )
        }
        Command::Recover { domain } => {
            let settled = conn.recover(&domain)?;
            let text = if settled {
                format!("Domain '{domain}': the unfinished change was settled (see above)\n")
            } else {
                format!("Domain '{domain}' has no unfinished change\n")
            };
            out(text, json!({ "domain": domain, "recovered": true, "settled": settled }))
        }
        Command::Domblklist { domain, details } => domblklist(&conn, &domain, details, cli.json)?,
        Command::Start { domain } => {
            conn.start(&domain)?;
            out(format!("Domain '{domain}' started\n"), json!({ "domain": domain, "state": DomainState::Running }))
        }
        Command::Destroy { domain } => {
            conn.destroy(&domain)?;
            out(format!("Domain '{domain}' destroyed\n"), json!({ "domain": domain, "state": DomainState::ShutOff }))
        }
        Command::Diskset(cmd) => diskset(&conn, cmd)?,
        cmd @ (Command::AttachDisk(_) | Command::DetachDisk { .. }) => super::disks::run(&conn, cmd)?,
        cmd @ (Command::Shutdown(_) | Command::Reboot { .. } | Command::Suspend { .. } | Command::Resume { .. }) => {
            super::lifecycle::run(&conn, cmd)?
        }
        cmd @ (Command::SnapshotCreateAs(_)
        | Command::SnapshotList { .. }
        | Command::SnapshotDumpxml { .. }
        | Command::SnapshotInfo { .. }
        | Command::SnapshotCurrent { .. }
        | Command::SnapshotRevert { .. }
        | Command::SnapshotDelete { .. }
        | Command::SnapshotCreate { .. }
        | Command::SnapshotParent { .. }) => super::snapshot::run(&conn, cmd)?,
        cmd @ (Command::Blockcopy { .. }
        | Command::Blockpull { .. }
        | Command::Blockcommit { .. }
        | Command::Blockjob { .. }) => super::blockjob::run(&conn, cmd)?,
        Command::DiskMode { domain, disk, mode: None, .. } => {
            let mode = conn.disk_mode(&domain, &disk)?;
            out(format!("{mode}\n"), json!({ "domain": domain, "disk": disk, "mode": mode.name() }))
        }
        Command::DiskMode { domain, disk, mode: Some(m), config, live } => {
            let mode = DiskMode::parse(&m).map_err(Error::InvalidArg)?;
            let (changed, applies) = conn.set_disk_mode_as(&domain, &disk, mode, Affect { live, config })?;
            let when = match applies {
                ModeApplies::Now => String::new(),
                ModeApplies::NextStart => {
                    "; the running domain keeps the disk as it started, and the new mode applies at its next start"
                        .to_string()
                }
            };
            let text = if changed {
                format!("Disk {disk} of domain '{domain}' is now {mode}{when}\n")
            } else {
                format!("Disk {disk} of domain '{domain}' is already {mode}{when}\n")
            };
            out(
                text,
                json!({ "domain": domain, "disk": disk, "mode": mode.name(), "changed": changed, "applies": applies }),
            )
        }
        cmd @ (Command::Dominfo { .. } | Command::Domblkinfo { .. }) => super::info::run(&conn, cmd)?,
        cmd @ (Command::Edit { .. } | Command::SnapshotEdit { .. }) => super::edit::run(&conn, cmd)?,
    })
}

/// A file of the connection's host, as an absolute path: made so from here for a local
/// connection; a remote host's files must be named absolutely (this folder is not there).
pub(super) fn host_path(conn: &Connection, file: &std::path::Path) -> anyhow::Result<String> {
    if !conn.is_remote() {
        return Ok(std::path::absolute(file)?.display().to_string());
    }
    if !file.is_absolute() {
        return Err(Error::InvalidArg(format!(
            "{}: name a file of the remote host {} by its absolute path",
            file.display(),
            conn.uri()
        ))
        .into());
    }
    Ok(file.display().to_string())
}

/// The drivers of this machine, or of the remote host that `-c` names.
fn drivers(host: &Host, connect: Option<&str>) -> anyhow::Result<Output> {
    let remote = connect.filter(|u| luavirt_plugin_api::Uri::parse(u).is_ok_and(|u| SshTarget::is_remote(&u)));
    let listing = match remote {
        Some(uri) => host.connect(uri)?.remote_drivers().expect("a remote URI opens a remote connection")?,
        None => {
            host.require_drivers()?;
            host.listing()
        }
    };
    let rows: Vec<Vec<String>> = listing
        .loaded
        .iter()
        .map(|d| {
            vec![
                d.facts.name.clone(),
                d.facts.version.clone(),
                format!("{}.{}", d.facts.abi.0, d.facts.abi.1),
                d.facts.schemes.join(","),
                d.facts.capability_names().join(","),
                d.path.display().to_string(),
            ]
        })
        .collect();
    let mut text = render(&["Name", "Version", "ABI", "Schemes", "Capabilities", "Path"], &rows);
    for d in &listing.loaded {
        if let Some(note) = &d.note {
            text.push_str(&format!("note: {}: {note}\n", d.facts.name));
        }
    }
    for r in &listing.refused {
        text.push_str(&format!("refused: {}: {}\n", r.path.display(), r.reason));
    }
    let json = json!({
        "json_version": JSON_VERSION,
        "drivers": listing.loaded.iter().map(|d| json!({
            "name": d.facts.name, "version": d.facts.version, "abi": format!("{}.{}", d.facts.abi.0, d.facts.abi.1),
            "schemes": d.facts.schemes, "capabilities": d.facts.capability_names(), "description": d.facts.description,
            "path": d.path, "note": d.note,
        })).collect::<Vec<_>>(),
        "refused": listing.refused.iter().map(|r| json!({ "path": r.path, "reason": r.reason })).collect::<Vec<_>>(),
    });
    Ok(out(text, json))
}

fn driver_check(path: &std::path::Path, uri: Option<String>, writable: bool) -> Output {
    use luavirt_host::driver::check::{CheckOptions, check_driver};
    let findings = check_driver(path, &CheckOptions { uri, writable });
    let rows: Vec<Vec<String>> =
        findings.iter().map(|f| vec![f.outcome.to_uppercase(), f.check.clone(), f.detail.clone()]).collect();
    let failed = findings.iter().filter(|f| f.outcome == "fail").count();
    let mut text = render(&["Result", "Check", "Detail"], &rows);
    text.push_str(&format!(
        "{}: {} passed, {failed} failed, {} skipped\n",
        path.display(),
        findings.iter().filter(|f| f.outcome == "pass").count(),
        findings.iter().filter(|f| f.outcome == "skip").count()
    ));
    let mut o = out(text, json!({ "path": path, "findings": findings, "failed": failed }));
    o.status = i32::from(failed > 0);
    o
}

fn list(conn: &Connection, all: bool, inactive: bool, names_only: bool) -> anyhow::Result<Output> {
    let doms: Vec<_> = conn
        .list_domains()?
        .into_iter()
        .filter(|d| if inactive { !d.state.is_active() } else { all || d.state.is_active() })
        .collect();
    let text = if names_only {
        doms.iter().map(|d| format!("{}\n", d.name)).collect()
    } else {
        let rows: Vec<Vec<String>> = doms
            .iter()
            .map(|d| {
                vec![d.id.map_or("-".to_string(), |i| i.to_string()), d.name.clone(), d.state.as_str().to_string()]
            })
            .collect();
        render(&["Id", "Name", "State"], &rows)
    };
    Ok(out(text, serde_json::to_value(&doms)?))
}

fn domblklist(conn: &Connection, domain: &str, details: bool, json: bool) -> anyhow::Result<Output> {
    // JSON always has every field: the images are read for it, and without --details an
    // unreadable one leaves its fields unknown (null) rather than failing the list.
    let look = match (details, json) {
        (true, _) => ImageDetails::Required,
        (false, true) => ImageDetails::IfReadable,
        (false, false) => ImageDetails::None,
    };
    let devs = conn.block_devices(domain, look)?;
    let text = if details {
        let rows: Vec<Vec<String>> = devs
            .iter()
            .map(|d| {
                let chain: Vec<String> = d.backing.iter().map(|b| format!("{} ({})", b.path, b.format)).collect();
                vec![
                    d.disk_type.clone(),
                    d.device.clone(),
                    d.target.clone(),
                    d.source.clone(),
                    d.format.clone(),
                    d.mode.clone(),
                    d.capacity.map_or("-".into(), human_size),
                    if chain.is_empty() { "-".into() } else { chain.join(" <- ") },
                ]
            })
            .collect();
        render(&["Type", "Device", "Target", "Source", "Format", "Mode", "Virtual size", "Backing chain"], &rows)
    } else {
        let rows: Vec<Vec<String>> = devs.iter().map(|d| vec![d.target.clone(), d.source.clone()]).collect();
        render(&["Target", "Source"], &rows)
    };
    Ok(out(text, serde_json::to_value(&devs)?))
}

fn diskset(conn: &Connection, cmd: DisksetCommand) -> anyhow::Result<Output> {
    let ops = |a: &SetArgs| conn.diskset(&a.domain, &a.set);
    let where_ = |a: &SetArgs| format!("set '{}' of domain '{}'", a.set, a.domain);
    Ok(match cmd {
        DisksetCommand::Add { set, disk } => {
            let change = ops(&set)?.add(&disk)?;
            let text = match change {
                DiskSetChange::AlreadyMember => {
                    format!("Disk {disk} is already in {}\n", where_(&set))
                }
                _ => format!("Disk {disk} added to {}\n", where_(&set)),
            };
            out(text, json!({ "domain": set.domain, "set": set.set, "disk": disk, "change": change }))
        }
        DisksetCommand::Remove { set, disk } => {
            let change = ops(&set)?.remove(&disk)?;
            let text = match change {
                DiskSetChange::AlreadyAbsent => format!("Disk {disk} is not in {}; nothing to remove\n", where_(&set)),
                _ => format!("Disk {disk} removed from {}\n", where_(&set)),
            };
            out(text, json!({ "domain": set.domain, "set": set.set, "disk": disk, "change": change }))
        }
        DisksetCommand::AddAll { set } => {
            let added = ops(&set)?.add_all()?;
            let text = format!("Added {} disk(s) to {}{}\n", added.len(), where_(&set), list_suffix(&added));
            out(text, json!({ "domain": set.domain, "set": set.set, "added": added }))
        }
        DisksetCommand::RemoveAll { set } => {
            let removed = ops(&set)?.remove_all()?;
            let text = format!("Removed {} disk(s) from {}{}\n", removed.len(), where_(&set), list_suffix(&removed));
            out(text, json!({ "domain": set.domain, "set": set.set, "removed": removed }))
        }
        DisksetCommand::Size { set } => {
            let n = ops(&set)?.size()?;
            out(format!("{n}\n"), json!({ "domain": set.domain, "set": set.set, "size": n }))
        }
        DisksetCommand::List { set } => {
            let members = ops(&set)?.list()?;
            out(
                members.iter().map(|m| format!("{m}\n")).collect::<String>(),
                json!({ "domain": set.domain, "set": set.set, "disks": members }),
            )
        }
        DisksetCommand::Contains { set, disk } => {
            let yes = ops(&set)?.contains(&disk)?;
            out(
                if yes { "yes\n" } else { "no\n" },
                json!({ "domain": set.domain, "set": set.set, "disk": disk, "contains": yes }),
            )
        }
        DisksetCommand::Names { domain } => {
            let names = conn.diskset_names(&domain)?;
            out(names.iter().map(|m| format!("{m}\n")).collect::<String>(), json!({ "domain": domain, "sets": names }))
        }
    })
}

fn list_suffix(items: &[String]) -> String {
    if items.is_empty() { String::new() } else { format!(": {}", items.join(", ")) }
}
