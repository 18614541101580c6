//! The Xen driver on a folder of xl configs (`-c libxl:///<folder>`), through the real binary:
//! listing, the domain XML libvirt's xl conversion gives, Xen's own parser (libxlutil, through
//! tests/tools/xl-parse.py) agreeing with luavirt's on configs and disk specs, lossless
//! configs with one-entry changes, disk sets and modes in the sidecar, snapshots, reverts and
//! deletes of a two-disk domain with data checked by `qemu-io` and `qemu-img compare`, each
//! of them killed at each failpoint and settled by the next call, bad input that changes
//! nothing, and the live boundary: what needs xl or a hypervisor says which is missing.

use luavirt_plugin_api::domain::{DiskSource, DomainXml};
use luavirt_tests::crash::killed_at;
use luavirt_tests::{Env, repo_dir, require};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary host with a config folder `xen`.
struct Xen {
    env: Env,
    dir: PathBuf,
    uri: String,
}

impl Xen {
    fn new(test: &str) -> Xen {
        let env = Env::new(test);
        let dir = env.dir.join("xen");
        std::fs::create_dir_all(&dir).unwrap();
        let uri = format!("libxl://{}", dir.display());
        Xen { env, dir, uri }
    }

    /// Writes config `file` into the folder.
    fn cfg(&self, file: &str, text: &str) -> PathBuf {
        let p = self.dir.join(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Makes image `name` in the folder with `qemu-img create`.
    fn image(&self, name: &str, format: &str, size: &str) -> PathBuf {
        require("qemu-img", "qemu-utils");
        let p = self.dir.join(name);
        let out = Command::new("qemu-img").args(["create", "-q", "-f", format]).arg(&p).arg(size).output().unwrap();
        assert!(out.status.success(), "qemu-img: {}", String::from_utf8_lossy(&out.stderr));
        p
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["-c", self.uri.as_str()];
        a.extend_from_slice(args);
        a
    }

    fn run(&self, args: &[&str]) -> luavirt_tests::Run {
        self.env.run(&self.args(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        self.env.ok(&self.args(args))
    }

    fn fails(&self, args: &[&str]) -> String {
        self.env.fails(&self.args(args), 1)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Every file of the folder and the state folder with its bytes (lock files aside).
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
        walk(&self.dir, &mut out);
        walk(&self.env.state, &mut out);
        out
    }

    /// The names of the folder's files.
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The domain XML of `dom`, parsed.
    fn xml(&self, dom: &str) -> DomainXml {
        DomainXml::parse(&self.ok(&["dumpxml", dom]), None).unwrap()
    }

    /// The image disk `target` of `dom` is on now, and its format.
    fn disk(&self, dom: &str, target: &str) -> (PathBuf, String) {
        let d = self.xml(dom).disk(target).unwrap_or_else(|| panic!("no disk {target}"));
        (PathBuf::from(d.source.path().unwrap()), d.format.unwrap())
    }
}

fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let changed: Vec<&PathBuf> =
        before.keys().chain(after.keys()).filter(|p| before.get(*p) != after.get(*p)).collect();
    assert!(changed.is_empty(), "files changed: {changed:?}");
}

/// Lines that differ between two texts of the same length in lines: (line, old, new).
fn changed_lines(old: &str, new: &str) -> Vec<(usize, String, String)> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    assert_eq!(a.len(), b.len(), "line count changed:\n{old}\n---\n{new}");
    (0..a.len()).filter(|i| a[*i] != b[*i]).map(|i| (i + 1, a[i].to_string(), b[i].to_string())).collect()
}

/// Reads configs with Xen's own parser: one JSON value per file.
fn libxl_reads(files: &[PathBuf], keys: &[&str]) -> Vec<Value> {
    let mut c = Command::new("python3");
    c.arg(repo_dir().join("tests/tools/xl-parse.py"));
    for k in keys {
        c.args(["--key", k]);
    }
    let out = c.args(files).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "xl-parse.py failed (xen-utils-4.17 missing? run tools/setup.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

// ---- Images: data written and checked through each chain ----

fn qemu_io(file: &Path, format: &str, command: &str, read_only: bool) -> bool {
    require("qemu-io", "qemu-utils");
    let mut c = Command::new("qemu-io");
    if read_only {
        c.args(["-r", "-U"]);
    }
    let out = c.args(["-f", format, "-c", command]).arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && !text.contains("failed") && !text.contains("error")
}

fn write_mib(file: &Path, format: &str, pattern: u8, mib: u32) {
    assert!(qemu_io(file, format, &format!("write -P {pattern:#x} {mib}M 1M"), false), "writing {}", file.display());
}

fn holds(file: &Path, format: &str, pattern: u8, mib: u32) -> bool {
    qemu_io(file, format, &format!("read -P {pattern:#x} {mib}M 1M"), true)
}

fn qemu_img(args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The content of the chain on `file` as a raw image at `raw`.
fn save_raw(file: &Path, format: &str, raw: &Path) {
    qemu_img(&[
        "convert".as_ref(),
        "-U".as_ref(),
        "-f".as_ref(),
        format.as_ref(),
        "-O".as_ref(),
        "raw".as_ref(),
        file.as_os_str(),
        raw.as_os_str(),
    ])
    .unwrap();
}

/// Whether the chain on `file` holds exactly the bytes of `raw` (`qemu-img compare`).
fn same_as(file: &Path, format: &str, raw: &Path) -> bool {
    qemu_img(&[
        "compare".as_ref(),
        "-f".as_ref(),
        format.as_ref(),
        "-F".as_ref(),
        "raw".as_ref(),
        file.as_os_str(),
        raw.as_os_str(),
    ])
    .is_ok()
}

fn internal_snapshots(image: &Path) -> Vec<String> {
    let out = qemu_img(&["info".as_ref(), "-U".as_ref(), "--output=json".as_ref(), image.as_os_str()]).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    v["snapshots"]
        .as_array()
        .map(|a| a.iter().map(|s| s["name"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn check_image(image: &Path) {
    if image.extension().is_some_and(|x| x == "raw") {
        return;
    }
    qemu_img(&["check".as_ref(), "-q".as_ref(), image.as_os_str()])
        .unwrap_or_else(|e| panic!("qemu-img check {}: {e}", image.display()));
}

// ---- Listing and the domain XML ----

#[test]
fn list_and_drivers_show_the_configs_of_the_folder() {
    let x = Xen::new("xllist");
    x.cfg("web.cfg", "name = \"web01\"\nuuid = \"8d2b6a3c-61d4-4a8f-9e10-3c0f5d7b2a91\"\nmemory = 256\n");
    x.cfg("db", "name = 'db02'\nmemory = 512\ndisk = [ '/srv/db.img,,xvda' ]\n");
    x.cfg("broken.cfg", "name = \"broken\"\nmemory = 256\ndisk = [ '/a,,xvda' ,, ]\n");
    // Not domains: xl's own settings, a sidecar, notes, a file of settings no domain has.
    x.cfg("xl.conf", "autoballoon = \"off\"\n");
    x.cfg("web.cfg.luavirt.xml", "<metadata/>\n");
    x.cfg("README.txt", "not a config\n");
    x.cfg("cpupool", "name = \"pool0\"\nsched = \"credit\"\n");
    x.cfg("web.cfg~", "name = \"old\"\nmemory = 1\n");
    let drivers = x.env.ok(&["drivers"]);
    let line = drivers.lines().find(|l| l.starts_with(" libxl ")).unwrap_or_else(|| panic!("{drivers}"));
    assert!(line.contains("libxl,xen") && line.contains("define,lifecycle,block-info,snapshot,migration"), "{line}");
    let r = x.run(&["list", "--all", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let list: Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["broken", "db02", "web01"]);
    assert!(list.as_array().unwrap().iter().all(|d| d["state"] == "shut-off"), "{list}");
    assert_eq!(list[2]["uuid"], "8d2b6a3c-61d4-4a8f-9e10-3c0f5d7b2a91");
    assert!(r.stderr.contains("broken.cfg:3:22: expected a list item"), "{}", r.stderr);
    // Reads write nothing, anywhere.
    let before = x.files();
    for verb in [
        &["list", "--all"][..],
        &["dumpxml", "web01"],
        &["domstate", "db02", "--reason"],
        &["snapshot-list", "web01"],
        &["domblklist", "db02"],
    ] {
        x.ok(verb);
    }
    assert_unchanged(&before, &x.files());
    let e = x.fails(&["dumpxml", "broken"]);
    assert!(
        e.contains(&format!(
            "{}:3:22: expected a list item (xl allows no empty items), but found ','",
            x.dir.join("broken.cfg").display()
        )),
        "{e}"
    );
}

/// A config shaped like libvirt's xlconfigdata cases (positional parameters full and
/// partial, keys, qed, tap, rbd, CD-ROMs with and without a disc), and the disks libvirt's
/// xl-to-XML conversion (src/libxl/xen_xl.c) gives for it.
const HVM: &str = r#"name = "guest1"
uuid = "8d2b6a3c-61d4-4a8f-9e10-3c0f5d7b2a91"
builder = "hvm"
maxmem = 600
memory = 400
vcpus = 2
maxvcpus = 4
boot = "dc"
disk = [ "/dev/vg0/guest1,raw,hda,rw,backendtype=phy",
         "/srv/xen/guest1-home.img,qcow2,hdb,rw",
         "/srv/iso/install.iso,raw,hdc,ro,devtype=cdrom",
         "/srv/xen/guest1-data,,sda,,",
         "/srv/xen/scratch.qed,qed,xvdb,w,backendtype=qdisk",
         "tap:aio:/srv/xen/old.img,xvdc,w",
         "format=vhd,backendtype=tap,vdev=xvdd,target=/srv/xen/tapped.vhd",
         "format=raw,vdev=xvde,access=rw,backendtype=qdisk,target=rbd:pool/image:auth_supported=none:mon_host=mon1.example.org\\:6321\\;mon2.example.org\\:6322",
         ",hdd:cdrom,r" ]
"#;

const HVM_DISKS: &str = "    <disk type='block' device='disk'>
      <driver name='phy' type='raw'/>
      <source dev='/dev/vg0/guest1'/>
      <target dev='hda' bus='ide'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/srv/xen/guest1-home.img'/>
      <target dev='hdb' bus='ide'/>
      <address type='drive' controller='0' bus='0' target='0' unit='1'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/iso/install.iso'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
      <address type='drive' controller='0' bus='1' target='0' unit='0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/xen/guest1-data'/>
      <target dev='sda' bus='scsi'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='/srv/xen/scratch.qed'/>
      <target dev='xvdb' bus='xen'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/xen/old.img'/>
      <target dev='xvdc' bus='xen'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='tap' type='vhd'/>
      <source file='/srv/xen/tapped.vhd'/>
      <target dev='xvdd' bus='xen'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'>
        <host name='mon1.example.org' port='6321'/>
        <host name='mon2.example.org' port='6322'/>
      </source>
      <target dev='xvde' bus='xen'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu'/>
      <target dev='hdd' bus='ide'/>
      <readonly/>
      <address type='drive' controller='0' bus='1' target='0' unit='1'/>
    </disk>
";

#[test]
fn dumpxml_shows_what_libvirts_xl_conversion_shows() {
    let x = Xen::new("xlview");
    x.cfg("guest1.cfg", HVM);
    x.cfg(
        "pv.cfg",
        "name = \"pv1\"\ntype = \"pv\"\nmemory = 394\nmaxmem = 579\nkernel = \"/tmp/vmlinuz\"\nramdisk = \"/tmp/initrd\"\nroot = \"/dev/xvda1\"\nextra = \"console=hvc0\"\ndisk = [ 'phy:/dev/vg0/pv1,hda,w' ]\n",
    );
    x.cfg(
        "pvh.cfg",
        "name = \"pvh1\"\ntype = \"pvh\"\nkernel = \"/tmp/vmlinuz\"\ncmdline = \"root=/dev/xvda1 console=hvc0\"\n",
    );
    let xml = x.ok(&["dumpxml", "guest1"]);
    assert_eq!(
        xml,
        format!(
            "<domain type='xen'>\n  <name>guest1</name>\n  <uuid>8d2b6a3c-61d4-4a8f-9e10-3c0f5d7b2a91</uuid>\n  <memory unit='KiB'>614400</memory>\n  <currentMemory unit='KiB'>409600</currentMemory>\n  <vcpu placement='static' current='2'>4</vcpu>\n  <os>\n    <type arch='x86_64' machine='xenfv'>hvm</type>\n    <boot dev='cdrom'/>\n    <boot dev='hd'/>\n  </os>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>restart</on_crash>\n  <devices>\n{HVM_DISKS}  </devices>\n</domain>\n"
        )
    );
    // PV: every disk is on the xen bus, and the old phy: prefix is ignored as xl ignores it.
    assert_eq!(
        x.ok(&["dumpxml", "pv1"]),
        "<domain type='xen'>\n  <name>pv1</name>\n  <memory unit='KiB'>592896</memory>\n  <currentMemory unit='KiB'>403456</currentMemory>\n  <vcpu placement='static'>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='xenpv'>linux</type>\n    <kernel>/tmp/vmlinuz</kernel>\n    <initrd>/tmp/initrd</initrd>\n    <cmdline>root=/dev/xvda1 console=hvc0</cmdline>\n  </os>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>restart</on_crash>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source file='/dev/vg0/pv1'/>\n      <target dev='hda' bus='xen'/>\n    </disk>\n  </devices>\n</domain>\n"
    );
    assert!(x.ok(&["dumpxml", "pvh1"]).contains("<type arch='x86_64' machine='xenpvh'>xenpvh</type>"));
    // libvirt's schema takes the view.
    if std::process::Command::new("virt-xml-validate").arg("--help").output().is_ok() {
        let f = x.env.write("guest1.xml", &xml);
        luavirt_tests::validate_domain(&f).unwrap();
    }
}

/// The disk a libxl JSON disk is, as libvirt's conversion shows it: (type, device, driver
/// name, format, source, readonly).
type Shown = (String, String, Option<String>, Option<String>, Option<String>, bool);

fn libvirt_shows(j: &Value) -> Shown {
    let s = |k: &str| j[k].as_str().map(str::to_string);
    let path = s("pdev_path").filter(|p| !p.is_empty());
    let cdrom = j["is_cdrom"] == 1;
    let backend = s("backend");
    let rbd = path.as_deref().is_some_and(|p| p.starts_with("rbd:"));
    let (kind, driver) = match (cdrom, rbd, backend.as_deref()) {
        (true, ..) => ("file", "qemu"),
        (_, true, _) => ("network", "qemu"),
        (_, _, Some("phy")) => ("block", "phy"),
        (_, _, Some("tap")) => ("file", "tap"),
        (_, _, Some("standalone")) => ("file", "standalone"),
        _ => ("file", "qemu"),
    };
    let format = s("format").filter(|f| f != "empty");
    let source =
        if rbd { path.map(|p| p.trim_start_matches("rbd:").split(':').next().unwrap().to_string()) } else { path };
    (kind.into(), if cdrom { "cdrom" } else { "disk" }.into(), Some(driver.into()), format, source, j["readwrite"] != 1)
}

fn luavirt_shows(d: &luavirt_plugin_api::domain::Disk) -> Shown {
    let source = match &d.source {
        DiskSource::Network { name, .. } => name.clone(),
        other => other.path().map(str::to_string),
    };
    (d.disk_type.clone(), d.device.clone(), d.driver_name.clone(), d.format.clone(), source, d.readonly)
}

/// Disk specs: xl-disk-configuration(5)'s examples, check-xl-disk-parse's cases, old
/// prefixes, every key libxl 4.17 knows, and refused ones.
const SPECS: &[&str] = &[
    "/dev/vg/guest-volume,,hda",
    "/dev/vg/guest-volume,raw,hda,rw",
    "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
    "raw:/dev/vg/guest-volume,hda,w",
    "/root/image.iso,,hdc,cdrom",
    "/root/image.iso,,hdc,,cdrom",
    "/root/image.iso,raw,hdc,devtype=cdrom",
    "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
    "raw:/root/image.iso,hdc:cdrom,ro",
    "backendtype=phy,vdev=xvdb,access=w,target=/dev/vg/guest-volume",
    "devtype=cdrom,,,hdc",
    ",,hdc:cdrom,r",
    ",hdc:cdrom,r",
    "vdev=hdc,access=r,devtype=cdrom,target=",
    ",empty,hdc:cdrom,r",
    "vdev=hdc,access=r,devtype=cdrom,format=empty",
    "vdev=hdc,access=r,devtype=cdrom",
    "iscsi:iqn.2001-05.com.equallogic:0-8a0906-23fe93404-c82797962054a96d-examplehost,xvda,w",
    "vdev=xvda,access=w,script=block-iscsi,target=iqn.2001-05.com.equallogic:0-8a0906-examplehost",
    "drbd:app01,hda,w",
    "discard,vdev=hda,target=/some/disk/image.raw",
    "cdrom,no-discard,vdev=hda,target=/some/disk/image.iso",
    "phy:/dev/sda,xvda,w",
    "file:/srv/a.img,xvda,w",
    "tap:aio:/srv/a.img,xvda,w",
    "tap2:aio:/srv/a.img,xvda",
    "tap:qcow2:/srv/a.qcow2,xvda,w",
    "qcow:/srv/a.qcow,xvda",
    "vhd:/srv/a.vhd,xvda",
    "nbd:host:1234,xvda,w",
    "phy:/dev/sda,hda:cdrom,r",
    "/srv/a.img,,xvda,w,direct-io-safe",
    "backend=dom1,backendtype=qdisk,script=block-x,/srv/a.img,qcow2,xvdb,ro",
    "colo,colo-host=h2,colo-port=9000,colo-export=e1,active-disk=/a1,hidden-disk=/h1,/srv/a.img,,xvda",
    "specification=virtio,/srv/a.img,,xvda",
    "vdev=xvda,target=/srv/a,b.img  ",
    ",,xvda,target=/srv/b.img",
    "access=ro,/srv/a.img,,xvda,rw",
    "/srv/a.img,,xvda,rw,access=ro",
    "/srv/a.img,,hdc:disk",
    "/srv/a:b.img,,xvda",
    "\t/srv/a.img,,\txvda",
    "backendtype=standalone,specification=virtio,/srv/a.img,,xvda",
    "/srv/a.img,qed,sdb,w",
    "/srv/a.img,raw,xvdtq37,w",
    // Refused by libxl and luavirt alike.
    "foo",
    "bogus=1,/x,,xvda",
    "Target=/a",
    "discard=1,/a,,xvda",
    "/a,,xvda,target=/b",
    "/a,raw,xvda,rw,/b",
    "/a,,xvda,,,",
    "vdev=xvda,vdev=xvdb,target=/x",
    "format=raw,format=qcow2,/a,,xvda",
    "raw:qcow2:/a,xvda",
    "  /a , raw , xvda",
    "/a,bogus,xvda",
    "/a,,xvda,rx",
    "backendtype=bogus,/a,,xvda",
    "devtype=floppy,/a,,xvda",
    "/a,,hdc:bogus",
    "foo:/a,xvda",
    "colo-port=abc,/a,,xvda",
    "/a",
    "vdev=xvda",
];

#[test]
fn the_disk_spec_parser_agrees_with_xens_own() {
    let x = Xen::new("xlagree");
    let files: Vec<PathBuf> = SPECS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let quoted = s.replace('\\', "\\\\").replace('\'', "\\'");
            x.cfg(&format!("d{i}.cfg"), &format!("name = \"d{i}\"\ntype = \"hvm\"\ndisk = [ '{quoted}' ]\n"))
        })
        .collect();
    let libxl = libxl_reads(&files, &[]);
    let (mut accepted, mut refused) = (0, 0);
    for (i, spec) in SPECS.iter().enumerate() {
        let j = &libxl[i]["disks"][0];
        let r = x.run(&["dumpxml", &format!("d{i}")]);
        match &j["disk"] {
            Value::Null => {
                refused += 1;
                assert_ne!(r.code, 0, "libxl refuses {spec:?}, luavirt shows:\n{}", r.stdout);
                assert!(r.stderr.contains(&format!("d{i}.cfg:3:")), "{spec:?}: {}", r.stderr);
            }
            disk => {
                accepted += 1;
                assert_eq!(r.code, 0, "libxl reads {spec:?} as {disk}, luavirt says: {}", r.stderr);
                let dom = DomainXml::parse(&r.stdout, None).unwrap();
                let d = &dom.disks()[0];
                assert_eq!(d.target, disk["vdev"].as_str().unwrap(), "{spec:?}");
                assert_eq!(luavirt_shows(d), libvirt_shows(disk), "{spec:?}: libxl reads {disk}");
            }
        }
    }
    assert_eq!((accepted, refused), (45, 20));
    // libxl leaves the vdev to the start of the domain; luavirt checks it at once.
    for (spec, vdev) in [(",,,,", "''"), ("vdev=xvda ,target=/a", "'xvda '"), ("/a,raw,vda", "'vda'")] {
        let f = x.cfg("v.cfg", &format!("name = \"v\"\ndisk = [ '{spec}' ]\n"));
        assert!(libxl_reads(&[f], &[])[0]["disks"][0]["disk"].is_object(), "{spec}");
        let e = x.fails(&["dumpxml", "v"]);
        assert!(e.contains(&format!("{vdev} is not a virtual disk Xen knows")), "{spec}: {e}");
    }
}

#[test]
fn configs_read_as_xl_reads_them_and_write_back_byte_identical() {
    let x = Xen::new("xlsyntax");
    let good = [
        "# comments anywhere\nname = \"a1\" # after a value\nmemory = 0x100 ; vcpus = 2\ndisk = [\n  'vdev=xvda, target=/srv/a.img', # first\n  # between\n  \"/srv/b.img,raw,xvdb,w\",\n]\nvnuma = [ [ \"pnode=0\", \"size=512\" ], [ \"pnode=1\", \"size=512\", ], ]\nextra = 'a'\nextra += \"b\"\n",
        "name = 'a2'\nname = 'a2'\ndisk = [ ]\ndisk += [ '/srv/c.img,,hda' ]\ntype = \"hvm\"",
        "\tname\t=\t'a3'\n\n\nmemory = 64\ncmdline = 'it\\'s \\\"quoted\\\" \\\\ \\t'\n",
    ];
    let bad = [
        "name = \"b1\"\nName = \"x\"\n",
        "name = \"b2\"\r\nmemory = 3\r\n",
        "name = \"b3\"\nmemory = -1\n",
        "name = \"b4\"\ndisk = [ 'a',, 'b' ]\n",
        "name = \"b5\"\ndisk = [ 'a'\n",
        "name = \"b6\"\nmemory = 1 vcpus = 2\n",
        "name = \"b7\"\nextra = 'a' 'b'\n",
        "name = \"b8\"\nextra = [ 'a' ]\nextra += 'b'\n",
        "name = \"b9\"\nmemory =\n1\n",
        "name = 'b10\n",
        "name = 'b11'\nx = 0x1F\n",
    ];
    let mut files = Vec::new();
    for (i, t) in good.iter().enumerate() {
        files.push(x.cfg(&format!("a{}.cfg", i + 1), t));
    }
    for (i, t) in bad.iter().enumerate() {
        files.push(x.cfg(&format!("b{}.cfg", i + 1), t));
    }
    let libxl = libxl_reads(&files, &["name", "memory", "vcpus", "extra", "cmdline"]);
    for (i, f) in files.iter().enumerate() {
        let file = f.file_name().unwrap().to_string_lossy().into_owned();
        let name = file.trim_end_matches(".cfg");
        let r = x.run(&["dumpxml", name]);
        if libxl[i]["rc"] == 0 {
            assert_eq!(r.code, 0, "xl reads {file}; luavirt: {}", r.stderr);
            let dom = DomainXml::parse(&r.stdout, None).unwrap();
            assert_eq!(dom.name(), libxl[i]["name"].as_str().unwrap());
            let disks: Vec<String> = dom.disks().into_iter().map(|d| d.target).collect();
            let want: Vec<&str> =
                libxl[i]["disks"].as_array().unwrap().iter().map(|d| d["disk"]["vdev"].as_str().unwrap()).collect();
            assert_eq!(disks, want, "{file}");
            if let Some(m) = libxl[i]["memory"].as_str() {
                let mib = if let Some(h) = m.strip_prefix("0x") {
                    u64::from_str_radix(h, 16).unwrap()
                } else {
                    m.parse().unwrap()
                };
                assert!(
                    r.stdout.contains(&format!("<currentMemory unit='KiB'>{}</currentMemory>", mib * 1024)),
                    "{file}"
                );
            }
            if let Some(c) = libxl[i]["cmdline"].as_str() {
                let esc = c.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
                assert!(r.stdout.contains(&format!("<cmdline>{esc}</cmdline>")), "{file}: {c:?}\n{}", r.stdout);
            }
            // Defined back unchanged, the config is byte-identical.
            let before = std::fs::read(f).unwrap();
            let xml = x.env.write(&format!("{name}.xml"), &r.stdout);
            x.ok(&["define", xml.to_str().unwrap()]);
            assert_eq!(std::fs::read(f).unwrap(), before, "{file}");
        } else {
            assert_ne!(r.code, 0, "xl refuses {file}; luavirt shows it");
            assert!(r.stderr.contains(&format!("{}:", f.display())), "{file}: {}", r.stderr);
            let place = r.stderr.split(&format!("{}:", f.display())).nth(1).unwrap();
            let mut parts = place.split(':');
            let (line, column) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(line.parse::<u32>().is_ok() && column.parse::<u32>().is_ok(), "{file}: {}", r.stderr);
        }
    }
}

// ---- Changes: define, disk modes, disk sets ----

/// A domain `web` with a qcow2 system disk (hda), a raw data disk (xvdb) and an empty CD-ROM
/// drive, in a config with comments and old spellings.
fn web(test: &str) -> (Xen, PathBuf) {
    let x = Xen::new(test);
    let a = x.image("web.qcow2", "qcow2", "4M");
    let b = x.image("data.raw", "raw", "4M");
    let cfg = x.cfg(
        "web.cfg",
        &format!(
            "# web server\ntype = \"hvm\"\nname = \"web\"\nmemory = 512\ndisk = [ 'format=qcow2, vdev=hda, access=rw, target={}',\n         '{},raw,xvdb,w',   # data\n         ',hdc:cdrom,r' ]\nvif = [ 'bridge=xenbr0' ]\n",
            a.display(),
            b.display()
        ),
    );
    (x, cfg)
}

#[test]
fn disk_sets_and_modes_live_in_the_sidecar_and_the_config_stays_as_it_was() {
    let (x, cfg) = web("xlsets");
    let original = std::fs::read(&cfg).unwrap();
    assert_eq!(
        x.ok(&["diskset", "add", "web", "xvdb", "--set", "migrate"]),
        "Disk xvdb added to set 'migrate' of domain 'web'\n"
    );
    x.ok(&["diskset", "add", "web", "hda"]);
    assert_eq!(x.ok(&["diskset", "list", "web", "--set", "migrate"]), "xvdb\n");
    assert_eq!(
        x.ok(&["disk-mode", "web", "xvdb", "independent-nonpersistent"]),
        "Disk xvdb of domain 'web' is now independent-nonpersistent\n"
    );
    assert_eq!(x.ok(&["disk-mode", "web", "xvdb"]), "independent-nonpersistent\n");
    assert_eq!(std::fs::read(&cfg).unwrap(), original, "modes and sets never touch the config");
    let sidecar = x.dir.join("web.cfg.luavirt.xml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sidecar).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&sidecar).unwrap();
    assert!(text.contains("<xl:disk target='xvdb' snapshot='no' transient='yes'/>"), "{text}");
    let xml = x.ok(&["dumpxml", "web"]);
    assert!(xml.contains("<disk type='file' device='disk' snapshot='no'>") && xml.contains("<transient/>"), "{xml}");
    // The CD-ROM drive takes no mode; an unknown disk is an error; nothing changes.
    let before = x.files();
    assert!(
        x.fails(&["disk-mode", "web", "hdc", "independent-persistent"])
            .contains("CD-ROM drive; disk modes apply to hard disks only")
    );
    assert!(x.fails(&["diskset", "add", "web", "xvdz"]).contains("xvdz"));
    assert_unchanged(&before, &x.files());
    // A disk removed from the config by hand leaves its sets and its mode.
    let without_b: String = String::from_utf8(original.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.contains("data.raw"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&cfg, &without_b).unwrap();
    assert_eq!(x.ok(&["diskset", "list", "web", "--set", "migrate"]), "");
    assert_eq!(x.ok(&["diskset", "names", "web"]), "selected\n");
    std::fs::write(&cfg, &original).unwrap();
    x.ok(&["disk-mode", "web", "xvdb", "persistent"]);
    x.ok(&["diskset", "remove-all", "web"]);
    x.ok(&["diskset", "remove-all", "web", "--set", "migrate"]);
    assert!(!sidecar.exists(), "an empty sidecar is no file");
    assert_eq!(std::fs::read(&cfg).unwrap(), original);
}

#[test]
fn define_rewrites_only_the_disk_entries_that_change() {
    let (x, cfg) = web("xldefine");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let new = x.image("new.qcow2", "qcow2", "4M");
    let moved = x.image("moved.raw", "raw", "4M");
    let xml = x.ok(&["dumpxml", "web"]);
    // Older libvirt Xen XML names the qemu driver `file`: the same disk, nothing to write.
    let f =
        x.env.write("file.xml", &xml.replace("<driver name='qemu' type='raw'/>", "<driver name='file' type='raw'/>"));
    x.ok(&["define", f.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), original);
    let data = x.dir.join("data.raw");
    // A new source for xvdb: one line changes, in its own quotes and form.
    let changed = xml.replace(&data.display().to_string(), &moved.display().to_string());
    let f = x.env.write("changed.xml", &changed);
    x.ok(&["define", f.to_str().unwrap()]);
    let now = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(
        changed_lines(&original, &now),
        [(
            6,
            format!("         '{},raw,xvdb,w',   # data", data.display()),
            format!("         '{},raw,xvdb,w',   # data", moved.display())
        )]
    );
    // A disk added goes at the end of the list; one removed takes its line.
    let added = changed.replace(
        "    <disk type='file' device='cdrom'>",
        &format!("    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='{}'/>\n      <target dev='xvdc' bus='xen'/>\n      <readonly/>\n    </disk>\n    <disk type='file' device='cdrom'>", new.display()),
    );
    let f = x.env.write("added.xml", &added);
    x.ok(&["define", f.to_str().unwrap()]);
    let now = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        now.contains(&format!(
            "         ',hdc:cdrom,r',\n         'format=qcow2, vdev=xvdc, access=ro, target={}' ]\n",
            new.display()
        )),
        "{now}"
    );
    let dom = x.xml("web");
    let c = dom.disk("xvdc").unwrap();
    assert!(c.readonly && c.format.as_deref() == Some("qcow2"));
    let removed: String = {
        let d = DomainXml::parse(&added, None).unwrap();
        let text = d.to_xml();
        let start = text.find("    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>").unwrap();
        let end = start + text[start..].find("    </disk>\n").unwrap() + "    </disk>\n".len();
        format!("{}{}", &text[..start], &text[end..])
    };
    let f = x.env.write("removed.xml", &removed);
    x.ok(&["define", f.to_str().unwrap()]);
    let now = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        !now.contains("xvdb") && now.contains("# web server\n") && now.contains("vif = [ 'bridge=xenbr0' ]\n"),
        "{now}"
    );
    // Xen's own parser reads the result: the disks luavirt meant, and nothing else changed.
    let libxl = &libxl_reads(std::slice::from_ref(&cfg), &["name", "memory"])[0];
    let vdevs: Vec<&str> =
        libxl["disks"].as_array().unwrap().iter().map(|d| d["disk"]["vdev"].as_str().unwrap()).collect();
    assert_eq!((vdevs, libxl["memory"].as_str()), (vec!["hda", "hdc", "xvdc"], Some("512")));
}

#[test]
fn refused_definitions_say_why_and_write_nothing() {
    let (x, cfg) = web("xlrefuse");
    let xml = x.ok(&["dumpxml", "web"]);
    let before = x.files();
    let data = x.dir.join("data.raw").display().to_string();
    let cases = [
        (
            xml.replace("<memory unit='KiB'>524288</memory>", "<memory unit='KiB'>1048576</memory>"),
            "/domain/memory is '1048576' in the XML and '524288' in the config; through luavirt an xl domain changes only its disks",
        ),
        (
            xml.replace(&data, "/nonexistent/disk.raw"),
            "Disk xvdb of domain 'web': image /nonexistent/disk.raw does not exist; create it first",
        ),
        (
            xml.replace("<target dev='xvdb' bus='xen'/>", "<target dev='xvdb' bus='xen'/>\n      <serial>abc</serial>"),
            "Disk xvdb of domain 'web': an xl disk spec has no place for <serial>",
        ),
        (
            xml.replace("<target dev='xvdb' bus='xen'/>", "<target dev='vdb' bus='virtio'/>"),
            "Disk vdb of domain 'web': 'vdb' is not a virtual disk Xen knows",
        ),
        (
            xml.replace("<target dev='xvdb' bus='xen'/>", "<target dev='xvdb' bus='ide'/>"),
            "xl decides the bus by the name",
        ),
        (
            xml.replace("<driver name='qemu' type='raw'/>", "<driver name='qemu' type='vmdk'/>"),
            "xl knows the formats raw, qcow, qcow2, vhd and qed, not vmdk",
        ),
        (
            xml.replace("<target dev='xvdb' bus='xen'/>", "<target dev='xvdb' bus='xen'/>\n      <transient/>"),
            "cannot be kept in snapshots",
        ),
        (xml.replace("<name>web</name>", "<name>other</name>"), "Domain 'other' is not in"),
    ];
    for (text, want) in cases {
        let f = x.env.write("bad.xml", &text);
        let e = x.fails(&["define", f.to_str().unwrap()]);
        assert!(e.contains(want), "want {want}:\n{e}");
        assert_unchanged(&before, &x.files());
    }
    assert!(cfg.exists());
}

// ---- Snapshots ----

#[test]
fn a_two_disk_domain_snapshots_reverts_and_deletes_with_its_data() {
    let (x, cfg) = web("xlsnap");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let (a, b) = (x.dir.join("web.qcow2"), x.dir.join("data.raw"));
    write_mib(&a, "qcow2", 0x11, 0);
    write_mib(&b, "raw", 0x22, 0);
    let plan = x.json(&["snapshot-create-as", "web", "s1", "--print-plan"]);
    assert_eq!(
        (plan["disks"][0]["snapshot"].as_str(), plan["disks"][1]["snapshot"].as_str()),
        (Some("internal"), Some("external"))
    );
    assert_eq!(x.ok(&["snapshot-create-as", "web", "s1", "before the upgrade"]), "Domain snapshot s1 created\n");
    // hda holds an internal snapshot; xvdb is on a qcow2 overlay, one config line changed.
    let overlay = x.dir.join("data.s1");
    assert_eq!(internal_snapshots(&a), ["s1"]);
    assert_eq!(
        changed_lines(&original, &std::fs::read_to_string(&cfg).unwrap()),
        [(
            6,
            format!("         '{},raw,xvdb,w',   # data", b.display()),
            format!("         '{},qcow2,xvdb,w',   # data", overlay.display())
        )]
    );
    assert_eq!(x.disk("web", "xvdb"), (overlay.clone(), "qcow2".to_string()));
    let info = x.ok(&["snapshot-info", "web", "s1"]);
    assert!(info.contains("Location:       mixed") && info.ends_with("Metadata:       yes\n"), "{info}");
    let record = x.ok(&["snapshot-dumpxml", "web", "s1"]);
    assert!(
        record.contains("<description>before the upgrade</description>") && record.contains("<state>shutoff</state>"),
        "{record}"
    );
    assert!(
        record.contains(&format!("<source file='{}'/>", b.display())),
        "the record keeps the point in time: {record}"
    );
    // Changes after the snapshot, then back.
    let (at_a, at_b) = (x.env.dir.join("a-s1.raw"), x.env.dir.join("b-s1.raw"));
    save_raw(&a, "qcow2", &at_a);
    save_raw(&overlay, "qcow2", &at_b);
    write_mib(&a, "qcow2", 0x33, 0);
    write_mib(&overlay, "qcow2", 0x44, 0);
    assert!(!same_as(&a, "qcow2", &at_a) && !same_as(&overlay, "qcow2", &at_b));
    assert_eq!(x.ok(&["snapshot-revert", "web", "s1"]), "Domain 'web' reverted to snapshot 's1' (shut off)\n");
    let (fresh, format) = x.disk("web", "xvdb");
    assert_eq!((fresh.parent(), format.as_str()), (Some(x.dir.as_path()), "qcow2"));
    assert!(same_as(&a, "qcow2", &at_a), "hda did not go back");
    assert!(same_as(&fresh, "qcow2", &at_b), "xvdb did not go back");
    assert!(holds(&a, "qcow2", 0x11, 0) && holds(&fresh, "qcow2", 0x22, 0));
    assert!(!overlay.exists(), "the overlay of the discarded state is removed");
    assert_eq!(x.ok(&["snapshot-current", "web", "--name"]), "s1\n");
    // Delete: the internal snapshot goes, the overlay merges into the raw image, and the
    // config is as it was at first.
    write_mib(&fresh, "qcow2", 0x55, 1);
    let now = x.env.dir.join("b-now.raw");
    save_raw(&fresh, "qcow2", &now);
    assert_eq!(x.ok(&["snapshot-delete", "web", "s1"]), "Domain snapshot s1 deleted\n");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), original);
    assert!(internal_snapshots(&a).is_empty());
    assert!(same_as(&b, "raw", &now), "the merge lost data");
    assert!(holds(&b, "raw", 0x22, 0) && holds(&b, "raw", 0x55, 1) && holds(&a, "qcow2", 0x11, 0));
    assert_eq!(x.names(), ["data.raw", "web.cfg", "web.qcow2"]);
    assert_eq!(x.ok(&["snapshot-list", "web", "--name"]), "");
}

#[test]
fn deleting_a_snapshot_in_the_middle_of_a_chain_keeps_the_others_data() {
    let (x, _) = web("xlchain");
    let b = x.dir.join("data.raw");
    write_mib(&b, "raw", 0x21, 0);
    let spec = ["--diskspec", "hda,snapshot=no", "--diskspec", "xvdb,snapshot=external"];
    let mut raws = Vec::new();
    for (i, s) in ["s1", "s2", "s3"].iter().enumerate() {
        let mut args = vec!["snapshot-create-as", "web", s];
        args.extend(spec);
        x.ok(&args);
        let (top, f) = x.disk("web", "xvdb");
        write_mib(&top, &f, 0x31 + i as u8, i as u32 + 1);
        let raw = x.env.dir.join(format!("after-{s}.raw"));
        save_raw(&top, &f, &raw);
        raws.push(raw);
    }
    x.ok(&["snapshot-delete", "web", "s2"]);
    assert_eq!(x.ok(&["snapshot-list", "web", "--name"]), "s1\ns3\n");
    let (top, f) = x.disk("web", "xvdb");
    assert!(same_as(&top, &f, &raws[2]), "the present state changed");
    // s3 still shows what was there when it was taken (after s2's writes).
    x.ok(&["snapshot-revert", "web", "s3"]);
    let (top, f) = x.disk("web", "xvdb");
    assert!(same_as(&top, &f, &raws[1]), "s3 lost data");
    x.ok(&["snapshot-revert", "web", "s1"]);
    let (top, f) = x.disk("web", "xvdb");
    let at_s1 = x.env.dir.join("at-s1.raw");
    std::fs::copy(&b, &at_s1).unwrap();
    assert!(same_as(&top, &f, &at_s1) && holds(&top, &f, 0x21, 0) && !holds(&top, &f, 0x31, 1));
    for s in ["s1", "s3"] {
        x.ok(&["snapshot-delete", "web", s]);
    }
    // With no snapshot left, the present state stays on its overlay of the raw image; every
    // other image went with the snapshots that needed it.
    let (top, f) = x.disk("web", "xvdb");
    assert_eq!((top.file_name().unwrap().to_str().unwrap(), f.as_str()), ("data.s1-1", "qcow2"));
    assert_eq!(x.names(), ["data.raw", "data.s1-1", "web.cfg", "web.qcow2"]);
}

#[test]
fn what_cannot_be_snapshotted_is_refused_precisely_and_nothing_changes() {
    let x = Xen::new("xlphy");
    let a = x.image("sys.img", "raw", "4M");
    x.cfg(
        "db.cfg",
        &format!(
            "name = \"db\"\ndisk = [ '{},raw,xvda,w,backendtype=phy', 'iscsi:iqn.2001-05.com.example:x,xvdb,w' ]\n",
            a.display()
        ),
    );
    let before = x.files();
    let e = x.fails(&["snapshot-create-as", "db", "s1", "--diskspec", "xvda"]);
    assert!(
        e.contains("Disk xvda of domain 'db'")
            && e.contains("is a block device on Xen's phy backend")
            && e.contains("(nothing was changed)"),
        "{e}"
    );
    let e = x.fails(&["snapshot-create-as", "db", "s1", "--diskspec", "xvdb,file=/tmp/x.s1"]);
    assert!(e.contains("is reached through the block script block-iscsi"), "{e}");
    assert_unchanged(&before, &x.files());
    // A snapshot of a domain that is shut off has no memory.
    let (w, _) = web("xlmem");
    let e = w.fails(&["snapshot-create-as", "web", "m", "--memspec", "file=/tmp/m"]);
    assert!(e.contains("the domain is shut off, so it has no memory to save"), "{e}");
}

// ---- Bad input ----

#[test]
fn bad_configs_are_errors_at_their_place_and_nothing_is_written() {
    let x = Xen::new("xlbad");
    let img = x.image("ok.img", "raw", "1M");
    let cases = [
        ("syntax", "name = \"syntax\"\nmemory = 128\ndisk = [ 'x',, ]\n", "syntax.cfg:3:14: expected a list item"),
        (
            "key",
            "name = \"key\"\ndisk = [ '/x,,xvda,bogus=1' ]\n",
            "key.cfg:2:20: disk '/x,,xvda,bogus=1': unknown parameter 'bogus'",
        ),
        (
            "targets",
            "name = \"targets\"\ndisk = [ '/x,,xvda,target=/y' ]\n",
            "targets.cfg:2:27: disk '/x,,xvda,target=/y': the target is given twice",
        ),
        (
            "vdev",
            "name = \"vdev\"\ndisk = [ '/x,raw,vda' ]\n",
            "vdev.cfg:2:18: disk '/x,raw,vda': 'vda' is not a virtual disk Xen knows",
        ),
        (
            "twice",
            &format!("name = \"twice\"\ndisk = [ '{0},,xvda', '{0},,xvda' ]\n", img.display()),
            "two disks are xvda",
        ),
        ("uuid", "name = \"uuid\"\nuuid = \"nope\"\n", "uuid.cfg:2:8: uuid \"nope\" is not 32 hex digits"),
        ("crlf", "name = \"crlf\"\r\n", "crlf.cfg:1:14: a carriage return"),
    ];
    for (name, text, _) in &cases {
        x.cfg(&format!("{name}.cfg"), text);
    }
    x.cfg("missing.cfg", "name = \"missing\"\ndisk = [ '/nonexistent/a.img,raw,xvda,w' ]\n");
    let before = x.files();
    for (name, _, want) in &cases {
        for verb in [
            &["dumpxml", name][..],
            &["snapshot-create-as", name, "s1"],
            &["disk-mode", name, "xvda", "independent-persistent"],
        ] {
            let e = x.fails(verb);
            assert!(e.contains(want) && e.contains("(nothing was changed)"), "{verb:?}: want {want}\n{e}");
        }
    }
    // A config that names a missing image shows, and says so where the image is needed.
    x.ok(&["dumpxml", "missing"]);
    for verb in
        [&["domblklist", "missing", "--details"][..], &["start", "missing"], &["snapshot-create-as", "missing", "s1"]]
    {
        let e = x.fails(verb);
        assert!(
            e.contains("Disk xvda of domain 'missing'") && e.contains("image /nonexistent/a.img does not exist"),
            "{verb:?}: {e}"
        );
    }
    assert_unchanged(&before, &x.files());
}

#[test]
fn connection_uris_are_checked() {
    let x = Xen::new("xluri");
    for (uri, want) in [
        ("libxl://host/etc/xen".to_string(), "remote Xen hosts are not supported"),
        (format!("{}?bogus=1", x.uri), "unknown parameter 'bogus'; libxl:///FOLDER takes ?state=DIR"),
        ("libxl:///nonexistent/folder".to_string(), "config folder /nonexistent/folder cannot be opened"),
        ("xen:///elsewhere".to_string(), "xen:/// names only xen:///system"),
    ] {
        let e = x.env.fails(&["-c", &uri, "list"], 1);
        assert!(e.contains(want), "{uri}: {e}");
    }
}

// ---- The live boundary ----

/// A `luavirt` command on `x` whose PATH has no xl (qemu-img stays: /usr/bin).
fn without_xl(x: &Xen, args: &[&str]) -> luavirt_tests::Run {
    x.env.command(&x.args(args)).env("PATH", "/usr/bin:/bin").output().unwrap().into()
}

#[test]
fn what_needs_xl_or_a_hypervisor_says_which_is_missing() {
    let (x, _) = web("xllive");
    x.ok(&["snapshot-create-as", "web", "s1"]);
    let before = x.files();
    // Without xl: the run state is known (nothing runs), start and stop say xl is missing.
    assert!(
        !Path::new("/usr/bin/xl").exists() && !Path::new("/bin/xl").exists(),
        "this test takes xl away by leaving /usr/sbin out of PATH; here xl is in /usr/bin or /bin"
    );
    let r = without_xl(&x, &["domstate", "web", "--reason"]);
    assert_eq!(
        r.stdout,
        "shut off (xl is not installed (no xl on PATH): Xen's toolstack (apt-get install xen-utils) and a Xen hypervisor run domains; luavirt works on the config and its images)\n"
    );
    let r = without_xl(&x, &["start", "web"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("Starting domain 'web': xl is not installed (no xl on PATH)"), "{}", r.stderr);
    let r = without_xl(&x, &["destroy", "web"]);
    assert!(r.stderr.contains("Domain 'web' is not running: xl is not installed (no xl on PATH)"), "{}", r.stderr);
    let r = without_xl(&x, &["snapshot-revert", "web", "s1", "--running"]);
    assert!(
        r.stderr
            .contains("Reverting domain 'web' to snapshot 's1' and running it: xl is not installed (no xl on PATH)")
            && r.stderr
                .contains("revert without --running or --paused to put only its disks back (nothing was changed)"),
        "{}",
        r.stderr
    );
    let uri = format!("{}?xl=/nonexistent/xl", x.uri);
    let e = x.env.fails(&["-c", &uri, "start", "web"], 1);
    assert!(e.contains("Starting domain 'web': xl is not installed (/nonexistent/xl does not exist)"), "{e}");
    assert_unchanged(&before, &x.files());
    // With xl (tools/setup.sh installs xen-utils) but no hypervisor: xl's own words.
    require("xl", "xen-utils-4.17");
    let real = format!("{}?xl=/usr/lib/xen-4.17/bin/xl", x.uri);
    for (uri, said) in
        [(x.uri.clone(), "ERROR: Can't find hypervisor information in sysfs!"), (real, "cannot init xl context")]
    {
        let run = |args: &[&str]| -> luavirt_tests::Run {
            let mut a = vec!["-c", uri.as_str()];
            a.extend_from_slice(args);
            x.env.run(&a)
        };
        let r = run(&["domstate", "web", "--reason"]);
        assert!(
            r.stdout.starts_with(&format!("shut off (no Xen hypervisor runs on this machine (xl says: {said})")),
            "{}",
            r.stdout
        );
        let r = run(&["start", "web"]);
        assert!(r.stderr.contains(&format!("Starting domain 'web': no Xen hypervisor runs on this machine (xl says: {said}); boot it into Xen to run domains")), "{}", r.stderr);
        let r = run(&["destroy", "web"]);
        assert!(
            r.stderr.contains(&format!(
                "Domain 'web' is not running: no Xen hypervisor runs on this machine (xl says: {said})"
            )),
            "{}",
            r.stderr
        );
        let r = run(&["snapshot-revert", "web", "s1", "--paused"]);
        assert!(
            r.stderr.contains(&format!("and running it: no Xen hypervisor runs on this machine (xl says: {said})")),
            "{}",
            r.stderr
        );
        assert_eq!(run(&["list", "--all", "--name"]).stdout, "web\n");
    }
    assert_unchanged(&before, &x.files());
    // Work on files goes on without a hypervisor.
    x.ok(&["snapshot-revert", "web", "s1"]);
    x.ok(&["snapshot-delete", "web", "s1"]);
}

#[test]
fn a_disk_whose_changes_are_discarded_is_refused_before_xl_runs() {
    let (x, _) = web("xltrans");
    x.ok(&["disk-mode", "web", "xvdb", "independent-nonpersistent"]);
    let r = without_xl(&x, &["start", "web"]);
    assert!(
        r.stderr.contains("Disk xvdb of domain 'web' is independent-nonpersistent, and xl has no way to discard a disk's changes when the domain stops"),
        "{}",
        r.stderr
    );
}

/// A stand-in for `xl` that answers as xl does on a host where Xen runs `web` as domain 7:
/// `xl list` prints xl's table, `xl destroy` succeeds and is logged.
fn xl_running_web(x: &Xen) -> String {
    let log = x.env.dir.join("xl.log");
    let script = x.env.write(
        "xl",
        &format!(
            "#!/bin/sh\necho \"$@\" >> {}\ncase \"$1\" in\n  list) printf 'Name                                        ID   Mem VCPUs\\tState\\tTime(s)\\nDomain-0                                     0  2048     2     r-----      12.0\\nweb                                          7   512     1     -b----       3.1\\n' ;;\n  destroy) ;;\n  *) echo \"xl: $1 is not part of this stand-in\" >&2; exit 1 ;;\nesac\n",
            log.display()
        ),
    );
    luavirt_tests::set_mode(&script, 0o755);
    format!("{}?xl={}", x.uri, script.display())
}

#[test]
fn a_domain_xen_runs_is_listed_running_and_its_disks_are_left_alone() {
    let (x, _) = web("xlrun");
    x.ok(&["snapshot-create-as", "web", "s1"]);
    let uri = xl_running_web(&x);
    let run = |args: &[&str]| {
        let mut a = vec!["-c", uri.as_str()];
        a.extend_from_slice(args);
        x.env.run(&a)
    };
    assert_eq!(run(&["list"]).stdout, " Id   Name   State\n----------------------\n 7    web    running\n");
    assert_eq!(run(&["domstate", "web", "--reason"]).stdout, "running\n");
    let before = x.files();
    for (args, want) in [
        (
            &["snapshot-create-as", "web", "s2", "--disk-only"][..],
            "Snapshot 's2' of domain 'web': domain 'web' runs under Xen (domain id 7)",
        ),
        (
            &["snapshot-revert", "web", "s1"],
            "Reverting domain 'web' to snapshot 's1': domain 'web' runs under Xen (domain id 7)",
        ),
        (
            &["snapshot-delete", "web", "s1"],
            "Deleting snapshot 's1' of domain 'web': domain 'web' runs under Xen (domain id 7)",
        ),
        (&["start", "web"], "Domain 'web' is already running (Xen domain id 7)"),
    ] {
        let r = run(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stdout);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
    let r = run(&["snapshot-create-as", "web", "s2", "--disk-only"]);
    assert!(
        r.stderr.contains("its memory saved with `xl save -c` and its disks switched by its device model over QMP (/var/run/xen/qmp-libxl-7), which luavirt does not do; shut it down (xl shutdown web) and try again (nothing was changed)"),
        "{}",
        r.stderr
    );
    assert_unchanged(&before, &x.files());
    run(&["destroy", "web"]);
    let log = std::fs::read_to_string(x.env.dir.join("xl.log")).unwrap();
    assert!(log.lines().any(|l| l == "destroy web"), "{log}");
}

// ---- Crash safety ----

/// Every file the folder holds that is not an image the config or a snapshot stands on.
fn leftovers(x: &Xen) -> Vec<String> {
    let xml = x.ok(&["dumpxml", "web"]);
    let mut named: Vec<String> = DomainXml::parse(&xml, None)
        .unwrap()
        .disks()
        .iter()
        .filter_map(|d| d.source.path().map(str::to_string))
        .collect();
    for s in x.ok(&["snapshot-list", "web", "--name"]).lines() {
        let rec = x.ok(&["snapshot-dumpxml", "web", s]);
        let snap = luavirt_plugin_api::snapshot::SnapshotXml::parse(&rec).unwrap();
        let then = DomainXml::parse(&snap.domain.unwrap().to_xml(), None).unwrap();
        named.extend(then.disks().iter().filter_map(|d| d.source.path().map(str::to_string)));
    }
    x.names()
        .into_iter()
        .filter(|n| {
            !n.ends_with(".cfg")
                && !n.ends_with(".luavirt.xml")
                && !named.contains(&x.dir.join(n).display().to_string())
        })
        .collect()
}

#[test]
fn snapshot_create_revert_and_delete_killed_at_each_step_are_settled_by_the_next_call() {
    require("qemu-img", "qemu-utils");
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "create",
            &["snapshot-create-as", "web", "s2"],
            &["libxl-snapshot-create:begun", "libxl-snapshot-create:images", "libxl-snapshot:config-written"],
        ),
        (
            "revert",
            &["snapshot-revert", "web", "s1"],
            &[
                "libxl-snapshot-revert:begun",
                "libxl-snapshot-revert:overlays",
                "libxl-snapshot:config-written",
                "libxl-snapshot-revert:rewound",
            ],
        ),
        (
            "delete",
            &["snapshot-delete", "web", "s1"],
            &[
                "libxl-snapshot-delete:begun",
                "libxl-snapshot-delete:untagged",
                "libxl-snapshot-delete:merged",
                "libxl-snapshot:config-written",
                "libxl-snapshot-delete:switched",
            ],
        ),
    ];
    for (op, args, failpoints) in cases {
        for fp in *failpoints {
            // s1 holds 0x11 (hda) and 0x22 (xvdb); the present state 0x33 and 0x44.
            let (x, cfg) = web(&format!("xlk{op}"));
            let (a, b) = (x.dir.join("web.qcow2"), x.dir.join("data.raw"));
            write_mib(&a, "qcow2", 0x11, 0);
            write_mib(&b, "raw", 0x22, 0);
            x.ok(&["snapshot-create-as", "web", "s1"]);
            write_mib(&a, "qcow2", 0x33, 0);
            write_mib(&x.dir.join("data.s1"), "qcow2", 0x44, 0);
            let cfg_before = std::fs::read(&cfg).unwrap();
            killed_at(&x.env, fp, &x.args(args));
            let state = x.ok(&["domstate", "web", "--reason"]);
            assert!(state.contains(&format!("interrupted snapshot-{op}")), "{op} killed at {fp}: {state}");
            let r = x.run(&["recover", "web"]);
            assert_eq!(r.code, 0, "{op} killed at {fp}: {}", r.stderr);
            assert!(r.stderr.contains("was interrupted"), "{op} at {fp}: recover said {}", r.stderr);
            assert!(!x.ok(&["domstate", "web", "--reason"]).contains("interrupted"), "{op} at {fp}");
            let switched = *fp == "libxl-snapshot:config-written" || fp.ends_with(":rewound") || op == &"delete";
            let names = x.ok(&["snapshot-list", "web", "--name"]);
            let (want_a, want_b): (u8, u8) = match (*op, switched) {
                ("create", false) => {
                    assert_eq!(
                        (names.as_str(), std::fs::read(&cfg).unwrap()),
                        ("s1\n", cfg_before.clone()),
                        "{op} at {fp}: undone"
                    );
                    assert_eq!(internal_snapshots(&a), ["s1"], "{op} at {fp}");
                    (0x33, 0x44)
                }
                ("create", true) => {
                    assert_eq!(names, "s1\ns2\n", "{op} at {fp}: finished");
                    assert_eq!(internal_snapshots(&a), ["s1", "s2"], "{op} at {fp}");
                    (0x33, 0x44)
                }
                ("revert", false) => {
                    assert_eq!(std::fs::read(&cfg).unwrap(), cfg_before, "{op} at {fp}: undone");
                    (0x33, 0x44)
                }
                ("revert", true) => (0x11, 0x22),
                _ => {
                    assert_eq!(names, "", "{op} at {fp}: the delete was finished");
                    assert!(internal_snapshots(&a).is_empty(), "{op} at {fp}");
                    (0x33, 0x44)
                }
            };
            let (ia, fa) = x.disk("web", "hda");
            let (ib, fb) = x.disk("web", "xvdb");
            assert!(holds(&ia, &fa, want_a, 0), "{op} killed at {fp}: hda does not hold {want_a:#x}");
            assert!(holds(&ib, &fb, want_b, 0), "{op} killed at {fp}: xvdb does not hold {want_b:#x}");
            for image in [&ia, &ib] {
                check_image(image);
            }
            assert_eq!(leftovers(&x), Vec::<String>::new(), "{op} killed at {fp}: files nothing names");
            // The operation runs again.
            let again: Vec<&str> = match *op {
                "create" => vec!["snapshot-create-as", "web", "s3"],
                "revert" => vec!["snapshot-revert", "web", "s1"],
                _ => vec!["snapshot-create-as", "web", "s4"],
            };
            x.ok(&again);
            assert_eq!(leftovers(&x), Vec::<String>::new(), "{op} killed at {fp}: leftovers after repeating");
        }
    }
}

#[test]
fn a_snapshot_killed_beside_a_hand_edited_sidecar_is_undone_too() {
    // Only hda takes part (internally): the config does not change, the sidecar is the switch.
    let (x, cfg) = web("xlhand");
    x.ok(&["disk-mode", "web", "xvdb", "independent-persistent"]);
    let sidecar = x.dir.join("web.cfg.luavirt.xml");
    let text = std::fs::read_to_string(&sidecar).unwrap().replace("<metadata>", "<metadata>\n<!-- kept by hand -->");
    std::fs::write(&sidecar, &text).unwrap();
    let original = std::fs::read(&cfg).unwrap();
    killed_at(&x.env, "libxl-snapshot-create:images", &x.args(&["snapshot-create-as", "web", "s1"]));
    assert_eq!(internal_snapshots(&x.dir.join("web.qcow2")), ["s1"]);
    let r = x.run(&["recover", "web"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("it was undone"), "{}", r.stderr);
    assert!(internal_snapshots(&x.dir.join("web.qcow2")).is_empty());
    assert_eq!((std::fs::read(&cfg).unwrap(), std::fs::read_to_string(&sidecar).unwrap()), (original, text));
    x.ok(&["snapshot-create-as", "web", "s1"]);
    assert_eq!(x.ok(&["snapshot-list", "web", "--name"]), "s1\n");
}

// ---- Lua ----

#[test]
fn lua_scripts_reach_xl_domains_through_the_same_host_api() {
    let (x, cfg) = web("xllua");
    let original = std::fs::read(&cfg).unwrap();
    let script = x.env.write(
        "xl.lua",
        r#"
local lv = require("luavirt")
local conn = lv.connect(arg[1])
for _, dom in ipairs(conn:domains()) do print(dom:name(), dom:state()) end
local dom = conn:domain("web")
for _, d in ipairs(dom:disks()) do print(d.target, d.bus, d.format, d.device, d.mode) end
print(dom:disk("xvdb"):set_mode("independent-persistent"), dom:diskset("nightly"):add("hda"))
local snap = dom:snapshot{ name = "lua1", disks = dom:diskset("nightly") }
print(snap:name(), #dom:snapshots())
snap:delete()
print(#dom:snapshots(), dom:disk("xvdb").mode)
"#,
    );
    let r = x.env.run(&["run", script.to_str().unwrap(), &x.uri]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "web\tshut off\nhda\tide\tqcow2\tdisk\tpersistent\nxvdb\txen\traw\tdisk\tpersistent\nhdc\tide\traw\tcdrom\tpersistent\ntrue\ttrue\nlua1\t1\n0\tindependent-persistent\n"
    );
    assert_eq!(x.ok(&["diskset", "list", "web", "--set", "nightly"]), "hda\n");
    assert_eq!(std::fs::read(&cfg).unwrap(), original);
}

// ---- Migration ----

/// Two hosts on one machine: the source `x` and the destination `dst`, each with its config
/// folder and state folder; `to` is the destination's URI as the source names it.
struct Pair {
    x: Xen,
    dst: Xen,
    to: String,
}

/// The source's domain `web`: hda qcow2 8M holding 0x11 (first MiB) and 0x12 (at 2 MiB) in
/// disk set `mig`; xvdb raw 4M holding 0x22; xvdc qcow2 4M (clusters of 32 KiB) holding 0x33,
/// independent-nonpersistent (so made blank by default); an empty CD-ROM drive hdc.
fn pair(test: &str) -> (Pair, PathBuf) {
    let x = Xen::new(test);
    let a = x.image("web.qcow2", "qcow2", "8M");
    let b = x.image("data.raw", "raw", "4M");
    let c = x.dir.join("scratch.qcow2");
    qemu_img(&[
        "create".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        "-o".as_ref(),
        "cluster_size=32768".as_ref(),
        c.as_os_str(),
        "4M".as_ref(),
    ])
    .unwrap();
    write_mib(&a, "qcow2", 0x11, 0);
    write_mib(&a, "qcow2", 0x12, 2);
    write_mib(&b, "raw", 0x22, 0);
    write_mib(&c, "qcow2", 0x33, 0);
    let cfg = x.cfg(
        "web.cfg",
        &format!(
            "# web server\ntype = \"hvm\"\nname = \"web\"\nuuid = \"6f3c2a10-5b7e-4c1d-9a8e-2d4f6b8c0e12\"\nmemory = 512\ndisk = [ 'format=qcow2, vdev=hda, access=rw, target={}',\n         '{},raw,xvdb,w',   # data\n         '{},qcow2,xvdc,w',\n         ',hdc:cdrom,r' ]\nvif = [ 'bridge=xenbr0' ]\n",
            a.display(),
            b.display(),
            c.display()
        ),
    );
    x.ok(&["diskset", "add", "web", "hda", "--set", "mig"]);
    x.ok(&["disk-mode", "web", "xvdc", "independent-nonpersistent"]);
    let dst = Xen::new(&format!("{test}-to"));
    let to = format!("{}?state={}", dst.uri, dst.env.state.display());
    (Pair { x, dst, to }, cfg)
}

fn info(image: &Path) -> Value {
    serde_json::from_str(
        &qemu_img(&["info".as_ref(), "-U".as_ref(), "--output=json".as_ref(), image.as_os_str()]).unwrap(),
    )
    .unwrap()
}

/// Whether `image` holds no data at all (a blank disk).
fn holds_no_data(image: &Path) -> bool {
    let map = qemu_img(&["map".as_ref(), "-U".as_ref(), "--output=json".as_ref(), image.as_os_str()]).unwrap();
    serde_json::from_str::<Value>(&map).unwrap().as_array().unwrap().iter().all(|e| e["data"] == false)
}

fn same_image(a: &Path, b: &Path) -> bool {
    qemu_img(&["compare".as_ref(), "-U".as_ref(), a.as_os_str(), b.as_os_str()]).is_ok()
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The files under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Migration records left in a host's state folder.
fn records(x: &Xen) -> Vec<PathBuf> {
    files_under(&x.env.state.join("libxl/migrations"))
}

#[test]
fn a_shut_off_domain_migrates_with_a_copied_a_blank_and_a_shared_disk() {
    let (p, cfg) = pair("xlmig");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let (a, b, c) = (p.x.dir.join("web.qcow2"), p.x.dir.join("data.raw"), p.x.dir.join("scratch.qcow2"));
    let plan = p.x.ok(&["migrate", "web", &p.to, "--with-disk-set", "mig", "--print-plan"]);
    assert!(plan.contains("in disk set 'mig'") && plan.contains("transient: made blank by default"), "{plan}");
    let out = p.x.ok(&["migrate", "web", &p.to, "--with-disk-set", "mig", "--undefine-source", "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> =
        report["plan"]["disks"].as_array().unwrap().iter().map(|d| d["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["copy", "shared", "blank", "shared"]);
    // Only hda's data moved: about its 2 MiB, not its 8.
    let moved = &report["disk_bytes"];
    assert_eq!((moved.as_array().unwrap().len(), moved[0]["disk"].as_str()), (1, Some("hda")), "{report}");
    assert!((2 << 20..5 << 20).contains(&moved[0]["bytes"].as_u64().unwrap()), "{report}");

    // The source's config and sidecar went, as asked; its images stay.
    assert_eq!(p.x.ok(&["list", "--all", "--name"]), "");
    assert_eq!(p.x.names(), ["data.raw", "scratch.qcow2", "web.qcow2"]);
    // The destination's config is the source's with only the moved disks' targets rewritten.
    let dcfg = p.dst.dir.join("web.cfg");
    let text = std::fs::read_to_string(&dcfg).unwrap();
    let images = p.dst.env.state.join("images/web");
    let (da, dc) = (images.join("web.qcow2"), images.join("scratch.qcow2"));
    assert_eq!(
        changed_lines(&original, &text),
        [
            (
                6,
                format!("disk = [ 'format=qcow2, vdev=hda, access=rw, target={}',", a.display()),
                format!("disk = [ 'format=qcow2, vdev=hda, access=rw, target={}',", da.display())
            ),
            (
                8,
                format!("         '{},qcow2,xvdc,w',", c.display()),
                format!("         '{},qcow2,xvdc,w',", dc.display())
            ),
        ]
    );
    assert_eq!(p.dst.names(), ["web.cfg", "web.cfg.luavirt.xml"]);
    for f in [&dcfg, &p.dst.dir.join("web.cfg.luavirt.xml"), &da, &dc] {
        assert_eq!(mode_of(f), 0o600, "{}", f.display());
    }
    assert_eq!(mode_of(&images), 0o700);
    // Xen's own parser reads it, with the disks where the plan put them.
    let libxl = &libxl_reads(std::slice::from_ref(&dcfg), &["name"])[0];
    assert_eq!(libxl["rc"], 0, "{libxl}");
    let paths: Vec<&str> =
        libxl["disks"].as_array().unwrap().iter().take(3).map(|d| d["disk"]["pdev_path"].as_str().unwrap()).collect();
    assert_eq!(paths, [da.to_str().unwrap(), b.to_str().unwrap(), dc.to_str().unwrap()]);
    // It is the same domain there, with its disk sets and modes.
    assert_eq!(p.dst.ok(&["list", "--all", "--name"]), "web\n");
    assert_eq!(p.dst.ok(&["domstate", "web"]), "shut off\n");
    assert!(p.dst.ok(&["dumpxml", "web"]).contains("<uuid>6f3c2a10-5b7e-4c1d-9a8e-2d4f6b8c0e12</uuid>"));
    assert_eq!(p.dst.ok(&["diskset", "list", "web", "--set", "mig"]), "hda\n");
    assert_eq!(p.dst.ok(&["disk-mode", "web", "xvdc"]), "independent-nonpersistent\n");
    // The copy: the same content, sparse; the blank disk: its format, size and clusters, no
    // data; the shared disk: the same file, untouched.
    assert!(same_image(&a, &da), "the copy differs");
    assert!(holds(&da, "qcow2", 0x11, 0) && holds(&da, "qcow2", 0x12, 2));
    assert!(info(&da)["actual-size"].as_u64().unwrap() < 6 << 20, "{}", info(&da));
    let (ic, idc) = (info(&c), info(&dc));
    assert_eq!(
        (&idc["format"], &idc["virtual-size"], &idc["cluster-size"]),
        (&ic["format"], &ic["virtual-size"], &ic["cluster-size"])
    );
    assert_eq!(idc["cluster-size"], 32768);
    assert!(holds_no_data(&dc), "the blank disk holds data");
    assert!(holds(&c, "qcow2", 0x33, 0) && holds(&b, "raw", 0x22, 0), "the source's disks changed");
    assert_eq!(records(&p.x), Vec::<PathBuf>::new());
    assert_eq!(records(&p.dst), Vec::<PathBuf>::new());
    // And the domain works there.
    p.dst.ok(&["snapshot-create-as", "web", "s1"]);
    assert_eq!(p.dst.ok(&["snapshot-list", "web", "--name"]), "s1\n");
}

#[test]
fn without_undefine_source_the_config_stays_and_snapshot_records_stay_behind() {
    let (p, _) = pair("xlmigkeep");
    p.x.ok(&["snapshot-create-as", "web", "s1"]);
    write_mib(&p.x.dir.join("data.s1"), "qcow2", 0x44, 1);
    let before = p.x.files();
    let e = p.x.fails(&["migrate", "web", &p.to, "--migrate-disks", "hda", "--undefine-source"]);
    assert!(
        e.contains("Domain 'web' has 1 snapshot(s), whose records stay beside its config here (they do not migrate); delete them first (with --metadata to keep their files), or migrate without --undefine-source"),
        "{e}"
    );
    // xvdb is on the snapshot's overlay: its copy holds the whole chain, on no backing file.
    let out = p.x.ok(&["migrate", "web", &p.to, "--migrate-disks", "hda,xvdb"]);
    assert!(out.contains("hda copied") && out.contains("xvdb copied") && out.contains("xvdc made blank"), "{out}");
    assert_unchanged(&before, &p.x.files());
    assert_eq!(p.x.ok(&["snapshot-list", "web", "--name"]), "s1\n");
    assert_eq!(p.dst.ok(&["snapshot-list", "web", "--name"]), "");
    let sidecar = std::fs::read_to_string(p.dst.dir.join("web.cfg.luavirt.xml")).unwrap();
    assert!(!sidecar.contains("snapshot>") && sidecar.contains("<luavirt:set name='mig'>"), "{sidecar}");
    let (db, format) = p.dst.disk("web", "xvdb");
    assert_eq!((db.file_name().unwrap().to_str(), format.as_str()), (Some("data.s1"), "qcow2"));
    assert_eq!(info(&db)["backing-filename"], Value::Null);
    assert!(holds(&db, "qcow2", 0x22, 0) && holds(&db, "qcow2", 0x44, 1));
}

#[test]
fn refused_migrations_say_why_and_change_nothing_on_either_side() {
    let (p, _) = pair("xlmigbad");
    let taken = p.dst.env.dir.join("taken.qcow2");
    std::fs::write(&taken, b"mine").unwrap();
    // Disks luavirt cannot copy or recreate as image files.
    let blk = p.x.image("b.raw", "raw", "1M");
    p.x.cfg(
        "blk.cfg",
        &format!(
            "name = \"blk\"\nmemory = 128\ndisk = [ 'phy:/dev/loop0,xvda,w', 'backendtype=phy, vdev=xvdb, target={}', 'iscsi:iqn.2001-05.com.example:disk1,xvdc,w' ]\n",
            blk.display()
        ),
    );
    let src_before = p.x.files();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "blk",
            &["--blank-disks", "xvda"],
            "Disk xvda of domain 'blk' (BLK:3) is a block device on Xen's phy backend (/dev/loop0): luavirt makes copied and blank disks as image files, which the phy backend cannot serve; give the destination a device of its own with its storage tools (lvcreate, dd), or migrate the disk shared (--shared-disks xvda) (nothing was changed)",
        ),
        ("blk", &["--migrate-disks", "xvdb"], "is a block device on Xen's phy backend"),
        (
            "blk",
            &["--migrate-disks", "xvdc"],
            "Disk xvdc of domain 'blk' (BLK:3) is reached through the block script block-iscsi, so its target is no image file luavirt can have copied: migrate it shared (--shared-disks xvdc), with the destination reaching the same storage",
        ),
        (
            "web",
            &["--migrate-disks", "hda", "--timeout", "5"],
            "--timeout limits how long a live migration's memory may take, and an offline one moves no memory",
        ),
        ("web", &["--live"], "shut off"),
        (
            "web",
            &["--migrate-disks", "hda", "--disk-target", &format!("hda={}", taken.display())],
            "exists already; remove it, or choose another with --disk-target hda=PATH",
        ),
    ];
    let blk_cfg = p.x.dir.join("blk.cfg").display().to_string();
    for (dom, extra, want) in cases {
        let mut args = vec!["migrate", dom, p.to.as_str()];
        args.extend_from_slice(extra);
        let e = p.x.fails(&args);
        assert!(e.contains(&want.replace("BLK", &blk_cfg)), "{extra:?}: {e}");
    }
    // What the destination has already: refused there before anything is made.
    let planted: &[(&str, &str, &str)] = &[
        ("web2.cfg", "name = \"web\"\nmemory = 64\n", "already has a domain named 'web'"),
        (
            "web.cfg",
            "name = \"other\"\nmemory = 64\n",
            "web.cfg exists already; move it away, or migrate to another folder",
        ),
        ("web.cfg.luavirt.xml", "<metadata/>\n", "web.cfg.luavirt.xml exists already"),
        (
            "o.cfg",
            "name = \"o\"\nuuid = \"6f3c2a10-5b7e-4c1d-9a8e-2d4f6b8c0e12\"\nmemory = 64\n",
            "its UUID 6f3c2a10-5b7e-4c1d-9a8e-2d4f6b8c0e12 belongs to domain 'o' here",
        ),
    ];
    for (file, text, want) in planted {
        let f = p.dst.cfg(file, text);
        let dst_before = p.dst.files();
        let e = p.x.fails(&["migrate", "web", &p.to, "--migrate-disks", "hda"]);
        assert!(e.contains(want), "{file}: {e}");
        assert_unchanged(&dst_before, &p.dst.files());
        std::fs::remove_file(f).unwrap();
    }
    let here = format!("{}?state={}", p.x.uri, p.x.env.state.display());
    assert!(p.x.fails(&["migrate", "web", &here]).contains("the same host"));
    assert_unchanged(&src_before, &p.x.files());
    assert_eq!(p.dst.names(), Vec::<String>::new());
    assert_eq!(files_under(&p.dst.env.state.join("images")), Vec::<PathBuf>::new());
    assert_eq!(std::fs::read(&taken).unwrap(), b"mine");
}

/// A stand-in for `xl` that lists Domain-0 and `running` (name, id) as xl does where Xen
/// runs them, logs its arguments to `<file>.log`, and hands `xl migrate` to the real xl.
fn xl_standin(env: &Env, file: &str, running: &[(&str, u32)]) -> PathBuf {
    let log = env.dir.join(format!("{file}.log"));
    let mut table = "Name                                        ID   Mem VCPUs\\tState\\tTime(s)\\nDomain-0                                     0  2048     2     r-----      12.0\\n".to_string();
    for (name, id) in running {
        table.push_str(&format!("{name:<44} {id}   512     1     -b----       3.1\\n"));
    }
    let script = env.write(
        file,
        &format!(
            "#!/bin/sh\necho \"$@\" >> {}\ncase \"$1\" in\n  list) printf '{table}' ;;\n  migrate) exec /usr/lib/xen-4.17/bin/xl \"$@\" ;;\n  *) echo \"xl: $1 is not part of this stand-in\" >&2; exit 1 ;;\nesac\n",
            log.display()
        ),
    );
    luavirt_tests::set_mode(&script, 0o755);
    script
}

#[test]
fn a_domain_xen_runs_migrates_live_only_with_shared_disks_up_to_xl_migrate() {
    require("xl", "xen-utils-4.17");
    let (p, cfg) = pair("xlmiglive");
    let src_xl = xl_standin(&p.x.env, "xl-src", &[("web", 7)]);
    let src = format!("{}?xl={}", p.x.uri, src_xl.display());
    let run = |to: &str, extra: &[&str]| {
        let mut a = vec!["-c", src.as_str(), "migrate", "web", to];
        a.extend_from_slice(extra);
        p.x.env.run(&a)
    };
    let src_before = p.x.files();
    let dst_before = p.dst.files();
    // Xen's stream carries no disk content: a copied or blank disk is refused with that reason.
    let share = ["--live", "--persistent", "--shared-disks", "xvdc"];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--live", "--persistent", "--migrate-disks", "hda", "--shared-disks", "xvdc"],
            "Domain 'web' cannot migrate live with disk hda copied: Xen's live migration (xl migrate) carries the guest's memory and device state but no disk content, so every disk must be shared (the destination sees the same storage); share it (--shared-disks hda), or shut the domain down and migrate it offline to copy or blank disks (nothing was changed)",
        ),
        (&["--live", "--persistent"], "cannot migrate live with disk xvdc made blank"),
        (
            &["--live", "--shared-disks", "xvdc"],
            "an xl domain is its config file, so it arrives with one; add --persistent",
        ),
        (&["--persistent", "--shared-disks", "xvdc"], "Xen moves a running domain only live (xl migrate); add --live"),
        (&[&share[..], &["--bandwidth", "10"]].concat(), "xl migrate has no speed limit; migrate without --bandwidth"),
    ];
    for (extra, want) in cases {
        let r = run(&p.to, extra);
        assert_eq!(r.code, 1, "{extra:?}");
        assert!(r.stderr.contains(want), "{extra:?}: {}", r.stderr);
    }
    // The destination without Xen: xl there says so, before anything is made.
    let real = format!("{}&xl=/usr/lib/xen-4.17/bin/xl", p.to);
    let r = run(&real, &share);
    assert!(
        r.stderr.contains("Domain 'web' cannot arrive here live: the source's xl migrate hands it to xl migrate-receive on this host, which needs Xen running here, and no Xen hypervisor runs on this machine (xl says: cannot init xl context)"),
        "{}",
        r.stderr
    );
    // A destination where xl answers: the source's xl migrate runs, into the destination's
    // xl migrate-receive, and Xen's absence stops it there.
    let dst_xl = xl_standin(&p.dst.env, "xl-dst", &[]);
    let to = format!("{}&xl={}", p.to, dst_xl.display());
    let r = run(&to, &[&share[..], &["--paused"]].concat());
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("Moving domain 'web' live: xl migrate needs Xen running on both hosts, and no Xen hypervisor runs on this machine (xl says: cannot init xl context)"),
        "{}",
        r.stderr
    );
    let log = std::fs::read_to_string(p.x.env.dir.join("xl-src.log")).unwrap();
    let sent = format!("migrate -s  -C {} web '{}' migrate-receive -p", cfg.display(), dst_xl.display());
    assert!(log.lines().any(|l| l == sent), "{log}");
    assert_unchanged(&src_before, &p.x.files());
    let dst_now: BTreeMap<PathBuf, Vec<u8>> =
        p.dst.files().into_iter().filter(|(f, _)| f.extension().is_none_or(|x| x != "log")).collect();
    assert_unchanged(&dst_before, &dst_now);
    // Killed while xl migrate would run: the destination's side is undone by its next call.
    let mut args = vec!["-c", src.as_str(), "migrate", "web", to.as_str()];
    args.extend_from_slice(&share);
    killed_at(&p.x.env, "libxl-migrate-out:sending", &args);
    let dst = |a: &[&str]| {
        let mut all = vec!["-c", to.as_str()];
        all.extend_from_slice(a);
        p.dst.env.run(&all)
    };
    let state = dst(&["domstate", "web", "--reason"]).stdout;
    assert!(state.starts_with("shut off (interrupted migration ") && state.contains("(arriving)"), "{state}");
    let r = dst(&["recover", "web"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("it had not committed, so it was undone: nothing of it is here"), "{}", r.stderr);
    assert_eq!(records(&p.dst), Vec::<PathBuf>::new());
    assert_eq!(dst(&["list", "--all", "--name"]).stdout, "");
    assert_unchanged(&src_before, &p.x.files());
}

/// The steps of an offline migration, in order: whether the destination has the domain
/// after a kill there, and whether the source still has its config.
const OFFLINE_STEPS: &[(&str, bool, bool)] = &[
    ("libxl-migrate-in:begun", false, true),
    ("libxl-migrate-in:image", false, true),
    ("libxl-migrate-in:prepared", false, true),
    ("migrate:prepared", false, true),
    ("libxl-migrate-in:sidecar-written", false, true),
    ("libxl-migrate-in:committed", true, true),
    ("migrate:finished", true, true),
    ("libxl-migrate-out:config-removed", true, false),
];

#[test]
fn killed_at_each_step_of_an_offline_migration_the_destination_has_all_of_it_or_nothing() {
    for (k, (fp, arrived, source_kept)) in OFFLINE_STEPS.iter().enumerate() {
        let (p, cfg) = pair(&format!("xlmigk{k}"));
        let original = std::fs::read(&cfg).unwrap();
        let sidecar = std::fs::read(p.x.dir.join("web.cfg.luavirt.xml")).unwrap();
        let args = ["migrate", "web", p.to.as_str(), "--with-disk-set", "mig", "--undefine-source"];
        killed_at(&p.x.env, fp, &p.x.args(&args));
        // The side a record was left on says so, then settles it; either side may go first.
        let (first, second) = if k % 2 == 0 { (&p.x, &p.dst) } else { (&p.dst, &p.x) };
        for side in [first, second] {
            let r = side.run(&["recover", "web"]);
            assert!(r.code == 0 || r.stderr.contains("is not in"), "{fp}: recover: {}", r.stderr);
        }
        assert_eq!((records(&p.x), records(&p.dst)), (vec![], vec![]), "{fp}: records left");
        let images = files_under(&p.dst.env.state.join("images"));
        if *arrived {
            assert_eq!(p.dst.ok(&["list", "--all", "--name"]), "web\n", "{fp}");
            assert_eq!(p.dst.names(), ["web.cfg", "web.cfg.luavirt.xml"], "{fp}");
            let (da, _) = p.dst.disk("web", "hda");
            let (dc, _) = p.dst.disk("web", "xvdc");
            assert_eq!(images, [dc.clone(), da.clone()], "{fp}");
            assert!(same_image(&p.x.dir.join("web.qcow2"), &da), "{fp}: the copy differs");
            assert!(holds_no_data(&dc), "{fp}");
            assert_eq!(p.dst.ok(&["diskset", "list", "web", "--set", "mig"]), "hda\n", "{fp}");
        } else {
            assert_eq!(p.dst.names(), Vec::<String>::new(), "{fp}: the destination kept something");
            assert_eq!(images, Vec::<PathBuf>::new(), "{fp}: images left at the destination");
        }
        if *source_kept {
            assert_eq!(std::fs::read(&cfg).unwrap(), original, "{fp}");
            assert_eq!(std::fs::read(p.x.dir.join("web.cfg.luavirt.xml")).unwrap(), sidecar, "{fp}");
        } else {
            assert_eq!(p.x.names(), ["data.raw", "scratch.qcow2", "web.qcow2"], "{fp}: the source's files");
        }
        if !arrived {
            // And it migrates after all.
            p.x.ok(&args);
            assert_eq!(p.dst.ok(&["list", "--all", "--name"]), "web\n", "{fp}");
            assert_eq!(p.x.names(), ["data.raw", "scratch.qcow2", "web.qcow2"], "{fp}");
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn a_copy_goes_at_the_bandwidth_asked_and_ctrl_c_undoes_the_migration() {
    let (p, cfg) = pair("xlmigint");
    let a = p.x.dir.join("web.qcow2");
    for mib in 3..8 {
        write_mib(&a, "qcow2", 0x13, mib);
    }
    let original = std::fs::read(&cfg).unwrap();
    let mut child =
        p.x.env
            .command(&p.x.args(&["migrate", "web", &p.to, "--migrate-disks", "hda", "--bandwidth", "1"]))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let copy = p.dst.env.state.join("images/web/web.qcow2");
    let began = std::time::Instant::now();
    while !copy.exists() {
        assert!(began.elapsed().as_secs() < 30, "the copy did not begin");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // 7 MiB at 1 MiB/s: still copying after 1.5 s.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the copy ignored --bandwidth");
    // SAFETY: a signal to our own child.
    unsafe { libc_kill(child.id() as i32, 2) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Migration of domain 'web', disk hda: the migration was cancelled while it copied; the migration was undone: what it had made here was removed"),
        "{stderr}"
    );
    assert_eq!(p.dst.names(), Vec::<String>::new());
    assert_eq!(files_under(&p.dst.env.state.join("images")), Vec::<PathBuf>::new());
    assert_eq!((records(&p.x), records(&p.dst)), (vec![], vec![]));
    assert_eq!(std::fs::read(&cfg).unwrap(), original);
    assert!(holds(&a, "qcow2", 0x13, 7));
}

#[test]
fn a_lua_policy_migrates_an_xl_domain_through_the_same_host_api() {
    let (p, _) = pair("xlmiglua");
    let script = p.x.env.write(
        "move.lua",
        r#"
local lv = require("luavirt")
local src, to = lv.connect(arg[1]), lv.connect(arg[2])
local dom = src:domain("web")
local plan = dom:migration_plan{ to = to, disk_set = "mig" }
print(plan.disks[1].action, plan.disks[2].action, plan.disks[3].action)
local r = dom:migrate{ to = to, disk_set = "mig", undefine_source = true }
print(r.disk_bytes[1].disk, to:domain("web"):state(), #src:domains())
local ok, err = pcall(function() return to:domain("web"):migrate{ to = src, live = true } end)
print(ok, tostring(err):match("live") ~= nil)
"#,
    );
    let r = p.x.env.run(&["run", script.to_str().unwrap(), &p.x.uri, &p.to]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "copy\tshared\tblank\nhda\tshut off\t0\nfalse\ttrue\n");
    assert!(same_image(&p.x.dir.join("web.qcow2"), &p.dst.disk("web", "hda").0));
}
