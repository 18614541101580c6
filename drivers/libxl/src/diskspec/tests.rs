use super::write::canonical;
use super::*;

fn disk(spec: &str) -> Disk {
    DiskSpec::parse(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}")).disk
}

fn error(spec: &str) -> String {
    DiskSpec::parse(spec).map(|s| format!("parsed as {:?}", s.disk)).unwrap_or_else(|e| e.message)
}

fn file(path: &str, vdev: &str) -> Disk {
    Disk { target: Some(path.into()), vdev: vdev.into(), readwrite: true, ..Disk::default() }
}

fn cdrom(path: Option<&str>, vdev: &str, format: Format) -> Disk {
    Disk { target: path.map(Into::into), vdev: vdev.into(), cdrom: true, format, ..Disk::default() }
}

/// The equivalent spellings of xl-disk-configuration(5) and Xen's check-xl-disk-parse, each
/// group with the disk libxl makes of it.
#[test]
fn the_documented_spellings_of_one_disk_agree() {
    let volume = file("/dev/vg/guest-volume", "hda");
    for spec in [
        "/dev/vg/guest-volume,,hda",
        "/dev/vg/guest-volume,raw,hda,rw",
        "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
        "raw:/dev/vg/guest-volume,hda,w",
    ] {
        assert_eq!(disk(spec), volume, "{spec}");
    }
    let iso = cdrom(Some("/root/image.iso"), "hdc", Format::Raw);
    for spec in [
        "/root/image.iso,,hdc,cdrom",
        "/root/image.iso,,hdc,,cdrom",
        "/root/image.iso,raw,hdc,devtype=cdrom",
        "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
        "raw:/root/image.iso,hdc:cdrom,ro",
    ] {
        assert_eq!(disk(spec), iso, "{spec}");
    }
    assert_eq!(
        disk("backendtype=phy,vdev=xvdb,access=w,target=/dev/vg/guest-volume"),
        Disk { backendtype: Some(Backend::Phy), ..file("/dev/vg/guest-volume", "xvdb") }
    );
    for spec in [
        "devtype=cdrom,,,hdc",
        ",,hdc:cdrom,r",
        ",hdc:cdrom,r",
        "vdev=hdc,access=r,devtype=cdrom,target=",
        ",empty,hdc:cdrom,r",
    ] {
        assert_eq!(disk(spec), cdrom(Some(""), "hdc", Format::Empty), "{spec}");
    }
    for spec in ["vdev=hdc,access=r,devtype=cdrom,format=empty", "vdev=hdc,access=r,devtype=cdrom"] {
        assert_eq!(disk(spec), cdrom(None, "hdc", Format::Empty), "{spec}");
    }
    let iqn = "iqn.2001-05.com.equallogic:0-8a0906-23fe93404-c82797962054a96d-examplehost";
    let iscsi = Disk { script: Some("block-iscsi".into()), ..file(iqn, "xvda") };
    assert_eq!(disk(&format!("iscsi:{iqn},xvda,w")), iscsi);
    assert_eq!(disk(&format!("vdev=xvda,access=w,script=block-iscsi,target={iqn}")), iscsi);
    assert_eq!(disk("drbd:app01,hda,w"), Disk { script: Some("block-drbd".into()), ..file("app01", "hda") });
    let raw = file("/some/disk/image.raw", "hda");
    assert_eq!(disk("discard,vdev=hda,target=/some/disk/image.raw"), Disk { discard: Some(true), ..raw.clone() });
    assert_eq!(
        disk("cdrom,no-discard,vdev=hda,target=/some/disk/image.iso"),
        Disk { discard: Some(false), ..cdrom(Some("/some/disk/image.iso"), "hda", Format::Raw) }
    );
    assert_eq!(disk("trusted,vdev=hda,target=/some/disk/image.raw"), Disk { trusted: Some(true), ..raw.clone() });
    assert_eq!(disk("untrusted,vdev=hda,target=/some/disk/image.raw"), Disk { trusted: Some(false), ..raw });
}

#[test]
fn every_key_flag_and_prefix_is_read() {
    let d = disk(
        "backend=dom1,backendtype=qdisk,script=block-x,direct-io-safe,colo,colo-host=h2,colo-port=9000,colo-export=e1,active-disk=/a1,hidden-disk=/h1,specification=virtio,grant_usage=1,/srv/a.qcow2,qcow2,xvdb,ro",
    );
    assert_eq!(
        d,
        Disk {
            target: Some("/srv/a.qcow2".into()),
            format: Format::Qcow2,
            vdev: "xvdb".into(),
            readwrite: false,
            backend_domain: Some("dom1".into()),
            backendtype: Some(Backend::Qdisk),
            script: Some("block-x".into()),
            direct_io_safe: true,
            colo: Some(true),
            colo_host: Some("h2".into()),
            colo_port: Some(9000),
            colo_export: Some("e1".into()),
            active_disk: Some("/a1".into()),
            hidden_disk: Some("/h1".into()),
            specification: Some("virtio".into()),
            grant_usage: Some(true),
            ..Disk::default()
        }
    );
    assert_eq!(disk("no-colo,/a,,xvda").colo, Some(false));
    // Old prefixes: ignored ones, stacked ones, format and script ones.
    for (spec, format, script) in [
        ("phy:/dev/sda,xvda,w", Format::Raw, None),
        ("file:/a,xvda,w", Format::Raw, None),
        ("tap:aio:/a,xvda,w", Format::Raw, None),
        ("tap2:aio:/a,xvda", Format::Raw, None),
        ("tapdisk:aio:/a,xvda", Format::Raw, None),
        ("ioemu:/a,xvda", Format::Raw, None),
        ("tap:qcow2:/a,xvda,w", Format::Qcow2, None),
        ("qcow:/a,xvda", Format::Qcow, None),
        ("vhd:/a,xvda", Format::Vhd, None),
        ("raw:phy:/a,xvda", Format::Raw, None),
        ("nbd:/a,xvda", Format::Raw, Some("block-nbd")),
        ("enbd:/a,xvda", Format::Raw, Some("block-enbd")),
    ] {
        let d = disk(spec);
        assert_eq!(
            (d.target.as_deref(), d.vdev.as_str(), d.format, d.script.as_deref()),
            (Some("/a").filter(|_| !spec.starts_with("phy")).or(Some("/dev/sda")), "xvda", format, script),
            "{spec}"
        );
    }
    // Targets that only look like prefixes, and colons in targets.
    assert_eq!(disk("nbd:host:1234,xvda,w").target.as_deref(), Some("host:1234"));
    assert_eq!(disk("a:b,,xvda").target.as_deref(), Some("a:b"));
    assert_eq!(disk("foo:1,,xvda").target.as_deref(), Some("foo:1"));
    assert_eq!(disk("/a:b,,xvda").target.as_deref(), Some("/a:b"));
    // target= takes the rest, commas and trailing blanks included, a final comma dropped.
    assert_eq!(disk("vdev=xvda,target=/srv/a,b.img  ").target.as_deref(), Some("/srv/a,b.img  "));
    assert_eq!(disk("vdev=xvda,target=/srv/a,").target.as_deref(), Some("/srv/a"));
    assert_eq!(disk(",,xvda,target=/b").target.as_deref(), Some("/b"));
    // Blanks before a parameter do not count; after it they do.
    assert_eq!(disk("\t/a,,\txvda").vdev, "xvda");
    assert_eq!(disk("/a,,xvda ").vdev, "xvda ");
    // A later access wins; a CD-ROM is read-only whatever access says.
    assert!(disk("access=ro,/a,,xvda,rw").readwrite);
    assert!(!disk("/a,,xvda,rw,access=ro").readwrite);
    assert!(!disk("/a,,hdc,rw,devtype=cdrom").readwrite);
    assert_eq!(disk("colo-port=1,colo-port=2,/a,,xvda").colo_port, Some(2));
    assert_eq!(disk("/a,,hdc:disk"), file("/a", "hdc"));
    assert_eq!(disk("dev/sda,,xvda").path().as_deref(), Some("/dev/dev/sda"));
    assert_eq!(disk("drbd:r0,xvda").path(), None);
}

#[test]
fn bad_specs_are_refused_with_the_reason() {
    let cases = [
        ("bogus=1,/x,,xvda", "unknown parameter 'bogus'; the keys are target, format, vdev"),
        ("Target=/a", "'Target=/a' is neither a key=value parameter"),
        ("discard=1,/a,,xvda", "unknown parameter 'discard'"),
        ("/a,,xvda,target=/b", "the target is given twice"),
        ("/a,raw,xvda,rw,/b", "'/b' is a fifth positional parameter"),
        ("/a,,xvda,,,", "'' is a fifth positional parameter"),
        ("vdev=xvda,vdev=xvdb,target=/x", "the vdev is given twice"),
        ("format=raw,format=qcow2,/a,,xvda", "the format is given twice"),
        ("raw:qcow2:/a,xvda", "the format is given twice"),
        ("iscsi:nbd:/a,xvda", "the script is given twice"),
        ("backendtype=phy,backendtype=qdisk,/a,,xvda", "backendtype= is given twice"),
        ("  /a , raw , xvda", "unknown format 'raw '"),
        ("/a,bogus,xvda", "unknown format 'bogus'"),
        ("/a,,xvda,rx", "unknown access 'rx'"),
        ("backendtype=bogus,/a,,xvda", "unknown backendtype 'bogus'"),
        ("devtype=floppy,/a,,xvda", "unknown devtype 'floppy'"),
        ("/a,,hdc:bogus", "unknown device type 'bogus' after the vdev"),
        ("foo:/a,xvda", "unknown prefix 'foo:'"),
        ("foo:,,xvda", "unknown prefix 'foo:'"),
        ("colo-port=abc,/a,,xvda", "colo-port 'abc' is not a port number"),
        ("/a", "no vdev"),
        ("", "no vdev"),
        ("target=,vdev=xvda", "no vdev"),
        ("vdev=xvda", "disk xvda has no target"),
    ];
    for (spec, want) in cases {
        let got = error(spec);
        assert!(got.starts_with(want), "{spec:?}:\n got  {got}\n want {want}");
    }
    assert_eq!(DiskSpec::parse("/a,,xvda,target=/b").unwrap_err().offset, 16);
}

#[test]
fn a_new_target_or_format_rewrites_only_its_value() {
    let cases = [
        ("/srv/a.raw,raw,xvda,w", "/srv/a.s1", Format::Qcow2, "/srv/a.s1,qcow2,xvda,w"),
        ("/srv/a.raw,,xvda", "/srv/a.s1", Format::Qcow2, "/srv/a.s1,qcow2,xvda"),
        (
            "/srv/a.raw,,xvda,w,backendtype=qdisk",
            "/srv/a.s1",
            Format::Qcow2,
            "/srv/a.s1,qcow2,xvda,w,backendtype=qdisk",
        ),
        (
            "format=raw, vdev=xvda, target=/srv/a.raw",
            "/srv/a.s1",
            Format::Qcow2,
            "format=qcow2, vdev=xvda, target=/srv/a.s1",
        ),
        ("raw:/srv/a.raw,xvda,w", "/srv/a.s1", Format::Qcow2, "qcow2:/srv/a.s1,xvda,w"),
        ("tap:aio:/srv/a.raw,xvda,w", "/srv/a.s1", Format::Qcow2, "format=qcow2,tap:aio:/srv/a.s1,xvda,w"),
        ("vdev=xvda, target=/srv/a.raw", "/srv/a.s1", Format::Qcow2, "format=qcow2,vdev=xvda, target=/srv/a.s1"),
        ("/srv/a.qcow2,qcow2,xvda", "/srv/a,b.s1", Format::Qcow2, ",qcow2,xvda,target=/srv/a,b.s1"),
        ("/srv/a.qcow2,qcow2,xvda", "/srv/a.qcow2", Format::Raw, "/srv/a.qcow2,raw,xvda"),
        (",hdc:cdrom,r", "/iso/d.iso", Format::Raw, "format=raw,/iso/d.iso,hdc:cdrom,r"),
    ];
    for (spec, target, format, want) in cases {
        let s = DiskSpec::parse(spec).unwrap();
        let wanted = Disk { target: Some(target.into()), format, ..s.disk.clone() };
        let got = s.rewrite(&wanted).unwrap();
        assert_eq!(got, want, "{spec}");
        assert_eq!(disk(&got), wanted, "{got}");
    }
    let s = DiskSpec::parse("/a,,xvda").unwrap();
    assert_eq!(s.rewrite(&s.disk).unwrap(), "/a,,xvda");
}

#[test]
fn other_changes_write_the_documented_key_form_that_reads_back() {
    let s = DiskSpec::parse("/srv/a.img,,xvda,w").unwrap();
    let ro = Disk { readwrite: false, ..s.disk.clone() };
    assert_eq!(s.rewrite(&ro).unwrap(), "format=raw, vdev=xvda, access=ro, target=/srv/a.img");
    let eject = Disk { target: None, format: Format::Empty, ..disk("/iso/a.iso,,hdc,cdrom") };
    assert_eq!(canonical(&eject), "vdev=hdc, access=ro, devtype=cdrom");
    let all = disk(
        "backend=dom1,backendtype=qdisk,script=block-x,direct-io-safe,no-discard,colo,colo-host=h2,colo-port=9000,colo-export=e1,active-disk=/a1,hidden-disk=/h1,untrusted,specification=virtio,grant_usage=0,format=qcow2,vdev=xvdb,access=ro,target=/srv/a,b.qcow2",
    );
    let text = canonical(&all);
    assert!(text.ends_with(", target=/srv/a,b.qcow2"), "{text}");
    assert_eq!(disk(&text), all);
    let bad = Disk { target: Some("/ends/with,".into()), ..file("x", "xvda") };
    assert!(s.rewrite(&bad).unwrap_err().contains("no xl disk spec describes this disk"));
}
