//! The everyday verbs a virsh user reaches for, with real images and real QEMU: `edit` (the
//! editor is a script), `dominfo`, `domblkinfo`, `undefine --snapshots-metadata` /
//! `--remove-all-storage` / `--storage`, `snapshot-create DOM FILE.xml`, `snapshot-edit`,
//! `snapshot-parent`, domains named by UUID or Id, and `disk-mode` on a running domain; each
//! also from Lua where the Lua API has it.

use luavirt_tests::{Env, require, write_offline};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn json(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&env.ok(&all)).unwrap()
}

/// An editor: a shell script that runs `body` with the file as `$1`.
fn editor(env: &Env, name: &str, body: &str) -> PathBuf {
    let p = env.write(name, &format!("#!/bin/sh\n{body}\n"));
    luavirt_tests::set_mode(&p, 0o755);
    p
}

/// Runs `luavirt args` with EDITOR set to `editor` (VISUAL unset).
fn with_editor(env: &Env, editor: &Path, args: &[&str]) -> luavirt_tests::Run {
    env.command(args).env("EDITOR", editor).env_remove("VISUAL").output().unwrap().into()
}

/// Domain `name`: vda a qcow2 on a backing image, vdb a raw independent disk.
fn two_disks(env: &Env, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let base = env.image(&format!("{name}-base.qcow2"), "qcow2", "32M");
    write_offline(&base, "qcow2", 0x11);
    let a = env.dir.join(format!("{name}-a.qcow2"));
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(&a)
        .output()
        .unwrap();
    assert!(made.status.success());
    let b = env.image(&format!("{name}-b.raw"), "raw", "8M");
    env.define_domain(name, &[("vda", &a, "qcow2"), ("vdb", &b, "raw")]);
    env.ok(&["disk-mode", name, "vdb", "independent-persistent"]);
    (base, a, b)
}

#[test]
fn dominfo_and_domblkinfo_describe_the_domain_and_its_images() {
    let env = Env::new("dominfo");
    let (base, a, b) = two_disks(&env, "info");
    env.ok(&["snapshot-create-as", "info", "s1"]);
    env.ok(&["diskset", "add", "info", "vda", "--set", "nightly"]);
    let out = env.ok(&["dominfo", "info"]);
    let uuid = json(&env, &["dominfo", "info"])["uuid"].as_str().unwrap().to_string();
    for line in [
        "Id:               -\n",
        "Name:             info\n",
        &format!("UUID:             {uuid}\n"),
        "State:            shut off\n",
        "CPU(s):           1\n",
        "Max memory:       65536 KiB\n",
        "Disks:            vda, vdb\n",
        "Snapshots:        1\n",
        "Current snapshot: s1\n",
        "Disk sets:        nightly\n",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }

    // Sizes as qemu-img and the file system see them; the snapshot put vda on an overlay.
    let top = PathBuf::from(json(&env, &["domblklist", "info"])[0]["source"].as_str().unwrap());
    assert_ne!(top, a);
    let info: Value = serde_json::from_slice(
        &std::process::Command::new("qemu-img").args(["info", "--output=json"]).arg(&top).output().unwrap().stdout,
    )
    .unwrap();
    let file_len = std::fs::metadata(&top).unwrap().len();
    let out = env.ok(&["domblkinfo", "info", "vda"]);
    assert_eq!(
        out,
        format!(
            "Capacity:       {}\nAllocation:     {}\nPhysical:       {file_len}\n",
            info["virtual-size"], info["actual-size"]
        )
    );
    // A disk by its path, in JSON: the same disk record domblklist gives.
    let v = json(&env, &["domblkinfo", "info", b.to_str().unwrap()]);
    assert_eq!((v["target"].as_str(), v["capacity"].as_u64()), (Some("vdb"), Some(8 << 20)));
    assert_eq!((v["physical"].as_u64(), v["mode"].as_str()), (Some(8 << 20), Some("independent-persistent")));
    let v = json(&env, &["domblkinfo", "info", "vda"]);
    assert_eq!(v["backing"][0]["path"], a.to_str().unwrap());
    assert_eq!(v["backing"][1]["path"], base.to_str().unwrap());
    assert_eq!(v, json(&env, &["domblklist", "info"])[0]);
    let all = env.ok(&["domblkinfo", "info", "--all", "--human"]);
    assert!(all.contains(" vdb      8 MiB ") && all.contains("Physical"), "{all}");
    let err = env.fails(&["domblkinfo", "info", "vdz"], 1);
    assert!(err.contains("vdz") && err.contains("vda, vdb"), "{err}");
}

#[test]
fn a_domain_is_found_by_name_uuid_or_id() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("lookup");
    two_disks(&env, "look");
    let uuid = json(&env, &["dominfo", "look"])["uuid"].as_str().unwrap().to_string();
    assert_eq!(env.ok(&["domstate", &uuid]), "shut off\n");
    assert_eq!(env.ok(&["domstate", &uuid.to_uppercase()]), "shut off\n");
    // An Id only while it runs: shut off, a number names nothing.
    let err = env.fails(&["domstate", "1"], 1);
    assert!(err.contains("Domain '1' not found"), "{err}");
    env.ok(&["start", "look"]);
    let id = json(&env, &["list"])[0]["id"].as_i64().unwrap();
    let list = env.ok(&["list"]);
    assert!(list.contains(&format!(" {id} ")) && list.contains(" look "), "{list}");
    assert_eq!(env.ok(&["domstate", &id.to_string()]), "running\n");
    assert!(env.ok(&["dominfo", &id.to_string()]).contains(&format!("Id:               {id}\n")));
    assert!(env.ok(&["domblklist", &uuid]).contains(" vda "));
    // Lua's conn:domain takes the same three.
    let script = env.write(
        "look.lua",
        &format!(
            "local c = require('luavirt').connect()\nfor _, r in ipairs{{ 'look', '{uuid}', '{id}' }} do print(c:domain(r):name()) end\n"
        ),
    );
    assert_eq!(env.ok(&["run", script.to_str().unwrap()]), "look\nlook\nlook\n");
    env.ok(&["destroy", &id.to_string()]);
    assert_eq!(env.ok(&["domstate", "look"]), "shut off\n");
}

#[test]
fn edit_defines_what_the_editor_wrote_and_an_unchanged_file_changes_nothing() {
    let env = Env::new("edit");
    two_disks(&env, "ed");
    let before = env.state_snapshot();
    let untouched = editor(&env, "keep.sh", "exit 0");
    let r = with_editor(&env, &untouched, &["edit", "ed"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "Domain 'ed' XML configuration not changed.\n"), "{}", r.stderr);
    assert_eq!(env.state_snapshot(), before, "an unchanged file wrote something");

    // What the editor writes is validated, then defined.
    let two_cpus = editor(&env, "cpus.sh", r#"sed -i 's|<vcpu>1</vcpu>|<vcpu>2</vcpu>|' "$1""#);
    let r = with_editor(&env, &two_cpus, &["edit", "ed"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "Domain 'ed' XML configuration edited.\n"), "{}", r.stderr);
    assert!(env.ok(&["dumpxml", "ed"]).contains("<vcpu>2</vcpu>"));
    assert_eq!(json(&env, &["dominfo", "ed"])["vcpus"], 2);

    // Broken XML: an error naming the file and line, nothing changed, the edit kept.
    let before = env.state_snapshot();
    let breaks = editor(&env, "break.sh", r#"sed -i 's|<vcpu>2</vcpu>|<vcpu>3</vcpux>|' "$1""#);
    let r = with_editor(&env, &breaks, &["edit", "ed"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let kept = r.stderr.lines().find_map(|l| l.strip_prefix("Nothing was changed; your edit is kept in ")).unwrap();
    assert!(r.stderr.contains(&format!("error: {kept}:5:")), "{}", r.stderr);
    assert!(std::fs::read_to_string(kept).unwrap().contains("<vcpu>3</vcpux>"));
    assert_eq!(env.state_snapshot(), before);

    // A rename is refused (it would define a second domain), and so is an editor that fails.
    let renames = editor(&env, "rename.sh", r#"sed -i 's|<name>ed</name>|<name>other</name>|' "$1""#);
    let r = with_editor(&env, &renames, &["edit", "ed"]);
    assert!(r.code == 1 && r.stderr.contains("renames domain 'ed' to 'other'"), "{}", r.stderr);
    let fails = editor(&env, "fail.sh", "exit 3");
    let r = with_editor(&env, &fails, &["edit", "ed"]);
    assert!(r.code == 1 && r.stderr.contains("failed (exit status: 3); nothing was changed"), "{}", r.stderr);
    assert_eq!(env.state_snapshot(), before);
    assert_eq!(env.ok(&["list", "--all", "--name"]), "ed\n");
}

#[test]
fn undefine_forgets_snapshots_and_removes_only_the_domains_own_images() {
    let env = Env::new("undefine");
    let (base, a, b) = two_disks(&env, "gone");
    let shared = env.image("shared.qcow2", "qcow2", "8M");
    let iso = env.image("cd.iso", "raw", "1M");
    let xml = env.ok(&["dumpxml", "gone"]).replace(
        "  </devices>",
        &format!(
            "    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vdc' bus='virtio'/></disk>\n    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='{}'/><target dev='hdc' bus='ide'/><readonly/></disk>\n  </devices>",
            shared.display(),
            iso.display()
        ),
    );
    env.ok(&["define", env.write("gone.xml", &xml).to_str().unwrap()]);
    env.define_domain("neighbour", &[("vda", &shared, "qcow2")]);
    env.ok(&["snapshot-create-as", "gone", "s1", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    let overlay = PathBuf::from(json(&env, &["domblklist", "gone"])[0]["source"].as_str().unwrap());

    // Snapshots without --snapshots-metadata: refused before anything changes.
    let before = env.state_snapshot();
    let err = env.fails(&["undefine", "gone", "--remove-all-storage"], 1);
    assert!(err.contains("has 1 snapshot(s)") && err.contains("--snapshots-metadata"), "{err}");
    assert_eq!(env.state_snapshot(), before);
    assert!(overlay.exists());

    let v = json(&env, &["undefine", "gone", "--snapshots-metadata", "--remove-all-storage"]);
    assert_eq!(v["snapshots_forgotten"], serde_json::json!(["s1"]));
    let removed: Vec<&str> = v["removed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(removed, [overlay.to_str().unwrap(), b.to_str().unwrap()]);
    let kept: Vec<(&str, &str)> = v["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["path"].as_str().unwrap(), k["reason"].as_str().unwrap()))
        .collect();
    let why = |p: &Path| kept.iter().find(|(k, _)| *k == p.to_str().unwrap()).map(|(_, w)| *w).unwrap_or("");
    assert!(why(&a).contains("a backing image of disk vda"), "{kept:?}");
    assert!(why(&base).contains("a backing image of disk vda"), "{kept:?}");
    assert!(why(&shared).contains("domain 'neighbour' uses it too"), "{kept:?}");
    assert!(why(&iso).contains("disk hdc is a cdrom (name it with --storage hdc"), "{kept:?}");
    assert!(!overlay.exists() && !b.exists());
    assert!(a.exists() && base.exists() && shared.exists() && iso.exists());
    assert_eq!(env.ok(&["list", "--all", "--name"]), "neighbour\n");

    // --storage names the disks: a CD-ROM too, when named.
    let c = env.image("n-cd.iso", "raw", "1M");
    let xml = env.ok(&["dumpxml", "neighbour"]).replace(
        "  </devices>",
        &format!(
            "    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='{}'/><target dev='hdc' bus='ide'/><readonly/></disk>\n  </devices>",
            c.display()
        ),
    );
    env.ok(&["define", env.write("n.xml", &xml).to_str().unwrap()]);
    let out = env.ok(&["undefine", "neighbour", "--storage", "hdc"]);
    assert_eq!(out, format!("Domain 'neighbour' has been undefined\nRemoved image {}\n", c.display()));
    assert!(!c.exists() && shared.exists());

    // An image already gone is no reason to keep the definition.
    env.define_domain("lost", &[("vda", &shared, "qcow2")]);
    std::fs::remove_file(&shared).unwrap();
    let out = env.ok(&["undefine", "lost", "--remove-all-storage"]);
    assert_eq!(
        out,
        format!(
            "Domain 'lost' has been undefined\nKept {}: nothing to remove: disk vda's image does not exist\n",
            shared.display()
        )
    );
}

#[test]
fn lua_undefines_with_the_same_options_and_reads_info() {
    let env = Env::new("luaundef");
    let (_, _, b) = two_disks(&env, "lu");
    env.ok(&["snapshot-create-as", "lu", "s1"]);
    let script = env.write(
        "u.lua",
        r#"
local dom = require("luavirt").connect():domain("lu")
local info = dom:info()
print(info.name, info.vcpus, info.snapshots, info.state)
local b = dom:block_info("vdb")
print(b.target, b.capacity, b.mode)
local ok, err = pcall(function() dom:undefine() end)
print(ok, tostring(err):match("snapshots_metadata = true") ~= nil)
local r = dom:undefine{ snapshots_metadata = true, storage = { "vdb" } }
print(r.snapshots_forgotten[1], #r.removed)
"#,
    );
    let out = env.ok(&["run", script.to_str().unwrap()]);
    assert_eq!(out, "lu\t1\t1\tshut off\nvdb\t8388608\tindependent-persistent\nfalse\ttrue\ns1\t1\n");
    assert!(!b.exists());
}

#[test]
fn snapshots_from_xml_edited_and_their_parents() {
    let env = Env::new("snapxml");
    two_disks(&env, "sx");
    let file = env.write(
        "s1.xml",
        "<domainsnapshot>\n  <name>before-upgrade</name>\n  <description>the old kernel</description>\n  <disks>\n    <disk name='vda' snapshot='external'/>\n    <disk name='vdb' snapshot='no'/>\n  </disks>\n</domainsnapshot>\n",
    );
    assert_eq!(env.ok(&["snapshot-create", "sx", file.to_str().unwrap()]), "Domain snapshot before-upgrade created\n");
    let info = json(&env, &["snapshot-list", "sx"]);
    assert_eq!(info[0]["description"], "the old kernel");
    assert_eq!(info[0]["disks"][0]["snapshot"], "external");
    assert!(json(&env, &["domblklist", "sx"])[0]["source"].as_str().unwrap().ends_with(".before-upgrade"));
    // Without a file: a name from the time, the disks' defaults.
    let out = env.ok(&["snapshot-create", "sx"]);
    let second = out.strip_prefix("Domain snapshot ").and_then(|s| s.strip_suffix(" created\n")).unwrap().to_string();
    assert_eq!(env.ok(&["snapshot-parent", "sx", &second]), "before-upgrade\n");
    // "-" reads the XML from standard input.
    let mut child = env
        .command(&["snapshot-create", "sx", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"<domainsnapshot><name>piped</name></domainsnapshot>")
        .unwrap();
    let piped = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "Domain snapshot piped created\n");
    assert_eq!(env.ok(&["snapshot-parent", "sx", "piped"]), format!("{second}\n"));
    env.ok(&["snapshot-delete", "sx", "piped"]);
    assert_eq!(env.ok(&["snapshot-parent", "sx", "--current"]), "before-upgrade\n");
    let err = env.fails(&["snapshot-parent", "sx", "before-upgrade"], 1);
    assert!(err.contains("has no parent (it is a root)"), "{err}");
    // A stored record (snapshot-dumpxml output) is not a request.
    let before = env.state_snapshot();
    let dumped = env.write("dumped.xml", &env.ok(&["snapshot-dumpxml", "sx", "before-upgrade"]));
    let err = env.fails(&["snapshot-create", "sx", dumped.to_str().unwrap()], 1);
    assert!(err.contains(&format!("{}: <creationTime> belongs to the record", dumped.display())), "{err}");
    assert_eq!(env.state_snapshot(), before);

    // snapshot-edit: the description changes; anything else is refused; unchanged is nothing.
    let describe = editor(&env, "desc.sh", r#"sed -i 's|the old kernel|kernel 6.1, before the upgrade|' "$1""#);
    let r = with_editor(&env, &describe, &["snapshot-edit", "sx", "before-upgrade"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "Snapshot before-upgrade edited.\n"), "{}", r.stderr);
    assert!(
        env.ok(&["snapshot-dumpxml", "sx", "before-upgrade"])
            .contains("<description>kernel 6.1, before the upgrade</description>")
    );
    let before = env.state_snapshot();
    let r = with_editor(&env, &editor(&env, "same.sh", "exit 0"), &["snapshot-edit", "sx", "before-upgrade"]);
    assert_eq!(r.stdout, "Snapshot before-upgrade XML configuration not changed.\n");
    let r = with_editor(
        &env,
        &editor(&env, "state.sh", r#"sed -i 's|<state>shutoff|<state>running|' "$1""#),
        &["snapshot-edit", "sx", "--current"],
    );
    assert!(r.code == 1 && r.stderr.contains("only its <description> can be changed"), "{}", r.stderr);
    assert_eq!(env.state_snapshot(), before);

    // Lua: snap:set_description and snap:parent.
    let script = env.write(
        "s.lua",
        &format!(
            "local dom = require('luavirt').connect():domain('sx')\nlocal s = dom:find_snapshot('{second}')\nprint(s:set_description('nightly'), s:set_description('nightly'), s:parent():name())\n"
        ),
    );
    assert_eq!(env.ok(&["run", script.to_str().unwrap()]), "true\tfalse\tbefore-upgrade\n");
    assert!(env.ok(&["snapshot-dumpxml", "sx", &second]).contains("<description>nightly</description>"));
}

#[test]
fn disk_mode_on_a_running_domain_applies_at_the_next_start() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("livemode");
    let a = env.image("m-a.qcow2", "qcow2", "16M");
    let c = env.image("m-c.qcow2", "qcow2", "16M");
    env.define_domain("m", &[("vda", &a, "qcow2"), ("vdc", &c, "qcow2")]);
    env.ok(&["disk-mode", "m", "vdc", "independent-nonpersistent"]);
    env.ok(&["start", "m"]);

    // Snapshot participation alone changes now, also asked --live.
    let out = env.ok(&["disk-mode", "m", "vda", "independent-persistent", "--config", "--live"]);
    assert_eq!(out, "Disk vda of domain 'm' is now independent-persistent\n");
    let v = json(&env, &["disk-mode", "m", "vda", "persistent"]);
    assert_eq!((v["changed"].as_bool(), v["applies"].as_str()), (Some(true), Some("now")));

    // Whether writes are kept is set at start: --live is refused and changes nothing.
    let before = env.state_snapshot();
    let err = env.fails(&["disk-mode", "m", "vdc", "persistent", "--config", "--live"], 1);
    assert!(
        err.contains("cannot change from independent-nonpersistent to persistent live") && err.contains("Drop --live"),
        "{err}"
    );
    let err = env.fails(&["disk-mode", "m", "vdc", "persistent", "--live"], 1);
    assert!(err.contains("--live goes with --config"), "{err}");
    // Reading a mode takes neither flag: it is the definition's.
    env.fails(&["disk-mode", "m", "vdc", "--live"], 2);
    assert_eq!(env.state_snapshot(), before);
    let out = env.ok(&["disk-mode", "m", "vdc", "persistent", "--config"]);
    assert_eq!(
        out,
        "Disk vdc of domain 'm' is now persistent; the running domain keeps the disk as it started, and the new mode applies at its next start\n"
    );
    let details = env.ok(&["domblklist", "m", "--details"]);
    assert!(details.contains("Mode") && details.contains(" vdc ") && details.contains(" persistent "), "{details}");
    assert_eq!(json(&env, &["domblklist", "m"])[1]["mode"], "persistent");

    // Until then the disk still runs on its throw-away overlay: a snapshot of it is refused.
    let err = env.fails(&["snapshot-create-as", "m", "s1", "--disk-only"], 1);
    assert!(
        err.contains("Disk vdc of domain 'm' runs on a throw-away overlay")
            && err.contains("--diskspec vdc,snapshot=no"),
        "{err}"
    );
    env.ok(&["snapshot-create-as", "m", "s1", "--disk-only", "--diskspec", "vda", "--diskspec", "vdc,snapshot=no"]);
    env.ok(&["destroy", "m"]);
    env.ok(&["start", "m"]);
    env.ok(&["snapshot-create-as", "m", "s2", "--disk-only"]);
    env.ok(&["destroy", "m"]);

    // Lua says when it applies.
    env.ok(&["start", "m"]);
    let script = env.write(
        "mode.lua",
        "local d = require('luavirt').connect():domain('m'):disk('vda')\nprint(d:set_mode('independent-nonpersistent'))\n",
    );
    assert_eq!(env.ok(&["run", script.to_str().unwrap()]), "true\tnext-start\n");
    env.ok(&["destroy", "m"]);
}
