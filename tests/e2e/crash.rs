//! Crash safety: each operation that changes a domain is killed with SIGKILL at each of its
//! failpoints (`LUAVIRT_FAILPOINT`), then [`verify`] checks that the next call settles it and
//! nothing is lost: the definition, the snapshots and QEMU agree, every image checks, the data
//! written before reads back, a guest write made after the kill survives a restart, no file
//! is left that nothing names, no QEMU runs unseen; then the operation runs again.
//!
//! `LUAVIRT_CRASH_TRIALS=N` (opt-in) also kills each operation N times at a random moment
//! (between 0 and the time it takes) and runs the same checks.

use luavirt_tests::crash::{Holds, killed_after, killed_at, qemu_pid, verify};
use luavirt_tests::{Env, disk_image, require, write_live, write_offline};
use std::path::PathBuf;

/// A domain `name`: vda qcow2 holding 0x11, vdb raw holding 0x22 (first MiB of each).
fn domain(env: &Env, name: &str) -> Vec<PathBuf> {
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image(&format!("{name}-a.qcow2"), "qcow2", "16M");
    let b = env.image(&format!("{name}-b.raw"), "raw", "16M");
    write_offline(&a, "qcow2", 0x11);
    write_offline(&b, "raw", 0x22);
    env.define_domain(name, &[("vda", &a, "qcow2"), ("vdb", &b, "raw")]);
    vec![a, b]
}

const BEFORE: [Holds; 2] =
    [Holds { disk: "vda", offset_mib: 0, pattern: &[0x11] }, Holds { disk: "vdb", offset_mib: 0, pattern: &[0x22] }];

/// The state the domain must be in once settled.
fn state_is(env: &Env, dom: &str, allowed: &[&str]) {
    let s = env.ok(&["domstate", dom]);
    assert!(allowed.contains(&s.trim()), "domain {dom} is {s:?} after recover; expected one of {allowed:?}");
}

/// Kills `op` at each failpoint on a fresh host set up by `setup`; after each, `check` runs
/// on the host (after `recover`), then `verify`, then `again` repeats the operation.
fn at_each(
    fps: &[&str],
    setup: impl Fn(&Env) -> Vec<PathBuf>,
    op: impl Fn(&Env) -> Vec<String>,
    after: impl Fn(&Env, &str),
    holds: &[Holds],
    again: impl Fn(&Env),
) {
    for fp in fps {
        let env = Env::new(&format!("crash-{}", fp.replace(':', "-")));
        let allowed = setup(&env);
        let args = op(&env);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        killed_at(&env, fp, &args);
        // A pull changes no definition, and an offline commit keeps the top's data until the
        // definition moves, so they record nothing; every other change shows.
        let reason = env.ok(&["domstate", "d", "--reason"]);
        assert!(
            reason.contains("interrupted") || ["block-pull:started", "block-commit:committed"].contains(fp),
            "no interrupted change shown after a kill at {fp}: {reason}"
        );
        after(&env, fp);
        verify(&env, "d", holds, &allowed);
        again(&env);
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn running_domain(env: &Env) -> Vec<PathBuf> {
    let files = domain(env, "d");
    env.ok(&["start", "d"]);
    files
}

#[test]
fn start_killed_at_each_step_leaves_no_invisible_qemu() {
    at_each(
        &["start:spawned", "start:recorded", "start:monitor", "start:running"],
        |env| domain(env, "d"),
        |_| strings(&["start", "d"]),
        |env, fp| {
            let want: &[&str] = if fp == "start:running" { &["running"] } else { &["shut off"] };
            env.ok(&["recover", "d"]);
            state_is(env, "d", want);
        },
        &BEFORE,
        |env| {
            env.ok(&["start", "d"]);
            env.ok(&["destroy", "d"]);
        },
    );
}

const CREATE: &[&str] = &[
    "snapshot-create:begun",
    "snapshot-create:memory",
    "snapshot-create:transaction",
    "snapshot-create:memory-file",
    "snapshot-create:mirrors",
    "snapshot-create:definition",
    "snapshot-create:metadata",
];

/// After a killed snapshot of a running domain: it runs again, and the snapshot is either
/// whole (it reverts to the data taken) or absent.
fn snapshot_whole_or_absent(env: &Env, _fp: &str) {
    env.ok(&["recover", "d"]);
    state_is(env, "d", &["running"]);
}

/// A snapshot `s1`, if it was kept, reverts to the data it took.
fn reverts_if_kept(env: &Env) {
    if env.ok(&["snapshot-list", "d", "--name"]).lines().any(|l| l == "s1") {
        env.ok(&["snapshot-revert", "d", "s1"]);
        let _ = env.run(&["destroy", "d"]);
        for h in BEFORE {
            let (image, format) = disk_image(env, "d", h.disk);
            assert!(luavirt_tests::image_holds(&image, &format, h.pattern[0]), "snapshot s1 lost disk {}", h.disk);
        }
    }
}

#[test]
fn live_external_disk_only_snapshot_killed_at_each_step() {
    at_each(
        CREATE,
        running_domain,
        |_| {
            strings(&[
                "snapshot-create-as",
                "d",
                "s1",
                "--disk-only",
                "--diskspec",
                "vda,snapshot=external",
                "--diskspec",
                "vdb,snapshot=external",
            ])
        },
        snapshot_whole_or_absent,
        &BEFORE,
        |env| {
            reverts_if_kept(env);
            env.ok(&["snapshot-create-as", "d", "s2", "--disk-only"]);
        },
    );
}

#[test]
fn live_snapshot_with_internal_memory_killed_at_each_step() {
    at_each(
        CREATE,
        running_domain,
        |_| strings(&["snapshot-create-as", "d", "s1"]),
        snapshot_whole_or_absent,
        &BEFORE,
        |env| {
            env.ok(&["start", "d"]);
            env.ok(&["snapshot-create-as", "d", "s2"]);
            env.ok(&["destroy", "d"]);
            reverts_if_kept(env);
        },
    );
}

#[test]
fn live_snapshot_with_a_memory_file_killed_at_each_step() {
    at_each(
        CREATE,
        running_domain,
        |env| {
            strings(&[
                "snapshot-create-as",
                "d",
                "s1",
                "--memspec",
                &format!("file={}", env.dir.join("s1.mem").display()),
                "--diskspec",
                "vda,snapshot=external",
                "--diskspec",
                "vdb,snapshot=external",
            ])
        },
        snapshot_whole_or_absent,
        &BEFORE,
        |env| {
            env.ok(&["start", "d"]);
            let mem = env.dir.join("s2.mem");
            env.ok(&["snapshot-create-as", "d", "s2", "--memspec", mem.to_str().unwrap()]);
            env.ok(&["destroy", "d"]);
            reverts_if_kept(env);
        },
    );
}

#[test]
fn offline_snapshot_killed_at_each_step() {
    at_each(
        &["snapshot-create:begun", "snapshot-create:images", "snapshot-create:definition", "snapshot-create:metadata"],
        |env| domain(env, "d"),
        |_| strings(&["snapshot-create-as", "d", "s1"]),
        |env, _| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["shut off"]);
        },
        &BEFORE,
        |env| {
            reverts_if_kept(env);
            env.ok(&["snapshot-create-as", "d", "s2"]);
        },
    );
}

const REVERT: &[&str] = &[
    "snapshot-revert:begun",
    "snapshot-revert:stopped",
    "snapshot-revert:images",
    "snapshot-revert:definition",
    "snapshot-revert:switched",
    "snapshot-revert:cleaned",
    "start:monitor",
    "snapshot-revert:started",
];

#[test]
fn revert_to_external_disks_and_memory_killed_at_each_step() {
    at_each(
        REVERT,
        |env| {
            let files = running_domain(env);
            let mem = env.dir.join("s1.mem");
            env.ok(&[
                "snapshot-create-as",
                "d",
                "s1",
                "--memspec",
                mem.to_str().unwrap(),
                "--diskspec",
                "vda,snapshot=external",
                "--diskspec",
                "vdb,snapshot=external",
            ]);
            write_live(env, "d", "vda", 0x55);
            files
        },
        |_| strings(&["snapshot-revert", "d", "s1", "--running"]),
        |env, fp| {
            env.ok(&["recover", "d"]);
            // Killed before it stopped the domain: nothing changed. After: the disks are
            // reverted; the domain runs if it got that far, else it is shut off.
            let want: &[&str] = match fp {
                "snapshot-revert:begun" | "snapshot-revert:started" => &["running"],
                _ => &["shut off"],
            };
            state_is(env, "d", want);
        },
        &[Holds { disk: "vda", offset_mib: 0, pattern: &[0x11, 0x55] }, BEFORE[1]],
        |env| {
            let _ = env.run(&["destroy", "d"]);
            env.ok(&["snapshot-revert", "d", "s1", "--running"]);
            env.ok(&["destroy", "d"]);
            assert!(luavirt_tests::disk_holds(env, "d", "vda", 0x11));
        },
    );
}

#[test]
fn offline_revert_to_an_internal_and_external_snapshot_killed_at_each_step() {
    at_each(
        &REVERT[..6],
        |env| {
            let files = domain(env, "d");
            env.ok(&["snapshot-create-as", "d", "s1"]);
            write_offline(&files[0], "qcow2", 0x55);
            write_offline(&disk_image(env, "d", "vdb").0, "qcow2", 0x66);
            files
        },
        |_| strings(&["snapshot-revert", "d", "s1"]),
        |env, _| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["shut off"]);
        },
        &BEFORE,
        |env| env.ok(&["snapshot-revert", "d", "s1"]).clear(),
    );
}

const DELETE: &[&str] = &[
    "snapshot-delete:begun",
    "snapshot-delete:tags",
    "snapshot-delete:merged",
    "snapshot-delete:definition",
    "snapshot-delete:switched",
    "snapshot-delete:removed",
];

#[test]
fn offline_delete_merging_an_overlay_killed_at_each_step() {
    at_each(
        DELETE,
        |env| {
            let files = domain(env, "d");
            // vda internal, vdb external: the delete removes a tag and merges an overlay.
            env.ok(&["snapshot-create-as", "d", "s1"]);
            write_offline(&files[0], "qcow2", 0x44);
            write_offline(&disk_image(env, "d", "vdb").0, "qcow2", 0x45);
            files
        },
        |_| strings(&["snapshot-delete", "d", "s1"]),
        |env, _| {
            env.ok(&["recover", "d"]);
            assert_eq!(env.ok(&["snapshot-list", "d", "--name"]), "", "the delete was not finished");
        },
        &[
            Holds { disk: "vda", offset_mib: 0, pattern: &[0x44] },
            Holds { disk: "vdb", offset_mib: 0, pattern: &[0x45] },
        ],
        |env| {
            env.ok(&["snapshot-create-as", "d", "s2"]);
            env.ok(&["snapshot-delete", "d", "s2"]);
        },
    );
}

#[test]
fn live_delete_committing_the_active_overlay_killed_at_each_step() {
    let mut fps = DELETE.to_vec();
    fps.insert(2, "snapshot-delete:commit-ready");
    at_each(
        &fps,
        |env| {
            let files = running_domain(env);
            env.ok(&["snapshot-create-as", "d", "s1", "--disk-only", "--diskspec", "vda,snapshot=external"]);
            write_live(env, "d", "vda", 0x44);
            files
        },
        |_| strings(&["snapshot-delete", "d", "s1"]),
        |env, _| {
            env.ok(&["recover", "d"]);
            assert_eq!(env.ok(&["snapshot-list", "d", "--name"]), "", "the delete was not finished");
            state_is(env, "d", &["running"]);
        },
        &[Holds { disk: "vda", offset_mib: 0, pattern: &[0x44] }, BEFORE[1]],
        |env| {
            env.ok(&["start", "d"]);
            env.ok(&["snapshot-create-as", "d", "s2", "--disk-only", "--diskspec", "vda,snapshot=external"]);
            env.ok(&["snapshot-delete", "d", "s2"]);
            env.ok(&["destroy", "d"]);
        },
    );
}

#[test]
fn blockcopy_with_pivot_killed_at_each_step() {
    at_each(
        &["block-copy:started", "block-copy:ready", "block-copy:pivoted", "pivot:definition"],
        running_domain,
        |env| strings(&["blockcopy", "d", "vda", env.dir.join("copy.qcow2").to_str().unwrap(), "--wait", "--pivot"]),
        |env, fp| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["running"]);
            let on_copy = disk_image(env, "d", "vda").0 == env.dir.join("copy.qcow2");
            let pivoted = matches!(fp, "block-copy:pivoted" | "pivot:definition");
            assert_eq!(on_copy, pivoted, "after a kill at {fp} the disk is on the copy: {on_copy}");
            if !pivoted {
                assert!(!env.dir.join("copy.qcow2").exists(), "the cancelled copy was left behind");
            }
        },
        &BEFORE,
        |env| {
            env.ok(&["start", "d"]);
            let dest = env.dir.join("copy-2.qcow2");
            env.ok(&["blockcopy", "d", "vda", dest.to_str().unwrap(), "--wait", "--pivot"]);
            env.ok(&["destroy", "d"]);
        },
    );
}

/// A running domain whose vda is an overlay (of snapshot s1) holding 0x44.
fn on_overlay(env: &Env) -> Vec<PathBuf> {
    let mut files = running_domain(env);
    env.ok(&["snapshot-create-as", "d", "s1", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    write_live(env, "d", "vda", 0x44);
    // Committing or pulling leaves the overlay or the base unnamed by design (as libvirt).
    files.push(disk_image(env, "d", "vda").0);
    files
}

#[test]
fn active_blockcommit_with_pivot_killed_at_each_step() {
    at_each(
        &["block-commit:started", "block-commit:ready", "block-commit:pivoted", "pivot:definition"],
        on_overlay,
        |_| strings(&["blockcommit", "d", "vda", "--wait", "--pivot"]),
        |env, _| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["running"]);
        },
        &[Holds { disk: "vda", offset_mib: 0, pattern: &[0x44] }, BEFORE[1]],
        |env| {
            env.ok(&["start", "d"]);
            env.ok(&["snapshot-create-as", "d", "s2", "--disk-only", "--diskspec", "vda,snapshot=external"]);
            env.ok(&["blockcommit", "d", "vda", "--wait", "--pivot"]);
            env.ok(&["destroy", "d"]);
        },
    );
}

#[test]
fn blockjob_pivot_killed_at_each_step() {
    at_each(
        &["pivot:begun", "pivot:switched", "pivot:definition"],
        |env| {
            let mut files = running_domain(env);
            let copy = env.dir.join("copy.qcow2");
            env.ok(&["blockcopy", "d", "vda", copy.to_str().unwrap()]);
            while !env.ok(&["blockjob", "d", "vda", "--json"]).contains("\"ready\": true") {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            // The pivot moves the disk to the copy; a kill before it leaves both named or not.
            files.push(copy);
            files
        },
        |_| strings(&["blockjob", "d", "vda", "--pivot"]),
        |env, _| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["running"]);
        },
        &BEFORE,
        |env| {
            env.ok(&["start", "d"]);
            let dest = env.dir.join("copy-2.qcow2");
            env.ok(&["blockcopy", "d", "vda", dest.to_str().unwrap(), "--wait", "--pivot"]);
            env.ok(&["destroy", "d"]);
        },
    );
}

#[test]
fn offline_blockcommit_with_pivot_killed_after_the_commit() {
    at_each(
        &["block-commit:committed"],
        |env| {
            let mut files = domain(env, "d");
            env.ok(&["snapshot-create-as", "d", "s1", "--diskspec", "vda,snapshot=external"]);
            let overlay = disk_image(env, "d", "vda").0;
            write_offline(&overlay, "qcow2", 0x44);
            files.push(overlay);
            files
        },
        |_| strings(&["blockcommit", "d", "vda", "--wait", "--pivot"]),
        |env, _| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["shut off"]);
        },
        &[Holds { disk: "vda", offset_mib: 0, pattern: &[0x44] }, BEFORE[1]],
        |env| {
            env.ok(&["blockcommit", "d", "vda", "--wait", "--pivot"]);
        },
    );
}

#[test]
fn blockpull_killed_while_the_job_runs() {
    at_each(
        &["block-pull:started"],
        on_overlay,
        |_| strings(&["blockpull", "d", "vda", "--wait"]),
        |env, _| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["running"]);
        },
        &[Holds { disk: "vda", offset_mib: 0, pattern: &[0x44] }, BEFORE[1]],
        |env| {
            env.ok(&["start", "d"]);
            env.ok(&["blockpull", "d", "vda", "--wait"]);
            env.ok(&["destroy", "d"]);
        },
    );
}

#[test]
fn ending_a_mirrored_snapshot_killed_at_each_step() {
    for how in ["--mirror-pivot", "--mirror-abort"] {
        at_each(
            &["mirror-end:begun", "mirror-end:job-ended", "mirror-end:definition"],
            |env| {
                let mut files = running_domain(env);
                let mirror = env.dir.join("mirror.qcow2");
                env.ok(&[
                    "snapshot-create-as",
                    "d",
                    "m",
                    "--disk-only",
                    "--diskspec",
                    &format!("vda,mirror={}", mirror.display()),
                ]);
                write_live(env, "d", "vda", 0x53);
                // The mirror exists to move the disk: one of the two stays unnamed.
                files.extend([mirror, disk_image(env, "d", "vda").0]);
                files
            },
            |_| strings(&["snapshot-delete", "d", "m", how]),
            |env, _| {
                env.ok(&["recover", "d"]);
                state_is(env, "d", &["running"]);
                assert_eq!(env.ok(&["snapshot-list", "d", "--name"]), "", "the mirrored snapshot is still listed");
            },
            &[Holds { disk: "vda", offset_mib: 0, pattern: &[0x53] }, BEFORE[1]],
            |env| {
                env.ok(&["start", "d"]);
                env.ok(&["snapshot-create-as", "d", "s2", "--disk-only"]);
                env.ok(&["destroy", "d"]);
            },
        );
    }
}

#[test]
fn definition_changes_killed_before_and_after_the_write_are_old_or_new() {
    for fp in ["definition:before-write", "define:written"] {
        for (what, args) in [
            ("diskset", vec!["diskset", "add", "d", "vda"]),
            ("disk-mode", vec!["disk-mode", "d", "vdb", "independent-persistent"]),
        ] {
            let env = Env::new(&format!("crash-def-{what}"));
            let files = domain(&env, "d");
            let before = env.ok(&["dumpxml", "d"]);
            killed_at(&env, fp, &args);
            let after = env.ok(&["dumpxml", "d"]);
            let changed = after != before;
            assert_eq!(changed, fp == "define:written", "{what} killed at {fp}: changed = {changed}");
            env.ok(&args);
            verify(&env, "d", &BEFORE, &files);
        }
    }
}

/// Whether the definition and QEMU both have disk `target`, or neither.
fn disk_live_and_defined_agree(env: &Env, target: &str) -> bool {
    let xml = env.ok(&["dumpxml", "d", "--inactive"]);
    let defined = luavirt_plugin_api::domain::DomainXml::parse(&xml, None).unwrap().disk(target).is_some();
    let blocks = luavirt_tests::qmp(env, "d", "query-block", serde_json::json!({}));
    let live = blocks.as_array().unwrap().iter().any(|b| {
        b["qdev"].as_str().is_some_and(|q| q.ends_with(&format!("/{target}")) || q.contains(&format!("/{target}/")))
    });
    assert_eq!(defined, live, "disk {target}: in the definition {defined}, in QEMU {live}");
    defined
}

#[test]
fn attach_disk_live_killed_at_each_step_is_all_or_nothing() {
    let image = |env: &Env| env.dir.join("new.qcow2");
    at_each(
        &["attach-disk:nodes", "attach-disk:device", "attach-disk:defined"],
        |env| {
            let mut files = running_domain(env);
            files.push(env.image("new.qcow2", "qcow2", "16M"));
            files
        },
        |env| strings(&["attach-disk", "d", image(env).to_str().unwrap(), "vdc"]),
        |env, fp| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["running"]);
            let attached = disk_live_and_defined_agree(env, "vdc");
            assert_eq!(attached, fp != "attach-disk:nodes", "killed at {fp}");
            let nodes = luavirt_tests::qmp(env, "d", "query-named-block-nodes", serde_json::json!({ "flat": true }));
            assert_eq!(nodes.to_string().contains("lv-vdc"), attached, "block nodes of vdc: {nodes}");
        },
        &BEFORE,
        |env| {
            // Attached or not, the next attach works (a fresh image when vdc took the first).
            let (file, target) = if env.ok(&["domblklist", "d"]).contains("vdc") {
                (env.image("again.qcow2", "qcow2", "16M"), "vdd")
            } else {
                (image(env), "vdc")
            };
            env.ok(&["start", "d"]);
            env.ok(&["attach-disk", "d", file.to_str().unwrap(), target]);
            env.ok(&["destroy", "d"]);
        },
    );
}

#[test]
fn detach_disk_live_killed_at_each_step_is_all_or_nothing() {
    at_each(
        &["detach-disk:requested", "detach-disk:released", "detach-disk:defined"],
        |env| {
            let mut files = domain(env, "d");
            let scsi = env.image("s.raw", "raw", "8M");
            env.ok(&["attach-disk", "d", scsi.to_str().unwrap(), "sda"]);
            env.ok(&["start", "d"]);
            files.push(scsi);
            files
        },
        |_| strings(&["detach-disk", "d", "sda"]),
        |env, _fp| {
            env.ok(&["recover", "d"]);
            state_is(env, "d", &["running"]);
            // SCSI lets go at once: killed after the request, the disk is gone from both.
            assert!(!disk_live_and_defined_agree(env, "sda"));
        },
        &BEFORE,
        |env| {
            env.ok(&["attach-disk", "d", env.dir.join("s.raw").to_str().unwrap(), "sda"]);
            env.ok(&["start", "d"]);
            env.ok(&["detach-disk", "d", "sda"]);
            env.ok(&["destroy", "d"]);
        },
    );
}

/// An operation's arguments, and the setup it runs on, for the random-kill loop.
type Args = fn(&Env) -> Vec<String>;
type Setup = fn(&Env) -> Vec<PathBuf>;

#[test]
fn a_running_domain_stays_usable_when_luavirt_is_killed_at_random_moments() {
    let Some(trials) = std::env::var("LUAVIRT_CRASH_TRIALS").ok().and_then(|n| n.parse::<u32>().ok()) else {
        eprintln!("skipped: set LUAVIRT_CRASH_TRIALS=N to kill each operation N times at random moments");
        return;
    };
    let ops: Vec<(&str, Args, Setup)> = vec![
        ("start", |_| strings(&["start", "d"]), |env| domain(env, "d")),
        (
            "external snapshot",
            |_| strings(&["snapshot-create-as", "d", "s1", "--disk-only", "--diskspec", "vda,snapshot=external"]),
            running_domain,
        ),
        ("memory snapshot", |_| strings(&["snapshot-create-as", "d", "s1"]), running_domain),
        (
            "blockcopy --pivot",
            |env| {
                strings(&["blockcopy", "d", "vda", env.dir.join("copy.qcow2").to_str().unwrap(), "--wait", "--pivot"])
            },
            running_domain,
        ),
        ("live delete", |_| strings(&["snapshot-delete", "d", "s1"]), on_overlay),
        (
            "offline delete",
            |_| strings(&["snapshot-delete", "d", "s1"]),
            |env| {
                let files = domain(env, "d");
                env.ok(&["snapshot-create-as", "d", "s1"]);
                write_offline(&disk_image(env, "d", "vdb").0, "qcow2", 0x22);
                files
            },
        ),
        (
            "revert --running",
            |_| strings(&["snapshot-revert", "d", "s1", "--running"]),
            |env| {
                let files = on_overlay(env);
                write_live(env, "d", "vda", 0x55);
                files
            },
        ),
    ];
    let mut seed = std::process::id() as u64;
    let mut report = Vec::new();
    for (name, op, setup) in ops {
        // Kill moments are spread over the time the operation takes.
        let timing = Env::new("random-timing");
        setup(&timing);
        let args = op(&timing);
        let started = std::time::Instant::now();
        timing.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let span = (started.elapsed().as_millis() as u64).max(1);
        drop(timing);
        let mut killed = 0;
        for t in 0..trials {
            // xorshift: a different moment each trial.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let delay = std::time::Duration::from_millis(seed % (span + 1));
            let env = Env::new(&format!("random-{t}"));
            let allowed = setup(&env);
            let args = op(&env);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if killed_after(&env, delay, &args) {
                killed += 1;
            }
            let holds: &[Holds] = if name == "revert --running" || name == "live delete" {
                &[Holds { disk: "vda", offset_mib: 0, pattern: &[0x11, 0x44, 0x55] }, BEFORE[1]]
            } else {
                &BEFORE
            };
            let _ = qemu_pid(&env, "d");
            verify(&env, "d", holds, &allowed);
        }
        report.push(format!(
            "{name}: {trials} trials over 0-{span} ms, {killed} killed before it finished, 0 with lost data or an unusable domain"
        ));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn undefine_with_its_storage_killed_at_each_step_removes_no_image_still_named() {
    for fp in ["undefine:snapshots-forgotten", "undefine:undefined"] {
        let env = Env::new(&format!("crash-{}", fp.replace(':', "-")));
        let mut files = domain(&env, "d");
        env.ok(&["snapshot-create-as", "d", "s1"]);
        let disks: serde_json::Value = serde_json::from_str(&env.ok(&["domblklist", "d", "--json"])).unwrap();
        let named: Vec<PathBuf> =
            disks.as_array().unwrap().iter().map(|d| d["source"].as_str().unwrap().into()).collect();
        files.extend(named.iter().cloned());
        killed_at(&env, fp, &["undefine", "d", "--snapshots-metadata", "--remove-all-storage"]);
        // Every image is still there: whatever still names a file names one that exists.
        assert!(files.iter().all(|f| f.exists()), "{fp}: an image went before the definition");
        if fp == "undefine:snapshots-forgotten" {
            assert_eq!(env.ok(&["snapshot-list", "d", "--name"]), "", "{fp}");
            // Asked again, it finishes: the images the domain named go.
            env.ok(&["undefine", "d", "--remove-all-storage"]);
            assert!(named.iter().all(|f| !f.exists()), "{fp}");
        }
        assert_eq!(env.ok(&["list", "--all", "--name"]), "", "{fp}");
    }
}

#[test]
fn every_failpoint_in_the_code_is_killed_at_by_a_test() {
    fn sources(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let repo = luavirt_tests::repo_dir();
    let mut code = Vec::new();
    for d in ["core/src", "core/host/src", "drivers", "plugin-api/src"] {
        sources(&repo.join(d), &mut code);
    }
    let mut names = std::collections::BTreeSet::new();
    for f in code {
        let text = std::fs::read_to_string(&f).unwrap();
        for part in text.split("failpoint::hit(\"").skip(1) {
            names.insert(part.split('"').next().unwrap().to_string());
        }
    }
    assert!(names.len() > 30, "found only {names:?}");
    let tests: String = [
        "tests/e2e/crash.rs",
        "tests/e2e/vmx.rs",
        "tests/e2e/migrate.rs",
        "tests/e2e/libxl.rs",
        "tests/e2e/remote_migrate.rs",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(repo.join(f)).unwrap())
    .collect();
    let untested: Vec<&String> = names.iter().filter(|n| !tests.contains(&format!("\"{n}\""))).collect();
    assert!(untested.is_empty(), "failpoints no test kills at: {untested:?}");
}
