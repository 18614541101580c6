//! `attach-disk` and `detach-disk` with real QEMU: a shut-off domain's definition changes
//! (one line-preserving edit; disk sets follow), a running one gets the disk hot-plugged
//! (virtio on `pc`, SCSI) and loses it (SCSI lets go at once; a virtio disk waits for a guest
//! that never answers, and says so), `--config` alone applies at the next start, refusals
//! name the reason, Lua does the same, a dry run changes nothing.

use luavirt_tests::{Env, hmp, image_holds, qmp, require};
use std::path::Path;

fn qemu_disks(env: &Env, dom: &str) -> Vec<(String, String)> {
    let blocks = qmp(env, dom, "query-block", serde_json::json!({}));
    blocks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| {
            let qdev = b["qdev"].as_str()?;
            let id = qdev.trim_end_matches("/virtio-backend").rsplit('/').next()?.to_string();
            Some((id, b["inserted"]["file"].as_str().unwrap_or("").to_string()))
        })
        .collect()
}

fn defined_targets(env: &Env, dom: &str) -> Vec<String> {
    let xml = env.ok(&["dumpxml", dom, "--inactive"]);
    luavirt_plugin_api::domain::DomainXml::parse(&xml, None).unwrap().disks().into_iter().map(|d| d.target).collect()
}

/// A domain with vda (virtio) and, with `scsi`, sda (so QEMU has a SCSI controller).
fn domain(env: &Env, name: &str, scsi: bool) {
    require("qemu-system-x86_64", "qemu-system-x86");
    let a = env.image(&format!("{name}-a.qcow2"), "qcow2", "16M");
    env.define_domain(name, &[("vda", &a, "qcow2")]);
    if scsi {
        let s = env.image(&format!("{name}-s.raw"), "raw", "8M");
        env.ok(&["attach-disk", name, s.to_str().unwrap(), "sda"]);
    }
}

#[test]
fn a_shut_off_domain_gets_and_loses_a_disk_in_its_definition() {
    let env = Env::new("attach-off");
    domain(&env, "d", false);
    let before = env.ok(&["dumpxml", "d"]);
    let img = env.image("new.qcow2", "qcow2", "32M");
    let img_s = img.to_str().unwrap();

    // --print-xml shows the disk and changes nothing.
    let state = env.state_snapshot();
    let xml = env.ok(&["attach-disk", "d", img_s, "vdb", "--print-xml"]);
    assert_eq!(
        xml,
        format!(
            "<disk type='file' device='disk'>\n  <driver name='qemu' type='qcow2'/>\n  <source file='{img_s}'/>\n  <target dev='vdb' bus='virtio'/>\n</disk>\n"
        )
    );
    assert_eq!(env.state_snapshot(), state, "--print-xml wrote something");

    let out = env.ok(&["attach-disk", "d", img_s, "vdb"]);
    assert_eq!(
        out,
        format!(
            "Disk vdb ({img_s}, format qcow2 (read from the image's header; --subdriver sets it)) attached to domain 'd' in its definition (if the domain runs, that applies at its next start)\n"
        )
    );
    let after = env.ok(&["dumpxml", "d"]);
    // Only the new disk was added, formatted like its sibling.
    let added = format!(
        "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='{img_s}'/>\n      <target dev='vdb' bus='virtio'/>\n    </disk>\n"
    );
    assert_eq!(after.replacen(&added, "", 1), before, "{after}");
    assert_eq!(defined_targets(&env, "d"), ["vda", "vdb"]);
    // QEMU gets it at start.
    env.ok(&["start", "d"]);
    assert!(qemu_disks(&env, "d").contains(&("vdb".to_string(), img_s.to_string())));
    env.ok(&["destroy", "d"]);

    // Refusals: a target in use, --live on a shut-off domain, an image that is not there.
    let err = env.fails(&["attach-disk", "d", img_s, "vdb"], 1);
    assert!(err.contains("Domain 'd' already has a disk vdb"), "{err}");
    let other = env.image("other.raw", "raw", "8M");
    let err = env.fails(&["attach-disk", "d", other.to_str().unwrap(), "vdc", "--live"], 1);
    assert!(
        err.contains("Domain 'd' is not running, so a disk can be attached only in its definition: drop --live"),
        "{err}"
    );
    let missing = env.dir.join("missing.qcow2");
    let err = env.fails(&["attach-disk", "d", missing.to_str().unwrap(), "vdc"], 1);
    assert!(err.contains("does not exist; create it first") && err.contains("--subdriver FORMAT"), "{err}");
    let err = env.fails(&["attach-disk", "d", other.to_str().unwrap(), "xyz1"], 1);
    assert!(err.contains("Which bus does target xyz1 use?") && err.contains("--targetbus BUS"), "{err}");
    env.fails(&["attach-disk", "d", other.to_str().unwrap(), "vdc", "--driver", "xen"], 2);
    assert_eq!(defined_targets(&env, "d"), ["vda", "vdb"]);

    // Detaching takes the disk's set memberships with it; the image stays.
    env.ok(&["diskset", "add", "d", "vdb", "--set", "nightly"]);
    let out = env.ok(&["detach-disk", "d", img_s]);
    assert_eq!(
        out,
        "Disk vdb detached from domain 'd' from its definition (if the domain runs, that applies at its next start)\nDisk vdb left set 'nightly'\n"
    );
    assert_eq!(env.ok(&["dumpxml", "d"]), before);
    assert!(img.exists());
    let err = env.fails(&["detach-disk", "d", "vdq"], 1);
    assert!(err.contains("Domain 'd' has no disk 'vdq'; its disks are: vda"), "{err}");
}

#[test]
fn a_running_domain_gets_disks_hot_plugged_and_unplugged() {
    let env = Env::new("attach-live");
    domain(&env, "r", true);
    env.ok(&["start", "r"]);
    // SCSI: plugged, written through by the guest's device, unplugged at once.
    let img = env.image("hot.qcow2", "qcow2", "16M");
    let img_s = img.to_str().unwrap();
    let out = env.ok(&["attach-disk", "r", img_s, "sdb"]);
    assert!(out.ends_with("attached to domain 'r' live and in its definition\n"), "{out}");
    assert!(qemu_disks(&env, "r").contains(&("sdb".to_string(), img_s.to_string())), "{:?}", qemu_disks(&env, "r"));
    assert_eq!(defined_targets(&env, "r"), ["vda", "sda", "sdb"]);
    let said = hmp(&env, "r", &["qemu-io -d sdb \"write -P 0x5c 0 1M\""]);
    assert_eq!(said[0], "");
    let out = env.ok(&["detach-disk", "r", "sdb"]);
    assert_eq!(out, "Disk sdb detached from domain 'r' live and from its definition\n");
    assert!(!qemu_disks(&env, "r").iter().any(|(t, _)| t == "sdb"));
    let nodes = qmp(&env, "r", "query-named-block-nodes", serde_json::json!({ "flat": true }));
    assert!(!nodes.to_string().contains("lv-sdb"), "block nodes left: {nodes}");
    assert_eq!(defined_targets(&env, "r"), ["vda", "sda"]);
    assert!(image_holds(&img, "qcow2", 0x5c), "the guest's write did not reach the image");
    // And again: the same target and image plug in once more.
    env.ok(&["attach-disk", "r", img_s, "sdb"]);
    env.ok(&["detach-disk", "r", "sdb", "--live", "--config"]);

    // virtio on a pc machine plugs in; unplugging needs the guest, which has no OS here.
    let v = env.image("v.raw", "raw", "8M");
    env.ok(&["attach-disk", "r", v.to_str().unwrap(), "vdb"]);
    assert!(qemu_disks(&env, "r").iter().any(|(t, _)| t == "vdb"));
    let err = env.fails(&["detach-disk", "r", "vdb"], 1);
    assert!(
        err.contains("The guest of domain 'r' has not let disk vdb go within 10 s")
            && err.contains("the definition keeps the disk"),
        "{err}"
    );
    assert_eq!(defined_targets(&env, "r"), ["vda", "sda", "vdb"]);
    let reason: serde_json::Value = serde_json::from_str(&env.ok(&["domstate", "r", "--reason", "--json"])).unwrap();
    assert!(reason["reason"].is_null(), "{reason}");

    // Refusals that name the reason, and change nothing.
    let state = env.state_snapshot();
    let ide = env.image("i.raw", "raw", "8M");
    let err = env.fails(&["attach-disk", "r", ide.to_str().unwrap(), "hdb"], 1);
    assert!(err.contains("Disk hdb is on bus 'ide'") && err.contains("--config alone"), "{err}");
    let err = env.fails(&["attach-disk", "r", ide.to_str().unwrap(), "vdc", "--live"], 1);
    assert!(err.contains("keeps one definition per domain") && err.contains("add --config"), "{err}");
    let err = env.fails(&["attach-disk", "r", ide.to_str().unwrap(), "vdc", "--current"], 1);
    assert!(err.contains("add --config"), "{err}");
    let err =
        env.fails(&["attach-disk", "r", ide.to_str().unwrap(), "vdc", "--disk-mode", "independent-nonpersistent"], 1);
    assert!(err.contains("throw-away overlay") && err.contains("--config alone"), "{err}");
    let err = env.fails(&["attach-disk", "r", img_s, "vda"], 1);
    assert!(err.contains("already has a disk vda"), "{err}");
    assert_eq!(env.state_snapshot(), state);

    // --config alone on a running domain: QEMU does not have it until the next start.
    env.ok(&["attach-disk", "r", ide.to_str().unwrap(), "vdc", "--config"]);
    assert!(!qemu_disks(&env, "r").iter().any(|(t, _)| t == "vdc"));
    env.ok(&["destroy", "r"]);
    env.ok(&["start", "r"]);
    assert!(qemu_disks(&env, "r").iter().any(|(t, _)| t == "vdc"));
    env.ok(&["destroy", "r"]);
}

#[test]
fn lua_attaches_and_detaches_and_a_dry_run_does_neither() {
    let env = Env::new("attach-lua");
    domain(&env, "l", true);
    env.ok(&["start", "l"]);
    let img = env.image("lua.qcow2", "qcow2", "16M");
    let dry = env.write(
        "dry.lua",
        &format!(
            "local d = require('luavirt').connect():domain('l')\nlocal c = d:attach_disk{{ source = '{}', target = 'sdb' }}\nassert(c.live and c.config)\nassert(d:disk('sdb').format == 'qcow2')\n",
            img.display()
        ),
    );
    let state = env.state_snapshot();
    let out = env.ok(&["run", "--dry-run", dry.to_str().unwrap()]);
    assert!(out.contains("l: attach disk sdb (live and in the definition)"), "{out}");
    assert_eq!(env.state_snapshot(), state);
    assert!(!qemu_disks(&env, "l").iter().any(|(t, _)| t == "sdb"));

    let script = env.write(
        "attach.lua",
        &format!(
            r#"
local d = require("luavirt").connect():domain("l")
local c = d:attach_disk{{ source = "{img}", target = "sdb", serial = "LV1", mode = "independent-persistent" }}
assert(c.target == "sdb" and c.live and c.config)
local disk = d:disk("sdb")
assert(disk.mode == "independent-persistent" and disk.serial == "LV1" and disk.bus == "scsi")
local ok, err = pcall(function() return d:attach_disk{{ source = "{img}", target = "sdc", live = true }} end)
assert(not ok and err.code == "unsupported", tostring(err))
local ok2, err2 = pcall(function() return d:attach_disk{{ source = "{img}", taget = "sdc" }} end)
assert(not ok2 and tostring(err2):find("taget"), tostring(err2))
d:diskset("backup"):add("sdb")
local r = d:detach_disk{{ disk = "sdb" }}
assert(r.live and r.config and r.left_sets[1][1] == "backup" and r.left_sets[1][2] == "sdb")
print("lua ok")
"#,
            img = img.display()
        ),
    );
    let out = env.ok(&["run", script.to_str().unwrap()]);
    assert!(out.contains("lua ok"), "{out}");
    assert!(!qemu_disks(&env, "l").iter().any(|(t, _)| t == "sdb"));
    assert!(Path::new(&img).exists());
    env.ok(&["destroy", "l"]);
}
