//! Migration between two hosts on one machine (two state folders): a running domain with a
//! copied, a blank and a shared disk, through the CLI (`--migrate-disks`, `--with-disk-set`)
//! and Lua; offline; the faults that must change nothing; abort, Ctrl-C and a dying
//! destination; and SIGKILL at each phase, after which exactly one side has the domain, with
//! its data, and nothing is left behind.

use luavirt_tests::crash::killed_at;
use luavirt_tests::migration::{
    Disks, define_source_domain, holds_no_data, info, names, qemu_io, same_content, source_of, sources, state,
};
use luavirt_tests::{Env, domain_xml, hmp, image_holds_at, require};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// Two hosts: the source (the test's own state folder) and the destination.
struct Hosts {
    src: Env,
    dst: Env,
    /// The destination's URI, as the source's commands name it.
    to: String,
}

fn hosts(test: &str) -> (Hosts, Disks) {
    require("qemu-system-x86_64", "qemu-system-x86");
    let src = Env::new(test);
    let dst = Env::new(&format!("{test}-to"));
    let to = format!("qemu:///session?state={}", dst.state.display());
    let disks = define_source_domain(&src);
    (Hosts { src, dst, to }, disks)
}

/// QEMU processes of either host that neither lists.
fn stray_qemus(h: &Hosts) -> Vec<i32> {
    let mut ids = Vec::new();
    for env in [&h.src, &h.dst] {
        let listed: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--all", "--json"])).unwrap();
        ids.extend(listed.as_array().unwrap().iter().filter_map(|d| d["id"].as_i64()));
    }
    let marks = [h.src.dir.display().to_string(), h.dst.dir.display().to_string()];
    let mut stray = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ");
        if cmdline.contains("qemu-system")
            && marks.iter().any(|m| cmdline.contains(m.as_str()))
            && !zombie
            && !ids.contains(&(pid as i64))
        {
            stray.push(pid);
        }
    }
    stray
}

/// Image files the destination holds in its image folder.
fn dest_images(h: &Hosts) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(h.dst.state.join("images/d")) {
        out.extend(entries.flatten().map(|e| e.path()));
    }
    out
}

/// Starts `luavirt args` on the source in the background.
fn spawn(h: &Hosts, args: &[&str]) -> Child {
    h.src.command(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
}

/// Waits until the source shows its migration in progress (the migrating process still runs).
fn wait_in_progress(h: &Hosts, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the migration ended before it was seen in progress");
        if h.src.ok(&["domstate", "d", "--reason"]).contains("(leaving) in progress") {
            return;
        }
        assert!(Instant::now() < deadline, "no migration in progress after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finished(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// After a failed or undone migration: the source runs on its own disks with its data, the
/// destination has no domain, no image, no QEMU.
fn source_intact(h: &Hosts, d: &Disks) {
    assert_eq!(state(&h.src), "running");
    assert_eq!(
        sources(&h.src).into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        [d.a.clone(), d.b.clone(), d.c.clone()]
    );
    assert_eq!(names(&h.dst), Vec::<String>::new(), "the destination still has the domain");
    assert_eq!(dest_images(h), Vec::<PathBuf>::new(), "images left at the destination");
    assert_eq!(stray_qemus(h), Vec::<i32>::new(), "QEMU processes neither host lists");
    // The guest still writes, and its data is all there once it stops.
    hmp(&h.src, "d", &["qemu-io -d /machine/peripheral/vda/virtio-backend \"write -P 0x55 4M 1M\""]);
    h.src.ok(&["destroy", "d"]);
    for (image, format, pattern, at) in [
        (&d.a, "qcow2", 0x11, 0),
        (&d.a, "qcow2", 0x12, 1),
        (&d.a, "qcow2", 0x55, 4),
        (&d.b, "raw", 0x22, 0),
        (&d.c, "qcow2", 0x33, 0),
    ] {
        assert!(image_holds_at(image, format, pattern, at), "{} lost {pattern:#x} at {at} MiB", image.display());
    }
}

#[test]
fn a_live_migration_copies_one_disk_blanks_one_shares_one_and_keeps_writes_made_meanwhile() {
    let (h, d) = hosts("mig-live");
    h.src.ok(&["start", "d"]);
    // 8 MiB/s over 32 MiB (the limit counts zeros too): about four seconds, time to write meanwhile.
    let mut child = spawn(
        &h,
        &[
            "migrate",
            "d",
            &h.to,
            "--live",
            "--migrate-disks",
            "vda",
            "--blank-disks",
            "vdc",
            "--bandwidth",
            "8",
            "--json",
        ],
    );
    wait_in_progress(&h, &mut child);
    hmp(&h.src, "d", &["qemu-io -d /machine/peripheral/vda/virtio-backend \"write -P 0x44 3M 1M\""]);
    assert!(child.try_wait().unwrap().is_none(), "the write came after the migration; slow the copy down");
    let (code, stdout, stderr) = finished(child);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(stderr.lines().any(|l| l.contains("\"event\":\"progress\"")), "no progress events: {stderr}");

    // The destination runs the domain; the source keeps its definition, shut off.
    assert_eq!(state(&h.dst), "running");
    assert_eq!(state(&h.src), "shut off");
    let listed: serde_json::Value = serde_json::from_str(&h.dst.ok(&["list", "--json"])).unwrap();
    assert_eq!(listed[0]["persistent"], false, "without --persistent the destination keeps no definition");
    let (dst_a, dst_b, dst_c) = (source_of(&h.dst, "vda"), source_of(&h.dst, "vdb"), source_of(&h.dst, "vdc"));
    assert!(dst_a.starts_with(&h.dst.state) && dst_c.starts_with(&h.dst.state), "{dst_a:?} {dst_c:?}");
    assert_eq!(dst_b, d.b, "the shared disk is the same file");

    // Only the copied disk's data moved: about its allocation, far below its 32 MiB.
    let moved = &report["disk_bytes"];
    assert_eq!(moved.as_array().unwrap().len(), 1, "{report}");
    assert_eq!(moved[0]["disk"], "vda");
    let bytes = moved[0]["bytes"].as_u64().unwrap();
    assert!((3 << 20..10 << 20).contains(&bytes), "vda moved {bytes} bytes");
    assert!(report["memory_bytes"].as_u64().unwrap() > 0);

    // The guest runs at the destination on the copy.
    hmp(&h.dst, "d", &["qemu-io -d /machine/peripheral/vda/virtio-backend \"write -P 0x66 5M 1M\""]);
    h.dst.ok(&["destroy", "d"]);
    assert_eq!(names(&h.dst), Vec::<String>::new(), "a domain without a definition goes when it stops");
    assert!(image_holds_at(&dst_a, "qcow2", 0x11, 0) && image_holds_at(&dst_a, "qcow2", 0x12, 1));
    assert!(image_holds_at(&dst_a, "qcow2", 0x44, 3), "the write made during the migration was lost");
    assert!(image_holds_at(&dst_a, "qcow2", 0x66, 5));
    // Up to the switch-over the copy is the source, byte for byte.
    qemu_io(&dst_a, "qcow2", "write -z 5M 1M");
    assert!(same_content(&d.a, &dst_a), "the copy differs from the source");
    // The blank disk: same format and size, no data; the source's is untouched.
    assert_eq!(info(&dst_c)["format"], "qcow2");
    assert_eq!(info(&dst_c)["virtual-size"], info(&d.c)["virtual-size"]);
    assert!(holds_no_data(&dst_c), "the blank disk holds data");
    assert!(image_holds_at(&d.c, "qcow2", 0x33, 0));
    assert!(image_holds_at(&d.b, "raw", 0x22, 0));
    for f in [&dst_a, &dst_c] {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
    }
    assert_eq!(stray_qemus(&h), Vec::<i32>::new());
}

#[test]
fn with_disk_set_the_set_is_copied_and_the_domain_moves_for_good() {
    let (h, d) = hosts("mig-set");
    h.src.ok(&["diskset", "add", "d", "vda"]);
    h.src.ok(&["start", "d"]);
    let plan = h.src.ok(&["migrate", "d", &h.to, "--live", "--with-disk-set", "--blank-disks", "vdc", "--print-plan"]);
    assert!(plan.contains("in disk set 'selected'"), "{plan}");
    assert_eq!(names(&h.dst), Vec::<String>::new(), "--print-plan changed something");
    let out = h.src.ok(&[
        "migrate",
        "d",
        &h.to,
        "--live",
        "--with-disk-set",
        "--blank-disks",
        "vdc",
        "--persistent",
        "--undefine-source",
    ]);
    assert!(out.contains("vda copied") && out.contains("vdb shared") && out.contains("vdc made blank"), "{out}");
    assert_eq!(names(&h.src), Vec::<String>::new(), "--undefine-source left the definition");
    assert_eq!(state(&h.dst), "running");
    let listed: serde_json::Value = serde_json::from_str(&h.dst.ok(&["list", "--json"])).unwrap();
    assert_eq!(listed[0]["persistent"], true);
    assert_eq!(h.dst.ok(&["diskset", "list", "d"]).trim(), "vda", "the disk sets came along");
    h.dst.ok(&["destroy", "d"]);
    assert_eq!(names(&h.dst), ["d"], "a persistent domain stays defined");
    let dst_a = source_of(&h.dst, "vda");
    assert!(same_content(&d.a, &dst_a));
    // The migration's commit marker is gone with the source's side.
    let markers = std::fs::read_dir(h.dst.state.join("qemu/migrations")).map(|e| e.count()).unwrap_or(0);
    assert_eq!(markers, 0);
    // And it starts there.
    h.dst.ok(&["start", "d"]);
    h.dst.ok(&["destroy", "d"]);
}

#[test]
fn a_lua_policy_migrates_its_disk_set() {
    let (h, d) = hosts("mig-lua");
    h.src.ok(&["start", "d"]);
    let script = h.src.write(
        "move.lua",
        &format!(
            r#"local lv = require('luavirt')
local d = lv.connect():domain('d')
d:diskset('move'):add('vda')
local to = lv.connect('{}')
local plan = d:migration_plan{{ to = to, disk_set = 'move', live = true }}
assert(plan.disks[1].action == 'copy' and plan.disks[2].action == 'shared' and plan.disks[3].action == 'shared')
local calls = 0
local r = d:migrate{{ to = to, disk_set = 'move', blank = {{ 'vdc' }}, live = true, persistent = true,
                     on_progress = function(done, total, stage) calls = calls + 1 end }}
print(r.disk_bytes[1].disk, r.plan.disks[3].action, calls > 0, to:domain('d'):state())
local ok, err = pcall(function() return d:migrate{{ to = to, live = 'yes' }} end)
print(ok, err)
"#,
            h.to
        ),
    );
    let out = h.src.ok(&["run", script.to_str().unwrap()]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("vda\tblank\ttrue\trunning"), "{out}");
    let second = lines.next().unwrap_or_default();
    assert!(second.starts_with("false") && second.contains("live"), "{out}");
    assert_eq!(state(&h.dst), "running");
    h.dst.ok(&["destroy", "d"]);
    assert!(same_content(&d.a, &source_of(&h.dst, "vda")));
}

#[test]
fn a_shut_off_domain_migrates_offline() {
    let (h, d) = hosts("mig-off");
    let err = h.src.fails(&["migrate", "d", &h.to, "--live", "--migrate-disks", "vda"], 1);
    assert!(err.contains("shut off") && err.contains("--live"), "{err}");
    let out = h.src.ok(&["migrate", "d", &h.to, "--migrate-disks", "vda", "--blank-disks", "vdc", "--undefine-source"]);
    assert!(out.contains("vda copied"), "{out}");
    assert_eq!(names(&h.src), Vec::<String>::new());
    assert_eq!(names(&h.dst), ["d"], "an offline migration always defines");
    assert_eq!(state(&h.dst), "shut off");
    let (dst_a, dst_c) = (source_of(&h.dst, "vda"), source_of(&h.dst, "vdc"));
    assert!(same_content(&d.a, &dst_a));
    // Sparse: the copy holds about its data, not its 64 MiB.
    assert!(info(&dst_a)["actual-size"].as_u64().unwrap() < 16 << 20);
    assert!(holds_no_data(&dst_c));
    assert_eq!(source_of(&h.dst, "vdb"), d.b);
    h.dst.ok(&["start", "d"]);
    h.dst.ok(&["destroy", "d"]);
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let (h, _d) = hosts("mig-bad");
    h.src.ok(&["snapshot-create-as", "d", "s1"]);
    h.src.ok(&["start", "d"]);
    let before = h.src.state_snapshot();
    let cases: &[(&[&str], &str)] = &[
        (&["--migrate-disks", "vdz"], "has no disk 'vdz'"),
        (&["--migrate-disks", "vda", "--blank-disks", "vda"], "both copy and blank"),
        (&["--with-disk-set", "none"], "disk set 'none' has no disks"),
        (&["--migrate-disks", "vda", "--disk-target", "vdb=/tmp/x.raw"], "which is shared"),
        (&["--migrate-disks", "vda", "--disk-target", "vda=relative.qcow2"], "must be an absolute path"),
        (&["--migrate-disks", "vda", "--undefine-source"], "1 snapshot(s)"),
        (&["--migrate-disks", "vda", "--target-dir", "rel"], "must be an absolute path"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["migrate", "d", h.to.as_str(), "--live"];
        args.extend_from_slice(extra);
        let err = h.src.fails(&args, 1);
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    let here = format!("qemu:///session?state={}", h.src.state.display());
    assert!(h.src.fails(&["migrate", "d", &here], 1).contains("the same host"));
    // The destination's image exists already: refused there before anything is made.
    let taken = h.dst.dir.join("taken.qcow2");
    std::fs::write(&taken, b"mine").unwrap();
    let err = h.src.fails(
        &[
            "migrate",
            "d",
            &h.to,
            "--live",
            "--migrate-disks",
            "vda",
            "--disk-target",
            &format!("vda={}", taken.display()),
        ],
        1,
    );
    assert!(err.contains("exists already") && err.contains("--disk-target vda=PATH"), "{err}");
    assert_eq!(std::fs::read(&taken).unwrap(), b"mine");
    // The destination has a domain of that name already.
    let other = h.dst.image("o.raw", "raw", "1M");
    h.dst.write("o.xml", &domain_xml("d", &[("vda", &other, "raw")]));
    h.dst.ok(&["define", h.dst.dir.join("o.xml").to_str().unwrap()]);
    let err = h.src.fails(&["migrate", "d", &h.to, "--live"], 1);
    assert!(err.contains("already has a domain named 'd'"), "{err}");
    h.dst.ok(&["undefine", "d"]);
    assert_eq!(h.src.state_snapshot(), before, "a refused migration changed the source's state");
    assert_eq!(state(&h.src), "running");
    assert_eq!(dest_images(&h), Vec::<PathBuf>::new());
    assert_eq!(stray_qemus(&h), Vec::<i32>::new());
    h.src.ok(&["destroy", "d"]);
}

/// A migration slowed down so that it can be interrupted: 32 MiB at 1 MiB/s.
fn slow_migration(h: &Hosts, d: &Disks) -> Child {
    qemu_io(&d.a, "qcow2", "write -P 0x13 8M 8M");
    h.src.ok(&["start", "d"]);
    let mut child = spawn(h, &["migrate", "d", &h.to, "--live", "--migrate-disks", "vda", "--bandwidth", "1"]);
    wait_in_progress(h, &mut child);
    child
}

#[test]
fn an_abort_from_another_process_puts_everything_back() {
    let (h, d) = hosts("mig-abort");
    let child = slow_migration(&h, &d);
    let out = h.src.ok(&["domjobabort", "d"]);
    assert!(out.contains("stop"), "{out}");
    let (code, _, stderr) = finished(child);
    assert_eq!(code, 1);
    assert!(stderr.contains("was aborted; the domain is here as before"), "{stderr}");
    assert!(h.src.fails(&["migrate", "d", "--abort"], 1).contains("no migration in progress"));
    source_intact(&h, &d);
}

#[test]
fn ctrl_c_cancels_a_migration_and_puts_everything_back() {
    let (h, d) = hosts("mig-intr");
    let child = slow_migration(&h, &d);
    // SAFETY: a signal to our own child.
    unsafe { libc_kill(child.id() as i32, 2) };
    let (code, _, stderr) = finished(child);
    assert_eq!(code, 1);
    assert!(stderr.contains("cancelled") && stderr.contains("undone"), "{stderr}");
    source_intact(&h, &d);
}

#[test]
fn a_destination_qemu_that_dies_leaves_the_source_running() {
    let (h, d) = hosts("mig-dies");
    let child = slow_migration(&h, &d);
    let run = std::fs::read_to_string(h.dst.state.join("qemu/run/d/state.json")).unwrap();
    let pid = serde_json::from_str::<serde_json::Value>(&run).unwrap()["pid"].as_i64().unwrap();
    unsafe { libc_kill(pid as i32, 9) };
    let (code, _, stderr) = finished(child);
    assert_eq!(code, 1);
    assert!(stderr.contains("the migration was undone and domain 'd' is here as before"), "{stderr}");
    source_intact(&h, &d);
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// The failpoints of a live migration, in order, and whether the destination had committed.
const PHASES: &[(&str, bool)] = &[
    ("migrate-in:image", false),
    ("migrate-in:started", false),
    ("migrate-in:listening", false),
    ("migrate:prepared", false),
    ("migrate-out:mirroring", false),
    ("migrate-out:memory", false),
    ("migrate-out:switchover", false),
    ("migrate-out:migrated", false),
    ("migrate:performed", false),
    ("migrate-in:committed", true),
    ("migrate:finished", true),
    ("migrate-out:stopped", true),
];

/// After a kill: both sides settled (either first), then exactly one has the domain, with its
/// data, and nothing is left behind. Returns whether the destination has it.
fn settled_after_kill(h: &Hosts, d: &Disks, what: &str, src_first: bool, args: &[&str]) -> bool {
    let (first, second) = if src_first { (&h.src, &h.dst) } else { (&h.dst, &h.src) };
    for env in [first, second] {
        let r = env.run(&["recover", "d"]);
        assert!(r.code == 0 || r.stderr.contains("not found"), "{what}: recover: {}", r.stderr);
    }
    let moved = names(&h.src).is_empty();
    if moved {
        assert_eq!(state(&h.dst), "running", "{what}");
        assert_eq!(stray_qemus(h), Vec::<i32>::new(), "{what}");
        let dst_a = source_of(&h.dst, "vda");
        h.dst.ok(&["destroy", "d"]);
        assert!(same_content(&d.a, &dst_a), "{what}: the copy differs");
        assert!(image_holds_at(&dst_a, "qcow2", 0x12, 1), "{what}");
        let markers = std::fs::read_dir(h.dst.state.join("qemu/migrations")).map(|e| e.count()).unwrap_or(0);
        assert_eq!(markers, 0, "{what}: a commit marker was left");
    } else {
        source_intact(h, d);
        // And it migrates after all.
        h.src.ok(&["start", "d"]);
        h.src.ok(args);
        assert_eq!(state(&h.dst), "running", "{what}");
        h.dst.ok(&["destroy", "d"]);
    }
    moved
}

/// What the kill tests ask of a migration (the destination keeps a definition, so a domain
/// destroyed there stays to be checked).
const KILLED_ARGS: [&str; 7] =
    ["--live", "--migrate-disks", "vda", "--blank-disks", "vdc", "--undefine-source", "--persistent"];

#[test]
fn killed_at_each_phase_exactly_one_side_has_the_domain_and_nothing_is_left() {
    for (k, (fp, committed)) in PHASES.iter().enumerate() {
        let (h, d) = hosts(&format!("mig-kill-{k}"));
        h.src.ok(&["start", "d"]);
        let mut args = vec!["migrate", "d", h.to.as_str()];
        args.extend(KILLED_ARGS);
        killed_at(&h.src, fp, &args);
        // Either side may be touched first; both settle on their own.
        let moved = settled_after_kill(&h, &d, fp, k % 2 == 0, &args);
        assert_eq!(moved, *committed, "{fp}: the domain ended up on the wrong side");
    }
}

#[test]
fn killed_at_random_moments_exactly_one_side_has_the_domain() {
    let Some(trials) = std::env::var("LUAVIRT_CRASH_TRIALS").ok().and_then(|n| n.parse::<u32>().ok()) else {
        eprintln!("skipped: set LUAVIRT_CRASH_TRIALS=N to kill a live migration N times at random moments");
        return;
    };
    // Kill moments are spread over the time a migration takes here.
    let (h, _) = hosts("mig-rnd-timing");
    h.src.ok(&["start", "d"]);
    let mut args = vec!["migrate", "d", h.to.as_str()];
    args.extend(KILLED_ARGS);
    let started = Instant::now();
    h.src.ok(&args);
    let span = (started.elapsed().as_millis() as u64).max(1);
    h.dst.ok(&["destroy", "d"]);
    let (mut seed, mut killed, mut moved) = (std::process::id() as u64, 0, 0);
    for t in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % (span + 1));
        let (h, d) = hosts(&format!("mig-rnd-{t}"));
        h.src.ok(&["start", "d"]);
        let mut args = vec!["migrate", "d", h.to.as_str()];
        args.extend(KILLED_ARGS);
        if luavirt_tests::crash::killed_after(&h.src, delay, &args) {
            killed += 1;
        }
        if settled_after_kill(&h, &d, &format!("trial {t} (killed after {delay:?})"), t % 2 == 0, &args) {
            moved += 1;
        }
    }
    eprintln!(
        "live migration: {trials} trials over 0-{span} ms, {killed} killed before it finished, {moved} settled at the destination, none lost data or left the domain on both sides or neither"
    );
}

#[test]
fn a_timeout_pauses_the_guest_so_that_its_memory_finishes_moving() {
    let (h, d) = hosts("mig-timeout");
    h.src.ok(&["start", "d"]);
    // Memory only, slowed down: the move is still on when the loop first looks.
    let r = h.src.run(&["migrate", "d", &h.to, "--live", "--bandwidth", "1", "--timeout", "0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("the guest is paused so that it does"), "{}", r.stderr);
    assert_eq!(state(&h.dst), "running", "the guest runs again at the destination");
    assert_eq!(source_of(&h.dst, "vda"), d.a, "a shared disk");
    h.dst.ok(&["destroy", "d"]);
}

#[test]
fn read_only_and_empty_disks_are_never_copied() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let src = Env::new("mig-ro");
    let dst = Env::new("mig-ro-to");
    let to = format!("qemu:///session?state={}", dst.state.display());
    let a = src.image("a.qcow2", "qcow2", "16M");
    let iso = src.image("cd.iso", "raw", "1M");
    let xml = domain_xml("d", &[("vda", &a, "qcow2")]).replace(
        "  </devices>",
        &format!(
            "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      <source file='{}'/>\n      <target dev='hdc' bus='ide'/>\n      <readonly/>\n    </disk>\n    <disk type='file' device='cdrom'>\n      <target dev='hdd' bus='ide'/>\n      <readonly/>\n    </disk>\n  </devices>",
            iso.display()
        ),
    );
    src.ok(&["define", src.write("d.xml", &xml).to_str().unwrap()]);
    let err = src.fails(&["migrate", "d", &to, "--migrate-disks", "hdc"], 1);
    assert!(err.contains("disk hdc is read-only (a CD-ROM)"), "{err}");
    let err = src.fails(&["migrate", "d", &to, "--blank-disks", "hdd"], 1);
    assert!(err.contains("disk hdd has no image file"), "{err}");
    // --copy-storage-all copies what it can and leaves the rest shared.
    let plan: serde_json::Value =
        serde_json::from_str(&src.ok(&["migrate", "d", &to, "--copy-storage-all", "--print-plan", "--json"])).unwrap();
    let actions: Vec<&str> = plan["disks"].as_array().unwrap().iter().map(|d| d["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["copy", "shared", "shared"]);
    let written: Vec<_> = std::fs::read_dir(&dst.dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(written, Vec::<PathBuf>::new(), "--print-plan wrote at the destination");
}

#[test]
fn a_destination_that_cannot_make_its_images_changes_nothing_anywhere() {
    let (h, d) = hosts("mig-noimg");
    h.src.ok(&["start", "d"]);
    let blocker = h.dst.dir.join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let target = format!("vda={}/a.qcow2", blocker.display());
    let err = h.src.fails(&["migrate", "d", &h.to, "--live", "--migrate-disks", "vda", "--disk-target", &target], 1);
    assert!(err.contains("not-a-folder"), "{err}");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"x");
    source_intact(&h, &d);
}
