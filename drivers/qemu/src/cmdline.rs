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

fn disk_args(
    name: &str,
    d: &Disk,
    q35: bool,
    ctl: &mut Controllers,
    argv: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(), DriverError> {
    let node = node_name(&d.target);
    let read_only = if d.readonly || d.device == "cdrom" { "on" } else { "off" };
    let mut has_media = true;
    match &d.source {
        DiskSource::File(path) | DiskSource::Block(path) => {
            let protocol = if matches!(d.source, DiskSource::Block(_)) { "host_device" } else { "file" };
            argv.push("-blockdev".into());
            argv.push(format!("driver={protocol},filename={},node-name={node}-file,read-only={read_only}", opt(path)));
            argv.push("-blockdev".into());
            argv.push(format!(
                "driver={},file={node}-file,node-name={node},read-only={read_only}",
                opt(d.format_or_raw())
            ));
        }
        DiskSource::None => has_media = false,
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
    let index = target_index(&d.target);
    let mut dev = match (bus.as_str(), cdrom) {
        ("virtio", false) => "virtio-blk-pci".to_string(),
        ("virtio", true) => {
            return Err(unsupported(
                name,
                format!(
                    "disk {} is a CD-ROM on the virtio bus, which QEMU does not offer; use bus='sata' or 'scsi'",
                    d.target
                ),
            ));
        }
        ("ide", _) if q35 => format!("{},bus=ide.{index}", if cdrom { "ide-cd" } else { "ide-hd" }),
        ("ide", _) => format!("{},bus=ide.{},unit={}", if cdrom { "ide-cd" } else { "ide-hd" }, index / 2, index % 2),
        ("sata", _) => {
            if !ctl.sata && !q35 {
                argv.extend(["-device".into(), "ahci,id=sata0".into()]);
            }
            ctl.sata = true;
            let bus_name = if q35 { "ide" } else { "sata0" };
            format!("{},bus={bus_name}.{index}", if cdrom { "ide-cd" } else { "ide-hd" })
        }
        ("scsi", _) => {
            if !ctl.scsi {
                argv.extend(["-device".into(), "virtio-scsi-pci,id=scsi0".into()]);
                ctl.scsi = true;
            }
            format!("{},bus=scsi0.0,scsi-id={index}", if cdrom { "scsi-cd" } else { "scsi-hd" })
        }
        ("usb", false) => {
            if !ctl.usb {
                argv.extend(["-device".into(), "qemu-xhci,id=usb".into()]);
                ctl.usb = true;
            }
            "usb-storage,bus=usb.0".to_string()
        }
        (other, _) => {
            warnings.push(format!("disk {} on bus '{other}' is not passed to QEMU yet", d.target));
            return Ok(());
        }
    };
    if has_media {
        dev.push_str(&format!(",drive={node}"));
    } else if !cdrom {
        return Err(unsupported(name, format!("disk {} has no source; only a CD-ROM may be empty", d.target)));
    }
    dev.push_str(&format!(",id={}", opt(&d.target)));
    if let Some(s) = &d.serial {
        dev.push_str(&format!(",serial={}", opt(s)));
    }
    if let Some(b) = d.boot_order {
        dev.push_str(&format!(",bootindex={b}"));
    }
    if d.shareable {
        dev.push_str(",share-rw=on");
    }
    argv.push("-device".into());
    argv.push(dev);
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
