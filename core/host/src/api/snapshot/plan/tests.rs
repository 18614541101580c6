use super::*;
use crate::api::snapshot::spec::{DiskSpec, MemSpec};

const XML: &str = "<domain type='qemu'><name>mix</name><devices>\
  <disk type='file'><driver type='qcow2'/><source file='/i/a.qcow2'/><target dev='vda'/></disk>\
  <disk type='file'><driver type='raw'/><source file='/i/b.raw'/><target dev='vdb'/></disk>\
  <disk type='file' snapshot='no'><driver type='raw'/><source file='/i/c.raw'/><target dev='vdc'/></disk>\
  <disk type='file' snapshot='no'><driver type='qcow2'/><source file='/i/t.qcow2'/><target dev='vdd'/><transient/></disk>\
  <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>\
  </devices></domain>";

fn dom() -> DomainXml {
    DomainXml::parse(XML, None).unwrap()
}

fn req(name: &str) -> SnapshotRequest {
    SnapshotRequest { name: Some(name.into()), ..SnapshotRequest::default() }
}

fn modes(p: &SnapshotPlan) -> Vec<(&str, &str)> {
    p.disks.iter().map(|d| (d.target.as_str(), d.snapshot.as_str())).collect()
}

#[test]
fn mixed_qcow2_and_raw_takes_raw_externally_and_skips_independent_transient_and_cdrom() {
    let p = SnapshotPlan::resolve(&dom(), &req("s1"), false, &[]).unwrap();
    assert_eq!(modes(&p), [("vda", "internal"), ("vdb", "external"), ("vdc", "no"), ("vdd", "no"), ("hdc", "no")]);
    assert_eq!(p.disks[1].file.as_deref(), Some("/i/b.s1"));
    assert_eq!(p.disks[1].reason, "raw cannot hold internal snapshots");
    assert_eq!(p.disks[2].reason, "its default snapshot='no'");
    assert_eq!(p.disks[3].reason, "transient");
    assert_eq!(p.memory, PlannedMemory::No);
    // Running: the memory goes into the qcow2 disk taken internally.
    let p = SnapshotPlan::resolve(&dom(), &req("s1"), true, &[]).unwrap();
    assert_eq!(p.memory, PlannedMemory::Internal { disk: "vda".into() });
}

#[test]
fn atomic_is_what_every_snapshot_is_and_asking_otherwise_is_refused() {
    let mut r = req("s1");
    r.atomic = Some(true);
    assert!(SnapshotPlan::resolve(&dom(), &r, false, &[]).is_ok());
    r.atomic = Some(false);
    let err = SnapshotPlan::resolve(&dom(), &r, false, &[]).unwrap_err().to_string();
    assert!(err.contains("atomic=false cannot be honoured"), "{err}");
}

#[test]
fn internal_asked_of_raw_goes_external_or_stays_out_by_default() {
    let mut r = req("s2");
    r.disks =
        vec![DiskSpec::parse("vdb,snapshot=internal").unwrap(), DiskSpec::parse("vdc,snapshot=internal").unwrap()];
    let p = SnapshotPlan::resolve(&dom(), &r, false, &[]).unwrap();
    assert_eq!(modes(&p), [("vda", "no"), ("vdb", "external"), ("vdc", "no"), ("vdd", "no"), ("hdc", "no")]);
    assert_eq!(p.disks[1].reason, "raw cannot hold an internal snapshot, so it is taken externally");
    assert!(p.disks[2].reason.contains("its default is snapshot='no'"));
    assert_eq!(p.disks[0].reason, "not named in the request's disks");
}

#[test]
fn disk_sets_choose_the_disks() {
    let mut d = dom();
    let mut sets = d.disk_sets();
    sets.add("nightly", "vdb");
    d.set_disk_sets(&sets);
    let mut r = req("s3");
    r.disk_set = Some("nightly".into());
    let p = SnapshotPlan::resolve(&d, &r, false, &[]).unwrap();
    assert_eq!(modes(&p)[..2], [("vda", "no"), ("vdb", "external")]);
    r.disk_set = Some("empty".into());
    assert!(
        SnapshotPlan::resolve(&d, &r, false, &[]).unwrap_err().to_string().contains("disk set 'empty' has no disks")
    );
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    let err =
        |r: &SnapshotRequest, running: bool| SnapshotPlan::resolve(&dom(), r, running, &[]).unwrap_err().to_string();
    let mut r = req("s4");
    r.disks = vec![DiskSpec::parse("vda").unwrap(), DiskSpec::parse("/i/a.qcow2").unwrap()];
    assert!(err(&r, false).contains("disk vda is named twice"));
    r.disks = vec![DiskSpec::parse("vdd").unwrap()];
    assert!(err(&r, false).contains("disk vdd is transient"));
    r.disks = vec![DiskSpec::parse("vdz").unwrap()];
    assert!(err(&r, false).contains("has no disk 'vdz'"));
    r.disks = vec![DiskSpec::parse("vdb,mirror=/m/b").unwrap()];
    assert!(err(&r, false).contains("a mirrored snapshot needs a running domain"));
    r.disks = vec![DiskSpec::parse("vda,snapshot=internal,file=/x").unwrap()];
    assert!(err(&r, false).contains("need snapshot=external"));
    let mut r = req("s5");
    r.memory = Some(MemSpec::parse("/m/s5").unwrap());
    assert!(err(&r, false).contains("shut off, so it has no memory"));
    r.disk_only = true;
    assert!(err(&r, true).contains("«disk_only» takes no memory"));
    let mut r = req("bad/name");
    assert!(err(&r, false).contains("Invalid snapshot name"));
    r.name = Some("s6".into());
    r.halt = true;
    assert!(err(&r, false).contains("«halt» needs a running domain"));
    // Only raw disks, running, no memspec: nowhere to keep memory.
    let raw_only = DomainXml::parse("<domain><name>r</name><devices><disk type='file'><driver type='raw'/><source file='/i/r.raw'/><target dev='vda'/></disk></devices></domain>", None).unwrap();
    let e = SnapshotPlan::resolve(&raw_only, &req("s7"), true, &[]).unwrap_err().to_string();
    assert!(e.contains("add «memspec file=PATH», or «disk_only»"), "{e}");
}

#[test]
fn an_existing_overlay_needs_reuse_external() {
    let dir = std::env::temp_dir().join(format!("lv-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let existing = dir.join("exists.qcow2");
    std::fs::write(&existing, "x").unwrap();
    let mut r = req("s8");
    r.disks = vec![DiskSpec::parse(&format!("vdb,file={}", existing.display())).unwrap()];
    let e = SnapshotPlan::resolve(&dom(), &r, false, &[]).unwrap_err().to_string();
    assert!(e.contains("already exists; pass «reuse_external»"), "{e}");
    r.reuse_external = true;
    assert!(SnapshotPlan::resolve(&dom(), &r, false, &[]).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(default_overlay("/i/a.qcow2", "s1"), "/i/a.s1");
    assert_eq!(default_overlay("/i/noext", "s1"), "/i/noext.s1");
}

#[test]
fn a_file_without_a_mode_means_external() {
    let mut r = req("s9");
    r.disks = vec![DiskSpec::parse("vda,file=/o/a.s9").unwrap()];
    let p = SnapshotPlan::resolve(&dom(), &r, false, &[]).unwrap();
    assert_eq!((p.disks[0].snapshot.as_str(), p.disks[0].file.as_deref()), ("external", Some("/o/a.s9")));
}

#[test]
fn an_overlay_goes_external_again() {
    let p = SnapshotPlan::resolve(&dom(), &req("s10"), false, &["vda".to_string()]).unwrap();
    assert_eq!(p.disks[0].snapshot, "external");
    assert!(p.disks[0].reason.contains("overlay of an earlier external snapshot"));
}

#[test]
fn disks_whose_images_share_a_stem_get_their_own_default_overlays() {
    let d = DomainXml::parse("<domain><name>x</name><devices><disk type='file'><driver type='raw'/><source file='/i/x.raw'/><target dev='vda'/></disk><disk type='file'><driver type='raw'/><source file='/i/x.img'/><target dev='vdb'/></disk></devices></domain>", None).unwrap();
    let p = SnapshotPlan::resolve(&d, &req("s1"), false, &[]).unwrap();
    assert_eq!(p.disks[0].file.as_deref(), Some("/i/x.s1"));
    assert_eq!(p.disks[1].file.as_deref(), Some("/i/x.img.s1"));
    // An existing file with the default name is stepped around, not overwritten.
    let dir = std::env::temp_dir().join(format!("lv-plan-stem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("y.s1"), "x").unwrap();
    let y = dir.join("y.qcow2").display().to_string();
    let d = DomainXml::parse(&format!("<domain><name>y</name><devices><disk type='file'><driver type='raw'/><source file='{y}'/><target dev='vda'/></disk></devices></domain>"), None).unwrap();
    let p = SnapshotPlan::resolve(&d, &req("s1"), false, &[]).unwrap();
    assert_eq!(p.disks[0].file.as_deref(), Some(format!("{y}.s1").as_str()));
    std::fs::remove_dir_all(&dir).unwrap();
    // Two diskspecs naming one file are refused before anything is made.
    let mut r = req("s2");
    r.disks = vec![DiskSpec::parse("vda,file=/o/same").unwrap(), DiskSpec::parse("vdb,file=/o/same").unwrap()];
    let e = SnapshotPlan::resolve(&dom(), &r, false, &[]).unwrap_err().to_string();
    assert!(e.contains("the overlay of disk vda and the overlay of disk vdb are the same file /o/same"), "{e}");
}

#[test]
fn names_are_limited_in_bytes_as_qcow2_tags_are() {
    // 64 four-byte characters: 64 characters but 256 bytes, one more than a qcow2 tag holds.
    let name = "\u{1D11E}".repeat(64);
    let e = check_snapshot_name(&name).unwrap_err().to_string();
    assert!(e.contains("it is 256 bytes in UTF-8, and a snapshot name may have at most 255"), "{e}");
    check_snapshot_name(&"\u{1D11E}".repeat(63)).unwrap();
    check_snapshot_name(&"a".repeat(64)).unwrap();
    assert!(check_snapshot_name(&"a".repeat(65)).is_err());
    // A name that fits a tag can still make a raw disk's default overlay name too long.
    let raw = DomainXml::parse("<domain><name>r</name><devices><disk type='file'><driver type='raw'/><source file='/i/scratch.raw'/><target dev='vda'/></disk></devices></domain>", None).unwrap();
    let e = SnapshotPlan::resolve(&raw, &req(&"\u{1D11E}".repeat(63)), false, &[]).unwrap_err().to_string();
    assert!(e.contains("disk vda: the overlay's file name in /i/scratch."), "{e}");
    assert!(e.contains("is 260 bytes, and a file name may have at most 255"), "{e}");
    assert!(e.contains("«diskspec vda,file=PATH»"), "{e}");
    // 63 four-byte characters beside a short file name fit.
    SnapshotPlan::resolve(&dom(), &req(&"\u{1D11E}".repeat(63)), false, &[]).unwrap();
}
