//! Defects found trying luavirt as a new user would (issue 9), each with the behaviour that
//! replaced it: overlays that would share a name, memory files removed too early, mirrors
//! ended with `json:` paths, disk sets lost on redefine, backing chains hundreds deep, reads
//! that wrote, block-job waits that held the domain, a frozen QEMU, a define that read every
//! domain, and files open to other users.

use luavirt_tests::{Env, disk_holds, disk_image, image_holds, qmp, require, write_live, write_offline};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(out.status.success(), "qemu-img {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A running domain `d` with a qcow2 vda holding 0x11.
fn running(env: &Env) -> PathBuf {
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image("a.qcow2", "qcow2", "16M");
    write_offline(&a, "qcow2", 0x11);
    env.define_domain("d", &[("vda", &a, "qcow2")]);
    env.ok(&["start", "d"]);
    a
}

#[test]
fn disks_whose_images_share_a_stem_keep_their_own_data_across_snapshot_and_delete() {
    let env = Env::new("stem");
    require("qemu-system-x86_64", "qemu-system-x86");
    let x_raw = env.image("x.raw", "raw", "16M");
    let x_img = env.image("x.img", "raw", "16M");
    write_offline(&x_raw, "raw", 0x11);
    write_offline(&x_img, "raw", 0x22);
    env.define_domain("d", &[("vda", &x_raw, "raw"), ("vdb", &x_img, "raw")]);
    env.ok(&["snapshot-create-as", "d", "s1"]);
    let (a, b) = (disk_image(&env, "d", "vda").0, disk_image(&env, "d", "vdb").0);
    assert_ne!(a, b, "both disks were put on one overlay");
    assert!(disk_holds(&env, "d", "vda", 0x11) && disk_holds(&env, "d", "vdb", 0x22), "a disk lost its data");
    write_offline(&a, "qcow2", 0x33);
    env.ok(&["snapshot-delete", "d", "s1"]);
    assert_eq!(disk_image(&env, "d", "vda").0, x_raw);
    assert_eq!(disk_image(&env, "d", "vdb").0, x_img);
    assert!(image_holds(&x_raw, "raw", 0x33) && image_holds(&x_img, "raw", 0x22));
}

#[test]
fn a_delete_whose_merge_fails_keeps_the_memory_file_and_the_snapshot_revertable() {
    let env = Env::new("memkeep");
    let a = running(&env);
    let mem = env.dir.join("s1.mem");
    env.ok(&[
        "snapshot-create-as",
        "d",
        "s1",
        "--memspec",
        mem.to_str().unwrap(),
        "--diskspec",
        "vda,snapshot=external",
    ]);
    env.ok(&["destroy", "d"]);
    // The merge goes into a.qcow2: another program holding it makes the merge fail.
    let mut holder = Command::new("qemu-io").args(["-f", "qcow2", "-c", "sleep 30000"]).arg(&a).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let err = env.fails(&["snapshot-delete", "d", "s1"], 1);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(err.contains("lock") && err.contains("nothing was changed"), "{err}");
    assert!(mem.is_file(), "the memory file went before the disks were merged");
    assert_eq!(env.ok(&["snapshot-list", "d", "--name"]), "s1\n");
    env.ok(&["snapshot-revert", "d", "s1"]);
    assert_eq!(env.ok(&["domstate", "d"]), "running\n", "the snapshot's memory was lost");
    env.ok(&["destroy", "d"]);
    env.ok(&["snapshot-delete", "d", "s1"]);
    assert!(!mem.exists());
}

#[test]
fn a_mirror_abort_leaves_plain_paths_and_the_disk_on_its_source() {
    let env = Env::new("mirrorjson");
    let _a = running(&env);
    write_live(&env, "d", "vda", 0x21);
    // Reused overlay and mirror whose backing names are relative (as qemu-img writes them).
    for f in ["o.qcow2", "m.qcow2"] {
        let out = Command::new("qemu-img")
            .current_dir(&env.dir)
            .args(["create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", f])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let (o, m) = (env.dir.join("o.qcow2"), env.dir.join("m.qcow2"));
    env.ok(&[
        "snapshot-create-as",
        "d",
        "s",
        "--disk-only",
        "--reuse-external",
        "--diskspec",
        &format!("vda,file={},mirror={}", o.display(), m.display()),
    ]);
    write_live(&env, "d", "vda", 0x22);
    env.ok(&["snapshot-delete", "d", "s", "--mirror-abort"]);
    let xml = env.ok(&["dumpxml", "d", "--inactive"]);
    assert!(!xml.contains("json:"), "{xml}");
    assert_eq!(disk_image(&env, "d", "vda").0, o);
    env.ok(&["destroy", "d"]);
    env.ok(&["start", "d"]);
    env.ok(&["destroy", "d"]);
    assert!(disk_holds(&env, "d", "vda", 0x22));
}

#[test]
fn a_mirror_abort_ends_on_the_source_even_when_the_mirror_cannot_be_finished() {
    let env = Env::new("mirrorbroken");
    let _a = running(&env);
    // The mirror's backing was never copied: it names a file that does not exist.
    let m = env.dir.join("m.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-u",
        "-b",
        "/nonexistent/base.qcow2",
        "-F",
        "qcow2",
        m.to_str().unwrap(),
        "16M",
    ]);
    let o = env.dir.join("o.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        env.dir.join("a.qcow2").to_str().unwrap(),
        "-F",
        "qcow2",
        o.to_str().unwrap(),
    ]);
    let made = env.run(&[
        "snapshot-create-as",
        "d",
        "s",
        "--disk-only",
        "--reuse-external",
        "--diskspec",
        &format!("vda,file={},mirror={}", o.display(), m.display()),
    ]);
    if made.code != 0 {
        // QEMU refused the mirror at once: the snapshot was undone and nothing claims it.
        assert!(made.stderr.contains("nothing was changed"), "{}", made.stderr);
        assert_eq!(env.ok(&["snapshot-list", "d", "--name"]), "");
        return;
    }
    let r = env.run(&["snapshot-delete", "d", "s", "--mirror-abort"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.ok(&["snapshot-list", "d", "--name"]), "", "the snapshot still claims a mirror");
    let (file, _) = disk_image(&env, "d", "vda");
    let blocks = qmp(&env, "d", "query-block", serde_json::json!({}));
    assert_eq!(
        blocks[0]["inserted"]["file"].as_str().map(PathBuf::from),
        Some(file),
        "the definition and QEMU disagree"
    );
}

#[test]
fn redefining_from_xml_without_disk_sets_keeps_the_sets_of_the_disks_still_there() {
    let env = Env::new("keepsets");
    let a = env.image("a.qcow2", "qcow2", "16M");
    let b = env.image("b.qcow2", "qcow2", "16M");
    env.define_domain("d", &[("vda", &a, "qcow2"), ("vdb", &b, "qcow2")]);
    env.ok(&["diskset", "add", "d", "vda"]);
    env.ok(&["diskset", "add", "d", "vdb", "--set", "migrate"]);
    // The XML as first written (no metadata), minus vdb.
    let xml = luavirt_tests::domain_xml("d", &[("vda", &a, "qcow2")]);
    let f = env.write("d2.xml", &xml);
    let out = env.ok(&["define", f.to_str().unwrap()]);
    assert!(out.contains("keeps its own: vda in 'selected'"), "{out}");
    assert!(out.contains("Disk vdb is no longer in the domain and left set 'migrate'"), "{out}");
    assert_eq!(env.ok(&["diskset", "list", "d"]), "vda\n");
    // XML with its own sets sets them.
    let with = env.ok(&["dumpxml", "d"]);
    env.ok(&["diskset", "remove", "d", "vda"]);
    let f = env.write("d3.xml", &with);
    let out = env.ok(&["define", f.to_str().unwrap()]);
    assert!(!out.contains("keeps its own"), "{out}");
    assert_eq!(env.ok(&["diskset", "list", "d"]), "vda\n");
}

#[test]
fn a_backing_chain_300_deep_snapshots_copies_and_commits_live() {
    let env = Env::new("deep");
    require("qemu-system-x86_64", "qemu-system-x86");
    let mut top = env.image("c0.qcow2", "qcow2", "16M");
    write_offline(&top, "qcow2", 0x11);
    for k in 1..300 {
        let next = env.dir.join(format!("c{k}.qcow2"));
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-u",
            "-b",
            top.to_str().unwrap(),
            "-F",
            "qcow2",
            next.to_str().unwrap(),
            "16M",
        ]);
        top = next;
    }
    env.define_domain("d", &[("vda", &top, "qcow2")]);
    env.ok(&["start", "d"]);
    env.ok(&["snapshot-create-as", "d", "s1", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    write_live(&env, "d", "vda", 0x22);
    env.ok(&["blockcommit", "d", "vda", "--wait", "--pivot"]);
    assert_eq!(disk_image(&env, "d", "vda").0, top);
    let copy = env.dir.join("copy.qcow2");
    env.ok(&["blockcopy", "d", "vda", copy.to_str().unwrap(), "--shallow", "--wait", "--pivot"]);
    assert_eq!(disk_image(&env, "d", "vda").0, copy);
    env.ok(&["destroy", "d"]);
    assert!(disk_holds(&env, "d", "vda", 0x22));
}

#[test]
fn reads_write_nothing_even_after_qemu_died() {
    let env = Env::new("reads");
    let _a = running(&env);
    let pid = luavirt_tests::crash::qemu_pid(&env, "d").unwrap();
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    while luavirt_tests::crash::qemu_pid(&env, "d").is_some() {
        std::thread::yield_now();
    }
    let before = env.state_snapshot();
    for args in
        [vec!["list", "--all"], vec!["domstate", "d", "--reason"], vec!["dumpxml", "d"], vec!["snapshot-list", "d"]]
    {
        env.ok(&args);
    }
    let script = env.write(
        "s.lua",
        "local lv = require('luavirt')\nlocal d = lv.connect():domain('d')\nd:diskset('x'):add('vda')\n",
    );
    env.ok(&["run", "--dry-run", script.to_str().unwrap()]);
    assert_eq!(env.state_snapshot(), before, "a read or a dry run changed the state folder");
    assert!(env.state.join("qemu/run/d").exists());
    // The next change clears what the dead QEMU left.
    env.ok(&["start", "d"]);
    env.ok(&["destroy", "d"]);
}

#[test]
fn a_disk_set_change_goes_on_while_a_slow_copy_runs() {
    let env = Env::new("nolock");
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image("a.qcow2", "qcow2", "64M");
    // 48 MiB of data: QEMU copies its first 16 MiB at once, the rest at 1 MiB/s.
    let out = Command::new("qemu-io").args(["-f", "qcow2", "-c", "write -P 0x11 0 48M"]).arg(&a).output().unwrap();
    assert!(out.status.success());
    env.define_domain("d", &[("vda", &a, "qcow2")]);
    env.ok(&["start", "d"]);
    let copy = env.dir.join("copy.qcow2");
    let mut waiting = env
        .command(&["blockcopy", "d", "vda", copy.to_str().unwrap(), "--wait", "--pivot", "--bandwidth", "1"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while luavirt_tests::qmp(&env, "d", "query-block-jobs", serde_json::json!({})).as_array().unwrap().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A change beside the running job neither waits for it nor is refused.
    env.ok(&["diskset", "add", "d", "vda"]);
    let state = env.ok(&["domstate", "d", "--reason"]);
    assert!(state.contains("in progress"), "{state}");
    // A change that conflicts with it is refused, clearly.
    let err = env.fails(&["snapshot-create-as", "d", "s", "--disk-only"], 1);
    assert!(err.contains("in progress") && err.contains("abort the block job"), "{err}");
    env.ok(&["blockjob", "d", "vda", "--abort"]);
    let status = waiting.wait().unwrap();
    assert!(!status.success(), "the copy waited for was aborted");
    assert!(!copy.exists(), "the aborted copy was left behind");
    assert_eq!(env.ok(&["diskset", "list", "d"]), "vda\n");
}

#[test]
fn a_frozen_qemu_makes_a_clear_error_in_bounded_time() {
    let env = Env::new("frozen");
    let _a = running(&env);
    let pid = luavirt_tests::crash::qemu_pid(&env, "d").unwrap();
    assert!(Command::new("kill").args(["-STOP", &pid.to_string()]).status().unwrap().success());
    let mut child = env
        .command(&["snapshot-create-as", "d", "s", "--disk-only"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Hang detection only: the driver's own bounds end the call long before.
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ended = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    Command::new("kill").args(["-CONT", &pid.to_string()]).status().unwrap();
    assert!(ended, "snapshot-create-as against a stopped QEMU did not end");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no greeting") && err.contains("stopped or hung"), "{err}");
}

#[test]
fn define_looks_at_no_other_domain_and_a_taken_uuid_is_refused() {
    let env = Env::new("uuidindex");
    let a = env.image("a.qcow2", "qcow2", "16M");
    env.define_domain("one", &[("vda", &a, "qcow2")]);
    env.define_domain("two", &[("vda", &a, "qcow2")]);
    let uuid = serde_json::from_str::<serde_json::Value>(&env.ok(&["list", "--all", "--json"])).unwrap()[0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    // A definition nobody can parse no longer stops defining others: define reads only the
    // index, not every domain.
    std::fs::write(env.state.join("qemu/domains/two.xml"), "<domain").unwrap();
    env.define_domain("three", &[("vda", &a, "qcow2")]);
    let xml = luavirt_tests::domain_xml("four", &[("vda", &a, "qcow2")])
        .replace("<name>four</name>", &format!("<name>four</name>\n  <uuid>{uuid}</uuid>"));
    let f = env.write("four.xml", &xml);
    let err = env.fails(&["define", f.to_str().unwrap()], 1);
    assert!(err.contains(&format!("UUID {uuid} is already used by domain 'one'")), "{err}");
}

#[test]
fn files_and_folders_are_private_whatever_the_umask() {
    let env = Env::new("umask");
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image("a.qcow2", "qcow2", "16M");
    env.define_domain("d", &[("vda", &a, "qcow2")]);
    let mem = env.dir.join("s.mem");
    let run = |args: &[&str]| {
        let mut c = env.command(args);
        // SAFETY: umask in the child before exec; no memory effects.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut c, || {
                libc_umask(0);
                Ok(())
            });
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["start", "d"]);
    run(&["snapshot-create-as", "d", "s", "--memspec", mem.to_str().unwrap(), "--diskspec", "vda,snapshot=external"]);
    assert_eq!(mode(&mem), 0o600, "the memory file holds guest RAM");
    for d in ["qemu", "qemu/domains", "qemu/run", "qemu/run/d", "qemu/snapshots", "qemu/locks", "qemu/log"] {
        assert_eq!(mode(&env.state.join(d)), 0o700, "{d}");
    }
    for f in ["qemu/domains/d.xml", "qemu/snapshots/d.xml", "qemu/run/d/state.json", "qemu/log/d.log"] {
        assert_eq!(mode(&env.state.join(f)), 0o600, "{f}");
    }
    for k in 0..4 {
        assert_eq!(mode(&env.state.join(format!("qemu/run/d/qmp-{k}.sock"))), 0o600, "monitor socket {k}");
    }
    run(&["destroy", "d"]);
}

fn libc_umask(mask: u32) {
    unsafe extern "C" {
        fn umask(mask: u32) -> u32;
    }
    // SAFETY: umask only sets the process's file mode mask.
    unsafe {
        umask(mask);
    }
}

#[test]
fn a_lua_progress_callback_may_change_the_domain_whose_job_it_watches() {
    let env = Env::new("luaprogress");
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image("a.qcow2", "qcow2", "64M");
    // 24 MiB: QEMU copies the first 16 at once, the rest at 8 MiB/s, reporting progress.
    let out = Command::new("qemu-io").args(["-f", "qcow2", "-c", "write -P 0x11 0 24M"]).arg(&a).output().unwrap();
    assert!(out.status.success());
    env.define_domain("d", &[("vda", &a, "qcow2")]);
    env.ok(&["start", "d"]);
    let copy = env.dir.join("copy.qcow2");
    let script = env.write(
        "copy.lua",
        &format!(
            "local lv = require('luavirt')\n\
             local dom = lv.connect():domain('d')\n\
             local job = dom:block_copy{{ disk = 'vda', dest = '{}', bandwidth = 8 }}\n\
             local changed = false\n\
             job:wait{{ pivot = true, on_progress = function() if not changed then dom:diskset('watched'):add('vda'); changed = true end end }}\n\
             print(changed)\n",
            copy.display()
        ),
    );
    let out = env.ok(&["run", "--timeout", "60", script.to_str().unwrap()]);
    assert_eq!(out, "true\n");
    assert_eq!(env.ok(&["diskset", "list", "d", "--set", "watched"]), "vda\n");
    assert_eq!(disk_image(&env, "d", "vda").0, copy);
    env.ok(&["destroy", "d"]);
}

#[test]
fn a_script_waiting_for_a_domain_lock_ends_at_its_time_limit() {
    let env = Env::new("lockwait");
    let a = env.image("a.qcow2", "qcow2", "16M");
    env.define_domain("d", &[("vda", &a, "qcow2")]);
    // Another process holds the domain (as a long change would).
    let lock = env.state.join("qemu/locks/d.lock");
    let holder = luavirt_plugin_api::fsutil::lock_exclusive(&lock).unwrap();
    let script =
        env.write("wait.lua", "local lv = require('luavirt')\nlv.connect():domain('d'):diskset('x'):add('vda')\n");
    let mut child = env
        .command(&["run", "--timeout", "2", script.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ended = child.try_wait().unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    drop(holder);
    assert!(ended.is_some(), "the script waited for the lock past its time limit");
    assert_eq!(out.status.code(), Some(124), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("time limit"));
    assert_eq!(env.ok(&["diskset", "list", "d", "--set", "x"]), "", "the change went through after the stop");
}
