//! Bad input gets a clear error that names the object (and file and line where there is one),
//! and nothing on disk changes.

use luavirt_tests::{Env, domain_xml, require};
use std::path::Path;

fn env_with_domain(test: &str) -> Env {
    let env = Env::new(test);
    env.define_domain("db", &[("vda", Path::new("/nowhere/db.qcow2"), "qcow2")]);
    env
}

#[test]
fn malformed_xml_names_file_line_and_column_and_defines_nothing() {
    let env = env_with_domain("malformed");
    let before = env.state_snapshot();
    let f = env.write(
        "broken.xml",
        "<domain type='qemu'>\n  <name>x</name>\n  <devices>\n    <disk type='file'>\n  </devices>\n</domain>\n",
    );
    let err = env.fails(&["define", f.to_str().unwrap()], 1);
    assert!(err.contains(&format!("{}:5:", f.display())), "{err}");
    assert!(err.contains("closing tag </devices> does not match the open element <disk>"), "{err}");
    let f = env.write("entity.xml", "<domain>\n<name>a&b</name></domain>");
    let err = env.fails(&["define", f.to_str().unwrap()], 1);
    assert!(err.contains(":2:") && err.contains("'&'"), "{err}");
    assert_eq!(env.state_snapshot(), before);
}

#[test]
fn a_disk_target_used_twice_is_refused() {
    let env = env_with_domain("twice");
    let before = env.state_snapshot();
    let xml = domain_xml("dup", &[("vda", Path::new("/a"), "raw"), ("vda", Path::new("/b"), "raw")]);
    let f = env.write("dup.xml", &xml);
    let err = env.fails(&["define", f.to_str().unwrap()], 1);
    assert!(err.contains("disk target 'vda' is used twice (lines 9 and 14)"), "{err}");
    assert_eq!(env.state_snapshot(), before);
    env.fails(&["dumpxml", "dup"], 1);
}

#[test]
fn unknown_names_are_errors_that_suggest_close_ones() {
    let env = env_with_domain("unknown");
    let before = env.state_snapshot();
    let err = env.fails(&["dumpxml", "bd"], 1);
    assert_eq!(err, "error: Domain 'bd' not found on qemu:///session. Did you mean 'db'?\n");
    let err = env.fails(&["start", "zzzzzzzz"], 1);
    assert!(err.contains("`luavirt list --all` shows every domain"), "{err}");
    let err = env.fails(&["diskset", "remove", "db", "vdq"], 1);
    assert!(err.contains("Domain 'db' has no disk 'vdq'; its disks are: vda"), "{err}");
    let err = env.fails(&["--json", "undefine", "bd"], 1);
    let v: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(v["error"]["code"], "no-domain");
    assert_eq!(env.state_snapshot(), before);
}

#[test]
fn a_missing_image_stops_start_with_the_disk_file_and_line() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = env_with_domain("missing");
    let before = env.state_snapshot();
    let err = env.fails(&["start", "db"], 1);
    assert!(
        err.contains("Disk vda of domain 'db': image /nowhere/db.qcow2 does not exist (definition line 10); create it (qemu-img create -f qcow2 /nowhere/db.qcow2 SIZE)"),
        "{err}"
    );
    assert_eq!(env.state_snapshot(), before);
    let err = env.fails(&["domblklist", "db", "--details"], 1);
    assert!(err.contains("image /nowhere/db.qcow2 does not exist"), "{err}");
}

#[test]
fn a_corrupt_state_file_is_named_and_left_alone() {
    let env = env_with_domain("corrupt");
    let def = env.state.join("qemu/domains/db.xml");
    std::fs::write(&def, "<domain><name>db</name><devices>").unwrap();
    let before = env.state_snapshot();
    let err = env.fails(&["list", "--all"], 1);
    assert!(
        err.contains("The stored definition of domain 'db' is corrupt") && err.contains(&def.display().to_string()),
        "{err}"
    );
    env.fails(&["diskset", "add", "db", "vda"], 1);
    assert_eq!(env.state_snapshot(), before);

    let env = env_with_domain("corrupt2");
    let run = env.state.join("qemu/run/db");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("state.json"), "{ not json").unwrap();
    let before = env.state_snapshot();
    let err = env.fails(&["domstate", "db"], 1);
    assert!(err.contains("The run state") && err.contains("state.json of domain 'db' is corrupt"), "{err}");
    assert_eq!(env.state_snapshot(), before);
}

#[test]
fn a_uuid_clash_is_refused() {
    let env = env_with_domain("uuid");
    let uuid = env.ok(&["dumpxml", "db"]).split("<uuid>").nth(1).unwrap().split("</uuid>").next().unwrap().to_string();
    let xml =
        domain_xml("other", &[]).replace("<name>other</name>", &format!("<name>other</name>\n  <uuid>{uuid}</uuid>"));
    let f = env.write("other.xml", &xml);
    let err = env.fails(&["define", f.to_str().unwrap()], 1);
    assert!(err.contains(&format!("UUID {uuid} is already used by domain 'db'")), "{err}");
    let xml = domain_xml("db", &[])
        .replace("<name>db</name>", "<name>db</name>\n  <uuid>00000000-0000-0000-0000-000000000001</uuid>");
    let f = env.write("db2.xml", &xml);
    let err = env.fails(&["define", f.to_str().unwrap()], 1);
    assert!(err.contains("Domain 'db' already exists with UUID"), "{err}");
}

#[test]
fn deeply_nested_xml_is_refused_with_file_and_line_instead_of_crashing() {
    let env = env_with_domain("deep");
    let before = env.state_snapshot();
    // 200,000 levels overflowed the stack of `define` (exit by SIGABRT).
    let depth = 200_000;
    let xml = format!(
        "<domain type='qemu'>\n  <name>deep</name>\n  <metadata>\n{}{}</metadata>\n</domain>\n",
        "<x:a xmlns:x='urn:x'>\n".repeat(depth),
        "</x:a>".repeat(depth)
    );
    let f = env.write("deep.xml", &xml);
    let err = env.fails(&["define", f.to_str().unwrap()], 1);
    assert!(err.contains(&format!("{}:258:1: <x:a> is nested 257 elements deep", f.display())), "{err}");
    assert!(err.contains("this document may nest at most 256 deep"), "{err}");
    // An unclosed one stops at the same place.
    let f = env.write("deeper.xml", &format!("<domain>{}", "<a>".repeat(depth)));
    let err = env.fails(&["define", f.to_str().unwrap()], 1);
    assert!(err.contains(&format!("{}:1:774: <a> is nested 257", f.display())), "{err}");
    assert_eq!(env.state_snapshot(), before);
}
