//! `luavirt watch` and `luavirt hooks list`: the policy folder's hooks, run or shown.

use super::args::{HooksCommand, LogFormat, WatchArgs};
use super::run::{Output, out};
use super::table::render;
use luavirt_core::lua::limits::Limits;
use luavirt_core::policy::{self, Options, PolicySet, Record};
use luavirt_core::watch::{self, WatchOptions};
use luavirt_host::{Error, Host, default_uri};
use serde_json::json;
use std::rc::Rc;
use std::time::Duration;

/// Runs the watcher until it stops; its exit status is the command's.
pub fn watch(host: Rc<Host>, connect: Option<String>, json: bool, a: WatchArgs) -> anyhow::Result<Output> {
    if json {
        return Err(Error::InvalidArg(
            "luavirt watch prints no result to format: for JSON log lines, use --log-format json".into(),
        )
        .into());
    }
    let opts = WatchOptions {
        policy: Options {
            dir: a.policy_dir.unwrap_or_else(policy::default_dir),
            default_uri: connect.unwrap_or_else(default_uri),
            dry_run: a.dry_run,
            limits: Limits { memory: a.max_memory << 20, time: Duration::from_secs(a.timeout) },
        },
        once: a.once,
        window: Duration::from_millis(a.debounce),
        log: match a.log_format {
            LogFormat::Text => watch::log::Format::Text,
            LogFormat::Json => watch::log::Format::Json,
        },
    };
    let status = watch::run(host, opts);
    let mut o = out("", json!(null));
    o.status = status;
    Ok(o)
}

/// `luavirt hooks list`: loads the policies as a dry run (their top level changes nothing)
/// and lists their hooks; files that cannot be loaded are listed too, and make it exit 1.
pub fn hooks(host: Rc<Host>, connect: Option<String>, cmd: HooksCommand) -> anyhow::Result<Output> {
    let HooksCommand::List { policy_dir } = cmd;
    let dir = policy_dir.unwrap_or_else(policy::default_dir);
    if !dir.exists() {
        return Ok(out(
            format!("No policies: {} does not exist\n", dir.display()),
            json!({ "dir": dir, "hooks": [], "failed": [] }),
        ));
    }
    let opts = Options {
        dir: dir.clone(),
        default_uri: connect.unwrap_or_else(default_uri),
        dry_run: true,
        limits: policy::HOOK_LIMITS,
    };
    // Lines the policies log while loading are theirs, not the listing's.
    let set = PolicySet::new(host, opts, Rc::new(|_: Record| {}));
    let failed = set.load_all().map_err(Error::InvalidArg)?;
    let hooks = set.list();
    let rows: Vec<Vec<String>> =
        hooks.iter().map(|h| vec![h.file.display().to_string(), h.event.clone(), line_of(&h.at).to_string()]).collect();
    let mut text = render(&["File", "Event", "Line"], &rows);
    for (file, e) in &failed {
        text.push_str(&format!("not loaded: {}: {e}\n", file.display()));
    }
    let mut o = out(
        text,
        json!({
            "dir": dir,
            "hooks": hooks,
            "failed": failed.iter().map(|(f, e)| json!({ "file": f, "error": e })).collect::<Vec<_>>(),
        }),
    );
    o.status = i32::from(!failed.is_empty());
    Ok(o)
}

/// The line number of a `file:line`.
fn line_of(at: &str) -> &str {
    at.rsplit_once(':').map_or(at, |(_, line)| line)
}
