//! Disk sets through the `luavirt diskset` verbs: results and exit statuses, persistence
//! across processes, disks leaving the domain, and concurrent changes.

use luavirt_plugin_api::domain::DomainXml;
use luavirt_tests::{Env, corpus, domain_name};
use std::path::Path;

fn three_disk_env(test: &str) -> Env {
    let env = Env::new(test);
    let disks: Vec<(&str, &Path, &str)> = vec![
        ("vda", Path::new("/images/a.qcow2"), "qcow2"),
        ("vdb", Path::new("/images/b.raw"), "raw"),
        ("vdc", Path::new("/scratch/c.qcow2"), "qcow2"),
    ];
    env.define_domain("web", &disks);
    env
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&env.ok(&a)).unwrap()
}

#[test]
fn add_and_remove_say_whether_they_changed_the_set_and_persist() {
    let env = three_disk_env("addremove");
    assert_eq!(env.ok(&["diskset", "add", "web", "vda"]), "Disk vda added to set 'selected' of domain 'web'\n");
    assert_eq!(env.ok(&["diskset", "add", "web", "vda"]), "Disk vda is already in set 'selected' of domain 'web'\n");
    assert_eq!(json(&env, &["diskset", "add", "web", "vda"])["change"], "already-member");
    assert_eq!(json(&env, &["diskset", "add", "web", "vdc"])["change"], "changed");
    assert_eq!(json(&env, &["diskset", "remove", "web", "vdb"])["change"], "already-absent");
    assert!(env.ok(&["diskset", "remove", "web", "vdb"]).contains("is not in set 'selected'"));
    // Every call is a new process: what is listed was persisted.
    assert_eq!(env.ok(&["diskset", "list", "web"]), "vda\nvdc\n");
    assert_eq!(env.ok(&["diskset", "size", "web"]), "2\n");
    assert_eq!(env.ok(&["diskset", "contains", "web", "vdc"]), "yes\n");
    assert_eq!(env.ok(&["diskset", "contains", "web", "vdb"]), "no\n");
    assert_eq!(json(&env, &["diskset", "contains", "web", "vdb"])["contains"], false);
    assert_eq!(json(&env, &["diskset", "remove", "web", "vda"])["change"], "changed");
    assert_eq!(json(&env, &["diskset", "list", "web"])["disks"], serde_json::json!(["vdc"]));
}

#[test]
fn named_sets_are_independent_and_add_all_remove_all_report_what_moved() {
    let env = three_disk_env("named");
    env.ok(&["diskset", "add", "web", "vdb", "--set", "migrate"]);
    let added = json(&env, &["diskset", "add-all", "web", "--set", "migrate"]);
    assert_eq!(added["added"], serde_json::json!(["vda", "vdc"]));
    assert_eq!(env.ok(&["diskset", "size", "web", "--set", "migrate"]), "3\n");
    assert_eq!(env.ok(&["diskset", "size", "web"]), "0\n");
    env.ok(&["diskset", "add", "web", "vda", "--set", "snapshot"]);
    assert_eq!(env.ok(&["diskset", "names", "web"]), "migrate\nsnapshot\n");
    let removed = json(&env, &["diskset", "remove-all", "web", "--set", "migrate"]);
    assert_eq!(removed["removed"], serde_json::json!(["vda", "vdb", "vdc"]));
    assert_eq!(env.ok(&["diskset", "list", "web", "--set", "migrate"]), "");
    assert_eq!(env.ok(&["diskset", "list", "web", "--set", "snapshot"]), "vda\n");
}

#[test]
fn disks_are_found_by_source_path_too() {
    let env = three_disk_env("bypath");
    assert!(env.ok(&["diskset", "add", "web", "/scratch/c.qcow2"]).contains("added"));
    assert_eq!(env.ok(&["diskset", "list", "web"]), "vdc\n");
}

#[test]
fn a_disk_removed_from_the_domain_leaves_its_sets() {
    let env = three_disk_env("leaves");
    env.ok(&["diskset", "add-all", "web"]);
    env.ok(&["diskset", "add", "web", "vdc", "--set", "scratch"]);
    // Redefine from the current XML minus vdc.
    let xml = env.ok(&["dumpxml", "web"]);
    let mut dom = DomainXml::parse(&xml, None).unwrap();
    let devices = dom.document_mut().root.child_mut("devices").unwrap();
    let pos = devices
        .elements()
        .position(|e| e.name() == "disk" && e.child("target").unwrap().attr("dev").as_deref() == Some("vdc"))
        .unwrap();
    devices.remove_element(pos);
    let file = env.write("web2.xml", &dom.to_xml());
    let out = env.ok(&["define", file.to_str().unwrap()]);
    assert!(out.contains("Disk vdc is no longer in the domain and left set 'scratch'"), "{out}");
    assert!(out.contains("left set 'selected'"), "{out}");
    assert_eq!(env.ok(&["diskset", "list", "web"]), "vda\nvdb\n");
    assert_eq!(env.ok(&["diskset", "names", "web"]), "selected\n");
}

#[test]
fn seed_attributes_move_into_metadata_on_the_first_change() {
    let env = Env::new("seedmove");
    let (file, xml) = corpus("odd").into_iter().find(|(f, _)| f == "selected-two-of-three.xml").unwrap();
    let path = env.write(&file, &xml);
    env.ok(&["define", path.to_str().unwrap()]);
    let name = domain_name(&xml);
    let before = env.ok(&["diskset", "list", &name]);
    assert_eq!(before.lines().count(), 2);
    // A change that does nothing writes nothing: the seeds stay.
    let first = before.lines().next().unwrap().to_string();
    env.ok(&["diskset", "add", &name, &first]);
    assert!(env.ok(&["dumpxml", &name]).contains("selected="));
    // A real change moves them into luavirt's metadata, with the same members.
    env.ok(&["diskset", "add", &name, &first, "--set", "other"]);
    let after = env.ok(&["dumpxml", &name]);
    assert!(!after.contains("selected="), "{after}");
    assert_eq!(env.ok(&["diskset", "list", &name]), before);
}

#[test]
fn concurrent_changes_from_many_processes_are_all_kept() {
    let env = three_disk_env("concurrent");
    let children: Vec<_> = (0..12)
        .map(|i| {
            let disk = ["vda", "vdb", "vdc"][i % 3];
            env.command(&["diskset", "add", "web", disk, "--set", &format!("s{i}")]).spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    for i in 0..12 {
        let disk = ["vda", "vdb", "vdc"][i % 3];
        assert_eq!(
            env.ok(&["diskset", "list", "web", "--set", &format!("s{i}")]),
            format!("{disk}\n"),
            "set s{i} lost its change"
        );
    }
}

#[test]
fn usage_errors_exit_with_2_and_operation_errors_with_1() {
    let env = three_disk_env("usage");
    env.fails(&["diskset", "add", "web"], 2);
    env.fails(&["diskset", "frobnicate", "web"], 2);
    env.fails(&["list", "--bogus"], 2);
    let err = env.fails(&["diskset", "add", "web", "vdz"], 1);
    assert_eq!(err, "error: Domain 'web' has no disk 'vdz'; its disks are: vda, vdb, vdc\n");
    let err = env.fails(&["diskset", "add", "web", "vda", "--set", "bad name"], 1);
    assert!(err.contains("Invalid disk set name \"bad name\""), "{err}");
    let err = env.fails(&["diskset", "list", "wbe"], 1);
    assert!(err.contains("Domain 'wbe' not found on qemu:///session. Did you mean 'web'?"), "{err}");
}

#[test]
fn disk_mode_reads_and_sets_esx_modes_through_snapshot_and_transient() {
    let env = three_disk_env("diskmode");
    assert_eq!(env.ok(&["disk-mode", "web", "vdc"]), "persistent\n");
    assert_eq!(
        env.ok(&["disk-mode", "web", "vdc", "independent-nonpersistent"]),
        "Disk vdc of domain 'web' is now independent-nonpersistent\n"
    );
    assert_eq!(env.ok(&["disk-mode", "web", "/scratch/c.qcow2"]), "independent-nonpersistent\n");
    let dom = DomainXml::parse(&env.ok(&["dumpxml", "web"]), None).unwrap();
    let vdc = dom.disk("vdc").unwrap();
    assert_eq!((vdc.snapshot.as_deref(), vdc.transient), (Some("no"), true));
    assert!(
        env.ok(&["disk-mode", "web", "vdc", "independent_nonpersistent"])
            .contains("is already independent-nonpersistent")
    );
    env.ok(&["disk-mode", "web", "vdc", "independent-persistent"]);
    let dom = DomainXml::parse(&env.ok(&["dumpxml", "web"]), None).unwrap();
    let vdc = dom.disk("vdc").unwrap();
    assert_eq!((vdc.snapshot.as_deref(), vdc.transient), (Some("no"), false));
    env.ok(&["disk-mode", "web", "vdc", "persistent"]);
    assert_eq!(json(&env, &["disk-mode", "web", "vdc"])["mode"], "persistent");
    let err = env.fails(&["disk-mode", "web", "vdc", "undoable"], 1);
    assert!(err.contains("can only be read"), "{err}");
    let err = env.fails(&["disk-mode", "web", "vdc", "sometimes"], 1);
    assert!(err.contains("Unknown disk mode \"sometimes\""), "{err}");
}
