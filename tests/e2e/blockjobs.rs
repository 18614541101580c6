//! Block jobs and mirrored snapshots on a running QEMU, with the data checked afterwards:
//! blockcopy with pivot and finish, blockpull with and without base, blockcommit, blockjob
//! info/abort/pivot, mirror pivot and abort; and images locked by another QEMU.

use luavirt_tests::{Env, disk_holds, disk_image, image_holds, require, write_live, write_offline};
use std::path::PathBuf;

/// A running domain `name` with a qcow2 disk vda holding 0x11.
fn running(env: &Env, name: &str) -> PathBuf {
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image(&format!("{name}-a.qcow2"), "qcow2", "16M");
    write_offline(&a, "qcow2", 0x11);
    env.define_domain(name, &[("vda", &a, "qcow2")]);
    env.ok(&["start", name]);
    a
}

fn job(env: &Env, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["blockjob", name, "vda", "--json"])).unwrap();
    v["job"].clone()
}

#[test]
fn blockcopy_pivots_to_the_copy_or_finishes_on_the_source() {
    let env = Env::new("copy");
    let a = running(&env, "c1");
    write_live(&env, "c1", "vda", 0x21);
    let copy = env.dir.join("copy.qcow2");
    assert_eq!(
        env.ok(&["blockcopy", "c1", "vda", copy.to_str().unwrap(), "--wait", "--pivot"]),
        "Successfully pivoted\n"
    );
    assert_eq!(disk_image(&env, "c1", "vda").0, copy);
    write_live(&env, "c1", "vda", 0x22);
    // Without --wait the job runs on; blockjob shows it, --pivot ends it on the copy.
    let second = env.dir.join("second.qcow2");
    env.ok(&["blockcopy", "c1", "vda", second.to_str().unwrap()]);
    let info = job(&env, "c1");
    assert_eq!(info["type"], "copy");
    let err = env.fails(&["blockcopy", "c1", "vda", env.dir.join("third.qcow2").to_str().unwrap()], 1);
    assert!(err.contains("already has block job copy-vda"), "{err}");
    while !job(&env, "c1")["ready"].as_bool().unwrap() {
        std::thread::yield_now();
    }
    env.ok(&["blockjob", "c1", "vda", "--pivot"]);
    assert_eq!(disk_image(&env, "c1", "vda").0, second);
    assert_eq!(job(&env, "c1"), serde_json::Value::Null);
    // --finish keeps the disk on its source and leaves a point-in-time copy.
    let snapshot_copy = env.dir.join("finished.qcow2");
    assert_eq!(
        env.ok(&["blockcopy", "c1", "vda", snapshot_copy.to_str().unwrap(), "--wait", "--finish"]),
        "Successfully copied\n"
    );
    assert_eq!(disk_image(&env, "c1", "vda").0, second);
    write_live(&env, "c1", "vda", 0x23);
    env.ok(&["destroy", "c1"]);
    assert!(image_holds(&copy, "qcow2", 0x22), "the first copy lost data written after its pivot");
    assert!(image_holds(&snapshot_copy, "qcow2", 0x22), "the finished copy is not the point-in-time copy");
    assert!(image_holds(&second, "qcow2", 0x23));
    assert!(
        image_holds(&a, "qcow2", 0x21) && !image_holds(&a, "qcow2", 0x22),
        "the original was written after the pivot"
    );
}

#[test]
fn blockpull_with_and_without_base_shortens_the_chain_and_keeps_data() {
    let env = Env::new("pull");
    let a = running(&env, "p1");
    // Build a chain a <- s1 <- s2 <- s3 with a different pattern at each level.
    for (snap, pattern) in [("s1", 0x31u8), ("s2", 0x32), ("s3", 0x33)] {
        env.ok(&["snapshot-create-as", "p1", snap, "--disk-only", "--diskspec", "vda,snapshot=external"]);
        write_live(&env, "p1", "vda", pattern);
    }
    let s1 = env.dir.join("p1-a.s1");
    let chain = |env: &Env| {
        let d: serde_json::Value = serde_json::from_str(&env.ok(&["domblklist", "p1", "--details", "--json"])).unwrap();
        d[0]["backing"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| b["path"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(chain(&env).len(), 3);
    assert_eq!(env.ok(&["blockpull", "p1", "vda", "--base", s1.to_str().unwrap(), "--wait"]), "Pull complete\n");
    assert_eq!(chain(&env), [s1.display().to_string(), a.display().to_string()]);
    env.ok(&["blockpull", "p1", "vda", "--wait"]);
    assert!(chain(&env).is_empty(), "a full pull leaves no backing image");
    env.ok(&["destroy", "p1"]);
    assert!(disk_holds(&env, "p1", "vda", 0x33));
    // Offline, the same through qemu-img.
    env.ok(&["snapshot-create-as", "p1", "s4", "--diskspec", "vda,snapshot=external"]);
    write_offline(&disk_image(&env, "p1", "vda").0, "qcow2", 0x34);
    env.ok(&["blockpull", "p1", "vda", "--wait"]);
    assert!(chain(&env).is_empty());
    assert!(disk_holds(&env, "p1", "vda", 0x34));
}

#[test]
fn blockcommit_of_the_active_image_pivots_to_the_base() {
    let env = Env::new("commit");
    let a = running(&env, "k1");
    env.ok(&["snapshot-create-as", "k1", "s1", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    let s1 = disk_image(&env, "k1", "vda").0;
    env.ok(&["snapshot-create-as", "k1", "s2", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    let s2 = disk_image(&env, "k1", "vda").0;
    write_live(&env, "k1", "vda", 0x41);
    // --active means the active image: a --top below it contradicts it and changes nothing.
    let err = env.fails(&["blockcommit", "k1", "vda", "--active", "--top", s1.to_str().unwrap(), "--wait"], 1);
    assert!(
        err.contains(&format!(
            "--active commits disk vda's active image {}, and --top names {}",
            s2.display(),
            s1.display()
        )),
        "{err}"
    );
    assert_eq!(env.ok(&["blockjob", "k1", "vda"]), "No current block job for vda\n");
    assert_eq!(disk_image(&env, "k1", "vda").0, s2);
    let base = ["--base", a.to_str().unwrap(), "--top", s2.to_str().unwrap()];
    assert_eq!(
        env.ok(&[&["blockcommit", "k1", "vda", "--active", "--wait", "--pivot"][..], &base].concat()),
        "Successfully pivoted\n"
    );
    assert_eq!(disk_image(&env, "k1", "vda").0, a);
    env.ok(&["destroy", "k1"]);
    assert!(image_holds(&a, "qcow2", 0x41), "the commit did not reach the base");
}

#[test]
fn a_mirrored_snapshot_ends_with_pivot_or_abort() {
    let env = Env::new("mirror");
    let a = running(&env, "r1");
    let mirror = env.dir.join("mirror.qcow2");
    env.ok(&[
        "snapshot-create-as",
        "r1",
        "m",
        "--disk-only",
        "--diskspec",
        &format!("vda,mirror={}", mirror.display()),
    ]);
    assert_eq!(job(&env, "r1")["type"], "copy");
    write_live(&env, "r1", "vda", 0x51);
    // While the mirror runs, snapshots and reverts are refused, and so is a plain delete.
    let err = env.fails(&["snapshot-create-as", "r1", "x", "--disk-only"], 1);
    assert!(err.contains("still mirrored by snapshot 'm'"), "{err}");
    let err = env.fails(&["snapshot-revert", "r1", "m"], 1);
    assert!(err.contains("still mirrored by snapshot 'm'"), "{err}");
    let err = env.fails(&["snapshot-delete", "r1", "m"], 1);
    assert!(err.contains("pass --mirror-pivot to switch to the mirror, or --mirror-abort"), "{err}");
    let err = env.fails(&["snapshot-delete", "r1", "m", "--mirror-pivot", "--mirror-abort"], 1);
    assert!(err.contains("choose one"), "{err}");
    env.ok(&["snapshot-delete", "r1", "m", "--mirror-pivot"]);
    assert_eq!(disk_image(&env, "r1", "vda").0, mirror);
    write_live(&env, "r1", "vda", 0x52);

    // Abort: the disk stays on its overlay; the mirror keeps what it had.
    let mirror2 = env.dir.join("mirror2.qcow2");
    env.ok(&[
        "snapshot-create-as",
        "r1",
        "n",
        "--disk-only",
        "--diskspec",
        &format!("vda,mirror={}", mirror2.display()),
    ]);
    let overlay = disk_image(&env, "r1", "vda").0;
    write_live(&env, "r1", "vda", 0x53);
    env.ok(&["snapshot-delete", "r1", "n", "--mirror-abort"]);
    assert_eq!(disk_image(&env, "r1", "vda").0, overlay);
    write_live(&env, "r1", "vda", 0x54);
    env.ok(&["destroy", "r1"]);
    assert!(image_holds(&mirror, "qcow2", 0x52), "the pivoted mirror lost writes");
    assert!(image_holds(&mirror2, "qcow2", 0x53), "the aborted mirror did not follow writes before the abort");
    assert!(image_holds(&overlay, "qcow2", 0x54));
    assert!(image_holds(&a, "qcow2", 0x11), "the base image was written");
}

#[test]
fn an_image_locked_by_another_qemu_is_a_clear_error() {
    let env = Env::new("locked");
    let a = running(&env, "l1");
    env.define_domain("l2", &[("vda", &a, "qcow2")]);
    let err = env.fails(&["start", "l2"], 1);
    assert!(err.contains("QEMU failed to start domain 'l2'") && err.contains("lock"), "{err}");
    let before = env.state_snapshot();
    let err = env.fails(&["snapshot-create-as", "l2", "s"], 1);
    assert!(err.contains("lock") && err.contains("nothing was changed"), "{err}");
    assert_eq!(env.state_snapshot(), before);
}

#[test]
fn ctrl_c_cancels_a_waiting_copy_and_leaves_the_disk_on_its_source() {
    let env = Env::new("cancel");
    let a = env.image("x-a.qcow2", "qcow2", "64M");
    let out = std::process::Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", "write -P 0x61 0 48M"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(out.status.success());
    require("qemu-system-x86_64", "qemu-system-x86");
    env.define_domain("x1", &[("vda", &a, "qcow2")]);
    env.ok(&["start", "x1"]);
    let copy = env.dir.join("slow-copy.qcow2");
    // 1 MiB/s over 48 MiB: long enough to interrupt.
    let child = env
        .command(&["blockcopy", "x1", "vda", copy.to_str().unwrap(), "--wait", "--pivot", "--bandwidth", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while job(&env, "x1") == serde_json::Value::Null {
        std::thread::yield_now();
    }
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("was cancelled; the job was stopped"), "{err}");
    assert_eq!(job(&env, "x1"), serde_json::Value::Null, "the job still runs");
    assert_eq!(disk_image(&env, "x1", "vda").0, a);
    env.ok(&["destroy", "x1"]);
}

#[test]
fn shallow_copies_keep_the_backing_chain_and_reused_destinations_are_used() {
    let env = Env::new("shallow");
    let a = running(&env, "s1");
    env.ok(&["snapshot-create-as", "s1", "top", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    write_live(&env, "s1", "vda", 0x61);
    let shallow = env.dir.join("shallow.qcow2");
    env.ok(&["blockcopy", "s1", "vda", shallow.to_str().unwrap(), "--shallow", "--wait", "--pivot"]);
    let d: serde_json::Value = serde_json::from_str(&env.ok(&["domblklist", "s1", "--details", "--json"])).unwrap();
    assert_eq!(d[0]["source"], shallow.display().to_string());
    assert_eq!(d[0]["backing"][0]["path"], a.display().to_string(), "a shallow copy keeps the base below it");
    // --reuse-external copies into an image made beforehand (here: on the same base).
    let reused = env.dir.join("reused.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&a)
        .arg(&reused)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = env.fails(&["blockcopy", "s1", "vda", reused.to_str().unwrap(), "--shallow", "--wait", "--pivot"], 1);
    assert!(err.contains("already exists; pass --reuse-external"), "{err}");
    env.ok(&["blockcopy", "s1", "vda", reused.to_str().unwrap(), "--shallow", "--reuse-external", "--wait", "--pivot"]);
    assert_eq!(disk_image(&env, "s1", "vda").0, reused);
    env.ok(&["destroy", "s1"]);
    assert!(image_holds(&reused, "qcow2", 0x61));
}
