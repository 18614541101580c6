//! The `.vmsd` reader and writer on the files in tests/data/vmx/vmsd: byte-identical round
//! trips, the model read from ESX and Workstation files, snapshots added and removed with the
//! indexes kept dense, and every inconsistency named with its line.

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vmx/vmsd").join(name)).unwrap()
}

fn parse(bytes: &[u8]) -> Vmsd {
    Vmsd::parse(bytes, Path::new("/ds/vm/vm.vmsd")).unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    Vmsd::parse(text.as_bytes(), Path::new("vm.vmsd")).unwrap_err().to_string()
}

fn text(v: &Vmsd) -> String {
    String::from_utf8(v.to_bytes()).unwrap()
}

#[test]
fn files_write_back_byte_identical() {
    for name in ["esx-four.vmsd", "workstation-win1252.vmsd"] {
        let bytes = fixture(name);
        assert_eq!(parse(&bytes).to_bytes(), bytes, "{name}");
    }
}

#[test]
fn an_esx_file_reads_as_a_tree_with_disks_and_times() {
    let v = parse(&fixture("esx-four.vmsd"));
    let names: Vec<(&str, u32, Option<u32>)> =
        v.snapshots().iter().map(|s| (s.name.as_str(), s.uid, s.parent)).collect();
    assert_eq!(
        names,
        [("post install", 1, None), ("tuned", 2, Some(1)), ("app 1.0", 3, Some(2)), ("app 2.0 trial", 5, Some(2))]
    );
    assert_eq!(v.current().unwrap().name, "app 2.0 trial");
    let first = &v.snapshots()[0];
    assert_eq!(first.description, "clean system\nbefore \"tuning\"");
    assert_eq!(first.vmsn.as_deref(), Some("web01-Snapshot1.vmsn"));
    assert_eq!(
        first.disks,
        [
            SnapshotDisk { file: "web01.vmdk".into(), node: "scsi0:0".into(), line: 11 },
            SnapshotDisk { file: "web01_3.vmdk".into(), node: "scsi0:8".into(), line: 13 },
        ]
    );
    assert_eq!(v.snapshots()[3].created, Some(time::from_high_low(416404, 1361996416)));
}

#[test]
fn a_workstation_file_in_windows_1252_with_crlf_and_odd_case_is_read() {
    let v = parse(&fixture("workstation-win1252.vmsd"));
    assert_eq!(v.snapshots()[0].uid, 1, "Snapshot0.UID is read without case");
    assert_eq!(v.snapshots()[0].name, "Vor dem Update – Büro");
    assert_eq!(v.snapshots()[0].description, "Preis: 450 €");
    assert_eq!(v.snapshots()[1].disks[0].file, "Büro-PC-000001.vmdk");
    assert_eq!(v.current().unwrap().name, "Nach dem Update");
}

fn new(name: &str, disks: &[(&str, &str)]) -> NewSnapshot {
    NewSnapshot {
        name: name.into(),
        description: String::new(),
        vmsn: format!("vm-Snapshot{name}.vmsn"),
        created: time::from_high_low(416404, 1361996416),
        disks: disks.iter().map(|(f, n)| (f.to_string(), n.to_string())).collect(),
    }
}

#[test]
fn a_first_snapshot_creates_the_file_as_vmware_writes_it() {
    let mut v = Vmsd::empty(Path::new("/ds/vm/vm.vmsd"), Encoding::Utf8, b"\n");
    assert_eq!(v.original(), None);
    let uid = v.add(&new("s1", &[("vm.vmdk", "scsi0:0"), ("vm_1.vmdk", "sata0:1")])).unwrap();
    assert_eq!(uid, 1);
    assert_eq!(
        text(&v),
        ".encoding = \"UTF-8\"
snapshot.lastUID = \"1\"
snapshot.current = \"1\"
snapshot0.uid = \"1\"
snapshot0.filename = \"vm-Snapshots1.vmsn\"
snapshot0.displayName = \"s1\"
snapshot0.description = \"\"
snapshot0.type = \"1\"
snapshot0.createTimeHigh = \"416404\"
snapshot0.createTimeLow = \"1361996416\"
snapshot0.numDisks = \"2\"
snapshot0.disk0.fileName = \"vm.vmdk\"
snapshot0.disk0.node = \"scsi0:0\"
snapshot0.disk1.fileName = \"vm_1.vmdk\"
snapshot0.disk1.node = \"sata0:1\"
snapshot.numSnapshots = \"1\"
"
    );
    v.add(&new("s2", &[("vm-000001.vmdk", "scsi0:0")])).unwrap();
    let s2 = v.by_name("s2").unwrap();
    assert_eq!((s2.uid, s2.parent, v.current().unwrap().uid), (2, Some(1), 2));
    assert!(text(&v).ends_with("snapshot1.disk0.node = \"scsi0:0\"\nsnapshot.numSnapshots = \"2\"\n"), "{}", text(&v));
}

#[test]
fn a_new_snapshot_in_a_legacy_file_keeps_its_encoding_and_line_endings() {
    let bytes = fixture("workstation-win1252.vmsd");
    let mut v = parse(&bytes);
    let mut s = new("Prüfung €", &[("Büro-PC-000002.vmdk", "sata0:0")]);
    s.description = "say \"hi\"".into();
    assert_eq!(v.add(&s).unwrap(), 3);
    let out = v.to_bytes();
    let added = b"snapshot1.disk0.node = \"sata0:0\"\r\nsnapshot2.uid = \"3\"\r\nsnapshot2.filename = \"vm-SnapshotPr\xfcfung \x80.vmsn\"\r\nsnapshot2.parent = \"2\"\r\nsnapshot2.displayName = \"Pr\xfcfung \x80\"\r\nsnapshot2.description = \"say |22hi|22\"\r\n";
    assert!(out.windows(added.len()).any(|w| w == added), "{}", String::from_utf8_lossy(&out));
    assert!(out.ends_with(b"snapshot.numSnapshots = \"3\"\r\n"));
    assert_eq!(parse(&out).by_name("Prüfung €").unwrap().disks[0].file, "Büro-PC-000002.vmdk");
    // The header changes its two values; the comment and the rest stay.
    assert!(out.starts_with(b".encoding = \"windows-1252\"\r\n# written by VMware Workstation 9\r\nsnapshot.lastUID = \"3\"\r\nsnapshot.current = \"3\"\r\nsnapshot.needConsolidate"));
}

#[test]
fn removing_a_middle_snapshot_reparents_renumbers_and_forgets_it() {
    let bytes = fixture("esx-four.vmsd");
    let mut v = parse(&bytes);
    v.remove(2).unwrap();
    let after: Vec<(usize, u32, Option<u32>)> =
        v.snapshots().iter().enumerate().map(|(i, s)| (i, s.uid, s.parent)).collect();
    assert_eq!(after, [(0, 1, None), (1, 3, Some(1)), (2, 5, Some(1))]);
    let expected = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("snapshot1.") && !l.starts_with("snapshot.mru"))
        .map(|l| {
            l.replace("snapshot2.", "snapshot1.")
                .replace("snapshot3.", "snapshot2.")
                .replace("snapshot1.parent = \"2\"", "snapshot1.parent = \"1\"")
                .replace("snapshot2.parent = \"2\"", "snapshot2.parent = \"1\"")
                .replace("snapshot.numSnapshots = \"4\"", "snapshot.numSnapshots = \"3\"")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\nsnapshot.mru0.uid = \"5\"\nsnapshot.mru1.uid = \"3\"\nsnapshot.mru2.uid = \"1\"\n";
    assert_eq!(text(&v), expected);
    // The most-recently-used list forgets a removed uid and stays dense.
    v.remove(3).unwrap();
    assert!(text(&v).ends_with("snapshot.mru0.uid = \"5\"\nsnapshot.mru1.uid = \"1\"\n"), "{}", text(&v));
    assert_eq!(v.snapshots().iter().map(|s| s.uid).collect::<Vec<_>>(), [1, 5]);
}

#[test]
fn removing_the_current_snapshot_makes_its_parent_current_and_a_root_leaves_roots() {
    let mut v = parse(&fixture("esx-four.vmsd"));
    v.remove(5).unwrap();
    assert_eq!(v.current().unwrap().uid, 2);
    v.remove(1).unwrap();
    assert_eq!(v.by_uid(2).unwrap().parent, None);
    assert!(!text(&v).contains("snapshot0.parent"), "{}", text(&v));
    v.remove(2).unwrap();
    assert_eq!(v.current(), None, "the current snapshot was a root");
    assert!(!text(&v).contains("snapshot.current"));
    v.remove(3).unwrap();
    assert_eq!(text(&v), ".encoding = \"UTF-8\"\nsnapshot.lastUID = \"5\"\nsnapshot.numSnapshots = \"0\"\n");
    // lastUID only grows: the next snapshot is uid 6.
    assert_eq!(v.add(&new("again", &[("web01.vmdk", "scsi0:0")])).unwrap(), 6);
}

#[test]
fn disk_files_and_current_change_one_line_each() {
    let bytes = fixture("esx-four.vmsd");
    let mut v = parse(&bytes);
    v.set_current(3).unwrap();
    v.set_disk_file(5, 1, "web01_3-000004.vmdk").unwrap();
    let old = String::from_utf8(bytes).unwrap();
    let new = text(&v);
    let changed: Vec<(&str, &str)> = old.lines().zip(new.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(
        changed,
        [
            ("snapshot.current = \"5\"", "snapshot.current = \"3\""),
            (
                "snapshot3.disk1.fileName = \"web01_3-000006.vmdk\"",
                "snapshot3.disk1.fileName = \"web01_3-000004.vmdk\""
            )
        ]
    );
}

#[test]
fn inconsistencies_are_named_with_their_line() {
    let one = "snapshot.lastUID = \"1\"\nsnapshot.current = \"1\"\nsnapshot0.uid = \"1\"\nsnapshot0.displayName = \"a\"\nsnapshot0.numDisks = \"1\"\nsnapshot0.disk0.fileName = \"a.vmdk\"\nsnapshot0.disk0.node = \"scsi0:0\"\nsnapshot.numSnapshots = \"1\"\n";
    assert!(Vmsd::parse(one.as_bytes(), Path::new("vm.vmsd")).is_ok());
    let e = error(&one.replace("snapshot.current = \"1\"", "snapshot.current = \"7\""));
    assert!(e.starts_with("vm.vmsd:2: snapshot.current names uid 7, which no snapshot has (uids: 1)"), "{e}");
    let e = error(&one.replace("numSnapshots = \"1\"", "numSnapshots = \"2\""));
    assert!(e.starts_with("vm.vmsd:8: snapshot.numSnapshots is \"2\" but the file holds 1 snapshots"), "{e}");
    let e = error(&one.replace("numDisks = \"1\"", "numDisks = \"2\""));
    assert!(e.starts_with("vm.vmsd:5: snapshot0.numDisks is \"2\" but the snapshot lists 1 disks"), "{e}");
    let e = error(&one.replace("snapshot0.disk0.node = \"scsi0:0\"\n", ""));
    assert!(e.starts_with("vm.vmsd:6: snapshot0.disk0 has no node"), "{e}");
    let e = error(&one.replace("snapshot0.uid = \"1\"\n", ""));
    assert!(e.starts_with("vm.vmsd:3: snapshot0 has no snapshot0.uid"), "{e}");
    let e = error(&one.replace("snapshot0.", "snapshot1."));
    assert!(e.starts_with("vm.vmsd:3: snapshot1 follows snapshot0 but snapshot0 is missing"), "{e}");
    let e = error(&format!("{one}snapshot1.uid = \"1\"\nsnapshot1.displayName = \"b\"\n"));
    assert!(e.starts_with("vm.vmsd:9: uid 1 is used twice (lines 3 and 9)"), "{e}");
    let e = error(&format!("{one}snapshot1.uid = \"2\"\nsnapshot1.displayName = \"a\"\n"));
    assert!(e.contains("two snapshots are named \"a\" (uids 1 and 2)"), "{e}");
    let e = error(
        &one.replace("snapshot0.displayName = \"a\"\n", "snapshot0.parent = \"9\"\nsnapshot0.displayName = \"a\"\n"),
    );
    assert!(e.contains("snapshot \"a\" (uid 1) names parent uid 9, which no snapshot has"), "{e}");
    let e = error(&format!("{one}snapshot1.uid = \"2\"\nsnapshot1.parent = \"2\"\nsnapshot1.displayName = \"b\"\n"));
    assert!(e.contains("the parents of snapshot \"b\" form a loop"), "{e}");
    let e = error(&one.replace("snapshot0.uid = \"1\"", "snapshot0.uid = \"one\""));
    assert!(e.starts_with("vm.vmsd:3: snapshot0.uid is \"one\", not a whole number"), "{e}");
    let e = error("snapshot.current = \"1\"\n");
    assert!(e.contains("snapshot.current names uid 1, which no snapshot has"), "{e}");
}

#[test]
fn no_uid_after_the_largest_is_an_error_not_an_overflow() {
    // Seen while writing fuzz/fuzz_targets/vmsd.rs: lastUID + 1 overflowed (and in a release
    // build would have wrapped to uid 0).
    let mut v = parse(b".encoding = \"UTF-8\"\nsnapshot.lastUID = \"4294967295\"\n");
    let e = v.next_uid().unwrap_err().to_string();
    assert!(e.starts_with("/ds/vm/vm.vmsd:2: snapshot uids have reached 4294967295"), "{e}");
    let before = v.to_bytes();
    assert!(v.add(&new("s1", &[])).is_err());
    assert_eq!(v.to_bytes(), before);
    assert_eq!(parse(b"snapshot.lastUID = \"41\"\n").next_uid().unwrap(), 42);
}
