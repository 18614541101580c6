//! Snapshots with real data: known patterns written into disks, a snapshot, more writes, a
//! revert or delete, and the bytes checked with `qemu-io -c 'read -P ...'`. Offline and on a
//! running QEMU, internal and external, a qcow2 + raw domain (which libvirt 9.0 refuses),
//! transient and independent disks, deletes in the middle of a chain.

use luavirt_tests::{Env, disk_holds, disk_image, image_holds, require, write_live, write_offline};
use std::path::PathBuf;

/// A domain `name` with a qcow2 disk vda and a raw disk vdb, holding 0x11 and 0x22.
fn mixed(env: &Env, name: &str) -> (PathBuf, PathBuf) {
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image(&format!("{name}-a.qcow2"), "qcow2", "16M");
    let b = env.image(&format!("{name}-b.raw"), "raw", "16M");
    write_offline(&a, "qcow2", 0x11);
    write_offline(&b, "raw", 0x22);
    env.define_domain(name, &[("vda", &a, "qcow2"), ("vdb", &b, "raw")]);
    (a, b)
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&env.ok(&a)).unwrap()
}

#[test]
fn offline_snapshot_of_qcow2_and_raw_reverts_and_deletes_with_data_intact() {
    let env = Env::new("snapoff");
    let (a, b) = mixed(&env, "m1");
    // The plan: qcow2 internal, raw external to b's default overlay name.
    let plan = json(&env, &["snapshot-create-as", "m1", "s1", "--print-plan"]);
    assert_eq!(plan["disks"][0]["snapshot"], "internal");
    assert_eq!(plan["disks"][1]["snapshot"], "external");
    let overlay = env.dir.join("m1-b.s1");
    assert_eq!(plan["disks"][1]["file"], overlay.display().to_string());
    assert!(!overlay.exists(), "--print-plan must not create anything");
    assert_eq!(env.ok(&["snapshot-create-as", "m1", "s1"]), "Domain snapshot s1 created\n");
    assert_eq!(disk_image(&env, "m1", "vdb").0, overlay);

    write_offline(&a, "qcow2", 0x33);
    write_offline(&overlay, "qcow2", 0x44);
    assert!(disk_holds(&env, "m1", "vda", 0x33) && disk_holds(&env, "m1", "vdb", 0x44));
    env.ok(&["snapshot-revert", "m1", "s1"]);
    assert!(disk_holds(&env, "m1", "vda", 0x11), "vda did not go back");
    assert!(disk_holds(&env, "m1", "vdb", 0x22), "vdb did not go back");
    assert_eq!(env.ok(&["domstate", "m1"]), "shut off\n");

    // After the revert, new writes, then delete: the overlay merges into the raw image.
    write_offline(&disk_image(&env, "m1", "vdb").0, "qcow2", 0x55);
    env.ok(&["snapshot-delete", "m1", "s1"]);
    assert_eq!(disk_image(&env, "m1", "vdb"), (b.clone(), "raw".to_string()));
    assert!(image_holds(&b, "raw", 0x55), "the overlay's data was lost in the merge");
    assert!(!overlay.exists());
    assert_eq!(env.ok(&["snapshot-list", "m1", "--name"]), "");
    let tags = std::process::Command::new("qemu-img").args(["snapshot", "-l"]).arg(&a).output().unwrap();
    assert!(!String::from_utf8_lossy(&tags.stdout).contains("s1"), "internal snapshot s1 still in vda");
}

#[test]
fn running_snapshot_with_memory_reverts_to_a_running_domain_with_its_data() {
    let env = Env::new("snaprun");
    mixed(&env, "m2");
    env.ok(&["start", "m2"]);
    write_live(&env, "m2", "vda", 0x61);
    write_live(&env, "m2", "vdb", 0x62);
    // Memory goes into the qcow2 disk, taken internally; the raw disk goes external.
    let plan = json(&env, &["snapshot-create-as", "m2", "live", "--print-plan"]);
    assert_eq!(plan["memory"], serde_json::json!({ "snapshot": "internal", "disk": "vda" }));
    env.ok(&["snapshot-create-as", "m2", "live"]);
    assert_eq!(env.ok(&["domstate", "m2"]), "running\n");
    write_live(&env, "m2", "vda", 0x63);
    write_live(&env, "m2", "vdb", 0x64);
    env.ok(&["snapshot-revert", "m2", "live"]);
    assert_eq!(env.ok(&["domstate", "m2"]), "running\n", "a snapshot with memory comes back running");
    env.ok(&["destroy", "m2"]);
    assert!(disk_holds(&env, "m2", "vda", 0x61));
    assert!(disk_holds(&env, "m2", "vdb", 0x62));
    let info = json(&env, &["snapshot-info", "m2", "live"]);
    assert_eq!((info["state"].as_str(), info["location"].as_str()), (Some("running"), Some("mixed")));
    // luavirt keeps the record (with the domain as it was), as libvirt does for QEMU.
    assert_eq!(info["metadata"], true);
    assert!(env.ok(&["snapshot-info", "m2", "live"]).ends_with("Metadata:       yes\n"));
}

#[test]
fn external_memory_file_and_disk_only_snapshots_of_a_running_domain() {
    let env = Env::new("snapext");
    mixed(&env, "m3");
    env.ok(&["start", "m3"]);
    write_live(&env, "m3", "vda", 0x71);
    let mem = env.dir.join("m3.mem");
    env.ok(&[
        "snapshot-create-as",
        "m3",
        "ext",
        "--memspec",
        &format!("file={}", mem.display()),
        "--diskspec",
        "vda,snapshot=external",
        "--diskspec",
        "vdb,snapshot=external",
    ]);
    assert!(mem.is_file(), "memory file missing");
    write_live(&env, "m3", "vda", 0x72);
    env.ok(&["snapshot-create-as", "m3", "disks", "--disk-only"]);
    write_live(&env, "m3", "vda", 0x73);
    // External revert with memory: running again on the snapshot's data.
    env.ok(&["snapshot-revert", "m3", "ext"]);
    assert_eq!(env.ok(&["domstate", "m3"]), "running\n");
    env.ok(&["destroy", "m3"]);
    assert!(disk_holds(&env, "m3", "vda", 0x71));
    // A disk-only snapshot of a running domain reverts to shut off, or paused if asked.
    env.ok(&["snapshot-revert", "m3", "disks"]);
    assert_eq!(env.ok(&["domstate", "m3"]), "shut off\n");
    assert!(disk_holds(&env, "m3", "vda", 0x72));
    env.ok(&["snapshot-revert", "m3", "disks", "--paused"]);
    assert_eq!(env.ok(&["domstate", "m3"]), "paused\n");
    env.ok(&["destroy", "m3"]);
    assert_eq!(env.ok(&["snapshot-list", "m3", "--tree"]), "ext\n  |\n  +- disks\n\n");
}

#[test]
fn a_transient_disk_is_left_out_and_comes_back_empty_of_changes() {
    let env = Env::new("transient");
    let (_, _) = mixed(&env, "m4");
    let t = env.image("m4-t.qcow2", "qcow2", "16M");
    write_offline(&t, "qcow2", 0x0a);
    let xml = env.ok(&["dumpxml", "m4"]).replace(
        "  </devices>",
        &format!("    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='{}'/>\n      <target dev='vdc' bus='virtio'/>\n    </disk>\n  </devices>", t.display()),
    );
    let f = env.write("m4.xml", &xml);
    env.ok(&["define", f.to_str().unwrap()]);
    env.ok(&["disk-mode", "m4", "vdc", "independent-nonpersistent"]);
    // The overlay is made, so nothing may claim that changes persist.
    let start = env.run(&["start", "m4"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    assert_eq!(start.stderr, "", "start warned about a transient disk that runs on its overlay");
    write_live(&env, "m4", "vdc", 0x0b);
    let plan = json(&env, &["snapshot-create-as", "m4", "s", "--print-plan"]);
    assert_eq!(plan["disks"][2], serde_json::json!({ "target": "vdc", "snapshot": "no", "reason": "transient" }));
    env.ok(&["snapshot-create-as", "m4", "s"]);
    env.ok(&["snapshot-revert", "m4", "s"]);
    env.ok(&["destroy", "m4"]);
    assert!(image_holds(&t, "qcow2", 0x0a), "the transient disk's base image was written");
    assert!(!env.state.join("qemu/run/m4").exists(), "transient overlays were left behind");
    let err = env.fails(&["snapshot-create-as", "m4", "x", "--diskspec", "vdc"], 1);
    assert!(err.contains("disk vdc is transient"), "{err}");
}

#[test]
fn an_independent_disk_keeps_its_current_content_across_a_revert() {
    let env = Env::new("indep");
    let (a, b) = mixed(&env, "m5");
    env.ok(&["disk-mode", "m5", "vdb", "independent-persistent"]);
    env.ok(&["snapshot-create-as", "m5", "s"]);
    write_offline(&a, "qcow2", 0x81);
    write_offline(&b, "raw", 0x82);
    env.ok(&["snapshot-revert", "m5", "s"]);
    assert!(disk_holds(&env, "m5", "vda", 0x11));
    assert!(disk_holds(&env, "m5", "vdb", 0x82), "the independent disk lost its current content");
}

#[test]
fn deleting_a_snapshot_in_the_middle_of_a_chain_keeps_the_others_data() {
    let env = Env::new("chain");
    let (_, _) = mixed(&env, "m6");
    let ext = |n: &str| {
        vec![
            "snapshot-create-as".to_string(),
            "m6".into(),
            n.into(),
            "--diskspec".into(),
            "vda,snapshot=external".into(),
            "--diskspec".into(),
            "vdb,snapshot=external".into(),
        ]
    };
    let run = |args: Vec<String>| env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run(ext("s1"));
    for (snap, pattern) in [("s2", 0x12u8), ("s3", 0x13)] {
        for disk in ["vda", "vdb"] {
            write_offline(&disk_image(&env, "m6", disk).0, "qcow2", pattern);
        }
        run(ext(snap));
    }
    for disk in ["vda", "vdb"] {
        write_offline(&disk_image(&env, "m6", disk).0, "qcow2", 0x14);
    }
    assert_eq!(env.ok(&["snapshot-list", "m6", "--tree"]), "s1\n  |\n  +- s2\n      |\n      +- s3\n\n");
    env.ok(&["snapshot-delete", "m6", "s2"]);
    assert_eq!(json(&env, &["snapshot-info", "m6", "s3"])["parent"], "s1");
    // The present state, and every remaining snapshot, still hold their own data.
    assert!(disk_holds(&env, "m6", "vda", 0x14) && disk_holds(&env, "m6", "vdb", 0x14));
    env.ok(&["snapshot-revert", "m6", "s3"]);
    assert!(disk_holds(&env, "m6", "vda", 0x13) && disk_holds(&env, "m6", "vdb", 0x13), "s3 lost its data");
    env.ok(&["snapshot-revert", "m6", "s1"]);
    assert!(disk_holds(&env, "m6", "vda", 0x11) && disk_holds(&env, "m6", "vdb", 0x22), "s1 lost its data");
    // After the revert to s1 its point-in-time images carry two branches; deleting s1 keeps both.
    write_offline(&disk_image(&env, "m6", "vda").0, "qcow2", 0x15);
    env.ok(&["snapshot-delete", "m6", "s1"]);
    assert!(disk_holds(&env, "m6", "vda", 0x15));
    env.ok(&["snapshot-revert", "m6", "s3"]);
    assert!(disk_holds(&env, "m6", "vda", 0x13) && disk_holds(&env, "m6", "vdb", 0x13));
    // --children deletes what remains below and merges it all down.
    assert_eq!(json(&env, &["snapshot-delete", "m6", "s3", "--children"])["deleted"], serde_json::json!(["s3"]));
    assert!(disk_holds(&env, "m6", "vda", 0x13));
}

#[test]
fn bad_snapshot_requests_are_clear_errors_and_change_nothing() {
    let env = Env::new("snapbad");
    let (_, b) = mixed(&env, "m7");
    env.ok(&["snapshot-create-as", "m7", "s1"]);
    let before = env.state_snapshot();
    let err = env.fails(&["snapshot-revert", "m7", "s2"], 1);
    assert_eq!(err, "error: Domain 'm7' has no snapshot 's2'. Did you mean 's1'?\n");
    let err =
        env.fails(&["snapshot-create-as", "m7", "x", "--diskspec", "vda", "--diskspec", "vda,snapshot=internal"], 1);
    assert!(err.contains("disk vda is named twice"), "{err}");
    let err = env.fails(&["snapshot-create-as", "m7", "s1"], 1);
    assert!(err.contains("already has a snapshot named 's1'"), "{err}");
    let taken = env.write("taken.qcow2", "x");
    let err = env.fails(&["snapshot-create-as", "m7", "s3", "--diskspec", &format!("vdb,file={}", taken.display())], 1);
    assert!(err.contains("already exists; pass --reuse-external"), "{err}");
    let err = env.fails(&["snapshot-delete", "m7", "s1", "--mirror-pivot", "--mirror-abort"], 1);
    assert!(err.contains("choose one"), "{err}");
    assert_eq!(env.state_snapshot(), before);
    // A snapshot whose point-in-time image was removed cannot be restored; nothing changes.
    let moved = env.dir.join("moved.raw");
    std::fs::rename(&b, &moved).unwrap();
    let before = env.state_snapshot();
    let err = env.fails(&["snapshot-revert", "m7", "s1"], 1);
    assert!(err.contains(&format!("image {} of disk vdb was removed; nothing was changed", b.display())), "{err}");
    assert_eq!(env.state_snapshot(), before);
    std::fs::rename(&moved, &b).unwrap();
    let err = env.fails(&["undefine", "m7"], 1);
    assert!(err.contains("has 1 snapshot(s); delete them first"), "{err}");
}

#[test]
fn an_overlay_holding_internal_snapshots_is_not_merged_away() {
    let env = Env::new("keepint");
    let (_, b) = mixed(&env, "m8");
    env.ok(&["snapshot-create-as", "m8", "s1", "--diskspec", "vdb"]);
    let overlay = disk_image(&env, "m8", "vdb").0;
    // A later snapshot is explicitly internal, inside the overlay.
    let plan = json(&env, &["snapshot-create-as", "m8", "s2", "--print-plan"]);
    assert_eq!(plan["disks"][1]["snapshot"], "external", "an overlay goes external by default");
    write_offline(&overlay, "qcow2", 0x91);
    env.ok(&["snapshot-create-as", "m8", "s2", "--diskspec", "vdb,snapshot=internal"]);
    write_offline(&overlay, "qcow2", 0x92);
    env.ok(&["snapshot-delete", "m8", "s1"]);
    assert!(overlay.exists(), "the overlay holding s2 was merged away");
    env.ok(&["snapshot-revert", "m8", "s2"]);
    assert!(disk_holds(&env, "m8", "vdb", 0x91), "s2 lost its data");
    assert!(image_holds(&b, "raw", 0x22), "the raw base changed");
}

#[test]
fn deleting_an_external_snapshot_of_a_running_domain_commits_it_live() {
    let env = Env::new("livedel");
    let (a, _) = mixed(&env, "m9");
    env.ok(&["start", "m9"]);
    env.ok(&["snapshot-create-as", "m9", "s1", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    let overlay = disk_image(&env, "m9", "vda").0;
    write_live(&env, "m9", "vda", 0xa1);
    env.ok(&["snapshot-delete", "m9", "s1"]);
    assert_eq!(disk_image(&env, "m9", "vda").0, a, "the domain should be back on its base image");
    assert!(!overlay.exists());
    write_live(&env, "m9", "vda", 0xa2);
    env.ok(&["destroy", "m9"]);
    assert!(image_holds(&a, "qcow2", 0xa2));
}

#[test]
fn live_memory_saving_and_halt() {
    let env = Env::new("livehalt");
    mixed(&env, "m10");
    env.ok(&["start", "m10"]);
    write_live(&env, "m10", "vda", 0xb1);
    let mem = env.dir.join("m10.mem");
    env.ok(&[
        "snapshot-create-as",
        "m10",
        "s",
        "--memspec",
        mem.to_str().unwrap(),
        "--diskspec",
        "vda,snapshot=external",
        "--live",
        "--halt",
    ]);
    assert_eq!(env.ok(&["domstate", "m10"]), "shut off\n", "--halt leaves the domain off");
    env.ok(&["snapshot-revert", "m10", "s"]);
    assert_eq!(env.ok(&["domstate", "m10"]), "running\n");
    env.ok(&["destroy", "m10"]);
    assert!(disk_holds(&env, "m10", "vda", 0xb1));
}

#[test]
fn a_failure_half_way_rolls_back_what_was_made() {
    let env = Env::new("rollback");
    let (a, _) = mixed(&env, "m11");
    let before = env.state_snapshot();
    // vda goes internal first; vdb's overlay cannot be made in a folder that does not exist.
    let err = env.fails(
        &["snapshot-create-as", "m11", "half", "--diskspec", "vda", "--diskspec", "vdb,file=/nonexistent/dir/b.half"],
        1,
    );
    assert!(err.contains("nothing was changed"), "{err}");
    let tags = std::process::Command::new("qemu-img").args(["snapshot", "-l"]).arg(&a).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&tags.stdout).contains("half"),
        "vda kept the internal snapshot of a failed snapshot"
    );
    assert_eq!(env.state_snapshot(), before);
}

#[test]
fn a_transient_overlay_left_by_a_qemu_that_ended_is_cleared_by_the_next_change() {
    let env = Env::new("transgone");
    mixed(&env, "m12");
    env.ok(&["disk-mode", "m12", "vdb", "independent-nonpersistent"]);
    env.ok(&["start", "m12"]);
    let overlay = env.state.join("qemu/run/m12/transient-vdb.qcow2");
    assert!(overlay.exists());
    let pid: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.state.join("qemu/run/m12/state.json")).unwrap()).unwrap();
    let pid = pid["pid"].as_i64().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-9", &pid]).status().unwrap().success());
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
    {
        std::thread::yield_now();
    }
    let before = env.state_snapshot();
    assert_eq!(env.ok(&["domstate", "m12"]), "shut off\n");
    assert_eq!(env.state_snapshot(), before, "a read changed the state folder");
    // The next change clears what the dead QEMU left.
    env.ok(&["diskset", "add", "m12", "vda"]);
    assert!(!overlay.exists(), "the transient overlay outlived its QEMU");
}

fn qcow2_tags(image: &std::path::Path) -> String {
    let out = std::process::Command::new("qemu-img").args(["snapshot", "-l", "-U"]).arg(image).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn snapshot_names_are_limited_in_bytes_so_qcow2_never_cuts_them() {
    require("qemu-img", "qemu-utils");
    let env = Env::new("snapbytes");
    let a = env.image("long-a.qcow2", "qcow2", "16M");
    write_offline(&a, "qcow2", 0x11);
    env.define_domain("m9", &[("vda", &a, "qcow2")]);
    let before = env.state_snapshot();
    // 64 four-byte characters are 256 bytes: QEMU kept 255 of them, then revert found no
    // snapshot of that name and delete left the tag behind.
    let too_long = "\u{1D11E}".repeat(64);
    let err = env.fails(&["snapshot-create-as", "m9", &too_long], 1);
    assert!(err.contains("it is 256 bytes in UTF-8, and a snapshot name may have at most 255"), "{err}");
    assert_eq!(env.state_snapshot(), before);
    assert!(!qcow2_tags(&a).contains('\u{1D11E}'), "a tag was made:\n{}", qcow2_tags(&a));

    // 63 of them (252 bytes) go through create, revert and delete whole.
    let name = "\u{1D11E}".repeat(63);
    env.ok(&["snapshot-create-as", "m9", &name]);
    assert_eq!(env.ok(&["snapshot-list", "m9", "--name"]), format!("{name}\n"));
    assert!(qcow2_tags(&a).contains(&name), "{}", qcow2_tags(&a));
    write_offline(&a, "qcow2", 0x33);
    env.ok(&["snapshot-revert", "m9", &name]);
    assert!(image_holds(&a, "qcow2", 0x11), "the revert did not bring the data back");
    env.ok(&["snapshot-delete", "m9", &name]);
    assert_eq!(env.ok(&["snapshot-list", "m9", "--name"]), "");
    assert!(!qcow2_tags(&a).contains('\u{1D11E}'), "a tag was left behind:\n{}", qcow2_tags(&a));
}
