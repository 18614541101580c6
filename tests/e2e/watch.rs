//! Policy hooks and `luavirt watch`, with real file events: editor-style saves of a `.vmx`
//! set right by a policy, storms of writes, reloads (broken and good), vetoes from the CLI and
//! from scripts, hooks that change their own files, refused policy folders, signals, `--once`,
//! `--dry-run`, `hooks list`, folders removed and back, hooks that fail or run too long.
//!
//! Tests wait for an expected outcome with a generous deadline and never assert a duration.

use luavirt_tests::{Env, repo_dir, require, set_mode};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for an outcome before it fails (a hang detector, not a measure).
const DEADLINE: Duration = Duration::from_secs(60);

/// Writes `text` to `path` the way editors save: a new file, renamed over the old one.
fn editor_save(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(".{}.swp", path.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The test's policy folder, made with mode 0755 (the trust check refuses more).
fn policy_dir(env: &Env) -> PathBuf {
    let d = env.policy_dir();
    std::fs::create_dir_all(&d).unwrap();
    set_mode(&env.dir, 0o755);
    set_mode(&d, 0o755);
    d
}

/// Writes policy `name` with mode 0644.
fn policy(env: &Env, name: &str, text: &str) -> PathBuf {
    let p = policy_dir(env).join(name);
    std::fs::write(&p, text).unwrap();
    set_mode(&p, 0o644);
    p
}

/// A running `luavirt watch --log-format json`, its log lines collected as they come.
struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Watch {
    fn start(env: &Env, extra: &[&str]) -> Watch {
        let mut args = vec!["watch", "--log-format", "json", "--debounce", "100"];
        args.extend_from_slice(extra);
        let mut child = env.command(&args).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (err, into) = (child.stderr.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or_else(|_| serde_json::json!({ "raw": line }));
                into.lock().unwrap().push(v);
            }
        });
        let w = Watch { child, lines };
        w.wait_for("the watcher to be ready", |l| l.iter().any(|r| r["kind"] == "ready"));
        w
    }

    fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// The messages of the policies' `luavirt.log` lines.
    fn logged(&self) -> Vec<String> {
        messages(&self.lines(), "log")
    }

    /// Waits until `done` holds for the log lines so far.
    fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let start = Instant::now();
        while !done(&self.lines()) {
            assert!(start.elapsed() < DEADLINE, "waited {DEADLINE:?} for {what}; the log:\n{}", self.dump());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a policy logged `message`.
    fn wait_logged(&self, message: &str) {
        self.wait_for(&format!("a policy to log {message:?}"), |l| messages(l, "log").iter().any(|m| m == message));
    }

    fn dump(&self) -> String {
        self.lines().iter().map(|l| format!("{l}\n")).collect()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success());
    }

    /// Sends SIGTERM and waits for the exit status.
    fn stop(mut self) -> (Option<i32>, Vec<Value>) {
        self.signal("TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.lines());
            }
            assert!(start.elapsed() < DEADLINE, "luavirt watch did not stop after SIGTERM:\n{}", self.dump());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn messages(lines: &[Value], kind: &str) -> Vec<String> {
    lines.iter().filter(|l| l["kind"] == kind).map(|l| l["message"].as_str().unwrap_or("").to_string()).collect()
}

/// A datastore `ds` with VM web01 (ESX 7 corpus file): sdb independent-persistent, sdc the
/// scratch disk, independent-nonpersistent.
fn datastore(env: &Env) -> (PathBuf, String) {
    let root = env.dir.join("ds");
    std::fs::create_dir_all(root.join("web01")).unwrap();
    let vmx = root.join("web01/web01.vmx");
    std::fs::copy(repo_dir().join("tests/data/vmx/esx7-web.vmx"), &vmx).unwrap();
    (vmx, format!("vmx://{}", root.display()))
}

const SCRATCH: &str = "scsi0:2.mode = \"independent-nonpersistent\"";
const SCRATCH_PERSISTENT: &str = "scsi0:2.mode = \"persistent\"";

/// The policy: scratch disks (sdc) stay independent-nonpersistent.
fn scratch_policy(uri: &str) -> String {
    format!(
        r#"local lv = require("luavirt")
lv.on("domain:changed", function(ev)
  for _, m in ipairs(ev.changes.modes) do lv.log(ev.name .. " " .. m.disk .. ": " .. m.was .. " -> " .. m.now) end
  for _, d in ipairs(ev.domain:disks()) do
    if d.target == "sdc" and d.mode ~= "independent-nonpersistent" then
      d:set_mode("independent-nonpersistent")
      lv.log("scratch disk " .. ev.name .. "/sdc set back")
    end
  end
end, {{ uri = "{uri}" }})
"#
    )
}

/// Every file under `dirs` with its bytes.
fn files(dirs: &[&Path]) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for d in dirs {
        for f in walk(d) {
            out.insert(f.clone(), std::fs::read(&f).unwrap());
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_none_or(|x| x != "lock") {
            out.push(p);
        }
    }
    out
}

#[test]
fn an_editor_save_that_makes_a_scratch_disk_persistent_is_set_back() {
    let env = Env::new("w-editor");
    let (vmx, uri) = datastore(&env);
    policy(&env, "scratch.lua", &scratch_policy(&uri));
    let original = std::fs::read_to_string(&vmx).unwrap();
    let w = Watch::start(&env, &[]);
    editor_save(&vmx, &original.replace(SCRATCH, SCRATCH_PERSISTENT));
    w.wait_logged("web01 sdc: independent-nonpersistent -> persistent");
    w.wait_logged("scratch disk web01/sdc set back");
    let start = Instant::now();
    while std::fs::read_to_string(&vmx).unwrap() != original {
        assert!(start.elapsed() < DEADLINE, "the .vmx was not set back:\n{}", std::fs::read_to_string(&vmx).unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The hook's own change is no news: it ran once for the save, and once at start.
    let (code, lines) = w.stop();
    assert_eq!(code, Some(0));
    let runs = lines.iter().filter(|l| l["kind"] == "hook").count();
    assert_eq!(runs, 2, "{lines:?}");
}

#[test]
fn ten_thousand_writes_to_a_hundred_files_end_with_each_hook_seeing_the_final_content() {
    let env = Env::new("w-storm");
    let data = env.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    policy(
        &env,
        "storm.lua",
        &format!(
            r#"local lv = require("luavirt")
lv.watch{{ path = "{}", pattern = "f*.txt", on_change = function(ev)
  lv.log(ev.path:match("[^/]+$") .. "=" .. (ev.content or "<gone>"))
end }}
"#,
            data.display()
        ),
    );
    let w = Watch::start(&env, &[]);
    let mut last = vec![String::new(); 100];
    for i in 0..10_000 {
        let f = i % 100;
        last[f] = format!("f{f:03} write {i}");
        std::fs::write(data.join(format!("f{f:03}.txt")), &last[f]).unwrap();
    }
    // Each file's latest run saw what the file holds in the end.
    w.wait_for("every file's hook to see its final content", |lines| {
        let mut seen = vec![String::new(); 100];
        for m in messages(lines, "log") {
            if let Some((name, content)) = m.split_once('=')
                && let Some(n) = name.strip_prefix('f').and_then(|n| n.strip_suffix(".txt"))
            {
                seen[n.parse::<usize>().unwrap()] = content.to_string();
            }
        }
        seen == last
    });
    let runs = w.logged().len();
    assert!(runs < 10_000, "{runs} hook runs for 10000 writes: bursts did not coalesce");
    let (code, lines) = w.stop();
    assert_eq!(code, Some(0));
    assert!(!lines.iter().any(|l| l["kind"] == "hook-error"), "{lines:?}");
}

#[test]
fn a_broken_policy_reload_keeps_the_previous_version_and_says_where() {
    let env = Env::new("w-reload");
    let data = env.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let version = |v: &str| {
        format!(
            "local lv = require(\"luavirt\")\nlv.watch{{ path = \"{}\", on_change = function(ev)\n  lv.log(\"{v} \" .. ev.content)\nend }}\n",
            data.display()
        )
    };
    let file = policy(&env, "p.lua", &version("v1"));
    let w = Watch::start(&env, &[]);
    std::fs::write(data.join("a"), "one").unwrap();
    w.wait_logged("v1 one");
    // Line 3 breaks.
    editor_save(&file, &version("v2").replace("lv.log(\"v2 \" .. ev.content)", "lv.log(\"v2 \" .. )"));
    w.wait_for("the broken reload to be reported", |l| {
        l.iter().any(|r| {
            r["kind"] == "policy-error"
                && r["message"].as_str().unwrap().contains("kept the previous version")
                && r["message"].as_str().unwrap().contains("p.lua:3:")
        })
    });
    std::fs::write(data.join("a"), "two").unwrap();
    w.wait_logged("v1 two");
    editor_save(&file, &version("v3"));
    w.wait_for("the fixed policy to load", |l| messages(l, "loaded").len() >= 2);
    std::fs::write(data.join("a"), "three").unwrap();
    w.wait_logged("v3 three");
    assert!(!w.logged().iter().any(|m| m.starts_with("v2")));
}

/// A shut-off QEMU domain `app` with a qcow2 disk, and a policy refusing snapshots named
/// `friday-*` and giving the others a description.
fn vetoing_host(env: &Env) -> PathBuf {
    require("qemu-img", "qemu-utils");
    let a = env.image("app-a.qcow2", "qcow2", "16M");
    env.define_domain("app", &[("vda", &a, "qcow2")]);
    policy(
        env,
        "snapshots.lua",
        r#"local lv = require("luavirt")
lv.on("snapshot:before", function(ev)
  if ev.request.name and ev.request.name:match("^friday") then
    ev:veto("no snapshots on Fridays (" .. ev.domain:name() .. ")")
    return
  end
  ev.request.description = "approved by policy"
end)
lv.on("snapshot:after", function(ev) lv.log("taken " .. ev.snapshot) end)
"#,
    );
    a
}

#[test]
fn a_veto_from_snapshot_before_stops_the_cli_and_scripts_and_changes_nothing() {
    let env = Env::new("w-veto");
    let image = vetoing_host(&env);
    let before = (env.state_snapshot(), std::fs::read(&image).unwrap());
    let err = env.fails(&["snapshot-create-as", "app", "friday-1"], 1);
    assert_eq!(
        err,
        format!(
            "error: Policy {}:4 refused the snapshot of domain 'app': no snapshots on Fridays (app) (nothing was changed)\n",
            env.policy_dir().join("snapshots.lua").display()
        )
    );
    let script = env.write(
        "snap.lua",
        r#"local dom = require("luavirt").connect():domain("app")
local ok, err = pcall(function() return dom:snapshot{ name = "friday-2" } end)
assert(not ok and err.code == "vetoed", tostring(err))
print(err.message)
dom:snapshot{ name = "friday-3" }
"#,
    );
    let r = env.run(&["run", script.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("refused the snapshot of domain 'app': no snapshots on Fridays (app)"), "{}", r.stdout);
    assert!(r.stderr.contains("snap.lua:5: Policy") && r.stderr.contains("no snapshots on Fridays"), "{}", r.stderr);
    assert_eq!((env.state_snapshot(), std::fs::read(&image).unwrap()), before, "a vetoed snapshot changed files");
    assert_eq!(env.ok(&["snapshot-list", "app", "--name"]), "");
    // Allowed ones pass through the same hooks, adjusted.
    env.ok(&["snapshot-create-as", "app", "monday"]);
    let xml = env.ok(&["snapshot-dumpxml", "app", "monday"]);
    assert!(xml.contains("<description>approved by policy</description>"), "{xml}");
    // Dropping the policy folder drops the veto.
    std::fs::remove_dir_all(env.policy_dir()).unwrap();
    env.ok(&["snapshot-create-as", "app", "friday-4"]);
}

#[test]
fn an_operation_started_by_a_hook_runs_the_other_hooks_and_never_its_own() {
    let env = Env::new("w-nest");
    require("qemu-img", "qemu-utils");
    let a = env.image("app-a.qcow2", "qcow2", "16M");
    env.define_domain("app", &[("vda", &a, "qcow2")]);
    // Each snapshot first takes a "-pre" snapshot from inside its before hook; the nested one
    // runs the other before hook (which counts) but not this one, so nothing recurses.
    policy(
        &env,
        "a.lua",
        r#"local lv = require("luavirt")
lv.on("snapshot:before", function(ev)
  ev.domain:snapshot{ name = ev.request.name .. "-pre" }
end)
"#,
    );
    policy(
        &env,
        "b.lua",
        r#"local lv = require("luavirt")
lv.on("snapshot:before", function(ev) ev.request.description = "depth " .. ev.depth end)
"#,
    );
    env.ok(&["snapshot-create-as", "app", "s1"]);
    assert_eq!(env.ok(&["snapshot-list", "app", "--name"]), "s1-pre\ns1\n");
    assert!(env.ok(&["snapshot-dumpxml", "app", "s1-pre"]).contains("<description>depth 1</description>"));
    assert!(env.ok(&["snapshot-dumpxml", "app", "s1"]).contains("<description>depth 0</description>"));
}

#[test]
fn a_hook_that_changes_its_own_watched_file_runs_once_per_outside_change() {
    let env = Env::new("w-self");
    let (vmx, uri) = datastore(&env);
    // Flips sdb's mode at every run: without the watcher's own-change rule it would never stop.
    policy(
        &env,
        "flip.lua",
        &format!(
            r#"local lv = require("luavirt")
local conn = lv.connect("{uri}")
lv.watch{{ path = "{}", pattern = "*.vmx", recursive = true, on_change = function(ev)
  local disk = conn:domain("web01"):disk("sdb")
  disk:set_mode(disk.mode == "persistent" and "independent-persistent" or "persistent")
  lv.log("flipped to " .. disk.mode)
end }}
"#,
            vmx.parent().unwrap().parent().unwrap().display()
        ),
    );
    let w = Watch::start(&env, &[]);
    w.wait_logged("flipped to persistent");
    let text = std::fs::read_to_string(&vmx).unwrap();
    editor_save(&vmx, &text.replace("annotation = \"Front web server", "annotation = \"Front web server (edited)"));
    w.wait_logged("flipped to independent-persistent");
    // Give a loop every chance to show: several debounce windows.
    std::thread::sleep(Duration::from_secs(2));
    let (code, lines) = w.stop();
    assert_eq!(code, Some(0));
    assert_eq!(messages(&lines, "log"), ["flipped to persistent", "flipped to independent-persistent"], "{lines:?}");
}

#[test]
fn policy_folders_and_files_others_can_write_are_refused() {
    let env = Env::new("w-trust");
    let (vmx, uri) = datastore(&env);
    let dir = policy_dir(&env);
    policy(&env, "scratch.lua", &scratch_policy(&uri));
    let before = std::fs::read(&vmx).unwrap();
    set_mode(&dir, 0o775);
    let r = env.run(&["watch", "--once"]);
    assert_eq!(r.code, 1);
    let fix = format!(
        "folder {} is writable by its group (mode 0775), who could replace the policy: run chmod go-w {}",
        dir.display(),
        dir.display()
    );
    assert!(r.stderr.contains(&fix), "{}", r.stderr);
    // A command with hooks refuses to run while its policies cannot be read safely.
    env.ok(&["-c", &uri, "disk-mode", "web01", "sdc", "persistent"]);
    let err = env.fails(&["-c", &uri, "snapshot-create-as", "web01", "s1", "--disk-only"], 1);
    assert!(err.contains(&fix) && err.contains("do not run until it loads"), "{err}");
    set_mode(&dir, 0o755);
    let file = dir.join("scratch.lua");
    set_mode(&file, 0o666);
    let r = env.run(&["watch", "--once", "--log-format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("file {} is writable by anyone (mode 0666)", file.display())), "{}", r.stderr);
    let list = env.run(&["hooks", "list"]);
    assert_eq!(list.code, 1);
    assert!(list.stdout.contains(&format!("not loaded: {}", file.display())), "{}", list.stdout);
    // Nothing ran: the disk-mode change above stays.
    assert_ne!(std::fs::read(&vmx).unwrap(), before);
    assert!(std::fs::read_to_string(&vmx).unwrap().contains(SCRATCH_PERSISTENT));
}

#[test]
fn sighup_reloads_and_sigterm_stops_after_the_running_hook() {
    let env = Env::new("w-signals");
    let data = env.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    policy(
        &env,
        "slow.lua",
        &format!(
            r#"local lv = require("luavirt")
lv.watch{{ path = "{}", on_change = function(ev)
  if ev.kind == "present" then return end
  lv.log("begin " .. ev.content)
  local t = os.clock()
  while os.clock() - t < 1.5 do end
  lv.log("end " .. ev.content)
end }}
"#,
            data.display()
        ),
    );
    let w = Watch::start(&env, &[]);
    w.signal("HUP");
    w.wait_for("the reload", |l| {
        let after = l.iter().skip_while(|r| r["kind"] != "reload").collect::<Vec<_>>();
        after.iter().any(|r| r["kind"] == "loaded")
    });
    std::fs::write(data.join("x"), "1").unwrap();
    w.wait_logged("begin 1");
    std::fs::write(data.join("y"), "2").unwrap();
    let (code, lines) = w.stop();
    assert_eq!(code, Some(0), "{lines:?}");
    let kinds: Vec<String> = lines
        .iter()
        .filter(|l| ["log", "stopping", "stopped"].contains(&l["kind"].as_str().unwrap_or("")))
        .map(|l| format!("{} {}", l["kind"].as_str().unwrap(), l["message"].as_str().unwrap()))
        .collect();
    // The running hook ends; the waiting one never starts.
    assert_eq!(kinds.first().map(String::as_str), Some("log begin 1"));
    assert!(kinds.contains(&"log end 1".to_string()), "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("stopped stopped"), "{kinds:?}");
    assert!(!kinds.iter().any(|k| k.contains("begin 2")), "{kinds:?}");
}

#[test]
fn once_applies_every_policy_to_the_current_state_and_dry_run_writes_nothing() {
    let env = Env::new("w-once");
    let (vmx, uri) = datastore(&env);
    policy(&env, "scratch.lua", &scratch_policy(&uri));
    let original = std::fs::read_to_string(&vmx).unwrap();
    std::fs::write(&vmx, original.replace(SCRATCH, SCRATCH_PERSISTENT)).unwrap();
    let before = files(&[&env.dir.join("ds"), &env.state]);
    let r = env.run(&["watch", "--once", "--dry-run", "--log-format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(files(&[&env.dir.join("ds"), &env.state]), before, "a dry run changed files");
    let would: Vec<Value> = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["kind"] == "would")
        .collect();
    assert_eq!(would.len(), 1, "{}", r.stderr);
    assert!(
        would[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("web01: disk sdc: mode persistent -> independent-nonpersistent"),
        "{would:?}"
    );
    let r = env.run(&["watch", "--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("scratch disk web01/sdc set back"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&vmx).unwrap(), original);
}

#[test]
fn hooks_list_shows_each_hook_with_its_file_event_and_line() {
    let env = Env::new("w-list");
    let file = policy(
        &env,
        "p.lua",
        "local lv = require('luavirt')\nlv.on('revert:before', function(ev) end)\n\nlv.watch{ path = '/srv/ds', pattern = '*.vmx', on_change = function(ev) end }\nlv.on('domain:changed', function(ev) end, { uri = 'vmx:///srv/ds' })\n",
    );
    let list: Value = serde_json::from_str(&env.ok(&["hooks", "list", "--json"])).unwrap();
    let rows: Vec<(String, String)> = list["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["event"].as_str().unwrap().to_string(), h["at"].as_str().unwrap().to_string()))
        .collect();
    let at = |n: u32| format!("{}:{n}", file.display());
    assert_eq!(
        rows,
        [
            ("revert:before".to_string(), at(2)),
            ("watch /srv/ds *.vmx".to_string(), at(4)),
            ("domain:changed vmx:///srv/ds".to_string(), at(5)),
        ]
    );
    let text = env.ok(&["hooks", "list"]);
    let line = text.lines().find(|l| l.contains("watch /srv/ds *.vmx")).unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells, [file.display().to_string().as_str(), "watch /srv/ds *.vmx", "4"], "{text}");
    // An event luavirt does not have is refused, not kept to never run.
    policy(&env, "p.lua", "require('luavirt').on('resize:before', function() end)\n");
    let r = env.run(&["hooks", "list"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("unknown event \"resize:before\"; events are snapshot:before"), "{}", r.stdout);
}

#[test]
fn a_removed_watched_folder_is_reported_and_followed_again_when_it_returns() {
    let env = Env::new("w-gone");
    let data = env.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    policy(
        &env,
        "p.lua",
        &format!(
            "local lv = require('luavirt')\nlv.watch{{ path = '{}', on_change = function(ev) lv.log(ev.kind .. ' ' .. (ev.content or '')) end }}\n",
            data.display()
        ),
    );
    let w = Watch::start(&env, &[]);
    std::fs::write(data.join("a"), "one").unwrap();
    w.wait_logged("changed one");
    std::fs::remove_dir_all(&data).unwrap();
    w.wait_for("the folder reported missing", |l| {
        messages(l, "folder-missing").iter().any(|m| m.contains(&data.display().to_string()))
    });
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("b"), "two").unwrap();
    w.wait_logged("changed two");
    w.wait_for("the folder back", |l| !messages(l, "folder-back").is_empty());
    std::fs::write(data.join("b"), "three").unwrap();
    w.wait_logged("changed three");
}

#[test]
fn a_failing_or_endless_hook_is_logged_and_the_watcher_goes_on() {
    let env = Env::new("w-errors");
    let data = env.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    policy(
        &env,
        "p.lua",
        &format!(
            r#"local lv = require("luavirt")
lv.watch{{ path = "{}", on_change = function(ev)
  if ev.content == "loop" then while true do end end
  if ev.content == "fail" then error("cannot cope") end
  if ev.content == "hog" then local t = {{}} for i = 1, 1e8 do t[i] = i end end
  lv.log("ok " .. (ev.content or ""))
end }}
"#,
            data.display()
        ),
    );
    let w = Watch::start(&env, &["--timeout", "1", "--max-memory", "16"]);
    std::fs::write(data.join("a"), "loop").unwrap();
    w.wait_for("the time limit", |l| {
        messages(l, "hook-error").iter().any(|m| m.contains("time limit") && m.contains("p.lua:3"))
    });
    std::fs::write(data.join("a"), "fail").unwrap();
    w.wait_for("the error", |l| messages(l, "hook-error").iter().any(|m| m.contains("p.lua:4: cannot cope")));
    std::fs::write(data.join("a"), "hog").unwrap();
    w.wait_for("the memory limit", |l| messages(l, "hook-error").iter().any(|m| m.contains("memory limit (16 MiB)")));
    std::fs::write(data.join("a"), "fine").unwrap();
    w.wait_logged("ok fine");
}

#[test]
fn the_example_policy_sets_scratch_disks_back_and_names_snapshots() {
    let env = Env::new("w-example");
    let (vmx, uri) = datastore(&env);
    let example = std::fs::read_to_string(repo_dir().join("examples/policies/scratch.lua")).unwrap();
    policy(&env, "scratch.lua", &example);
    let text = std::fs::read_to_string(&vmx).unwrap();
    let scratch = text.replace("web01_2.vmdk", "web01_scratch.vmdk");
    std::fs::write(&vmx, scratch.replace(SCRATCH, SCRATCH_PERSISTENT)).unwrap();
    let out = env.command(&["watch", "--once"]).env("LUAVIRT_SCRATCH_URI", &uri).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("web01: scratch disk sdc set back to independent-nonpersistent"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&vmx).unwrap(), scratch);
    let err = env.fails(&["-c", &uri, "snapshot-create-as", "web01", "bad name!"], 1);
    assert!(err.contains("snapshot names are letters, digits"), "{err}");
}

#[test]
fn define_revert_and_delete_hooks_refuse_and_adjust_their_requests() {
    let env = Env::new("w-ops");
    require("qemu-img", "qemu-utils");
    let a = env.image("app-a.qcow2", "qcow2", "16M");
    policy(
        &env,
        "ops.lua",
        r#"local lv = require("luavirt")
lv.on("define:before", function(ev)
  ev.request.xml = ev.request.xml:gsub("<memory", "<description>defined under policy</description>\n  <memory", 1)
end)
lv.on("define:after", function(ev) lv.log("defined " .. ev.domain:name() .. " created=" .. tostring(ev.created)) end)
lv.on("delete:before", function(ev)
  if ev.snapshot:match("^keep") then ev:veto("snapshots named keep* are kept") end
end)
lv.on("delete:after", function(ev) lv.log("deleted " .. table.concat(ev.deleted, ",")) end)
lv.on("revert:before", function(ev)
  if ev.snapshot == "old" then ev:veto("too old to revert to") end
end)
"#,
    );
    let file = env.write("app.xml", &luavirt_tests::domain_xml("app", &[("vda", &a, "qcow2")]));
    let r = env.command(&["define", file.to_str().unwrap()]).env("LUAVIRT_LOG", "info").output().unwrap();
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("defined app created=true"));
    assert!(env.ok(&["dumpxml", "app"]).contains("<description>defined under policy</description>"));
    env.ok(&["snapshot-create-as", "app", "keep-1"]);
    env.ok(&["snapshot-create-as", "app", "old"]);
    let before = env.state_snapshot();
    assert!(
        env.fails(&["snapshot-delete", "app", "keep-1"], 1)
            .contains("refused the snapshot deletion of domain 'app': snapshots named keep* are kept")
    );
    assert!(
        env.fails(&["snapshot-revert", "app", "old"], 1)
            .contains("refused the revert of domain 'app': too old to revert to")
    );
    assert_eq!(env.state_snapshot(), before);
    let r = env.command(&["snapshot-delete", "app", "old"]).env("LUAVIRT_LOG", "info").output().unwrap();
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("deleted old"));
    assert_eq!(env.ok(&["snapshot-list", "app", "--name"]), "keep-1\n");
}

#[test]
fn a_migration_is_refused_or_adjusted_by_its_hooks() {
    require("qemu-img", "qemu-utils");
    let src = Env::new("w-mig");
    let dst = Env::new("w-mig-to");
    let to = format!("qemu:///session?state={}", dst.state.display());
    let a = src.image("a.qcow2", "qcow2", "16M");
    luavirt_tests::write_offline(&a, "qcow2", 0x11);
    src.define_domain("d", &[("vda", &a, "qcow2")]);
    policy(
        &src,
        "moves.lua",
        r#"local lv = require("luavirt")
lv.on("migrate:before", function(ev)
  if not ev.request.undefine_source then
    ev:veto("domains here move to " .. ev.to .. " whole: pass --undefine-source")
    return
  end
  ev.request.migrate_disks = { "vda" }
end)
lv.on("migrate:after", function(ev) lv.log("moved " .. ev.domain:name() .. " to " .. ev.to) end)
"#,
    );
    let before = src.state_snapshot();
    let err = src.fails(&["migrate", "d", &to], 1);
    assert!(err.contains(&format!("refused the migration of domain 'd': domains here move to {to} whole")), "{err}");
    assert_eq!(src.state_snapshot(), before);
    assert_eq!(dst.ok(&["list", "--all", "--name"]), "");
    let r = src.command(&["migrate", "d", &to, "--undefine-source"]).env("LUAVIRT_LOG", "info").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert!(r.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("vda copied"), "the hook's disk choice was not used: {stdout}");
    assert!(stderr.contains(&format!("moved d to {to}")), "{stderr}");
    assert_eq!(dst.ok(&["list", "--all", "--name"]), "d\n");
}
