//! Turns a domain definition into a `qemu-system-*` command line.
//!
//! Covered: machine type and accelerator, memory, vCPUs, and disks (file or block sources;
//! virtio, SATA, IDE, SCSI and USB buses; disk and CD-ROM devices; read-only, shareable,
//! serial, boot order), each disk as a `-blockdev` pair named after its target so later
//! QMP work (snapshots, block jobs) can address it. Other devices are left out with a
//! warning, never silently.

use luavirt_plugin_api::domain::{Disk, DiskSource, DomainXml};
use luavirt_plugin_api::xml::Element;
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

/// A command line and what it leaves out.
pub struct Plan {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Devices not passed to QEMU, in words.
    pub warnings: Vec<String>,
}

/// Node name of a disk's format layer (`lv-vda`); its protocol layer adds `-file`.
pub fn node_name(target: &str) -> String {
    format!("lv-{target}")
}

/// Escapes a value for QEMU's comma-separated options.
fn opt(value: &str) -> String {
    value.replace(',', ",,")
}

fn unsupported(name: &str, what: String) -> DriverError {
    DriverError::new(ErrorCode::Unsupported, format!("Domain '{name}': {what}"))
}

/// Memory in MiB from `<memory unit=...>` (KiB when no unit is given).
fn memory_mib(root: &Element) -> Result<u64, String> {
    let Some(m) = root.child("memory") else {
        return Ok(128);
    };
    let value: u64 = m.text().trim().parse().map_err(|_| format!("invalid <memory> {:?}", m.text()))?;
    let unit = m.attr("unit").unwrap_or_else(|| "KiB".to_string());
    let bytes_per = match unit.as_str() {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1024,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        other => return Err(format!("unknown memory unit {other:?}")),
    };
    Ok((value.saturating_mul(bytes_per) >> 20).max(1))
}

/// The emulator: `<emulator>` if that file exists, else `qemu-system-<arch>` from PATH.
fn emulator(root: &Element, arch: &str) -> Result<String, String> {
    if let Some(e) = root.child("devices").and_then(|d| d.child("emulator")).map(|e| e.text())
        && Path::new(e.trim()).is_file()
    {
        return Ok(e.trim().to_string());
    }
    let program = format!("qemu-system-{arch}");
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(&program)).find(|c| c.is_file()));
    found.map(|p| p.display().to_string()).ok_or_else(|| {
        format!("{program} is not installed; on Debian install it with: apt-get install -y qemu-system-x86 qemu-utils")
    })
}

/// Controllers a disk bus needs, added once.
#[derive(Default)]
struct Controllers {
    sata: bool,
    scsi: bool,
    usb: bool,
}

/// Builds the command line of domain `dom`.
pub fn build(dom: &DomainXml) -> Result<Plan, DriverError> {
    let name = dom.name();
    let root = &dom.document().root;
    let os_type = root.child("os").and_then(|o| o.child("type"));
    let arch = os_type.and_then(|t| t.attr("arch")).unwrap_or_else(|| "x86_64".to_string());
    let machine = os_type.and_then(|t| t.attr("machine")).unwrap_or_else(|| "pc".to_string());
    let accel = if dom.domain_type().as_deref() == Some("kvm") { "kvm:tcg" } else { "tcg" };
    let mem = memory_mib(root).map_err(|m| DriverError::new(ErrorCode::Xml, format!("Domain '{name}': {m}")))?;
    let vcpus: u32 = root.child("vcpu").and_then(|v| v.text().trim().parse().ok()).unwrap_or(1);
    let program = emulator(root, &arch).map_err(|m| DriverError::new(ErrorCode::Hypervisor, m))?;
    let uuid = dom.uuid().unwrap_or_default();

    let mut argv: Vec<String> = vec![program];
    let mut arg = |a: &str, v: String| {
        argv.push(a.to_string());
        argv.push(v);
    };
    arg("-name", format!("guest={},debug-threads=on", opt(&name)));
    if !uuid.is_empty() {
        arg("-uuid", uuid);
    }
    arg("-machine", format!("{},accel={accel}", opt(&machine)));
    arg("-m", format!("{mem}M"));
    arg("-smp", vcpus.to_string());
    for k in 0..crate::state::MONITORS {
        let fd = crate::process::FIRST_MONITOR_FD + k as i32;
        arg("-chardev", format!("socket,id=monitor{k},fd={fd},server=on,wait=off"));
        arg("-mon", format!("chardev=monitor{k},mode=control"));
    }
    argv.extend(["-nodefaults", "-no-user-config", "-display", "none", "-S"].map(String::from));

    let q35 = machine.contains("q35");
    let mut ctl = Controllers::default();
    let mut warnings = Vec::new();
    for disk in dom.disks() {
        disk_args(&name, &disk, q35, &mut ctl, &mut argv, &mut warnings)?;
    }
    if let Some(devices) = root.child("devices") {
        let mut ignored: Vec<&str> = Vec::new();
        for n in devices.elements().map(|e| e.name()).filter(|n| !["disk", "emulator", "controller"].contains(n)) {
            if !ignored.contains(&n) {
                ignored.push(n);
            }
        }
        if !ignored.is_empty() {
            warnings.push(format!("devices not passed to QEMU by luavirt yet: {}", ignored.join(", ")));
        }
    }
    Ok(Plan { argv, warnings })
}

/// Index of a target among its kind: `vdc` → 2, `hdb` → 1, `sdaa` → 26.
fn target_index(target: &str) -> usize {
    let letters = target.trim_start_matches(|c: char| c.is_ascii_lowercase()).len();
    let suffix = &target[..target.len() - letters];
    let tail = suffix.get(2..).unwrap_or("");
    tail.chars().fold(0usize, |n, c| n * 26 + (c as usize - 'a' as usize + 1)).saturating_sub(1)
}

/// A property value, typed as QMP wants it (the command line writes each as text).
#[derive(Clone, Debug, PartialEq)]
pub enum Prop {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean (`on`/`off` on the command line).
    Bool(bool),
}

/// A `-blockdev` or `-device`: its driver and properties, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Props {
    /// `driver=`.
    pub driver: String,
    /// The other properties.
    pub props: Vec<(String, Prop)>,
}

impl Props {
    fn new(driver: &str) -> Props {
        Props { driver: driver.to_string(), props: Vec::new() }
    }

    fn with(mut self, key: &str, value: Prop) -> Props {
        self.props.push((key.to_string(), value));
        self
    }

    fn text(&self) -> String {
        self.props
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Prop::Str(s) => opt(s),
                    Prop::Int(n) => n.to_string(),
                    Prop::Bool(b) => if *b { "on" } else { "off" }.to_string(),
                };
                format!(",{k}={v}")
            })
            .collect()
    }

    /// As `-blockdev` takes it: `driver=D,key=value,...`.
    pub fn blockdev_arg(&self) -> String {
        format!("driver={}{}", opt(&self.driver), self.text())
    }

    /// As `-device` takes it: `D,key=value,...`.
    pub fn device_arg(&self) -> String {
        format!("{}{}", opt(&self.driver), self.text())
    }

    /// As QMP's `blockdev-add` and `device_add` take it.
    pub fn json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("driver".into(), self.driver.clone().into());
        for (k, v) in &self.props {
            let v = match v {
                Prop::Str(s) => serde_json::Value::from(s.clone()),
                Prop::Int(n) => serde_json::Value::from(*n),
                Prop::Bool(b) => serde_json::Value::from(*b),
            };
            m.insert(k.clone(), v);
        }
        serde_json::Value::Object(m)
    }
}

/// What QEMU needs for one disk: its block nodes (protocol, then format; none for an empty
/// drive), the controller its bus needs (added once per domain), and the guest device.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskDevice {
    /// Block nodes, lowest first.
    pub nodes: Vec<Props>,
    /// The controller device, with its id, if the bus needs one.
    pub controller: Option<Props>,
    /// The guest's device (`id` is the target).
    pub device: Props,
}

/// The block nodes and device of disk `d`; `None` (with a warning) for a bus QEMU is not
/// given by luavirt.
pub fn disk_device(
    name: &str,
    d: &Disk,
    q35: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<DiskDevice>, DriverError> {
    let node = node_name(&d.target);
    let read_only = d.readonly || d.device == "cdrom";
    let mut nodes = Vec::new();
    match &d.source {
        DiskSource::File(path) | DiskSource::Block(path) => {
            let protocol = if matches!(d.source, DiskSource::Block(_)) { "host_device" } else { "file" };
            nodes.push(
                Props::new(protocol)
                    .with("filename", Prop::Str(path.clone()))
                    .with("node-name", Prop::Str(format!("{node}-file")))
                    .with("read-only", Prop::Bool(read_only)),
            );
            nodes.push(
                Props::new(d.format_or_raw())
                    .with("file", Prop::Str(format!("{node}-file")))
                    .with("node-name", Prop::Str(node.clone()))
                    .with("read-only", Prop::Bool(read_only)),
            );
        }
        DiskSource::None => {}
        other => {
            return Err(unsupported(
                name,
                format!(
                    "disk {} has a {} source ({}), which luavirt's QEMU driver cannot start yet; use a file or block device",
                    d.target,
                    d.disk_type,
                    other.display()
                ),
            ));
        }
    }
    let cdrom = d.device == "cdrom";
    let bus = d.bus.clone().unwrap_or_else(|| if d.target.starts_with("vd") { "virtio".into() } else { "ide".into() });
    let index = target_index(&d.target) as i64;
    let kind = |disk: &str, cd: &str| if cdrom { cd.to_string() } else { disk.to_string() };
    let (device, controller) = match (bus.as_str(), cdrom) {
        ("virtio", false) => (Props::new("virtio-blk-pci"), None),
        ("virtio", true) => {
            return Err(unsupported(
                name,
                format!(
                    "disk {} is a CD-ROM on the virtio bus, which QEMU does not offer; use bus='sata' or 'scsi'",
                    d.target
                ),
            ));
        }
        ("ide", _) if q35 => {
            (Props::new(&kind("ide-hd", "ide-cd")).with("bus", Prop::Str(format!("ide.{index}"))), None)
        }
        ("ide", _) => (
            Props::new(&kind("ide-hd", "ide-cd"))
                .with("bus", Prop::Str(format!("ide.{}", index / 2)))
                .with("unit", Prop::Int(index % 2)),
            None,
        ),
        ("sata", _) => {
            let bus_name = if q35 { "ide" } else { "sata0" };
            let ctl = (!q35).then(|| Props::new("ahci").with("id", Prop::Str("sata0".into())));
            (Props::new(&kind("ide-hd", "ide-cd")).with("bus", Prop::Str(format!("{bus_name}.{index}"))), ctl)
        }
        ("scsi", _) => (
            Props::new(&kind("scsi-hd", "scsi-cd"))
                .with("bus", Prop::Str("scsi0.0".into()))
                .with("scsi-id", Prop::Int(index)),
            Some(Props::new("virtio-scsi-pci").with("id", Prop::Str("scsi0".into()))),
        ),
        ("usb", false) => (
            Props::new("usb-storage").with("bus", Prop::Str("usb.0".into())),
            Some(Props::new("qemu-xhci").with("id", Prop::Str("usb".into()))),
        ),
        (other, _) => {
            warnings.push(format!("disk {} on bus '{other}' is not passed to QEMU yet", d.target));
            return Ok(None);
        }
    };
    let mut device = device;
    if !nodes.is_empty() {
        device = device.with("drive", Prop::Str(node));
    } else if !cdrom {
        return Err(unsupported(name, format!("disk {} has no source; only a CD-ROM may be empty", d.target)));
    }
    device = device.with("id", Prop::Str(d.target.clone()));
    if let Some(s) = &d.serial {
        device = device.with("serial", Prop::Str(s.clone()));
    }
    if let Some(b) = d.boot_order {
        device = device.with("bootindex", Prop::Int(b as i64));
    }
    if d.shareable {
        device = device.with("share-rw", Prop::Bool(true));
    }
    Ok(Some(DiskDevice { nodes, controller, device }))
}

fn disk_args(
    name: &str,
    d: &Disk,
    q35: bool,
    ctl: &mut Controllers,
    argv: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(), DriverError> {
    let Some(dev) = disk_device(name, d, q35, warnings)? else { return Ok(()) };
    for n in &dev.nodes {
        argv.push("-blockdev".into());
        argv.push(n.blockdev_arg());
    }
    if let Some(c) = &dev.controller {
        let added = match c.driver.as_str() {
            "ahci" => &mut ctl.sata,
            "virtio-scsi-pci" => &mut ctl.scsi,
            _ => &mut ctl.usb,
        };
        if !*added {
            argv.extend(["-device".into(), c.device_arg()]);
            *added = true;
        }
    }
    argv.push("-device".into());
    argv.push(dev.device.device_arg());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_indexes() {
        assert_eq!(target_index("vda"), 0);
        assert_eq!(target_index("hdb"), 1);
        assert_eq!(target_index("sdc"), 2);
        assert_eq!(target_index("sdaa"), 26);
    }

    #[test]
    fn builds_disks_as_named_blockdevs() {
        let xml = "<domain type='qemu'><name>t</name><memory unit='MiB'>64</memory>\
            <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
            <emulator>/bin/sh</emulator>\
            <disk type='file'><driver type='qcow2'/><source file='/i/a,b.qcow2'/><target dev='vda' bus='virtio'/><serial>X</serial><boot order='1'/></disk>\
            <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>\
            <disk type='block'><source dev='/dev/sdz'/><target dev='sda' bus='sata'/></disk>\
            <interface type='user'/></devices></domain>";
        let dom = DomainXml::parse(xml, None).unwrap();
        let plan = build(&dom).unwrap();
        let line = plan.argv.join(" ");
        assert!(
            line.starts_with("/bin/sh -name guest=t,debug-threads=on -machine pc,accel=tcg -m 64M -smp 1"),
            "{line}"
        );
        assert!(line.contains("-blockdev driver=file,filename=/i/a,,b.qcow2,node-name=lv-vda-file,read-only=off -blockdev driver=qcow2,file=lv-vda-file,node-name=lv-vda,read-only=off"), "{line}");
        assert!(line.contains("-device virtio-blk-pci,drive=lv-vda,id=vda,serial=X,bootindex=1"), "{line}");
        assert!(line.contains("-device ide-cd,bus=ide.1,unit=0,id=hdc"), "{line}");
        assert!(
            line.contains("-device ahci,id=sata0") && line.contains("driver=host_device,filename=/dev/sdz"),
            "{line}"
        );
        assert_eq!(plan.warnings, ["devices not passed to QEMU by luavirt yet: interface"]);
    }
}
