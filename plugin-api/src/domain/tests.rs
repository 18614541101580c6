use super::*;

const TWO_DISKS: &str = r#"<domain type='kvm'>
  <name>web1</name>
  <!-- disks below -->
  <devices>
    <disk type='file' device='disk' snapshot='external'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/images/web1.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <serial>S1</serial>
      <boot order='1'/>
    </disk>
    <disk type="network" device="disk" selected="yes">
      <source protocol="nbd" name="exp"><host name="nas" port="10809"/></source>
      <target dev="vdb" bus="virtio"/>
      <readonly/><shareable/>
      <transient/>
    </disk>
  </devices>
</domain>
"#;

#[test]
fn typed_view_of_disks() {
    let d = DomainXml::parse(TWO_DISKS, None).unwrap();
    assert_eq!(d.name(), "web1");
    let disks = d.disks();
    assert_eq!(disks.len(), 2);
    let a = &disks[0];
    assert_eq!((a.disk_type.as_str(), a.device.as_str(), a.format.as_deref()), ("file", "disk", Some("qcow2")));
    assert_eq!(a.source, DiskSource::File("/var/lib/images/web1.qcow2".into()));
    assert_eq!((a.target.as_str(), a.bus.as_deref(), a.snapshot.as_deref()), ("vda", Some("virtio"), Some("external")));
    assert_eq!((a.serial.as_deref(), a.boot_order, a.line), (Some("S1"), Some(1), 5));
    let b = &disks[1];
    assert_eq!(b.source.display(), "nbd://nas:10809/exp");
    assert!(b.readonly && b.shareable && b.transient);
    assert_eq!(b.selected, Some(true));
    assert_eq!(d.disk_sets().members(DEFAULT_SET), ["vdb"]);
}

#[test]
fn a_target_used_twice_is_refused_with_both_lines() {
    let xml = TWO_DISKS.replace("dev=\"vdb\"", "dev=\"vda\"");
    let e = DomainXml::parse(&xml, Some("web1.xml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "web1.xml:12:5: disk target 'vda' is used twice (lines 5 and 12); give each disk its own <target dev>"
    );
}

#[test]
fn other_checks_name_the_problem() {
    let e = DomainXml::parse("<domain><uuid>x</uuid><name>a</name></domain>", None).unwrap_err();
    assert!(e.message.contains("invalid <uuid>"), "{e}");
    let e = DomainXml::parse("<domain/>", None).unwrap_err();
    assert!(e.message.contains("no <name>"), "{e}");
    let e = DomainXml::parse("<dom><name>a</name></dom>", None).unwrap_err();
    assert!(e.message.contains("root element is <dom>"), "{e}");
    let e = DomainXml::parse("<domain><name>../x</name></domain>", None).unwrap_err();
    assert!(e.message.contains("invalid domain name"), "{e}");
    let e = DomainXml::parse(&TWO_DISKS.replace("selected=\"yes\"", "selected=\"maybe\""), None).unwrap_err();
    assert!(e.message.contains("use 'yes' or 'no'"), "{e}");
}

#[test]
fn disk_sets_go_to_metadata_and_seeds_move_there() {
    let mut d = DomainXml::parse(TWO_DISKS, None).unwrap();
    let mut sets = d.disk_sets();
    sets.add("migrate", "vda");
    d.set_disk_sets(&sets);
    let out = d.to_xml();
    let expected = TWO_DISKS
        .replace("  <!-- disks below -->", "  <metadata>\n    <luavirt:disksets xmlns:luavirt='https://luavirt.org/xmlns/disksets/1'>\n      <luavirt:set name='migrate'>\n        <luavirt:disk target='vda'/>\n      </luavirt:set>\n      <luavirt:set name='selected'>\n        <luavirt:disk target='vdb'/>\n      </luavirt:set>\n    </luavirt:disksets>\n  </metadata>\n  <!-- disks below -->")
        .replace(" selected=\"yes\"", "");
    assert_eq!(out, expected);
    let back = DomainXml::parse(&out, None).unwrap();
    assert_eq!(back.disk_sets(), sets);
    // Emptying every set removes what luavirt added, and the document is as before minus the seed.
    let mut d2 = back.clone();
    d2.set_disk_sets(&DiskSets::default());
    assert_eq!(d2.to_xml(), TWO_DISKS.replace(" selected=\"yes\"", ""));
}

#[test]
fn other_metadata_keeps_its_place() {
    let xml = "<domain>\n\t<name>a</name>\n\t<metadata>\n\t\t<app:x xmlns:app='urn:app'/>\n\t</metadata>\n</domain>";
    let mut d = DomainXml::parse(xml, None).unwrap();
    let mut sets = DiskSets::default();
    sets.add("s", "vda");
    d.set_disk_sets(&sets);
    assert_eq!(
        d.to_xml(),
        "<domain>\n\t<name>a</name>\n\t<metadata>\n\t\t<app:x xmlns:app='urn:app'/>\n\t\t<luavirt:disksets xmlns:luavirt='https://luavirt.org/xmlns/disksets/1'>\n\t\t\t<luavirt:set name='s'>\n\t\t\t\t<luavirt:disk target='vda'/>\n\t\t\t</luavirt:set>\n\t\t</luavirt:disksets>\n\t</metadata>\n</domain>"
    );
    d.set_disk_sets(&DiskSets::default());
    assert_eq!(d.to_xml(), xml);
}

#[test]
fn uuid_is_added_after_name() {
    let mut d =
        DomainXml::parse("<domain type='qemu'>\n  <name>a</name>\n  <memory>1</memory>\n</domain>", None).unwrap();
    let u = generate_uuid().unwrap();
    d.set_uuid(&u);
    assert_eq!(
        d.to_xml(),
        format!("<domain type='qemu'>\n  <name>a</name>\n  <uuid>{u}</uuid>\n  <memory>1</memory>\n</domain>")
    );
    assert_eq!(d.uuid().as_deref(), Some(u.as_str()));
    assert_eq!(normalize_uuid("4DEA22B31D52D8F32516782E98AB3FA0").unwrap(), "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
}

#[test]
fn a_disk_can_be_pointed_at_a_new_image() {
    let mut d = DomainXml::parse(TWO_DISKS, None).unwrap();
    d.set_disk_source("vda", "/var/lib/images/web1.s1", "qcow2").unwrap();
    assert_eq!(d.to_xml(), TWO_DISKS.replace("web1.qcow2'", "web1.s1'"));
    d.set_disk_source("vdb", "/o/b.s1", "qcow2").unwrap();
    let b = d.disk("vdb").unwrap();
    assert_eq!((b.disk_type.as_str(), b.source.path(), b.format.as_deref()), ("file", Some("/o/b.s1"), Some("qcow2")));
    assert!(
        d.to_xml().contains("<driver name='qemu' type='qcow2'/>\n      <source file='/o/b.s1'/>"),
        "{}",
        d.to_xml()
    );
}

fn deep_domain(depth: usize) -> String {
    // <domain> and <metadata> are two levels.
    let inner = depth - 2;
    format!(
        "<domain type='qemu'>\n<name>deep</name>\n<metadata>\n{}{}</metadata>\n</domain>\n",
        "<x:a xmlns:x='urn:x'>\n".repeat(inner),
        "</x:a>".repeat(inner)
    )
}

#[test]
fn domain_xml_nests_at_most_256_deep_and_still_fits_in_snapshot_metadata() {
    let e = DomainXml::parse(&deep_domain(MAX_DEPTH + 1), Some("deep.xml")).unwrap_err();
    assert_eq!(e.line, MAX_DEPTH as u32 + 2, "{e}");
    assert!(
        e.to_string().starts_with(&format!("deep.xml:{}:1: <x:a> is nested 257 elements deep", MAX_DEPTH + 2)),
        "{e}"
    );
    assert!(e.message.contains("may nest at most 256 deep"), "{e}");
    // The deepest domain allowed is stored inside <snapshots><domainsnapshot> and reads back.
    let d = DomainXml::parse(&deep_domain(MAX_DEPTH), None).unwrap();
    let snap = crate::snapshot::SnapshotXml {
        name: Some("s1".into()),
        domain: Some(d.document().root.clone()),
        ..Default::default()
    };
    let tree = crate::snapshot::SnapshotTree::new(None, vec![snap]);
    let back = crate::snapshot::SnapshotTree::parse(&tree.to_xml()).unwrap();
    assert_eq!(back.to_xml(), tree.to_xml());
}

#[test]
fn domain_xml_over_10_mib_is_refused_where_it_crosses_the_limit() {
    let line = format!("<!-- {} -->\n", "x".repeat(1000));
    let body = line.repeat(MAX_SIZE / line.len() + 1);
    let text = format!("<domain type='qemu'>\n<name>big</name>\n{body}</domain>\n");
    let e = DomainXml::parse(&text, Some("big.xml")).unwrap_err();
    let expected_line = text[..MAX_SIZE].matches('\n').count() + 1;
    assert_eq!(e.line as usize, expected_line, "{e}");
    assert!(e.message.contains(&format!("the document is {} bytes", text.len())), "{e}");
    assert!(e.message.contains("up to 10 MiB"), "{e}");
    // Just under the limit reads.
    let cut = &body[..MAX_SIZE - 200 - (MAX_SIZE - 200) % line.len()];
    DomainXml::parse(&format!("<domain type='qemu'>\n<name>big</name>\n{cut}</domain>\n"), None).unwrap();
}
