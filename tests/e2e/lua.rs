//! Lua scripts against real domains, through `luavirt run` and `luavirt test`: each API
//! group, the sandbox's refusals, limits that hold under `pcall`, dry runs that leave every
//! file as it was, and the definitions file in step with the registered functions.

use luavirt_core::Host;
use luavirt_core::lua::diskset::LuaDiskSet;
use luavirt_core::lua::domain::LuaDomain;
use luavirt_core::lua::job::LuaJob;
use luavirt_core::lua::snapshot::LuaSnapshot;
use luavirt_core::lua::{RunOptions, interpreter};
use luavirt_tests::{Env, bin_dir, disk_holds, image_holds, repo_dir, require, write_offline};
use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;

/// Runs a script (written into the environment) with `luavirt run`.
fn run(env: &Env, name: &str, script: &str, extra: &[&str]) -> luavirt_tests::Run {
    let path = env.write(name, script);
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    env.run(&args)
}

fn domain_with(env: &Env, name: &str) {
    let a = env.image(&format!("{name}-a.qcow2"), "qcow2", "16M");
    let b = env.image(&format!("{name}-b.raw"), "raw", "16M");
    write_offline(&a, "qcow2", 0x11);
    write_offline(&b, "raw", 0x22);
    env.define_domain(name, &[("vda", &a, "qcow2"), ("vdb", &b, "raw")]);
}

#[test]
fn disks_sets_and_modes_from_a_script() {
    let env = Env::new("luasets");
    domain_with(&env, "web");
    let r = run(
        &env,
        "sets.lua",
        r#"
local lv = require("luavirt")
local dom = lv.connect():domain("web")
local disks = dom:disks()
print(#disks, disks[1].target, disks[1].format, disks[2].format, disks[1].mode)
local set = dom:diskset("migrate")
print(set:add("vda"), set:add("vda"), set:contains("vdb"), set:size())
print(table.concat(set:add_all(), ","), table.concat(set:list(), ","))
print(set:remove("vdb"), set:remove("vdb"), table.concat(dom:disksets(), ","))
print(disks[2]:set_mode("independent-persistent"), dom:disk("vdb").mode, dom:disk("vdb").snapshot)
"#,
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "2\tvda\tqcow2\traw\tpersistent\ntrue\tfalse\tfalse\t1\nvdb\tvda,vdb\ntrue\tfalse\tmigrate\ntrue\tindependent-persistent\tno\n"
    );
    // The same changes are what the command line sees.
    assert_eq!(env.ok(&["diskset", "list", "web", "--set", "migrate"]), "vda\n");
    assert_eq!(env.ok(&["disk-mode", "web", "vdb"]), "independent-persistent\n");
}

#[test]
fn set_mode_leaves_the_disk_table_as_the_definition_says() {
    let env = Env::new("luamode");
    domain_with(&env, "m");
    let script = r#"
local dom = require("luavirt").connect():domain("m")
local function compare(d)
  local fresh = dom:disk(d.target)
  for k, v in pairs(fresh) do if d[k] ~= v then print("differs", k, d[k], v) end end
  for k, v in pairs(d) do if fresh[k] == nil then print("stale", k, v) end end
  print(d.mode, d.snapshot, d.transient)
end
local d = dom:disk("vdb")
d:set_mode("independent-nonpersistent")
compare(d)
d:set_mode("persistent")
compare(d)
"#;
    for dry in [&[][..], &["--dry-run"]] {
        let r = run(&env, "mode.lua", script, dry);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout.starts_with("independent-nonpersistent\tno\ttrue\npersistent\tnil\tfalse\n"),
            "{dry:?}: {}",
            r.stdout
        );
    }
}

#[test]
fn snapshots_from_a_script_with_tree_navigation_and_data() {
    let env = Env::new("luasnap");
    domain_with(&env, "db");
    let r = run(
        &env,
        "snap.lua",
        r#"
local lv = require("luavirt")
local dom = lv.connect():domain("db")
local plan = dom:snapshot_plan{ name = "s1" }
print(plan.disks[1].snapshot, plan.disks[2].snapshot)
local s1 = dom:snapshot{ name = "s1", description = "first" }
local s2 = dom:snapshot{ name = "s2", disks = { vdb = "external" } }
print(s1:info().description, s2:parent():name(), s1:children()[1]:name(), dom:current_snapshot():name())
print(#dom:snapshots(), s2:info().disks.vda, s2:info().disks.vdb)
s1:revert()
print(dom:current_snapshot():name(), s1:is_current())
print(table.concat(s1:delete{ children = true }, ","), #dom:snapshots())
"#,
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "internal\texternal\nfirst\ts1\ts2\ts2\n2\tno\texternal\ns1\ttrue\ns2,s1\t0\n");
    assert!(disk_holds(&env, "db", "vda", 0x11) && disk_holds(&env, "db", "vdb", 0x22));
}

#[test]
fn lifecycle_and_a_block_job_with_progress_from_a_script() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("luajob");
    domain_with(&env, "vm");
    let copy = env.dir.join("copy.qcow2");
    let script = r#"
local lv = require("luavirt")
local dom = lv.connect():domain("vm")
dom:start()
print(dom:state())
local job = dom:block_copy{ disk = "vda", dest = "COPY" }
local calls = 0
job:wait{ pivot = true, on_progress = function(done, total, stage) calls = calls + 1 end }
print(calls > 0, dom:disk("vda").path == "COPY", dom:block_job("vda"))
dom:destroy()
print(dom:state())
"#
    .replace("COPY", copy.to_str().unwrap());
    let r = run(&env, "job.lua", &script, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "running\ntrue\ttrue\tnil\nshut off\n");
    assert!(image_holds(&copy, "qcow2", 0x11), "the copy does not hold the disk's data");
}

#[test]
fn host_errors_reach_pcall_as_tables_and_options_are_strict() {
    let env = Env::new("luaerr");
    domain_with(&env, "e1");
    let r = run(
        &env,
        "errors.lua",
        r#"
local lv = require("luavirt")
local conn = lv.connect()
local ok, err = pcall(function() return conn:domain("e2") end)
print(ok, type(err), err.code, tostring(err))
local dom = conn:domain("e1")
ok, err = pcall(function() dom:snapshot{ nmae = "typo" } end)
print(err.code, err.message)
ok, err = pcall(function() dom:snapshot{ name = 42 } end)
print(err.message)
ok, err = pcall(function() dom:diskset("x"):add("vdz") end)
print(err.code)
-- A handle resolves on each call: an undefined domain is an error, not stale data.
dom:undefine()
ok, err = pcall(function() return dom:disks() end)
print(err.code)
"#,
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "false\ttable\tno-domain\tDomain 'e2' not found on qemu:///session. Did you mean 'e1'?");
    assert!(lines[1].starts_with("invalid-argument\tdom:snapshot: unknown option 'nmae' (it takes: "), "{}", lines[1]);
    assert!(lines[1].ends_with(&format!("(at {}:7)", env.dir.join("errors.lua").display())), "{}", lines[1]);
    assert!(lines[2].starts_with("dom:snapshot: option 'name' must be a string, not integer"), "{}", lines[2]);
    assert_eq!(&lines[3..], ["no-disk", "no-domain"]);
}

#[test]
fn options_luavirt_cannot_honour_are_refused_not_ignored() {
    let env = Env::new("luaopts");
    domain_with(&env, "o");
    let r = run(
        &env,
        "atomic.lua",
        r#"
local dom = require("luavirt").connect():domain("o")
local ok, err = pcall(function() dom:snapshot{ name = "a", atomic = false } end)
print(ok, err.code, err.message)
print(dom:snapshot{ name = "b", atomic = true }:name(), #dom:snapshots())
"#,
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "false\tinvalid-argument\tSnapshot 'a' of domain 'o': atomic=false cannot be honoured: every luavirt snapshot takes all its disks or none; drop the option\nb\t1\n"
    );
    // virsh's --atomic asks for what every snapshot is.
    assert_eq!(env.ok(&["snapshot-create-as", "o", "c", "--atomic"]), "Domain snapshot c created\n");
    // luavirt test makes its own hosts: -c would be ignored, so it is refused.
    let t = env.write("c_test.lua", "test('t', function() end)\n");
    let err = env.fails(&["-c", "qemu:///session", "test", t.to_str().unwrap()], 1);
    assert!(err.contains("-c qemu:///session: luavirt test runs each file on its own temporary host"), "{err}");
}

#[test]
fn the_sandbox_refuses_what_scripts_may_not_do() {
    // A refusal names the script's file and line in its message (not only in a traceback).
    let env = Env::new("luabox");
    for (code, expect) in [
        ("io.open('/etc/passwd')", "box.lua:1: io.open is not available in luavirt scripts"),
        ("os.execute('true')", "box.lua:1: os.execute is not available in luavirt scripts"),
        ("os.remove('/tmp/x')", "box.lua:1: os.remove is not available in luavirt scripts"),
        ("dofile('/etc/passwd')", "box.lua:1: dofile is not available in luavirt scripts; use require"),
        ("loadfile('/etc/passwd')", "box.lua:1: loadfile is not available in luavirt scripts"),
        ("assert(load(string.dump(function() end)))()", "attempt to load a binary chunk"),
        ("require('../escape')", "require: invalid module name"),
        ("require('/etc/passwd')", "require: invalid module name"),
        ("require('nosuchmodule')", "module 'nosuchmodule' not found"),
        ("debug.getinfo(1)", "attempt to index a nil value (global 'debug')"),
        ("package.loadlib('x', 'y')", "attempt to index a nil value (global 'package')"),
    ] {
        let r = run(&env, "box.lua", code, &[]);
        assert_eq!(r.code, 1, "{code} was allowed: {}", r.stdout);
        assert!(r.stderr.contains(expect), "{code}: {}", r.stderr);
    }
    let r = run(
        &env,
        "ok.lua",
        "print(os.time() > 0, os.clock() >= 0, type(os.date()), os.getenv('HOME') ~= nil, load('return 1')())",
        &[],
    );
    assert_eq!(r.stdout, "true\ttrue\tstring\ttrue\t1\n", "{}", r.stderr);
    // require finds the script's own folder and the shipped scripts.
    env.write("helper.lua", "return { answer = 42 }");
    let r = run(&env, "req.lua", "print(require('helper').answer, type(require('policy.classify').is_local))", &[]);
    assert_eq!(r.stdout, "42\tfunction\n", "{}", r.stderr);
}

#[test]
fn require_follows_no_symlink_out_of_the_script_folder() {
    let env = Env::new("luasymlink");
    let scripts = env.dir.join("scripts");
    let outside = env.dir.join("outside");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.lua"), "print('secret module ran') return {}").unwrap();
    std::os::unix::fs::symlink("../outside/secret.lua", scripts.join("evil.lua")).unwrap();
    std::os::unix::fs::symlink("../outside", scripts.join("lib")).unwrap();
    std::fs::write(scripts.join("real.lua"), "return { answer = 42 }").unwrap();
    std::os::unix::fs::symlink("real.lua", scripts.join("alias.lua")).unwrap();
    let script = |name: &str, code: &str| {
        let p = scripts.join(name);
        std::fs::write(&p, code).unwrap();
        env.run(&["run", p.to_str().unwrap()])
    };
    let real_outside = outside.canonicalize().unwrap();
    for (module, link) in [("evil", "evil.lua"), ("lib.secret", "lib/secret.lua")] {
        let r = script("s.lua", &format!("require('{module}')"));
        assert_eq!(r.code, 1, "require('{module}') was allowed: {}", r.stdout);
        assert!(!r.stdout.contains("secret module ran"), "{}", r.stdout);
        assert!(
            r.stderr.contains(&format!(
                "require: {} leads to {}, outside the script's folder {}",
                scripts.join(link).display(),
                real_outside.join("secret.lua").display(),
                scripts.canonicalize().unwrap().display()
            )),
            "{}",
            r.stderr
        );
    }
    // A symlink that stays inside the folder is fine, and so is a script run through a
    // symlinked folder.
    let r = script("ok.lua", "print(require('alias').answer)");
    assert_eq!((r.code, r.stdout.as_str()), (0, "42\n"), "{}", r.stderr);
    std::os::unix::fs::symlink(&scripts, env.dir.join("via")).unwrap();
    let r = env.run(&["run", env.dir.join("via/ok.lua").to_str().unwrap()]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "42\n"), "{}", r.stderr);
}

#[test]
fn limits_hold_under_pcall_and_leave_the_host_and_domains_unharmed() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("lualimit");
    domain_with(&env, "keep");
    env.ok(&["start", "keep"]);
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "while true do pcall(function() while true do end end) end",
            &["--timeout", "1"],
            "ran longer than its time limit (1s)",
        ),
        (
            "while true do xpcall(function() while true do end end, function(e) return e end) end",
            &["--timeout", "1"],
            "time limit",
        ),
        (
            "while true do print(coroutine.resume(coroutine.create(function() while true do end end))) end",
            &["--timeout", "1"],
            "time limit",
        ),
        (
            "local t = {} while true do pcall(function() for i = 1, 1e9 do t[#t + 1] = string.rep('x', 4096) .. i end end) end",
            &["--max-memory", "32"],
            "more than its memory limit (32 MiB)",
        ),
    ];
    for (code, flags, expect) in cases {
        let r = run(&env, "limit.lua", code, flags);
        assert_eq!(r.code, 1, "{code}: {}", r.stdout);
        assert!(r.stderr.contains(expect), "{code}: {}", r.stderr);
        assert!(r.stderr.contains("limit.lua:1"), "{code}: no location in {}", r.stderr);
    }
    assert_eq!(env.ok(&["domstate", "keep"]), "running\n");
    env.ok(&["destroy", "keep"]);
}

#[test]
fn the_watchdog_ends_a_script_stuck_where_the_time_limit_cannot_reach() {
    let env = Env::new("luahard");
    let hang = std::time::Duration::from_secs(30);
    for (name, code) in [
        ("find.lua", r#"print(string.find(("a"):rep(20000), ".-.-.-.-.-.-.-.-.-.-b"))"#),
        ("gc.lua", "setmetatable({}, { __gc = function() while true do end end })\ncollectgarbage()\n"),
        (
            "close.lua",
            "pcall(function()\n  local x <close> = setmetatable({}, { __close = function() while true do end end })\n  while true do end\nend)\n",
        ),
    ] {
        let path = env.write(name, code);
        let r = env.run_or_hang(&["run", "--timeout", "1", path.to_str().unwrap()], hang);
        assert_eq!(r.code, 124, "{name}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("error: the script ran longer than its time limit (1s) and did not stop within 1s (it was inside a C function such as string.find, a __gc finalizer or a __close handler"),
            "{name}: {}",
            r.stderr
        );
    }
    // A test file stuck so says what it leaves behind.
    let t = env.write(
        "stuck_test.lua",
        "test('stuck', function() string.find(('a'):rep(20000), '.-.-.-.-.-.-.-.-.-.-b') end)\n",
    );
    let r = env.run_or_hang(&["test", "--timeout", "1", t.to_str().unwrap()], hang);
    assert_eq!(r.code, 124, "{}", r.stderr);
    let left =
        r.stderr.split_once("; the test's temporary host ").and_then(|(_, rest)| rest.split_once(" is left behind"));
    let (dir, _) = left.unwrap_or_else(|| panic!("no leftover named: {}", r.stderr));
    assert!(Path::new(dir).join("state").is_dir(), "{dir} is not the test's host");
    std::fs::remove_dir_all(dir).unwrap();
    // load's reader function and coroutine.close no longer swallow the limit: the hook stops them.
    for code in [
        "print(load(function() return nil end), load(coroutine.wrap(function() coroutine.yield('return ') coroutine.yield('7') end))())\nwhile true do load(function() while true do end end) end",
        "while true do\n  local co = coroutine.create(function()\n    local x <close> = setmetatable({}, { __close = function() while true do end end })\n    coroutine.yield()\n  end)\n  coroutine.resume(co)\n  coroutine.close(co)\nend",
    ] {
        let path = env.write("swallow.lua", code);
        let r = env.run_or_hang(&["run", "--timeout", "1", path.to_str().unwrap()], hang);
        assert_eq!(r.code, 1, "{code}: {}", r.stderr);
        assert!(r.stderr.contains("ran longer than its time limit (1s); it was stopped"), "{code}: {}", r.stderr);
    }
}

#[test]
fn a_script_is_read_up_to_16_mib() {
    let env = Env::new("luasize");
    let r = env.run_or_hang(&["run", "/dev/zero"], std::time::Duration::from_secs(30));
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: /dev/zero: a script may hold at most 16 MiB, and this one holds more; is it the file you meant?\n"
    );
    env.write("big.lua", &format!("-- {}\n", "x".repeat(16 << 20)));
    let r = run(&env, "main.lua", "require('big')", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("big.lua: a script may hold at most 16 MiB"), "{}", r.stderr);
}

#[test]
fn syntax_and_runtime_errors_name_file_and_line() {
    let env = Env::new("luasyn");
    domain_with(&env, "s");
    let r =
        run(&env, "syntax.lua", "require('luavirt').connect():domain('s'):diskset():add('vda')\nlocal x = = 1\n", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("syntax.lua:2:") && r.stderr.contains("unexpected symbol"), "{}", r.stderr);
    assert_eq!(env.ok(&["diskset", "size", "s"]), "0\n", "a script with a syntax error ran");
    // No tail calls, so every frame stays in the traceback.
    env.write("deep.lua", "local M = {}\nfunction M.go(dom)\n  local d = dom:disk('vdz')\n  return d\nend\nreturn M\n");
    let r = run(
        &env,
        "main.lua",
        "local deep = require('deep')\nlocal function step()\n  local d = deep.go(require('luavirt').connect():domain('s'))\n  return d\nend\nstep()\n",
        &[],
    );
    assert_eq!(r.code, 1);
    let deep = env.dir.join("deep.lua").display().to_string();
    let main = env.dir.join("main.lua").display().to_string();
    assert!(r.stderr.starts_with(&format!("error: {deep}:3: Domain 's' has no disk 'vdz'")), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{main}:3:")) && r.stderr.contains(&format!("{main}:6:")),
        "traceback lacks frames: {}",
        r.stderr
    );
}

#[test]
fn a_dry_run_changes_no_file_and_says_what_it_would_do() {
    let env = Env::new("luadry");
    domain_with(&env, "d");
    env.ok(&["snapshot-create-as", "d", "old"]);
    let files = |env: &Env| {
        let mut all = env.state_snapshot();
        // Every path too, lock files included: a dry run creates nothing.
        fn walk(dir: &Path, all: &mut std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), all);
                } else {
                    all.entry(e.path()).or_default();
                }
            }
        }
        walk(&env.state, &mut all);
        for e in std::fs::read_dir(&env.dir).unwrap().flatten().filter(|e| e.path().is_file()) {
            all.insert(e.path(), std::fs::read(e.path()).unwrap());
        }
        all
    };
    let script = r#"
local lv = require("luavirt")
local conn = lv.connect()
local dom = conn:domain("d")
dom:diskset("migrate"):add_all()
-- Reads see the run's own changes.
print(lv.dry_run, table.concat(dom:diskset("migrate"):list(), ","))
dom:disk("vdb"):set_mode("independent-nonpersistent")
print(dom:disk("vdb").mode)
local s = dom:snapshot{ name = "new", disks = { vda = "external" } }
print(dom:find_snapshot("new"):name(), dom:current_snapshot():name(), s:parent():name(), #dom:snapshots())
dom:find_snapshot("old"):revert()
print(dom:current_snapshot():name(), dom:state())
dom:find_snapshot("old"):delete()
print(#dom:snapshots(), s:parent(), dom:current_snapshot())
dom:start()
print(dom:state(), conn:domains()[1]:state())
local xml = dom:xml():gsub("<name>d</name>", "<name>d2</name>"):gsub("<uuid>[^<]*</uuid>", "")
conn:define(xml)
conn:domain("d2"):snapshot{ name = "first" }
print(#conn:domains(), conn:domain("d2"):state(), conn:domain("d2"):current_snapshot():name())
"#;
    let path = env.write("dry.lua", script);
    let before = files(&env);
    let r = env.run(&["run", "--dry-run", path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Later reads see the recorded snapshots, reverts, deletes and run state.
    assert!(
        r.stdout.starts_with(
            "true\tvda,vdb\nindependent-nonpersistent\nnew\tnew\told\t2\nold\tshut off\n1\tnil\tnil\nrunning\trunning\n2\tshut off\tfirst\nDry run: nothing was changed. The script would make 8 change(s):\n"
        ),
        "{}",
        r.stdout
    );
    for want in [
        "d: disk set 'migrate': [] -> [vda, vdb]",
        "d: disk vdb: mode persistent -> independent-nonpersistent",
        "d: take snapshot 'new' (vda: external -> ",
        "d: revert to snapshot 'old'",
        "d: delete snapshot 'old'",
        "d: start",
        "d2: define from the script's XML",
        "d2: take snapshot 'first'",
    ] {
        assert!(r.stdout.contains(want), "plan lacks {want:?}:\n{}", r.stdout);
    }
    let after = files(&env);
    let changed: Vec<_> = before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).collect();
    assert!(changed.is_empty(), "a dry run changed files: {changed:?}");
    assert_eq!(env.ok(&["domstate", "d"]), "shut off\n");
}

#[test]
fn luavirt_test_runs_the_shipped_policy_tests() {
    let r = Env::new("luatest").command(&["test", "scripts"]).current_dir(repo_dir()).output().unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{out}{}", String::from_utf8_lossy(&r.stderr));
    let last = out.lines().last().unwrap_or("");
    assert!(last.ends_with(" passed, 0 failed") && !last.starts_with("0 "), "{out}");
}

#[test]
fn luavirt_test_reports_failures_with_file_and_line() {
    let env = Env::new("luafail");
    let f = env.write(
        "demo_test.lua",
        "test('passes', function() assert_eq(1, 1) end)\ntest('fails', function()\n  assert_eq({ a = 1 }, { a = 2 }, 'tables')\nend)\n",
    );
    let r = env.run(&["test", f.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("  ok    passes\n  FAIL  fails\n"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("{}:3: tables: expected {{a=2}}, got {{a=1}}", f.display())), "{}", r.stdout);
    assert!(r.stdout.ends_with("1 passed, 1 failed\n"), "{}", r.stdout);
}

#[test]
fn luavirt_test_fails_a_file_that_registers_no_test() {
    let env = Env::new("luanotest");
    let f = env.write("empty_test.lua", "local nothing = 1\n");
    let r = env.run(&["test", f.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("  FAIL  (no tests)\n        the file registered no test; register each with test(name, function() ... end)\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("0 passed, 1 failed\n"), "{}", r.stdout);
}

#[test]
fn luavirt_test_reaches_only_its_own_temporary_host() {
    let env = Env::new("luaconfine");
    domain_with(&env, "real");
    let before = env.state_snapshot();
    // The default state folder of this process is `env.state`: the real host here.
    let script = r#"
local lv = require("luavirt")
test("another state folder", function()
  lv.connect("qemu:///session?state=STATE"):domain("real"):undefine()
end)
test("the default state folder", function()
  lv.connect("qemu:///session"):domain("real"):undefine()
end)
test("a datastore outside", function()
  lv.connect("vmx://DIR?state=" .. fixture.dir .. "/state")
end)
test("its own host, by name", function()
  local conn = lv.connect("qemu:///session?state=" .. fixture.dir .. "/state")
  fixture.domain{ name = "mine" }
  assert_eq(#conn:domains(), 1)
end)
"#
    .replace("STATE", env.state.to_str().unwrap())
    .replace("DIR", env.dir.to_str().unwrap());
    let f = env.write("reach_test.lua", &script);
    let r = env.run(&["test", f.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let state = env.state.display();
    for (name, why) in [
        (
            "another state folder",
            format!("qemu:///session?state={state}: its state folder is {state}, outside this test's temporary host"),
        ),
        (
            "the default state folder",
            format!("qemu:///session: its state folder is {state}, outside this test's temporary host"),
        ),
        ("a datastore outside", format!("its folder is {}, outside this test's temporary host", env.dir.display())),
    ] {
        assert!(r.stdout.contains(&format!("  FAIL  {name}\n")), "{name} was allowed:\n{}", r.stdout);
        assert!(r.stdout.contains(&why), "{name}: {}", r.stdout);
    }
    assert!(r.stdout.contains("  ok    its own host, by name\n"), "{}", r.stdout);
    assert!(r.stdout.ends_with("1 passed, 3 failed\n"), "{}", r.stdout);
    assert_eq!(env.state_snapshot(), before, "a test changed a host outside its own");
    assert_eq!(env.ok(&["list", "--all", "--name"]), "real\n");
}

/// Method names of a userdata value, as Lua sees them.
fn methods(ud: &mlua::AnyUserData) -> BTreeSet<String> {
    let index: mlua::Table = ud.metatable().unwrap().get("__index").unwrap();
    index.pairs::<String, mlua::Value>().map(|p| p.unwrap().0).collect()
}

#[test]
fn the_definitions_file_matches_the_registered_api() {
    let env = Env::new("luadefs");
    domain_with(&env, "x");
    let host = Rc::new(Host::load_from(&[(bin_dir(), true)]));
    let uri = format!("qemu:///session?state={}", env.state.display());
    let opts = RunOptions { default_uri: uri.clone(), dry_run: true, confine: None, limits: Default::default() };
    let (lua, _) = interpreter(host.clone(), Path::new("."), &opts).unwrap();
    let mut conn = host.connect(&uri).unwrap();
    conn.set_dry_run();
    let conn = Rc::new(conn);
    let mut registered = BTreeSet::new();
    let module: mlua::Table = lua.load("return require('luavirt')").eval().unwrap();
    for pair in module.pairs::<String, mlua::Value>() {
        registered.insert(format!("luavirt.{}", pair.unwrap().0));
    }
    let objects: [(&str, mlua::AnyUserData); 6] = [
        ("conn", lua.create_userdata(luavirt_core::lua::conn::LuaConn(conn.clone())).unwrap()),
        ("dom", lua.create_userdata(LuaDomain::new(&conn, "x")).unwrap()),
        ("set", lua.create_userdata(LuaDiskSet::new(&conn, "x", "s")).unwrap()),
        ("snap", lua.create_userdata(LuaSnapshot::new(&conn, "x", "s")).unwrap()),
        ("job", lua.create_userdata(LuaJob::new(&conn, "x", "vda")).unwrap()),
        ("fleet", lua.create_userdata(luavirt_core::lua::fleet::LuaFleet(Vec::new())).unwrap()),
    ];
    for (name, ud) in &objects {
        registered.extend(methods(ud).into_iter().map(|m| format!("{name}:{m}")));
    }
    let disk_methods: mlua::Table =
        lua.load("return getmetatable(require('luavirt').connect():domain('x'):disks()[1]).__index").eval().unwrap();
    registered.extend(disk_methods.pairs::<String, mlua::Value>().map(|p| format!("disk:{}", p.unwrap().0)));

    let defs = std::fs::read_to_string(repo_dir().join("scripts/types/luavirt.lua")).unwrap();
    let mut documented = BTreeSet::new();
    let mut in_module = false;
    for line in defs.lines() {
        if let Some(f) = line.strip_prefix("function ") {
            let name = f.split('(').next().unwrap();
            if ["luavirt.", "conn:", "dom:", "set:", "snap:", "job:", "disk:", "fleet:"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                documented.insert(name.to_string());
            }
        }
        if line.starts_with("---@class ") {
            in_module = line == "---@class luavirt";
        } else if in_module && let Some(field) = line.strip_prefix("---@field ") {
            documented.insert(format!("luavirt.{}", field.split_whitespace().next().unwrap()));
        }
    }
    let missing: Vec<_> = registered.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "not in scripts/types/luavirt.lua: {missing:?}; documented but not registered: {stale:?}"
    );
    assert!(registered.len() > 40, "{registered:?}");
}

#[test]
fn the_examples_run_against_real_domains() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("luaex");
    domain_with(&env, "ex");
    let example = |name: &str, args: &[&str], extra: &[&str]| {
        let path = repo_dir().join("examples/lua").join(name);
        let mut all = vec!["run"];
        all.extend_from_slice(extra);
        all.push(path.to_str().unwrap());
        all.extend_from_slice(args);
        let r = env.run(&all);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        r.stdout
    };
    let inv = example("inventory.lua", &[], &[]);
    assert!(inv.starts_with("ex (shut off)\n  vda    qcow2   persistent"), "{inv}");
    let scratch_prefix = env.dir.join("ex-b").display().to_string();
    let dry = example("scratch_disks.lua", &[&scratch_prefix], &["--dry-run"]);
    assert!(
        dry.contains("ex: vdb is now independent-nonpersistent") && dry.contains("Dry run: nothing was changed"),
        "{dry}"
    );
    assert_eq!(env.ok(&["disk-mode", "ex", "vdb"]), "persistent\n");
    example("scratch_disks.lua", &[&scratch_prefix], &[]);
    assert_eq!(env.ok(&["disk-mode", "ex", "vdb"]), "independent-nonpersistent\n");
    let snap = example("snapshot_before_upgrade.lua", &["ex", "before-upgrade-1"], &[]);
    assert_eq!(snap, "vda: internal (qcow2 holds internal snapshots)\nvdb: no (transient)\ntook before-upgrade-1\n");
    assert_eq!(example("rollback.lua", &["ex"], &[]), "ex is back at before-upgrade-1 (shut off)\n");
    assert_eq!(example("prune_snapshots.lua", &["0", "before-upgrade"], &[]), "ex: deleted before-upgrade-1\n");
    let fleet = example("fleet_inventory.lua", &["qemu:///session", "nosuch:///x"], &[]);
    let lines: Vec<&str> = fleet.lines().collect();
    assert_eq!(lines[0], "qemu:///session: 1 domain(s), 0 running", "{fleet}");
    assert!(lines[1].starts_with("nosuch:///x: failed: "), "{fleet}");
    assert_eq!(lines[2], "2 hosts: 1 succeeded, 1 failed", "{fleet}");
    env.ok(&["start", "ex"]);
    let dest = env.dir.join("moved.qcow2");
    let moved = example("move_disk.lua", &["ex", "vda", dest.to_str().unwrap()], &[]);
    assert!(moved.ends_with(&format!("ex's vda now lives in {}\n", dest.display())), "{moved}");
    env.ok(&["destroy", "ex"]);
    assert!(image_holds(&dest, "qcow2", 0x11));
}

#[test]
fn the_shipped_scratch_policy_takes_its_local_folders_from_prefix() {
    let env = Env::new("luascratch");
    let fast = env.dir.join("fast");
    let local = env.dir.join("local");
    std::fs::create_dir_all(&fast).unwrap();
    std::fs::create_dir_all(&local).unwrap();
    let a = env.image("fast/a.qcow2", "qcow2", "1M");
    let b = env.image("local/b.qcow2", "qcow2", "1M");
    env.define_domain("sc", &[("vda", &a, "qcow2"), ("vdb", &b, "qcow2")]);
    let script = repo_dir().join("scripts/scratch_local.lua");
    let prefix = format!("{}/", local.display());
    let out = env.ok(&["run", script.to_str().unwrap(), "--prefix", &prefix, "sc"]);
    assert!(out.contains("sc: disk vdb persistent -> independent-nonpersistent"), "{out}");
    assert_eq!(env.ok(&["disk-mode", "sc", "vda"]), "persistent\n", "a disk outside --prefix is not scratch");
    assert_eq!(env.ok(&["disk-mode", "sc", "vdb"]), "independent-nonpersistent\n");
    assert_eq!(env.ok(&["diskset", "list", "sc", "--set", "migrate"]).trim(), "vda");
}

#[test]
fn the_time_limit_stops_a_long_block_job_wait_too() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("luawait");
    let a = env.image("w-a.qcow2", "qcow2", "64M");
    let out = std::process::Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", "write -P 0x31 0 48M"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(out.status.success());
    env.define_domain("w", &[("vda", &a, "qcow2")]);
    env.ok(&["start", "w"]);
    let dest = env.dir.join("slow.qcow2");
    let script = r#"
local dom = require("luavirt").connect():domain("w")
local job = dom:block_copy{ disk = "vda", dest = "DEST", bandwidth = 1 }
local ok, err = pcall(function() job:wait{ pivot = true } end)
print("pcall did not stop the limit", ok, err)
"#
    .replace("DEST", dest.to_str().unwrap());
    let r = run(&env, "wait.lua", &script, &["--timeout", "2"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("ran longer than its time limit (2s)"), "{}", r.stderr);
    assert!(!r.stdout.contains("pcall did not stop"), "{}", r.stdout);
    // The job was cancelled; the domain stays on its image, and still runs.
    assert_eq!(env.ok(&["blockjob", "w", "vda"]), "No current block job for vda\n");
    assert_eq!(luavirt_tests::disk_image(&env, "w", "vda").0, a);
    assert_eq!(env.ok(&["domstate", "w"]), "running\n");
    env.ok(&["destroy", "w"]);
}

#[test]
fn code_from_e_and_standard_input_and_a_repl_fed_by_a_pipe() {
    use std::io::Write;
    let env = Env::new("luae");
    domain_with(&env, "d");
    // -e: the module is the global luavirt; every positional is the script's argument.
    let out = env.ok(&["run", "-e", "print(luavirt.connect():domain('d'):name(), select('#', ...), ...)", "x", "y"]);
    assert_eq!(out, "d\t2\tx\ty\n");
    let feed = |args: &[&str], input: &str| {
        let mut child = env
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        luavirt_tests::Run::from(child.wait_with_output().unwrap())
    };
    // "-": the script is standard input, an ordinary script (require, arg[0]).
    let r =
        feed(&["run", "-", "a1"], "local lv = require('luavirt')\nprint(arg[0], arg[1], #lv.connect():domains())\n");
    assert_eq!((r.code, r.stdout.as_str()), (0, "stdin\ta1\t1\n"), "{}", r.stderr);
    // A refusal names the line of standard input in its message.
    let r = feed(&["run", "-"], "local x = 1\nio.open('/etc/passwd')\n");
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("error: stdin:2: io.open is not available in luavirt scripts"), "{}", r.stderr);
    // The repl: expressions print, statements span lines, errors name the input line and
    // the session goes on; without a terminal, no prompt.
    let r = feed(
        &["repl"],
        "conn = luavirt.connect()\n#conn:domains()\nfor _, d in ipairs(conn:domains()) do\n  print(d:name(), d:state())\nend\nio.open('x')\n{ a = 1 }\nconn:domain('d'):diskset('s'):add('vda')\nconn:domain('d'):diskset('s'):list()\nconn:domains()\n",
    );
    assert_eq!(r.stdout, "1\nd\tshut off\n{\"a\":1}\ntrue\n[\"vda\"]\n{luavirt.domain(d)}\n", "{}", r.stderr);
    assert!(r.stderr.contains("error: stdin:6: io.open is not available"), "{}", r.stderr);
    assert!(!r.stderr.contains("lua>"), "{}", r.stderr);
    assert_eq!(r.code, 1, "a failed entry makes the exit status 1");
    // What the repl changed is real: the set is on disk.
    assert_eq!(env.ok(&["diskset", "list", "d", "--set", "s"]), "vda\n");
    let r = feed(&["repl"], "for i = 1, 2 do\n");
    assert!(r.stderr.contains("stdin:1: the input ended inside an unfinished statement"), "{}", r.stderr);
}

/// Runs the scratch policy (scripts/policy/scratch.lua) on domain "p" over a connection made
/// here, so the test can ask it how many definition texts it parsed. Returns that count and
/// what the script printed.
fn scratch_policy_parses(env: &Env, scratch: &Path, dry_run: bool) -> (u64, String) {
    let host = Rc::new(Host::load_from(&[(bin_dir(), true)]));
    let uri = format!("qemu:///session?state={}", env.state.display());
    let opts = RunOptions { default_uri: uri.clone(), dry_run, confine: None, limits: Default::default() };
    let (lua, _) = interpreter(host.clone(), &repo_dir().join("scripts"), &opts).unwrap();
    let mut conn = host.connect(&uri).unwrap();
    if dry_run {
        conn.set_dry_run();
    }
    let conn = Rc::new(conn);
    lua.globals().set("dom", lua.create_userdata(LuaDomain::new(&conn, "p")).unwrap()).unwrap();
    lua.globals().set("scratch", scratch.to_str().unwrap()).unwrap();
    let printed: String = lua
        .load(
            r#"
local r = require("policy.scratch").apply(dom, { prefixes = { scratch } })
local modes = {}
for _, c in ipairs(r.modes) do modes[#modes + 1] = c.disk .. " " .. c.from .. " -> " .. c.to end
local again = {}
for _, d in ipairs(dom:disks()) do again[#again + 1] = d.target .. "=" .. d.mode end
return table.concat(modes, ",") .. "; +" .. table.concat(r.migrate.added, ",") .. "; "
  .. table.concat(dom:diskset("migrate"):list(), ",") .. "; " .. table.concat(again, ",")
"#,
        )
        .eval()
        .unwrap();
    (conn.definitions_parsed(), printed)
}

#[test]
fn a_policy_parses_each_definition_once_and_its_dry_run_still_sees_its_changes() {
    let env = Env::new("luaparse");
    let disks: Vec<_> = ["a", "b", "c"].iter().map(|n| env.image(&format!("p-{n}.qcow2"), "qcow2", "1M")).collect();
    let scratch = env.image("p-scratch.qcow2", "qcow2", "1M");
    env.define_domain(
        "p",
        &[
            ("vda", &disks[0], "qcow2"),
            ("vdb", &disks[1], "qcow2"),
            ("vdc", &disks[2], "qcow2"),
            ("vdd", &scratch, "qcow2"),
        ],
    );
    let want = "vdd persistent -> independent-nonpersistent; +vda,vdb,vdc; vda,vdb,vdc; \
                vda=persistent,vdb=persistent,vdc=persistent,vdd=independent-nonpersistent";
    // Four changes (a mode, three disks added to a set) and some 20 reads of the definition:
    // each change is a read under the lock and a write; the reads between them see it.
    let before = env.state_snapshot();
    let (parsed, printed) = scratch_policy_parses(&env, &scratch, true);
    assert_eq!(printed, want);
    assert_eq!(parsed, 1, "the dry run parsed {parsed} definition texts, not only the driver's first");
    assert_eq!(env.state_snapshot(), before, "the dry run wrote something");
    // For real: the driver keeps each text as written, and it reads back without a parse.
    let (parsed, printed) = scratch_policy_parses(&env, &scratch, false);
    assert_eq!(printed, want);
    assert_eq!(parsed, 1, "the applied run parsed {parsed} definition texts");
    assert_eq!(env.ok(&["diskset", "list", "p", "--set", "migrate"]), "vda\nvdb\nvdc\n");
    assert_eq!(env.ok(&["disk-mode", "p", "vdd"]), "independent-nonpersistent\n");
}

#[test]
fn a_definition_changed_behind_a_connections_back_is_read_as_it_now_is() {
    let env = Env::new("luafresh");
    domain_with(&env, "f");
    let host = Rc::new(Host::load_from(&[(bin_dir(), true)]));
    let uri = format!("qemu:///session?state={}", env.state.display());
    let opts = RunOptions { default_uri: uri.clone(), dry_run: false, confine: None, limits: Default::default() };
    let (lua, _) = interpreter(host.clone(), Path::new("."), &opts).unwrap();
    let conn = Rc::new(host.connect(&uri).unwrap());
    lua.globals().set("dom", lua.create_userdata(LuaDomain::new(&conn, "f")).unwrap()).unwrap();
    let targets = || -> String {
        lua.load("local t = {} for _, d in ipairs(dom:disks()) do t[#t + 1] = d.target end return table.concat(t, ',')")
            .eval()
            .unwrap()
    };
    assert_eq!(targets(), "vda,vdb");
    assert_eq!(targets(), "vda,vdb");
    // Another process rewrites the definition: both the host and the driver read it anew.
    let file = env.state.join("qemu/domains/f.xml");
    let text = std::fs::read_to_string(&file).unwrap();
    let start = text.rfind("<disk").unwrap();
    let end = text.rfind("</disk>").unwrap() + "</disk>".len();
    std::fs::write(&file, format!("{}{}", &text[..start], &text[end..])).unwrap();
    assert_eq!(targets(), "vda");
    assert_eq!(conn.read_domain("f").unwrap().disks().len(), 1);
    // Broken meanwhile: the driver's error, not a parse kept from before.
    std::fs::write(&file, "<domain><name>f</name>").unwrap();
    let err = conn.read_domain("f").unwrap_err().to_string();
    assert!(err.contains("The stored definition of domain 'f' is corrupt"), "{err}");
    let err = lua.load("return dom:disks()").exec().unwrap_err().to_string();
    assert!(err.contains("is corrupt"), "{err}");
    std::fs::write(&file, &text).unwrap();
    assert_eq!(targets(), "vda,vdb");
}
