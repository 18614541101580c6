//! Real `qemu-system-x86_64` (TCG) domains: started by one process, seen and stopped by
//! others; a QEMU that died reads as shut off; image details come from `qemu-img info`.

use luavirt_tests::{Env, require};
use std::path::Path;
use std::process::Command;

fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

fn mixed_domain(env: &Env, name: &str) {
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image(&format!("{name}-a.qcow2"), "qcow2", "64M");
    let b = env.image(&format!("{name}-b.raw"), "raw", "32M");
    env.define_domain(name, &[("vda", &a, "qcow2"), ("vdb", &b, "raw")]);
}

fn running_id(env: &Env, name: &str) -> Option<i64> {
    let list: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--all", "--json"])).unwrap();
    let d = list.as_array().unwrap().iter().find(|d| d["name"] == name).unwrap().clone();
    (d["state"] == "running").then(|| d["id"].as_i64().unwrap())
}

#[test]
fn a_domain_started_by_one_process_is_listed_by_another_and_destroyed_by_a_third() {
    let env = Env::new("lifecycle");
    mixed_domain(&env, "vm1");
    assert_eq!(env.ok(&["start", "vm1"]), "Domain 'vm1' started\n");
    // A second process: lists it running, with QEMU's pid as id.
    let list = env.ok(&["list"]);
    assert!(list.lines().any(|l| l.contains("vm1") && l.ends_with("running")), "{list}");
    let pid = running_id(&env, "vm1").expect("running");
    assert!(pid_alive(pid));
    assert_eq!(env.ok(&["domstate", "vm1"]), "running\n");
    // QEMU really has both disks, over its QMP socket.
    for k in 0..4 {
        assert!(env.state.join(format!("qemu/run/vm1/qmp-{k}.sock")).exists(), "monitor {k} missing");
    }
    // A third process destroys it.
    assert_eq!(env.ok(&["destroy", "vm1"]), "Domain 'vm1' destroyed\n");
    assert!(!pid_alive(pid), "QEMU {pid} still runs");
    assert_eq!(env.ok(&["domstate", "vm1"]), "shut off\n");
    assert!(env.ok(&["list"]).lines().count() == 2, "list shows only running domains");
    assert!(!env.state.join("qemu/run/vm1").exists());
    // It starts again, and the log kept both starts.
    env.ok(&["start", "vm1"]);
    env.ok(&["destroy", "vm1"]);
    let log = std::fs::read_to_string(env.state.join("qemu/log/vm1.log")).unwrap();
    assert_eq!(log.matches("starting domain 'vm1'").count(), 2, "{log}");
}

#[test]
fn a_qemu_that_died_reads_as_shut_off() {
    let env = Env::new("died");
    mixed_domain(&env, "vm2");
    env.ok(&["start", "vm2"]);
    let pid = running_id(&env, "vm2").unwrap();
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    while pid_alive(pid) {
        std::thread::yield_now();
    }
    assert_eq!(running_id(&env, "vm2"), None);
    assert_eq!(env.ok(&["domstate", "vm2"]), "shut off\n");
    let err = env.fails(&["destroy", "vm2"], 1);
    assert!(err.contains("Domain 'vm2' is not running"), "{err}");
    // Its stale run state does not block a new start.
    env.ok(&["start", "vm2"]);
    assert!(running_id(&env, "vm2").is_some());
    env.ok(&["destroy", "vm2"]);
}

#[test]
fn starting_twice_or_with_a_wrong_format_are_clear_errors() {
    let env = Env::new("startfail");
    mixed_domain(&env, "vm3");
    env.ok(&["start", "vm3"]);
    let err = env.fails(&["start", "vm3"], 1);
    assert!(err.contains("Domain 'vm3' is already running"), "{err}");
    let err = env.fails(&["undefine", "vm3"], 1);
    assert!(err.contains("Domain 'vm3' is running; destroy it first"), "{err}");
    env.ok(&["destroy", "vm3"]);

    // The XML says qcow2 but the file is raw: QEMU refuses, and its words reach the user.
    let raw = env.image("c.raw", "raw", "8M");
    env.define_domain("vm4", &[("vda", &raw, "qcow2")]);
    let err = env.fails(&["start", "vm4"], 1);
    assert!(err.contains("QEMU failed to start domain 'vm4'") && err.contains("qcow2"), "{err}");
    assert_eq!(env.ok(&["domstate", "vm4"]), "shut off\n");
    assert!(!env.state.join("qemu/run/vm4").exists());
}

#[test]
fn domblklist_details_show_format_size_and_backing_chain() {
    require("qemu-img", "qemu-utils");
    let env = Env::new("blklist");
    let base = env.image("base.qcow2", "qcow2", "1G");
    let top = env.dir.join("top.qcow2");
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(&top)
        .output()
        .unwrap();
    assert!(out.status.success());
    let raw = env.image("data.raw", "raw", "16M");
    env.define_domain("vm5", &[("vda", &top, "qcow2"), ("vdb", &raw, "raw")]);
    let plain = env.ok(&["domblklist", "vm5"]);
    assert!(plain.starts_with(" Target   Source\n"), "{plain}");
    assert!(plain.contains(&format!(" vda      {}", top.display())), "{plain}");
    let details: serde_json::Value =
        serde_json::from_str(&env.ok(&["domblklist", "vm5", "--details", "--json"])).unwrap();
    let vda = &details[0];
    assert_eq!(
        (vda["target"].as_str(), vda["format"].as_str(), vda["capacity"].as_u64()),
        (Some("vda"), Some("qcow2"), Some(1 << 30))
    );
    assert_eq!(vda["backing"][0]["path"], base.display().to_string());
    assert_eq!(vda["backing"][0]["format"], "qcow2");
    let vdb = &details[1];
    assert_eq!((vdb["format"].as_str(), vdb["capacity"].as_u64()), (Some("raw"), Some(16 << 20)));
    assert_eq!(vdb["backing"], serde_json::json!([]));
    let text = env.ok(&["domblklist", "vm5", "--details"]);
    assert!(text.contains("1 GiB") && text.contains(&format!("{} (qcow2)", base.display())), "{text}");
}
