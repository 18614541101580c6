//! The driver's pieces together on the corpus in tests/data/vmx: the domain XML each file is
//! shown as (disks, buses, targets, sources, modes), and what redefining from XML writes back
//! or refuses.

use crate::datastore::Datastores;
use crate::define;
use crate::devices::Device;
use crate::view;
use crate::vm::Vm;
use crate::vmx::VmxFile;
use luavirt_plugin_api::Uri;
use luavirt_plugin_api::domain::{DiskMode, DiskSets, DomainXml};
use std::path::{Path, PathBuf};

const URI: &str = "vmx:///srv/ds1?datastore.fastdata=/srv/fast&datastore.shared=/mnt/shared";

fn stores() -> Datastores {
    let u = Uri::parse(URI).unwrap();
    Datastores::from_uri(&u, Path::new("/srv/ds1")).unwrap()
}

/// A corpus file as if it were /srv/ds1/<name>/<name>.vmx.
fn vm(file: &str) -> Vm {
    let bytes =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vmx").join(file)).unwrap();
    let stem = file.trim_end_matches(".vmx");
    let path = PathBuf::from(format!("/srv/ds1/{stem}/{stem}.vmx"));
    let vmx = VmxFile::parse(&bytes, &path.display().to_string()).unwrap();
    Vm { path, bytes, vmx }
}

fn view_of(vm: &Vm, sets: &DiskSets) -> (Vec<Device>, DomainXml) {
    let devices = vm.devices().unwrap();
    let xml = view::build(vm, &devices, &stores(), sets).unwrap();
    (devices, xml)
}

/// Each disk as "target bus device source mode".
fn disks(file: &str) -> Vec<String> {
    let (_, xml) = view_of(&vm(file), &DiskSets::default());
    xml.disks()
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {} {}",
                d.target,
                d.bus.as_deref().unwrap_or("-"),
                d.device,
                d.source.display(),
                xml.disk_mode(&d.target).unwrap()
            )
        })
        .collect()
}

#[test]
fn an_esx_vm_is_shown_as_libvirt_domain_xml() {
    let (_, xml) = view_of(&vm("esx7-web.vmx"), &DiskSets::default());
    assert_eq!(
        xml.to_xml(),
        "<domain type='vmware'>
  <name>web01</name>
  <uuid>421a5c3e-9d7f-0b21-6e4c-88aa01234567</uuid>
  <description>Front web server
Owner: \"ops team\"
ticket | 4711</description>
  <memory unit='KiB'>4194304</memory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver type='vmdk'/>
      <source file='[ds1] esx7-web/web01.vmdk'/>
      <target dev='sda' bus='scsi'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <disk type='file' device='disk' snapshot='no'>
      <driver type='vmdk'/>
      <source file='[ds1] esx7-web/web01_1.vmdk'/>
      <target dev='sdb' bus='scsi'/>
      <address type='drive' controller='0' bus='0' target='0' unit='1'/>
    </disk>
    <disk type='file' device='disk' snapshot='no'>
      <driver type='vmdk'/>
      <source file='[ds1] esx7-web/web01_2.vmdk'/>
      <target dev='sdc' bus='scsi'/>
      <transient/>
      <address type='drive' controller='0' bus='0' target='0' unit='2'/>
    </disk>
    <disk type='file' device='disk'>
      <driver type='vmdk'/>
      <source file='[ds1] esx7-web/web01_3.vmdk'/>
      <target dev='sdh' bus='scsi'/>
      <address type='drive' controller='0' bus='0' target='0' unit='8'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='[61a7c1e0-2b9f44d8-8c3e-0050569a1b2c] iso/debian-12.iso'/>
      <target dev='sdd' bus='sata'/>
      <readonly/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
  </devices>
</domain>
"
    );
}

#[test]
fn every_bus_and_medium_of_the_corpus_is_reported() {
    assert_eq!(
        disks("esx8-nvme.vmx"),
        [
            "sda sata lun - persistent",
            "sdb sata cdrom - persistent",
            "nvme0n1 nvme disk [ds1] esx8-nvme/db02.vmdk persistent",
            "nvme0n2 nvme disk [fastdata] db02/db02_data.vmdk independent-persistent",
            "nvme1n1 nvme disk [fastdata] db02/db02_log.vmdk persistent",
        ]
    );
    assert_eq!(
        disks("fusion-mac.vmx"),
        [
            "sdb sata cdrom /Users/dana/Downloads/ubuntu-22.04.3-live-server-arm64.iso persistent",
            "sdc sata disk [ds1] fusion-mac/scratch.vmdk independent-nonpersistent",
            "nvme0n1 nvme disk [ds1] fusion-mac/Virtual Disk.vmdk persistent",
        ]
    );
    assert_eq!(
        disks("workstation-win1252.vmx"),
        [
            "sda sata disk [ds1] workstation-win1252/Büro-PC.vmdk persistent",
            "sdb sata disk [ds1] workstation-win1252/Büro-PC-Daten.vmdk independent-persistent",
            "hda ide disk [ds1] workstation-win1252/Altsystem.vmdk nonpersistent",
            "hdb ide disk [ds1] workstation-win1252/Archiv.vmdk undoable",
            "hdc ide cdrom - persistent",
        ]
    );
    assert_eq!(
        disks("workstation-linux-case.vmx"),
        [
            "sda scsi disk [ds1] workstation-linux-case/build-runner.vmdk persistent",
            "sdb scsi disk [ds1] workstation-linux-case/cache.vmdk independent-nonpersistent",
            "hdc ide cdrom /var/lib/isos/tools.iso persistent",
        ]
    );
    assert_eq!(
        disks("ns-present.vmx"),
        ["sda scsi disk [ds1] ns-present/lab-ns.vmdk persistent", "hda ide disk [ds1] ns-present/boot.vmdk persistent"]
    );
    assert_eq!(
        disks("datastores.vmx"),
        [
            "sda scsi disk [ds1] datastores/app03.vmdk persistent",
            "sdb scsi disk [ds1] datastores/disks/app03-data.vmdk persistent",
            "sdc scsi disk [shared] lib/common.vmdk independent-persistent",
            "sdd scsi disk [5f2b9c10-aa11bb22-cc33-001122334455] app03/app03-logs.vmdk persistent",
        ]
    );
    assert_eq!(disks("latin1-fr.vmx"), ["hda ide disk [ds1] latin1-fr/Héloïse.vmdk persistent"]);
    assert_eq!(disks("gsx-noeol.vmx"), ["hda ide disk [ds1] gsx-noeol/legacy.vmdk persistent"]);
}

#[test]
fn names_and_header_fields_come_from_any_encoding_and_case() {
    let (_, x) = view_of(&vm("workstation-win1252.vmx"), &DiskSets::default());
    assert_eq!(x.name(), "Büro-PC – Empfang");
    assert!(x.to_xml().contains(
        "<description>Rechner am Empfang&#13;\nZuständig: „IT-Team“ • Raum 0.12&#13;\nPreis: 450 €</description>"
    ));
    assert_eq!(
        x.document().root.child("description").unwrap().text(),
        "Rechner am Empfang\r\nZuständig: „IT-Team“ • Raum 0.12\r\nPreis: 450 €"
    );
    let (_, x) = view_of(&vm("workstation-linux-case.vmx"), &DiskSets::default());
    assert_eq!(
        (x.name(), x.uuid().unwrap()),
        ("build-runner".to_string(), "564d0000-1111-2222-3333-444455556666".to_string())
    );
    assert!(x.to_xml().contains("<memory unit='KiB'>3145728</memory>"));
    let (_, x) = view_of(&vm("gsx-noeol.vmx"), &DiskSets::default());
    assert_eq!(x.uuid(), None);
    assert!(x.to_xml().contains("<vcpu placement='static'>1</vcpu>"));
    let (_, x) = view_of(&vm("fusion-mac.vmx"), &DiskSets::default());
    assert!(x.to_xml().contains("<type arch='aarch64'>hvm</type>"));
}

#[test]
fn old_modes_are_recorded_in_metadata_and_sets_show_there_too() {
    let mut sets = DiskSets::default();
    sets.add("selected", "sda");
    sets.add("selected", "sdz");
    let (_, x) = view_of(&vm("workstation-win1252.vmx"), &sets);
    let text = x.to_xml();
    assert!(
        text.contains("  <metadata>\n    <luavirt:disksets xmlns:luavirt='https://luavirt.org/xmlns/disksets/1'>\n      <luavirt:set name='selected'>\n        <luavirt:disk target='sda'/>\n      </luavirt:set>\n    </luavirt:disksets>\n    <lvmode:diskmodes xmlns:lvmode='https://luavirt.org/xmlns/diskmodes/1'>\n      <lvmode:disk target='hda' mode='nonpersistent'/>\n      <lvmode:disk target='hdb' mode='undoable'/>\n    </lvmode:diskmodes>\n  </metadata>\n"),
        "{text}"
    );
    assert_eq!(x.disk_sets().members("selected"), ["sda"], "a set member that is not a disk is dropped");
    let hda = x.disk("hda").unwrap();
    assert_eq!((hda.snapshot.as_deref(), hda.transient), (Some("no"), true));
    let hdb = x.disk("hdb").unwrap();
    assert_eq!((hdb.snapshot.as_deref(), hdb.transient), (Some("no"), false));
}

/// Redefines `file`'s VM with its view changed by `change`: the plan and the new .vmx bytes.
fn redefine(file: &str, change: impl FnOnce(&mut DomainXml)) -> Result<(define::Plan, Option<Vec<u8>>), String> {
    redefine_vm(&vm(file), change)
}

fn redefine_vm(vm: &Vm, change: impl FnOnce(&mut DomainXml)) -> Result<(define::Plan, Option<Vec<u8>>), String> {
    let (devices, view) = view_of(vm, &DiskSets::default());
    let mut given = DomainXml::parse(&view.to_xml(), None).unwrap();
    change(&mut given);
    let given = DomainXml::parse(&given.to_xml(), None).unwrap();
    let plan = define::plan(vm, &devices, &view, &given).map_err(|e| e.message)?;
    let bytes = define::apply_modes(vm, &devices, &plan).map_err(|e| e.message)?;
    Ok((plan, bytes))
}

/// The lines that differ, as (line, old, new); an added line shows with an empty old side.
fn diff_lines(file: &str, new: &[u8]) -> Vec<(usize, String, String)> {
    let old = vm(file).bytes;
    let text = |b: &[u8]| String::from_utf8_lossy(b).lines().map(str::to_string).collect::<Vec<_>>();
    let (a, b) = (text(&old), text(new));
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if a.get(i) == b.get(j) {
            i += 1;
            j += 1;
        } else if a.len() < b.len() && a.get(i) == b.get(j + 1) {
            out.push((j + 1, String::new(), b[j].clone()));
            j += 1;
        } else {
            out.push((j + 1, a.get(i).cloned().unwrap_or_default(), b.get(j).cloned().unwrap_or_default()));
            i += 1;
            j += 1;
        }
    }
    out
}

#[test]
fn an_unchanged_view_writes_nothing() {
    for f in [
        "esx7-web.vmx",
        "esx8-nvme.vmx",
        "fusion-mac.vmx",
        "workstation-win1252.vmx",
        "workstation-linux-case.vmx",
        "gsx-noeol.vmx",
        "latin1-fr.vmx",
    ] {
        let (plan, bytes) = redefine(f, |_| {}).unwrap();
        assert_eq!((plan.modes.len(), bytes), (0, None), "{f}");
    }
}

#[test]
fn a_mode_change_rewrites_exactly_its_line() {
    let (_, bytes) =
        redefine("esx7-web.vmx", |x| x.set_disk_mode("sdb", DiskMode::IndependentNonpersistent).unwrap()).unwrap();
    assert_eq!(
        diff_lines("esx7-web.vmx", &bytes.unwrap()),
        [(
            21,
            "scsi0:1.mode = \"independent-persistent\"".into(),
            "scsi0:1.mode = \"independent-nonpersistent\"".into()
        )]
    );
    let (_, bytes) = redefine("esx7-web.vmx", |x| x.set_disk_mode("sdc", DiskMode::Persistent).unwrap()).unwrap();
    assert_eq!(
        diff_lines("esx7-web.vmx", &bytes.unwrap()),
        [(26, "scsi0:2.mode = \"independent-nonpersistent\"".into(), "scsi0:2.mode = \"persistent\"".into())]
    );
    // Key case and trailing comment of the existing line are kept.
    let (_, bytes) =
        redefine("workstation-linux-case.vmx", |x| x.set_disk_mode("sdb", DiskMode::IndependentPersistent).unwrap())
            .unwrap();
    assert_eq!(
        diff_lines("workstation-linux-case.vmx", &bytes.unwrap()),
        [(
            23,
            "\tscsi0:1.Mode = \"Independent-NonPersistent\"   # keep it that way".into(),
            "\tscsi0:1.Mode = \"independent-persistent\"   # keep it that way".into()
        )]
    );
}

#[test]
fn a_disk_without_a_mode_line_gets_one_right_after_its_other_keys() {
    let (_, bytes) =
        redefine("esx7-web.vmx", |x| x.set_disk_mode("sda", DiskMode::IndependentPersistent).unwrap()).unwrap();
    // sched.scsi0:0.* are not the disk's keys: the line goes after scsi0:0.present (line 18).
    assert_eq!(
        diff_lines("esx7-web.vmx", &bytes.unwrap()),
        [(19, String::new(), "scsi0:0.mode = \"independent-persistent\"".into())]
    );
    // In a windows-1252 file with CRLF endings, two disks at once; everything else stays.
    let (plan, bytes) = redefine("workstation-win1252.vmx", |x| {
        x.set_disk_mode("sda", DiskMode::IndependentNonpersistent).unwrap();
        x.set_disk_mode("hdb", DiskMode::Persistent).unwrap();
    })
    .unwrap();
    assert_eq!(plan.modes.len(), 2);
    let bytes = bytes.unwrap();
    let mut expected = vm("workstation-win1252.vmx").bytes;
    let at = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
    let undoable = at(&expected, b"ide0:1.mode = \"");
    expected.splice(undoable..undoable + "undoable".len(), b"persistent".iter().copied());
    let sata = at(&expected, b"sata0:0.present = \"TRUE\"\r\n");
    expected.splice(sata..sata, b"sata0:0.mode = \"independent-nonpersistent\"\r\n".iter().copied());
    assert_eq!(bytes, expected);
}

#[test]
fn setting_persistent_where_it_is_the_default_writes_nothing() {
    let (plan, bytes) = redefine("esx7-web.vmx", |x| x.set_disk_mode("sda", DiskMode::Persistent).unwrap()).unwrap();
    assert_eq!((plan.modes.len(), bytes), (0, None));
}

#[test]
fn disk_sets_change_no_vmx_line() {
    let (plan, bytes) = redefine("esx7-web.vmx", |x| {
        let mut s = x.disk_sets();
        s.add("migrate", "sdb");
        x.set_disk_sets(&s);
    })
    .unwrap();
    assert_eq!(bytes, None);
    assert_eq!(plan.sets.members("migrate"), ["sdb"]);
}

#[test]
fn other_changes_are_refused_naming_what_differs() {
    let e = redefine("esx7-web.vmx", |x| {
        let m = x.document_mut().root.child_mut("memory").unwrap();
        m.set_text("1024");
    })
    .unwrap_err();
    assert!(e.starts_with("Domain 'web01' (/srv/ds1/esx7-web/esx7-web.vmx): /domain/memory is '1024' in the XML and '4194304' in the .vmx; through luavirt a .vmx domain changes only its disk modes"), "{e}");
    assert!(e.ends_with("(nothing was written)"), "{e}");
    let e = redefine("esx7-web.vmx", |x| {
        let disk = x.disk_element_mut("sdb").unwrap();
        disk.child_mut("source").unwrap().set_attr("file", "[ds1] esx7-web/other.vmdk");
    })
    .unwrap_err();
    assert!(e.contains("attribute file of /domain/devices/disk[sdb]/source is '[ds1] esx7-web/other.vmdk' in the XML and '[ds1] esx7-web/web01_1.vmdk' in the .vmx"), "{e}");
    let e = redefine("esx7-web.vmx", |x| {
        let devices = x.document_mut().root.child_mut("devices").unwrap();
        devices.remove_element(0);
    })
    .unwrap_err();
    assert!(e.contains("in /domain/devices"), "{e}");
}

#[test]
fn esx_refuses_a_disk_kept_in_snapshots_whose_changes_are_discarded() {
    let e = redefine("esx7-web.vmx", |x| {
        x.disk_element_mut("sdc").unwrap().set_attr("snapshot", "external");
    })
    .unwrap_err();
    assert!(
        e.starts_with("Disk sdc of domain 'web01': ESX cannot keep a disk in snapshots and discard its changes"),
        "{e}"
    );
}

#[test]
fn old_modes_can_be_read_not_set_and_cdroms_have_no_mode() {
    let e = redefine("esx7-web.vmx", |x| {
        let mut text = x.to_xml();
        text = text.replace(
            "<vcpu",
            "<metadata><m:diskmodes xmlns:m='https://luavirt.org/xmlns/diskmodes/1'><m:disk target='sda' mode='undoable'/></m:diskmodes></metadata>\n  <vcpu",
        );
        *x = DomainXml::parse(&text, None).unwrap();
    })
    .unwrap_err();
    assert!(e.contains("'undoable' is ESX's old mode and can only be read"), "{e}");
    let e = redefine("esx7-web.vmx", |x| {
        x.disk_element_mut("sdd").unwrap().set_attr("snapshot", "no");
    })
    .unwrap_err();
    assert!(e.contains("Disk sdd of domain 'web01' is a CD-ROM drive"), "{e}");
    // Leaving an old mode for a settable one is a change like any other.
    let (_, bytes) =
        redefine("workstation-win1252.vmx", |x| x.set_disk_mode("hda", DiskMode::IndependentPersistent).unwrap())
            .unwrap();
    assert!(String::from_utf8_lossy(&bytes.unwrap()).contains("ide0:0.mode = \"independent-persistent\"\r\n"));
}

#[test]
fn a_uuid_added_by_the_host_to_a_vm_without_one_is_ignored() {
    let (plan, bytes) = redefine("gsx-noeol.vmx", |x| x.set_uuid("11111111-2222-3333-4444-555555555555")).unwrap();
    assert_eq!((plan.modes.len(), bytes), (0, None));
    let e = redefine("esx7-web.vmx", |x| x.set_uuid("11111111-2222-3333-4444-555555555555")).unwrap_err();
    assert!(e.contains("/domain/uuid"), "{e}");
}

#[test]
fn a_disk_of_unknown_mode_is_marked_and_the_rest_of_the_vm_reads_and_changes() {
    // `append` (ESX 2) on sdb made the whole VM unreadable.
    let mut v = vm("esx7-web.vmx");
    let text = String::from_utf8(v.bytes.clone()).unwrap();
    v.bytes = text.replace("scsi0:1.mode = \"independent-persistent\"", "scsi0:1.mode = \"append\"").into_bytes();
    v.vmx = VmxFile::parse(&v.bytes, &v.path.display().to_string()).unwrap();
    let (_, xml) = view_of(&v, &DiskSets::default());
    assert_eq!(xml.disks().len(), 5);
    assert_eq!(xml.disk_mode("sdb"), Some(DiskMode::Unknown));
    assert_eq!(xml.disk_mode("sda"), Some(DiskMode::Persistent));
    let sdb = xml.disks().into_iter().find(|d| d.target == "sdb").unwrap();
    assert_eq!((sdb.snapshot.as_deref(), sdb.transient), (Some("no"), false));
    assert!(xml.to_xml().contains("<lvmode:disk target='sdb' mode='unknown' text='append'/>"), "{}", xml.to_xml());
    // The view defined back writes nothing; another disk's mode changes as ever.
    let (plan, bytes) = redefine_vm(&v, |_| {}).unwrap();
    assert_eq!((plan.modes.len(), bytes), (0, None));
    let (_, bytes) = redefine_vm(&v, |x| x.set_disk_mode("sdc", DiskMode::Persistent).unwrap()).unwrap();
    assert!(String::from_utf8(bytes.unwrap()).unwrap().contains("scsi0:2.mode = \"persistent\""));
    // Its own mode is left alone, and the refusal names the line.
    let e = redefine_vm(&v, |x| x.set_disk_mode("sdb", DiskMode::Persistent).unwrap()).unwrap_err();
    assert_eq!(
        e,
        "Disk sdb of domain 'web01' has mode \"append\" (/srv/ds1/esx7-web/esx7-web.vmx:21), which luavirt does not know, so it leaves that disk as it is: it changes no such mode and takes no such disk in snapshots (ESX knows persistent, independent-persistent and independent-nonpersistent); change it in the VMware client or on that line (nothing was written)"
    );
}
