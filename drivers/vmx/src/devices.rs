//! The disks and CD-ROM drives of a `.vmx`: `<bus><controller>:<unit>.<key>` entries on the
//! scsi, sata, ide and nvme buses, read the way VMware and libvirt read them, and named the
//! way libvirt names them (`sda`, `hda`, `nvme0n1`).
//!
//! A device exists when its `.present` is true and its controller's `.present` is not
//! `FALSE` (a namespace switched off). A hard disk without `deviceType` is normal (ESXi 7/8
//! SATA and NVMe disks, Fusion): what its file is decides.

use crate::vmx::{VmxError, VmxFile, parse_bool};
use luavirt_plugin_api::domain::DiskMode;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// A device bus, in the order the domain XML lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bus {
    /// SCSI: controllers 0..3, units 0..6 and 8..15 (more on super-wide controllers).
    Scsi,
    /// SATA (AHCI): controllers 0..3, units 0..29.
    Sata,
    /// IDE: buses 0 and 1, units 0 and 1.
    Ide,
    /// NVMe: controllers 0..3, namespaces from unit 0.
    Nvme,
}

impl Bus {
    /// The `.vmx` and libvirt name.
    pub fn name(self) -> &'static str {
        match self {
            Bus::Scsi => "scsi",
            Bus::Sata => "sata",
            Bus::Ide => "ide",
            Bus::Nvme => "nvme",
        }
    }

    fn from_name(s: &str) -> Option<Bus> {
        [Bus::Scsi, Bus::Sata, Bus::Ide, Bus::Nvme].into_iter().find(|b| b.name() == s)
    }
}

/// What a device holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Medium {
    /// A hard disk image: the `fileName` as written.
    Disk(String),
    /// A CD-ROM image (`cdrom-image`, or a `.iso` file).
    CdromImage(String),
    /// A CD-ROM drive with nothing in it (`emptyBackingString`, or connected from the client).
    CdromEmpty,
    /// The host's CD-ROM drive (`atapi-cdrom`); `None` when auto-detected.
    CdromHost(Option<String>),
    /// A device passed through raw (`cdrom-raw`, `scsi-passthru`): libvirt's `device='lun'`.
    Passthrough(Option<String>),
}

/// One device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its bus.
    pub bus: Bus,
    /// Controller (or IDE bus) number.
    pub controller: u32,
    /// Unit on the controller.
    pub unit: u32,
    /// `scsi0:1`, spelled as in the file's first key of the device.
    pub node: String,
    /// What it holds.
    pub medium: Medium,
    /// Line of `fileName`, if set.
    pub file_line: Option<u32>,
    /// Its mode (`persistent` when `.mode` is absent; `Unknown` for a value luavirt does not
    /// know, which then stays as it is).
    pub mode: DiskMode,
    /// `.mode` as written, if set.
    pub mode_text: Option<String>,
    /// Line of `.mode`, if set.
    pub mode_line: Option<u32>,
    /// The last line holding one of its keys (a new key goes right after it).
    pub last_line: u32,
    /// The target name in the domain XML.
    pub target: String,
}

impl Device {
    /// The device's node in canonical form (`scsi0:1`), whatever its case in the file.
    pub fn id(&self) -> String {
        format!("{}{}:{}", self.bus.name(), self.controller, self.unit)
    }

    /// Whether it is a hard disk (modes apply only to those).
    pub fn is_disk(&self) -> bool {
        matches!(self.medium, Medium::Disk(_))
    }

    /// Says that this disk of domain `domain` has a mode luavirt does not know, naming its
    /// line in `vmx`; the caller adds what to do.
    pub fn unknown_mode(&self, vmx: &Path, domain: &str) -> String {
        format!(
            "Disk {} of domain '{domain}' has mode \"{}\" ({}:{}), which luavirt does not know, so it leaves that disk as it is: it changes no such mode and takes no such disk in snapshots (ESX knows persistent, independent-persistent and independent-nonpersistent)",
            self.target,
            self.mode_text.as_deref().unwrap_or_default(),
            vmx.display(),
            self.mode_line.unwrap_or(0)
        )
    }
}

/// ESX's `.mode` spellings; old `nonpersistent` and `undoable` included.
const MODES: &[(&str, DiskMode)] = &[
    ("persistent", DiskMode::Persistent),
    ("independent-persistent", DiskMode::IndependentPersistent),
    ("independent-nonpersistent", DiskMode::IndependentNonpersistent),
    ("nonpersistent", DiskMode::Nonpersistent),
    ("undoable", DiskMode::Undoable),
];

/// Splits `scsi0:1.fileName` into (bus, controller, unit, node as written, rest of the key).
fn split_key(key: &str) -> Option<(Bus, u32, u32, &str, &str)> {
    let (node, rest) = key.split_once('.')?;
    let (ctl, unit) = node.split_once(':')?;
    let digits = ctl.find(|c: char| c.is_ascii_digit())?;
    let bus = Bus::from_name(&ctl[..digits].to_ascii_lowercase())?;
    let controller = ctl[digits..].parse().ok()?;
    let unit = unit.parse().ok()?;
    Some((bus, controller, unit, node, rest))
}

/// What is known of one device's keys before it is classified.
#[derive(Default)]
struct Keys<'a> {
    node: &'a str,
    values: BTreeMap<String, (&'a str, u32)>,
    last_line: u32,
}

/// Reads every present device of `vmx`, in bus, controller, unit order, with targets named.
pub fn read(vmx: &VmxFile) -> Result<Vec<Device>, VmxError> {
    let mut keys: BTreeMap<(Bus, u32, u32), Keys> = BTreeMap::new();
    for e in vmx.entries() {
        let Some((bus, c, u, node, rest)) = split_key(e.key) else {
            continue;
        };
        let k = keys.entry((bus, c, u)).or_default();
        if k.node.is_empty() {
            k.node = node;
        }
        k.values.insert(rest.to_ascii_lowercase(), (e.value, e.line));
        k.last_line = k.last_line.max(e.line);
    }
    let bool_of = |key: String| -> Result<Option<bool>, VmxError> {
        match vmx.entry(&key) {
            None => Ok(None),
            Some(e) => parse_bool(e.value)
                .map(Some)
                .ok_or_else(|| vmx.error(e.line, format!("{} is \"{}\"; write \"TRUE\" or \"FALSE\"", e.key, e.value))),
        }
    };
    let mut out = Vec::new();
    for ((bus, c, u), k) in keys {
        let present = bool_of(format!("{}.present", k.node))?.unwrap_or(false);
        let controller_on = bool_of(format!("{}{c}.present", bus.name()))?.unwrap_or(true);
        if !present || !controller_on {
            continue;
        }
        let get = |name: &str| k.values.get(name).copied();
        let client = match get("clientdevice") {
            Some((v, line)) => parse_bool(v).ok_or_else(|| {
                vmx.error(line, format!("{}.clientDevice is \"{v}\"; write \"TRUE\" or \"FALSE\"", k.node))
            })?,
            None => false,
        };
        let file = get("filename");
        let Some(medium) = classify(get("devicetype").map(|d| d.0), file.map(|f| f.0), client) else {
            continue;
        };
        // An unknown mode (`append`) marks this disk only; the rest of the VM reads on.
        let mode = match get("mode") {
            Some((v, _)) if matches!(medium, Medium::Disk(_)) => {
                MODES.iter().find(|(n, _)| n.eq_ignore_ascii_case(v.trim())).map_or(DiskMode::Unknown, |(_, m)| *m)
            }
            _ => DiskMode::Persistent,
        };
        out.push(Device {
            bus,
            controller: c,
            unit: u,
            node: k.node.to_string(),
            medium,
            file_line: file.map(|f| f.1),
            mode,
            mode_text: get("mode").map(|m| m.0.to_string()),
            mode_line: get("mode").map(|m| m.1),
            last_line: k.last_line,
            target: String::new(),
        });
    }
    name_targets(&mut out);
    Ok(out)
}

/// What a device holds, from its `deviceType`, `fileName` and `clientDevice`; `None` when
/// nothing is attached.
fn classify(device_type: Option<&str>, file: Option<&str>, client: bool) -> Option<Medium> {
    let dt = device_type.map(|d| d.trim().to_ascii_lowercase());
    let auto = |f: Option<&str>| f.filter(|f| !f.trim().eq_ignore_ascii_case("auto detect")).map(str::to_string);
    let empty = |f: &str| f == "emptyBackingString";
    let is_iso = |f: &str| f.to_ascii_lowercase().ends_with(".iso");
    match dt.as_deref() {
        Some("cdrom-image") | Some("atapi-cdrom") | Some("cdrom-raw") if client => Some(Medium::CdromEmpty),
        Some("cdrom-image") => match file {
            None => Some(Medium::CdromEmpty),
            Some(f) if empty(f) => Some(Medium::CdromEmpty),
            Some(f) => Some(Medium::CdromImage(f.to_string())),
        },
        Some("atapi-cdrom") => Some(Medium::CdromHost(auto(file))),
        Some("cdrom-raw") | Some("scsi-passthru") => Some(Medium::Passthrough(auto(file))),
        // Hard disks: scsi-hardDisk, ata-hardDisk, disk, plainDisk, rawDisk, none, or a type
        // luavirt does not know, where the file decides.
        _ => match file {
            None => None,
            Some(f) if empty(f) => Some(Medium::CdromEmpty),
            Some(f) if is_iso(f) => Some(Medium::CdromImage(f.to_string())),
            Some(f) => Some(Medium::Disk(f.to_string())),
        },
    }
}

/// libvirt's disk names: `sda`, ..., `sdz`, `sdaa`, ...
pub fn index_name(prefix: &str, index: u32) -> String {
    let mut n = index as i64;
    let mut letters = Vec::new();
    while n >= 0 {
        letters.push(b'a' + (n % 26) as u8);
        n = n / 26 - 1;
    }
    letters.reverse();
    format!("{prefix}{}", String::from_utf8(letters).expect("ASCII letters"))
}

/// Names targets as libvirt does: SCSI `sd` + controller*15 + unit (unit 7 is the
/// controller's own), SATA `sd` + controller*30 + unit, IDE `hd` + bus*2 + unit, NVMe
/// `nvme<controller>n<unit+1>`. libvirt gives a SATA disk the name of a SCSI disk when a VM
/// has both; here the later one in bus order takes the next free name instead, so every
/// target is unique.
fn name_targets(devices: &mut [Device]) {
    let mut used: HashSet<String> = HashSet::new();
    for d in devices.iter_mut() {
        let (c, u) = (d.controller, d.unit);
        let (prefix, mut index) = match d.bus {
            Bus::Scsi => ("sd", c * 15 + if u < 7 { u } else { u - 1 }),
            Bus::Sata => ("sd", c * 30 + u),
            Bus::Ide => ("hd", c * 2 + u),
            Bus::Nvme => {
                let t = format!("nvme{c}n{}", u + 1);
                used.insert(t.clone());
                d.target = t;
                continue;
            }
        };
        while used.contains(&index_name(prefix, index)) {
            index += 1;
        }
        d.target = index_name(prefix, index);
        used.insert(d.target.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(text: &str) -> Vec<Device> {
        read(&VmxFile::parse(text.as_bytes(), "t.vmx").unwrap()).unwrap()
    }

    #[test]
    fn names_follow_libvirt() {
        assert_eq!(index_name("sd", 0), "sda");
        assert_eq!(index_name("sd", 25), "sdz");
        assert_eq!(index_name("sd", 26), "sdaa");
        assert_eq!(index_name("sd", 27 * 26), "sdaaa");
        let d = devices(
            "scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"a.vmdk\"\nscsi0:8.present = \"TRUE\"\nscsi0:8.fileName = \"b.vmdk\"\nscsi1:0.present = \"TRUE\"\nscsi1:0.fileName = \"c.vmdk\"\nide1:1.present = \"TRUE\"\nide1:1.fileName = \"d.vmdk\"\nnvme1:2.present = \"TRUE\"\nnvme1:2.fileName = \"e.vmdk\"\nsata0:3.present = \"TRUE\"\nsata0:3.fileName = \"f.vmdk\"\n",
        );
        let t: Vec<(&str, &str)> = d.iter().map(|d| (d.node.as_str(), d.target.as_str())).collect();
        assert_eq!(
            t,
            [
                ("scsi0:0", "sda"),
                ("scsi0:8", "sdh"),
                ("scsi1:0", "sdp"),
                ("sata0:3", "sdd"),
                ("ide1:1", "hdd"),
                ("nvme1:2", "nvme1n3")
            ]
        );
    }

    #[test]
    fn a_sata_disk_that_would_share_a_scsi_name_takes_the_next_free_one() {
        let d = devices(
            "scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"a.vmdk\"\nscsi0:1.present = \"TRUE\"\nscsi0:1.fileName = \"b.vmdk\"\nsata0:0.present = \"TRUE\"\nsata0:0.fileName = \"c.vmdk\"\n",
        );
        let t: Vec<&str> = d.iter().map(|d| d.target.as_str()).collect();
        assert_eq!(t, ["sda", "sdb", "sdc"]);
    }

    #[test]
    fn media_follow_device_type_and_file() {
        assert_eq!(classify(None, Some("x.VMDK"), false), Some(Medium::Disk("x.VMDK".into())));
        assert_eq!(classify(None, Some("x.iso"), false), Some(Medium::CdromImage("x.iso".into())));
        assert_eq!(classify(Some("cdrom-image"), Some("emptyBackingString"), false), Some(Medium::CdromEmpty));
        assert_eq!(classify(Some("ATAPI-CDROM"), Some("auto detect"), false), Some(Medium::CdromHost(None)));
        assert_eq!(
            classify(Some("atapi-cdrom"), Some("/dev/sr0"), false),
            Some(Medium::CdromHost(Some("/dev/sr0".into())))
        );
        assert_eq!(classify(Some("cdrom-raw"), Some("/dev/sr0"), true), Some(Medium::CdromEmpty));
        assert_eq!(
            classify(Some("scsi-passthru"), Some("/vmfs/devices/cdrom/mpx.vmhba0:C0:T0:L0"), false),
            Some(Medium::Passthrough(Some("/vmfs/devices/cdrom/mpx.vmhba0:C0:T0:L0".into())))
        );
        assert_eq!(classify(Some("scsi-hardDisk"), None, false), None);
    }

    #[test]
    fn absent_or_switched_off_devices_are_not_listed() {
        let d = devices(
            "scsi0:0.fileName = \"nopresent.vmdk\"\nscsi0:1.present = \"FALSE\"\nscsi0:1.fileName = \"off.vmdk\"\nscsi1.present = \"FALSE\"\nscsi1:0.present = \"TRUE\"\nscsi1:0.fileName = \"offctl.vmdk\"\nide0:0.present = \"TRUE\"\nide0:0.fileName = \"on.vmdk\"\n",
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].medium, Medium::Disk("on.vmdk".into()));
    }

    #[test]
    fn modes_are_read_without_case_and_unknown_ones_mark_their_disk_only() {
        let d = devices(
            "ide0:0.present = \"TRUE\"\nide0:0.fileName = \"a.vmdk\"\nide0:0.Mode = \"Independent-NonPersistent\"\n",
        );
        assert_eq!((d[0].mode, d[0].mode_line, d[0].last_line), (DiskMode::IndependentNonpersistent, Some(3), 3));
        // `append` (ESX 2) made the whole VM unreadable; now only that disk is marked.
        let d = devices(
            "ide0:0.present = \"TRUE\"\nide0:0.fileName = \"a.vmdk\"\nide0:0.mode = \"append\"\nide0:1.present = \"TRUE\"\nide0:1.fileName = \"b.vmdk\"\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].mode, d[0].mode_text.as_deref(), d[0].mode_line),
            (DiskMode::Unknown, Some("append"), Some(3))
        );
        assert_eq!((d[1].mode, d[1].mode_text.as_deref()), (DiskMode::Persistent, None));
        let v = VmxFile::parse(b"ide0:0.present = \"maybe\"\n", "t.vmx").unwrap();
        assert!(read(&v).unwrap_err().message.contains("write \"TRUE\" or \"FALSE\""));
    }

    #[test]
    fn keys_with_a_device_prefix_elsewhere_are_not_device_keys() {
        let d =
            devices("sched.scsi0:0.shares = \"normal\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"a.vmdk\"\n");
        assert_eq!((d.len(), d[0].last_line), (1, 3));
    }
}
