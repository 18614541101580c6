//! The VMware driver on a datastore folder of `.vmx` files (`-c vmx:///<datastore>`), through
//! the real binary: listing, the domain XML view, disk details from real VMDKs made with
//! qemu-img, disk sets in the sidecar, disk modes as one-line edits, refused changes, bad
//! input, and start/stop, which need an ESX host. Whatever fails leaves every file as it was.

use luavirt_plugin_api::domain::DomainXml;
use luavirt_tests::{Env, repo_dir, require};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary host with a datastore folder `ds1` of VMs copied from tests/data/vmx.
struct Datastore {
    env: Env,
    root: PathBuf,
    uri: String,
}

impl Datastore {
    fn new(test: &str) -> Datastore {
        let env = Env::new(test);
        let root = env.dir.join("ds1");
        std::fs::create_dir_all(&root).unwrap();
        let uri = format!("vmx://{}", root.display());
        Datastore { env, root, uri }
    }

    /// Copies corpus file `file` to `<ds1>/<folder>/<folder>.vmx`.
    fn add(&self, file: &str, folder: &str) -> PathBuf {
        let dir = self.root.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join(format!("{folder}.vmx"));
        std::fs::copy(repo_dir().join("tests/data/vmx").join(file), &dest).unwrap();
        dest
    }

    /// Makes a VMDK with `qemu-img create -f vmdk EXTRA... NAME [SIZE]` in `<ds1>/<folder>`.
    fn vmdk(&self, folder: &str, name: &str, extra: &[&str], size: Option<&str>) {
        require("qemu-img", "qemu-utils");
        let dir = self.root.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("qemu-img")
            .current_dir(&dir)
            .args(["create", "-q", "-f", "vmdk"])
            .args(extra)
            .arg(name)
            .args(size)
            .output()
            .unwrap();
        assert!(out.status.success(), "qemu-img: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn args<'a>(&'a self, uri: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["-c", uri];
        a.extend_from_slice(args);
        a
    }

    fn ok(&self, args: &[&str]) -> String {
        self.env.ok(&self.args(&self.uri, args))
    }

    fn fails(&self, args: &[&str]) -> String {
        self.env.fails(&self.args(&self.uri, args), 1)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Every file of the datastore and the state folder with its bytes (lock files aside).
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_none_or(|x| x != "lock") {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &mut out);
        walk(&self.env.state, &mut out);
        out
    }
}

/// Asserts two snapshots of the files are the same, naming the files that differ.
fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let changed: Vec<&PathBuf> =
        before.keys().chain(after.keys()).filter(|p| before.get(*p) != after.get(*p)).collect();
    assert!(changed.is_empty(), "files changed: {changed:?}");
}

/// Lines that differ between two files' bytes, as (line number, old, new); a line added shows
/// with an empty old side.
fn changed_lines(old: &[u8], new: &[u8]) -> Vec<(usize, String, String)> {
    let split = |b: &[u8]| -> Vec<Vec<u8>> { b.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect() };
    let (a, b) = (split(old), split(new));
    let show = |l: &[u8]| String::from_utf8_lossy(l).trim_end_matches('\r').to_string();
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if a.get(i) == b.get(j) {
            i += 1;
            j += 1;
        } else if b.len() > a.len() && a.get(i) == b.get(j + 1) {
            out.push((j + 1, String::new(), show(&b[j])));
            j += 1;
        } else {
            out.push((j + 1, a.get(i).map_or(String::new(), |l| show(l)), b.get(j).map_or(String::new(), |l| show(l))));
            i += 1;
            j += 1;
        }
    }
    out
}

/// A datastore with four VMs of different styles.
fn four_vms(test: &str) -> Datastore {
    let ds = Datastore::new(test);
    ds.add("esx7-web.vmx", "web01");
    ds.add("esx8-nvme.vmx", "db02");
    ds.add("workstation-win1252.vmx", "buero");
    ds.add("fusion-mac.vmx", "ubuntu");
    ds
}

#[test]
fn list_shows_every_vmx_by_display_name_shut_off() {
    let ds = four_vms("list");
    assert_eq!(ds.ok(&["list", "--all", "--name"]), "Büro-PC – Empfang\nUbuntu 64-bit Arm Server 22.04\ndb02\nweb01\n");
    let list = ds.json(&["list", "--all"]);
    let web = list.as_array().unwrap().iter().find(|d| d["name"] == "web01").unwrap();
    assert_eq!(web["uuid"], "421a5c3e-9d7f-0b21-6e4c-88aa01234567");
    assert_eq!(web["state"], "shut-off");
    // Nothing runs: the plain list (running domains) is empty.
    assert_eq!(ds.ok(&["list", "--name"]), "");
    assert_eq!(ds.ok(&["domstate", "db02"]), "shut off\n");
}

#[test]
fn dumpxml_shows_name_memory_disks_and_modes() {
    let ds = four_vms("dumpxml");
    let xml = ds.ok(&["dumpxml", "web01"]);
    let dom = DomainXml::parse(&xml, None).unwrap();
    assert_eq!(dom.domain_type().as_deref(), Some("vmware"));
    assert_eq!(dom.uuid().as_deref(), Some("421a5c3e-9d7f-0b21-6e4c-88aa01234567"));
    assert!(xml.contains("<memory unit='KiB'>4194304</memory>\n  <vcpu placement='static'>2</vcpu>"), "{xml}");
    let disks: Vec<String> = dom
        .disks()
        .iter()
        .map(|d| format!("{} {} {} {}", d.target, d.bus.as_deref().unwrap(), d.device, d.source.display()))
        .collect();
    assert_eq!(
        disks,
        [
            "sda scsi disk [ds1] web01/web01.vmdk",
            "sdb scsi disk [ds1] web01/web01_1.vmdk",
            "sdc scsi disk [ds1] web01/web01_2.vmdk",
            "sdh scsi disk [ds1] web01/web01_3.vmdk",
            "sdd sata cdrom [61a7c1e0-2b9f44d8-8c3e-0050569a1b2c] iso/debian-12.iso",
        ]
    );
    for (disk, mode) in [
        ("sda", "persistent"),
        ("sdb", "independent-persistent"),
        ("sdc", "independent-nonpersistent"),
        ("sdh", "persistent"),
    ] {
        assert_eq!(ds.ok(&["disk-mode", "web01", disk]), format!("{mode}\n"), "{disk}");
    }
    // The old modes read back as themselves; the windows-1252 name and annotation are converted.
    let buero = "Büro-PC – Empfang";
    assert_eq!(ds.ok(&["disk-mode", buero, "hda"]), "nonpersistent\n");
    assert_eq!(ds.ok(&["disk-mode", buero, "hdb"]), "undoable\n");
    assert!(ds.ok(&["dumpxml", buero]).contains(
        "<description>Rechner am Empfang&#13;\nZuständig: „IT-Team“ • Raum 0.12&#13;\nPreis: 450 €</description>"
    ));
    // NVMe disks have no deviceType; a disk on another datastore shows in datastore form.
    let list = ds.ok(&["domblklist", "db02"]);
    let rows: Vec<&str> = list.lines().filter(|l| !l.starts_with("---")).collect();
    assert_eq!(
        rows,
        [
            " Target    Source",
            " sda       -",
            " sdb       -",
            " nvme0n1   [ds1] db02/db02.vmdk",
            " nvme0n2   [fastdata] db02/db02_data.vmdk",
            " nvme1n1   [fastdata] db02/db02_log.vmdk",
        ]
    );
}

#[test]
fn domblklist_details_reads_vmdk_descriptors_and_parent_chains() {
    let ds = Datastore::new("details");
    ds.add("datastores.vmx", "app03");
    ds.vmdk("app03", "base.vmdk", &[], Some("64M"));
    ds.vmdk("app03", "app03.vmdk", &["-b", "base.vmdk", "-F", "vmdk"], None);
    ds.vmdk("app03/disks", "app03-data.vmdk", &["-o", "subformat=monolithicFlat"], Some("16M"));
    let shared = ds.env.dir.join("shared");
    std::fs::create_dir_all(shared.join("lib")).unwrap();
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"])
        .arg(shared.join("lib/common.vmdk"))
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success());
    ds.vmdk("app03", "app03-logs.vmdk", &[], Some("4M"));
    let uri = format!(
        "{}?datastore.shared={}&datastore.5f2b9c10-aa11bb22-cc33-001122334455={}",
        ds.uri,
        shared.display(),
        ds.root.display()
    );
    let before = ds.files();
    let out = ds.env.ok(&ds.args(&uri, &["domblklist", "app03", "--details", "--json"]));
    let devs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = |t: &str| devs.as_array().unwrap().iter().find(|d| d["target"] == t).unwrap().clone();
    let sda = row("sda");
    assert_eq!((sda["format"].as_str(), sda["capacity"].as_u64()), (Some("vmdk"), Some(64 << 20)));
    assert_eq!(sda["backing"], serde_json::json!([{ "path": "[ds1] app03/base.vmdk", "format": "vmdk" }]));
    assert!(sda["allocation"].as_u64().unwrap() > 0);
    let sdb = row("sdb");
    assert_eq!(
        (sdb["source"].as_str(), sdb["capacity"].as_u64()),
        (Some("[ds1] app03/disks/app03-data.vmdk"), Some(16 << 20))
    );
    assert!(sdb.get("backing").is_none());
    let sdc = row("sdc");
    assert_eq!((sdc["source"].as_str(), sdc["capacity"].as_u64()), (Some("[shared] lib/common.vmdk"), Some(8 << 20)));
    let sdd = row("sdd");
    assert_eq!(
        (sdd["source"].as_str(), sdd["capacity"].as_u64()),
        (Some("[5f2b9c10-aa11bb22-cc33-001122334455] app03/app03-logs.vmdk"), Some(4 << 20))
    );
    let text = ds.env.ok(&ds.args(&uri, &["domblklist", "app03", "--details"]));
    assert!(text.contains(" file   disk     sda      [ds1] app03/app03.vmdk "), "{text}");
    assert!(text.contains("64 MiB         [ds1] app03/base.vmdk (vmdk)"), "{text}");
    assert_unchanged(&before, &ds.files());
}

#[test]
fn a_datastore_path_without_mapping_is_a_clear_error() {
    let ds = Datastore::new("unmapped");
    let vmx = ds.add("datastores.vmx", "app03");
    ds.vmdk("app03", "app03.vmdk", &[], Some("1M"));
    ds.vmdk("app03/disks", "app03-data.vmdk", &[], Some("1M"));
    let before = ds.files();
    let err = ds.fails(&["domblklist", "app03", "--details"]);
    assert_eq!(
        err,
        format!(
            "error: Disk sdc of domain 'app03': {}:14 names [shared] lib/common.vmdk, on datastore 'shared', which this connection does not map; add ?datastore.shared=/path/to/its/folder to the connection URI\n",
            vmx.canonicalize().unwrap().display()
        )
    );
    // The view itself needs no mapping.
    assert!(ds.ok(&["dumpxml", "app03"]).contains("<source file='[shared] lib/common.vmdk'/>"));
    assert_unchanged(&before, &ds.files());
}

#[test]
fn a_missing_disk_file_is_a_clear_error() {
    let ds = Datastore::new("missing");
    let vmx = ds.add("esx8-nvme.vmx", "db02");
    let before = ds.files();
    let err = ds.fails(&["domblklist", "db02", "--details"]);
    assert!(
        err.contains(&format!(
            "Disk nvme0n1 of domain 'db02': {}:12 names [ds1] db02/db02.vmdk ({}), which does not exist; restore the file or fix nvme0:0.fileName",
            vmx.canonicalize().unwrap().display(),
            ds.root.canonicalize().unwrap().join("db02/db02.vmdk").display()
        )),
        "{err}"
    );
    assert_unchanged(&before, &ds.files());
}

#[test]
fn disk_sets_live_in_the_sidecar_and_leave_the_vmx_untouched() {
    let ds = four_vms("disksets");
    let vmx = ds.root.join("web01/web01.vmx");
    let sidecar = ds.root.join("web01/web01.luavirt.xml");
    let original = std::fs::read(&vmx).unwrap();
    assert_eq!(ds.ok(&["diskset", "add", "web01", "sdb"]), "Disk sdb added to set 'selected' of domain 'web01'\n");
    assert_eq!(ds.ok(&["diskset", "add", "web01", "sdb"]), "Disk sdb is already in set 'selected' of domain 'web01'\n");
    ds.ok(&["diskset", "add", "web01", "[ds1] web01/web01.vmdk", "--set", "migrate"]);
    ds.ok(&["diskset", "add", "web01", "sdh", "--set", "migrate"]);
    assert_eq!(std::fs::read(&vmx).unwrap(), original, "the .vmx is untouched");
    assert_eq!(
        std::fs::read_to_string(&sidecar).unwrap(),
        "<?xml version='1.0' encoding='UTF-8'?>\n<!-- luavirt's metadata for the .vmx beside this file: what a .vmx has no place for. Written by luavirt. -->\n<metadata>\n  <luavirt:disksets xmlns:luavirt='https://luavirt.org/xmlns/disksets/1'>\n    <luavirt:set name='migrate'>\n      <luavirt:disk node='scsi0:0' target='sda'/>\n      <luavirt:disk node='scsi0:8' target='sdh'/>\n    </luavirt:set>\n    <luavirt:set name='selected'>\n      <luavirt:disk node='scsi0:1' target='sdb'/>\n    </luavirt:set>\n  </luavirt:disksets>\n</metadata>\n"
    );
    // Each call is a new process: the sets were persisted, and show in the XML's metadata.
    assert_eq!(ds.ok(&["diskset", "list", "web01", "--set", "migrate"]), "sda\nsdh\n");
    assert_eq!(ds.ok(&["diskset", "names", "web01"]), "migrate\nselected\n");
    assert!(ds.ok(&["dumpxml", "web01"]).contains("<luavirt:set name='selected'>"));
    assert_eq!(ds.json(&["diskset", "remove", "web01", "sdc"])["change"], "already-absent");
    ds.ok(&["diskset", "remove", "web01", "sdb"]);
    ds.ok(&["diskset", "remove-all", "web01", "--set", "migrate"]);
    assert!(!sidecar.exists(), "an empty sidecar is removed");
    assert_eq!(std::fs::read(&vmx).unwrap(), original);
}

#[test]
fn a_disk_that_leaves_the_vm_leaves_its_sets() {
    let ds = four_vms("leaves");
    ds.ok(&["diskset", "add", "web01", "sdc"]);
    ds.ok(&["diskset", "add", "web01", "sdd", "--set", "iso"]);
    // The VMware client removes scsi0:2 (sdc; it keeps the keys with present = FALSE). The SATA
    // CD-ROM, sdd so far, now gets the freed name sdc, as libvirt would name it.
    let vmx = ds.root.join("web01/web01.vmx");
    let text =
        std::fs::read_to_string(&vmx).unwrap().replace("scsi0:2.present = \"TRUE\"", "scsi0:2.present = \"FALSE\"");
    std::fs::write(&vmx, &text).unwrap();
    let disks = ds.ok(&["domblklist", "web01"]);
    assert!(disks.contains(" sdc      [61a7c1e0-2b9f44d8-8c3e-0050569a1b2c] iso/debian-12.iso"), "{disks}");
    // The removed disk is in no set, and the CD-ROM did not inherit its membership.
    assert_eq!(ds.ok(&["diskset", "list", "web01"]), "");
    assert_eq!(ds.ok(&["diskset", "list", "web01", "--set", "iso"]), "sdc\n");
    // The next change forgets the removed disk in the sidecar too.
    ds.ok(&["diskset", "add", "web01", "sda"]);
    let sidecar = std::fs::read_to_string(ds.root.join("web01/web01.luavirt.xml")).unwrap();
    assert!(!sidecar.contains("scsi0:2") && sidecar.contains("node='sata0:0' target='sdc'"), "{sidecar}");
    assert_eq!(std::fs::read_to_string(&vmx).unwrap(), text);
}

#[test]
fn disk_mode_changes_exactly_one_line() {
    let ds = four_vms("diskmode");
    let vmx = ds.root.join("web01/web01.vmx");
    let original = std::fs::read(&vmx).unwrap();
    assert_eq!(
        ds.ok(&["disk-mode", "web01", "sdb", "independent-nonpersistent"]),
        "Disk sdb of domain 'web01' is now independent-nonpersistent\n"
    );
    let now = std::fs::read(&vmx).unwrap();
    assert_eq!(
        changed_lines(&original, &now),
        [(
            21,
            "scsi0:1.mode = \"independent-persistent\"".into(),
            "scsi0:1.mode = \"independent-nonpersistent\"".into()
        )]
    );
    assert_eq!(ds.ok(&["disk-mode", "web01", "sdb"]), "independent-nonpersistent\n");
    // A disk without a .mode line gets one right after its keys (not after sched.scsi0:0.*).
    ds.ok(&["disk-mode", "web01", "sda", "independent-persistent"]);
    let after = std::fs::read(&vmx).unwrap();
    assert_eq!(changed_lines(&now, &after), [(19, String::new(), "scsi0:0.mode = \"independent-persistent\"".into())]);
    // Setting a disk's current mode writes nothing.
    assert_eq!(
        ds.ok(&["disk-mode", "web01", "sda", "independent-persistent"]),
        "Disk sda of domain 'web01' is already independent-persistent\n"
    );
    assert_eq!(std::fs::read(&vmx).unwrap(), after);
    // In a windows-1252 file with CRLF line ends, the one line changes and the rest stays byte-identical.
    let buero = ds.root.join("buero/buero.vmx");
    let original = std::fs::read(&buero).unwrap();
    ds.ok(&["disk-mode", "Büro-PC – Empfang", "hdb", "persistent"]);
    let now = std::fs::read(&buero).unwrap();
    assert_eq!(
        changed_lines(&original, &now),
        [(21, "ide0:1.mode = \"undoable\"".into(), "ide0:1.mode = \"persistent\"".into())]
    );
    assert!(now.windows(4).any(|w| w == b"B\xfcro"), "still windows-1252");
    assert_eq!(ds.ok(&["disk-mode", "Büro-PC – Empfang", "hdb"]), "persistent\n");
}

#[test]
fn refused_changes_say_why_and_write_nothing() {
    let ds = four_vms("refused");
    let before = ds.files();
    let xml = ds.ok(&["dumpxml", "web01"]);
    let vmx = ds.root.join("web01/web01.vmx").canonicalize().unwrap();
    let memory = ds.env.write("memory.xml", &xml.replace("4194304", "8388608"));
    assert_eq!(
        ds.fails(&["define", memory.to_str().unwrap()]),
        format!(
            "error: Domain 'web01' ({}): /domain/memory is '8388608' in the XML and '4194304' in the .vmx; through luavirt a .vmx domain changes only its disk modes (snapshot='no', <transient/>) and disk sets; change anything else with the VMware client or in the .vmx itself (nothing was written)\n",
            vmx.display()
        )
    );
    let esx = ds.env.write(
        "esx.xml",
        &xml.replacen("<disk type='file' device='disk'>\n      <driver type='vmdk'/>\n      <source file='[ds1] web01/web01.vmdk'/>\n      <target dev='sda' bus='scsi'/>", "<disk type='file' device='disk'>\n      <driver type='vmdk'/>\n      <source file='[ds1] web01/web01.vmdk'/>\n      <target dev='sda' bus='scsi'/>\n      <transient/>", 1),
    );
    assert!(
        ds.fails(&["define", esx.to_str().unwrap()])
            .contains("Disk sda of domain 'web01': ESX cannot keep a disk in snapshots and discard its changes"),
    );
    let new = ds
        .env
        .write("new.xml", &xml.replace("<name>web01</name>", "<name>web99</name>").replace("421a5c3e", "521a5c3e"));
    let err = ds.fails(&["define", new.to_str().unwrap()]);
    assert!(
        err.contains("Domain 'web99' is not on datastore")
            && err.contains("luavirt does not create VMware VMs from XML. Create the VM with the VMware client"),
        "{err}"
    );
    assert!(
        ds.fails(&["disk-mode", "web01", "sdd", "independent-persistent"])
            .contains("is a CD-ROM drive; disk modes apply to hard disks only")
    );
    assert!(ds.fails(&["disk-mode", "web01", "sda", "undoable"]).contains("can only be read"));
    let err = ds.fails(&["undefine", "web01"]);
    assert!(err.contains("luavirt leaves that to the VMware client"), "{err}");
    assert_unchanged(&before, &ds.files());
}

#[test]
fn the_view_defined_back_unchanged_writes_nothing() {
    let ds = Datastore::new("roundtrip");
    let corpus = repo_dir().join("tests/data/vmx");
    let mut n = 0;
    for e in std::fs::read_dir(&corpus).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".vmx") {
            ds.add(&name, stem);
            n += 1;
        }
    }
    let before = ds.files();
    let names = ds.ok(&["list", "--all", "--name"]);
    assert_eq!(names.lines().count(), n);
    for name in names.lines() {
        let xml = ds.ok(&["dumpxml", name]);
        let file = ds.env.write("view.xml", &xml);
        assert!(ds.ok(&["define", file.to_str().unwrap()]).contains(&format!("Domain '{name}' defined")), "{name}");
    }
    assert_unchanged(&before, &ds.files());
}

#[test]
fn bad_vmx_files_are_clear_errors_and_nothing_is_written() {
    let ds = Datastore::new("bad");
    ds.add("esx7-web.vmx", "web01");
    let syntax = ds.add("bad/syntax.vmx", "syntax");
    let dup = ds.add("bad/duplicate.vmx", "duplicate");
    let enc = ds.add("bad/encoding.vmx", "encoding");
    let before = ds.files();
    // Broken files are listed under their file names, so they can be asked about, with a warning.
    let r = ds.env.run(&ds.args(&ds.uri, &["list", "--all", "--name"]));
    assert_eq!((r.code, r.stdout.as_str()), (0, "duplicate\nencoding\nsyntax\nweb01\n"));
    assert!(
        r.stderr.contains("luavirt: warning (vmx): ") && r.stderr.contains("syntax.vmx:3: syntax error"),
        "{}",
        r.stderr
    );
    let real = |p: &Path| p.canonicalize().unwrap().display().to_string();
    assert_eq!(
        ds.fails(&["dumpxml", "syntax"]),
        format!(
            "error: {}:3: syntax error at column 11: the value of memsize is not in double quotes; write memsize = \"VALUE\" (nothing was changed)\n",
            real(&syntax)
        )
    );
    let err = ds.fails(&["dumpxml", "duplicate"]);
    assert!(err.contains(&format!("{}:5: key SCSI0:0.FileName is set twice (lines 3 and 5", real(&dup))), "{err}");
    let err = ds.fails(&["disk-mode", "encoding", "sda", "persistent"]);
    assert!(
        err.contains(&format!(
            "{}:1: unknown .encoding \"GBK\"; luavirt reads UTF-8, windows-1252, ISO-8859-1, ISO-8859-15",
            real(&enc)
        )),
        "{err}"
    );
    assert!(ds.fails(&["diskset", "add", "duplicate", "sda"]).contains("is set twice"));
    assert_unchanged(&before, &ds.files());
}

#[test]
fn two_vms_with_one_display_name_are_listed_and_named_ambiguous() {
    let ds = Datastore::new("ambiguous");
    let a = ds.add("esx7-web.vmx", "web01");
    let b = ds.add("esx7-web.vmx", "web01-clone");
    assert_eq!(ds.ok(&["list", "--all", "--name"]), "web01\nweb01\n");
    let err = ds.fails(&["dumpxml", "web01"]);
    assert!(
        err.contains(&format!(
            "Domain name 'web01' is ambiguous: {} and {} both have that displayName; give each VM its own name in the VMware client",
            a.canonicalize().unwrap().display(),
            b.canonicalize().unwrap().display()
        )),
        "{err}"
    );
}

#[test]
fn start_and_destroy_say_an_esx_host_is_needed() {
    let ds = four_vms("start");
    let before = ds.files();
    assert_eq!(
        ds.fails(&["start", "web01"]),
        "error: Starting domain 'web01' needs an ESX or Workstation host, which luavirt does not drive here: the vmx driver works on the VM's files only; use the VMware client\n"
    );
    assert!(ds.fails(&["destroy", "web01"]).contains("Stopping domain 'web01' needs an ESX or Workstation host"));
    assert!(ds.fails(&["start", "web0l"]).contains("Did you mean 'web01'?"));
    assert_eq!(ds.ok(&["domstate", "web01"]), "shut off\n");
    assert_unchanged(&before, &ds.files());
}

#[test]
fn connection_uris_are_checked() {
    let ds = Datastore::new("uris");
    let missing = format!("vmx://{}/nope", ds.root.display());
    assert!(ds.env.fails(&["-c", &missing, "list"], 1).contains("cannot be opened"));
    let odd = format!("{}?colour=blue", ds.uri);
    assert!(
        ds.env
            .fails(&["-c", &odd, "list"], 1)
            .contains("unknown parameter 'colour'; vmx:///PATH takes ?datastore=NAME")
    );
    // ?datastore=NAME names the connection's own folder.
    ds.add("ns-present.vmx", "lab");
    let named = format!("{}?datastore=local", ds.uri);
    let out = ds.env.ok(&["-c", &named, "domblklist", "lab-ns"]);
    assert!(out.contains("[local] lab/lab-ns.vmdk"), "{out}");
}
