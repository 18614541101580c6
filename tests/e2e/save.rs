//! Save and restore: a running domain's memory (its machine state: a CMOS byte stands for it)
//! and the disks of a set kept together; a disk outside the set is used as it is.

use luavirt_tests::{Env, hmp, image_holds, require, write_live, write_offline};
use std::path::PathBuf;

/// Domain `d`: vda qcow2 (0x11), vdb raw (0x22), vdc qcow2 (0x33); disk set `keep` = vda, vdb.
fn domain(env: &Env) -> [PathBuf; 3] {
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image("a.qcow2", "qcow2", "16M");
    let b = env.image("b.raw", "raw", "16M");
    let c = env.image("c.qcow2", "qcow2", "16M");
    write_offline(&a, "qcow2", 0x11);
    write_offline(&b, "raw", 0x22);
    write_offline(&c, "qcow2", 0x33);
    env.define_domain("d", &[("vda", &a, "qcow2"), ("vdb", &b, "raw"), ("vdc", &c, "qcow2")]);
    env.ok(&["diskset", "add", "d", "vda", "--set", "keep"]);
    env.ok(&["diskset", "add", "d", "vdb", "--set", "keep"]);
    [a, b, c]
}

/// Sets CMOS byte 0x5a of the running guest (machine state the save must carry). The guest
/// is held meanwhile: its firmware selects CMOS bytes through the same port.
fn set_cmos(env: &Env, value: u8) {
    hmp(env, "d", &["stop", "o /b 0x70 0x5a", &format!("o /b 0x71 {value:#x}"), "cont"]);
}

/// CMOS byte 0x5a, read the same way; the guest then runs.
fn cmos(env: &Env) -> String {
    hmp(env, "d", &["stop", "o /b 0x70 0x5a", "i /b 0x71", "cont"]).remove(2)
}

fn state(env: &Env) -> String {
    env.ok(&["domstate", "d"]).trim().to_string()
}

/// Whether the disk's current image (through its chain) holds `pattern`.
fn holds(env: &Env, target: &str, pattern: u8) -> bool {
    let (image, format) = luavirt_tests::disk_image(env, "d", target);
    luavirt_tests::image_holds(&image, &format, pattern)
}

#[test]
fn a_live_save_keeps_memory_and_the_set_together_and_restore_brings_both_back() {
    let env = Env::new("save-live");
    let [_, _, c] = domain(&env);
    env.ok(&["start", "d"]);
    let fresh = cmos(&env);
    assert!(!fresh.contains("a5"), "a fresh guest has {fresh}: pick another byte");
    set_cmos(&env, 0xa5);
    let saved = cmos(&env);
    assert!(saved.contains("a5"), "{saved}");
    let file = env.dir.join("d.save");
    let out = env.ok(&["save", "d", file.to_str().unwrap(), "--disk-set", "keep", "--live"]);
    assert!(out.contains("with disk(s) vda, vdb") && out.contains("it runs on"), "{out}");
    assert_eq!(state(&env), "running");
    // The file says what it holds, and holds guest memory: private.
    let head = std::fs::read(&file).unwrap();
    assert!(head.starts_with(b"LUAVIRT-SAVE 1 "), "no save header");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    // The guest goes on: its machine state and every disk change.
    set_cmos(&env, 0x3c);
    write_live(&env, "d", "vda", 0x44);
    write_live(&env, "d", "vdb", 0x45);
    write_live(&env, "d", "vdc", 0x46);
    env.ok(&["destroy", "d"]);

    let out = env.ok(&["restore", file.to_str().unwrap()]);
    assert!(out.contains("Domain 'd' restored"), "{out}");
    assert_eq!(state(&env), "running");
    assert!(cmos(&env).contains("a5"), "the machine state is not the saved one: {}", cmos(&env));
    env.ok(&["destroy", "d"]);
    // The set's disks are back at their saved state; the disk outside the set is as it was.
    assert!(holds(&env, "vda", 0x11), "vda is not at its saved state");
    assert!(holds(&env, "vdb", 0x22), "vdb is not at its saved state");
    assert!(holds(&env, "vdc", 0x46) && image_holds(&c, "qcow2", 0x46), "vdc lost what the guest wrote after the save");
    // A restored domain starts again as usual.
    env.ok(&["start", "d"]);
    env.ok(&["destroy", "d"]);
}

#[test]
fn a_save_stops_the_domain_and_restore_can_leave_it_paused() {
    let env = Env::new("save-halt");
    domain(&env);
    env.ok(&["start", "d"]);
    set_cmos(&env, 0x5e);
    let file = env.dir.join("d.save");
    // No set named: every disk a snapshot takes, qcow2 ones too (as overlays, never internally).
    let out = env.ok(&["save", "d", file.to_str().unwrap()]);
    assert!(out.contains("vda, vdb, vdc") && out.contains("shut off"), "{out}");
    assert_eq!(state(&env), "shut off");
    env.ok(&["restore", file.to_str().unwrap(), "--paused"]);
    assert_eq!(state(&env), "paused");
    assert!(cmos(&env).contains("5e"));
    env.ok(&["destroy", "d"]);
    for (t, p) in [("vda", 0x11), ("vdb", 0x22), ("vdc", 0x33)] {
        assert!(holds(&env, t, p), "{t}");
    }
}

#[test]
fn lua_saves_and_restores_through_the_same_host_api() {
    let env = Env::new("save-lua");
    domain(&env);
    env.ok(&["start", "d"]);
    set_cmos(&env, 0x6b);
    let file = env.dir.join("d.save");
    let script = env.write(
        "s.lua",
        &format!(
            r#"local lv = require('luavirt')
local c = lv.connect()
local d = c:domain('d')
local r = d:save{{ file = '{f}', disk_set = d:diskset('keep'), live = true }}
print(r.snapshot:match('^save%-') ~= nil, r.disks[1].saved, r.disks[3].saved, d:state())
d:destroy()
local back = c:restore('{f}')
print(back:name(), back:state())
"#,
            f = file.display()
        ),
    );
    let out = env.ok(&["run", script.to_str().unwrap()]);
    assert_eq!(out, "true\ttrue\tfalse\trunning\nd\trunning\n");
    assert!(cmos(&env).contains("6b"));
    env.ok(&["destroy", "d"]);
}

#[test]
fn what_cannot_be_saved_or_restored_is_refused_and_changes_nothing() {
    let env = Env::new("save-bad");
    domain(&env);
    let file = env.dir.join("d.save");
    let f = file.to_str().unwrap();
    assert!(env.fails(&["save", "d", f], 1).contains("shut off, so it has no memory to save"));
    env.ok(&["start", "d"]);
    let before = env.state_snapshot();
    let err = env.fails(&["save", "d", f, "--disk-set", "none"], 1);
    assert!(err.contains("disk set 'none' has no disks"), "{err}");
    let err = env.fails(&["save", "d", f, "--diskspec", "vda,snapshot=internal"], 1);
    assert!(err.contains("a save keeps its disks as overlays"), "{err}");
    assert!(!file.exists());
    assert_eq!(env.state_snapshot(), before);
    // Restore: a file that is no save, a running domain, a save whose snapshot is gone.
    let other = env.write("plain.bin", "QEVM");
    let err = env.fails(&["restore", other.to_str().unwrap()], 1);
    assert!(err.contains("is not a luavirt save file"), "{err}");
    env.ok(&["save", "d", f, "--live"]);
    let err = env.fails(&["restore", f], 1);
    assert!(err.contains("Domain 'd' is running; destroy it first"), "{err}");
    let copy = env.dir.join("copy.save");
    std::fs::copy(&file, &copy).unwrap();
    env.ok(&["destroy", "d"]);
    let err = env.fails(&["restore", copy.to_str().unwrap()], 1);
    assert!(err.contains("is a copy of the save in"), "{err}");
    // A save file cut short: restore fails, saying so, and leaves the domain shut off.
    let whole = std::fs::read(&file).unwrap();
    std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();
    let r = env.run_or_hang(&["restore", f], std::time::Duration::from_secs(120));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("did not start") && r.stderr.contains("load of migration failed"), "{}", r.stderr);
    assert_eq!(state(&env), "shut off");
    std::fs::write(&file, &whole).unwrap();
    let snap = env.ok(&["snapshot-list", "d", "--name"]).trim().to_string();
    env.ok(&["snapshot-delete", "d", &snap]);
    assert!(!file.exists(), "deleting the save's snapshot deletes its file");
    let err = env.fails(&["restore", copy.to_str().unwrap()], 1);
    assert!(err.contains("which is gone"), "{err}");
}
