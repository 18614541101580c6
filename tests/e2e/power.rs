//! A running domain's buttons with real QEMU: `shutdown` presses the ACPI power button (a
//! boot-sector guest that powers off when it is pressed shuts down gracefully; a guest
//! without an OS ignores it, which `--timeout` reports and `--destroy` ends), `reboot`
//! resets, `suspend` and `resume` pause and run the vCPUs, also after a paused revert.

use luavirt_tests::{Env, QmpListener, define_acpi_guest, qmp, require, wait_acpi_guest_ready};
use std::time::Duration;

fn state(env: &Env, name: &str) -> String {
    env.ok(&["domstate", name]).trim().to_string()
}

fn pid(env: &Env, name: &str) -> i64 {
    let list: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--json"])).unwrap();
    list.as_array().unwrap().iter().find(|d| d["name"] == name).unwrap()["id"].as_i64().unwrap()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// A domain whose disk holds no OS: its guest never answers the power button.
fn silent_domain(env: &Env, name: &str) {
    require("qemu-system-x86_64", "qemu-system-x86");
    let disk = env.image(&format!("{name}.qcow2"), "qcow2", "16M");
    env.define_domain(name, &[("vda", &disk, "qcow2")]);
}

#[test]
fn a_guest_that_handles_the_power_button_shuts_down_gracefully() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("acpi-ok");
    define_acpi_guest(&env, "obey");
    env.ok(&["start", "obey"]);
    wait_acpi_guest_ready(&env, "obey");
    let qemu = pid(&env, "obey");
    let out = env.ok(&["shutdown", "obey", "--timeout", "60"]);
    assert_eq!(out, "Domain 'obey' is shut off\n");
    assert_eq!(state(&env, "obey"), "shut off");
    assert!(!alive(qemu), "QEMU {qemu} still runs");
    // The guest powered off by itself: QEMU's log has no sign of being killed.
    let log = std::fs::read_to_string(env.state.join("qemu/log/obey.log")).unwrap();
    assert!(!log.contains("terminating on signal"), "{log}");

    // Asked without waiting, it says so and returns; the guest then goes off on its own.
    env.ok(&["start", "obey"]);
    wait_acpi_guest_ready(&env, "obey");
    let out = env.ok(&["shutdown", "obey", "--mode", "acpi"]);
    assert!(out.starts_with("Domain 'obey' is being shut down"), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while state(&env, "obey") != "shut off" {
        assert!(std::time::Instant::now() < deadline, "the guest never powered off");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Only ACPI exists: another mode is a usage error.
    let err = env.fails(&["shutdown", "obey", "--mode", "agent"], 2);
    assert!(err.contains("agent"), "{err}");
    let err = env.fails(&["shutdown", "obey"], 1);
    assert!(err.contains("Cannot shutdown domain 'obey': it is shut off; `luavirt start obey` starts it"), "{err}");
}

#[test]
fn a_guest_that_ignores_the_power_button_times_out_or_is_destroyed() {
    let env = Env::new("acpi-deaf");
    silent_domain(&env, "deaf");
    env.ok(&["start", "deaf"]);
    let qemu = pid(&env, "deaf");
    // The request reaches QEMU: every monitor sees the POWERDOWN event.
    let mut events = QmpListener::new(&env, "deaf");
    let out = env.ok(&["shutdown", "deaf"]);
    assert!(out.starts_with("Domain 'deaf' is being shut down"), "{out}");
    assert!(events.saw("POWERDOWN", Duration::from_secs(10)), "QEMU never got the power button");
    drop(events);
    assert_eq!(state(&env, "deaf"), "running");

    // A time limit that ends with the domain running is an error saying what to do.
    let start = std::time::Instant::now();
    let err = env.fails(&["shutdown", "deaf", "--timeout", "1"], 1);
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert!(
        err.contains("Domain 'deaf' did not shut down within 1 s and still runs")
            && err.contains("`luavirt destroy deaf` stops it at once, or add --destroy"),
        "{err}"
    );
    assert_eq!(state(&env, "deaf"), "running");
    assert_eq!(pid(&env, "deaf"), qemu);
    let json = env.fails(&["shutdown", "deaf", "--timeout", "1", "--json"], 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["error"]["code"], "invalid-state");

    // --destroy ends it after the limit.
    let out = env.ok(&["shutdown", "deaf", "--timeout", "1", "--destroy"]);
    assert_eq!(out, "Domain 'deaf' did not shut down within 1 s and was destroyed\n");
    assert_eq!(state(&env, "deaf"), "shut off");
    // --destroy needs a time limit.
    env.fails(&["shutdown", "deaf", "--destroy"], 2);
}

#[test]
fn reboot_resets_the_guest_and_suspend_resume_pause_it() {
    let env = Env::new("buttons");
    silent_domain(&env, "btn");
    env.ok(&["start", "btn"]);
    let qemu = pid(&env, "btn");
    let mut events = QmpListener::new(&env, "btn");
    let out = env.ok(&["reboot", "btn"]);
    assert!(out.starts_with("Domain 'btn' was reset"), "{out}");
    assert!(events.saw("RESET", Duration::from_secs(10)), "QEMU was not reset");
    env.ok(&["reset", "btn"]); // virsh's name for it
    assert!(events.saw("RESET", Duration::from_secs(10)));
    drop(events);
    assert_eq!((state(&env, "btn"), pid(&env, "btn")), ("running".to_string(), qemu));

    assert_eq!(env.ok(&["suspend", "btn"]), "Domain 'btn' suspended\n");
    assert_eq!(state(&env, "btn"), "paused");
    assert_eq!(qmp(&env, "btn", "query-status", serde_json::json!({}))["status"], "paused");
    assert_eq!(env.ok(&["suspend", "btn"]), "Domain 'btn' is already paused\n");
    assert_eq!(env.ok(&["resume", "btn"]), "Domain 'btn' resumed\n");
    assert_eq!(qmp(&env, "btn", "query-status", serde_json::json!({}))["status"], "running");
    assert_eq!(env.ok(&["resume", "btn"]), "Domain 'btn' is already running\n");
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["suspend", "btn", "--json"])).unwrap();
    assert_eq!((v["state"].as_str(), v["changed"].as_bool()), (Some("paused"), Some(true)));

    env.ok(&["destroy", "btn"]);
    for verb in ["suspend", "resume", "reboot"] {
        let err = env.fails(&[verb, "btn"], 1);
        assert!(err.contains("it is shut off"), "{verb}: {err}");
    }
}

#[test]
fn a_paused_revert_is_no_dead_end() {
    let env = Env::new("revert-paused");
    silent_domain(&env, "rp");
    env.ok(&["start", "rp"]);
    env.ok(&["snapshot-create-as", "rp", "s1"]);
    env.ok(&["snapshot-revert", "rp", "s1", "--paused"]);
    assert_eq!(state(&env, "rp"), "paused");
    env.ok(&["resume", "rp"]);
    assert_eq!(state(&env, "rp"), "running");
    env.ok(&["destroy", "rp"]);
}

#[test]
fn lua_presses_the_same_buttons_and_a_dry_run_presses_none() {
    let env = Env::new("lua-power");
    define_acpi_guest(&env, "lp");
    silent_domain(&env, "ls");
    env.ok(&["start", "lp"]);
    env.ok(&["start", "ls"]);
    wait_acpi_guest_ready(&env, "lp");
    let script = env.write(
        "power.lua",
        r#"
local lv = require("luavirt")
local conn = lv.connect()
local ls = conn:domain("ls")
assert(ls:suspend() == true and ls:state() == "paused")
assert(ls:suspend() == false)
assert(ls:resume() == true and ls:state() == "running")
ls:reset()
local ok, err = pcall(function() return ls:shutdown{ timeout = 1 } end)
assert(not ok and err.code == "invalid-state", tostring(err))
assert(err.message:find("`dom:destroy%(%)` stops it at once, or add destroy = true"), err.message)
assert(ls:shutdown{ timeout = 1, destroy = true } == "destroyed")
assert(ls:state() == "shut off")
local ok2, err2 = pcall(function() return ls:shutdown{ destroy = true } end)
assert(not ok2 and err2.code == "invalid-argument", tostring(err2))
local ok3, err3 = pcall(function() return ls:shutdown{ wiat = true } end)
assert(not ok3 and tostring(err3):find("wiat"), tostring(err3))
assert(conn:domain("lp"):shutdown{ wait = true } == "shut off")
print("lua ok")
"#,
    );
    let out = env.ok(&["run", script.to_str().unwrap()]);
    assert!(out.contains("lua ok"), "{out}");
    assert_eq!(state(&env, "lp"), "shut off");

    // A dry run records the pause and changes nothing.
    env.ok(&["start", "ls"]);
    let dry = env.write(
        "dry.lua",
        "local d = require('luavirt').connect():domain('ls')\nd:suspend()\nassert(d:state() == 'paused')\n",
    );
    let out = env.ok(&["run", "--dry-run", dry.to_str().unwrap()]);
    assert!(out.contains("ls: suspend"), "{out}");
    assert_eq!(state(&env, "ls"), "running");
    env.ok(&["destroy", "ls"]);
}
