//! The domain XML an xl config is shown as, by libvirt's conventions for Xen (its xl-to-XML
//! conversion, `src/libxl/xen_xl.c`): `<domain type='xen'>`, memory and vCPUs, the guest
//! type as `xenfv`/`xenpv`/`xenpvh`, and each disk with
//!
//! - `device='cdrom'` for CD-ROM drives (then driver `qemu`, read-only),
//! - type and driver by the backend: `block` + `phy` for `backendtype=phy`, `file` + `tap`
//!   for `tap`, else `file` + `qemu`; `network` for an `rbd:` target,
//! - `<driver type>` the format, `<target bus>` `xen` for `xvd*` (and every disk of a PV or
//!   PVH guest), `scsi` for `sd*`, else `ide`, with libvirt's drive addresses,
//! - `<readonly/>` when read-only.
//!
//! luavirt adds what its sidecar keeps: disk modes (`snapshot=` and `<transient/>` on the
//! disk) and disk sets (in `<metadata>`). Other devices stay in the config, unshown.

use crate::diskspec::vdev::{self, Kind};
use crate::diskspec::{Backend, Disk, Format};
use crate::dom::{Dom, GuestType};
use crate::sidecar::Sidecar;
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::xml::{escape_attr, escape_text};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::fmt::Write;

fn attr(v: &str) -> String {
    escape_attr(v, '\'')
}

/// Text content, with characters XML cannot carry as U+FFFD.
fn text(v: &str) -> String {
    let kept: String =
        v.chars().map(|c| if c.is_control() && !matches!(c, '\t' | '\n') { '\u{FFFD}' } else { c }).collect();
    escape_text(&kept)
}

/// Builds the domain XML of `dom` with what `sidecar` keeps.
pub fn build(dom: &Dom, sidecar: &Sidecar) -> Result<DomainXml, DriverError> {
    let name = dom.name().unwrap_or_default();
    let mut x = String::from("<domain type='xen'>\n");
    let _ = writeln!(x, "  <name>{}</name>", text(&name));
    if let Some(u) = dom.uuid()? {
        let _ = writeln!(x, "  <uuid>{u}</uuid>");
    }
    let mut sets = sidecar.sets.clone();
    let targets: Vec<String> = dom.disks.iter().map(|d| d.target().to_string()).collect();
    sets.keep_only(&targets);
    if let Some(mut e) = sets.to_element() {
        e.indent_children("    ", "  ");
        let _ = writeln!(x, "  <metadata>\n    {}\n  </metadata>", e.to_xml());
    }
    // xl counts memory in MiB; libvirt's default when unset is 128 MiB.
    let memory = dom.number("memory")?.unwrap_or(128);
    let maxmem = dom.number("maxmem")?.unwrap_or(memory).max(memory);
    let _ = writeln!(x, "  <memory unit='KiB'>{}</memory>", maxmem * 1024);
    let _ = writeln!(x, "  <currentMemory unit='KiB'>{}</currentMemory>", memory * 1024);
    let vcpus = dom.number("vcpus")?.unwrap_or(1);
    let maxvcpus = dom.number("maxvcpus")?.unwrap_or(vcpus).max(vcpus);
    if maxvcpus == vcpus {
        let _ = writeln!(x, "  <vcpu placement='static'>{vcpus}</vcpu>");
    } else {
        let _ = writeln!(x, "  <vcpu placement='static' current='{vcpus}'>{maxvcpus}</vcpu>");
    }
    let guest = dom.guest_type()?;
    if let Some(b) = dom.get("bootloader")? {
        let _ = writeln!(x, "  <bootloader>{}</bootloader>", text(&b));
    }
    x.push_str("  <os>\n");
    x.push_str(match guest {
        GuestType::Hvm => "    <type arch='x86_64' machine='xenfv'>hvm</type>\n",
        GuestType::Pv => "    <type arch='x86_64' machine='xenpv'>linux</type>\n",
        GuestType::Pvh => "    <type arch='x86_64' machine='xenpvh'>xenpvh</type>\n",
    });
    for (key, element) in [("kernel", "kernel"), ("ramdisk", "initrd")] {
        if let Some(v) = dom.get(key)? {
            let _ = writeln!(x, "    <{element}>{}</{element}>", text(&v));
        }
    }
    if let Some(c) = cmdline(dom)? {
        let _ = writeln!(x, "    <cmdline>{}</cmdline>", text(&c));
    }
    if guest == GuestType::Hvm {
        for c in dom.get("boot")?.unwrap_or_default().chars() {
            let dev = match c {
                'a' => "fd",
                'c' => "hd",
                'd' => "cdrom",
                'n' => "network",
                _ => continue,
            };
            let _ = writeln!(x, "    <boot dev='{dev}'/>");
        }
    }
    x.push_str("  </os>\n");
    for (key, default) in [("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "restart")] {
        let v = dom.get(key)?.unwrap_or_else(|| default.to_string());
        let _ = writeln!(x, "  <{key}>{}</{key}>", text(&v));
    }
    x.push_str("  <devices>\n");
    for d in &dom.disks {
        disk(&mut x, &d.spec.disk, guest, sidecar);
    }
    x.push_str("  </devices>\n</domain>\n");
    DomainXml::parse(&x, None).map_err(|e| {
        DriverError::new(
            ErrorCode::Internal,
            format!("The domain XML made from {} does not parse ({e}); please report this", dom.path.display()),
        )
    })
}

/// The kernel command line: `cmdline`, else `root` and `extra` as xl joins them.
fn cmdline(dom: &Dom) -> Result<Option<String>, DriverError> {
    if let Some(c) = dom.get("cmdline")? {
        return Ok(Some(c));
    }
    let root = dom.get("root")?.map(|r| format!("root={r}"));
    let parts: Vec<String> = root.into_iter().chain(dom.get("extra")?).collect();
    Ok((!parts.is_empty()).then(|| parts.join(" ")))
}

/// The bus libvirt gives a disk.
pub fn bus(vdev: &str, guest: GuestType) -> &'static str {
    if vdev.starts_with("xvd") || guest != GuestType::Hvm {
        "xen"
    } else if vdev.starts_with("sd") {
        "scsi"
    } else {
        "ide"
    }
}

/// A monitor of an rbd source: its host and port.
type Host = (String, Option<String>);

/// `rbd:POOL/IMAGE[:opt=value...]`: the image's name and its monitors (`mon_host`, `\:` and
/// `\;` escaped as libvirt writes them).
fn rbd(target: &str) -> Option<(String, Vec<Host>)> {
    let rest = target.strip_prefix("rbd:")?;
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next().map(|n| {
                if n == ':' {
                    '\u{1}'
                } else if n == ';' {
                    '\u{2}'
                } else {
                    n
                }
            })),
            ':' => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    let name = parts.first()?.clone();
    let hosts = parts
        .iter()
        .find_map(|p| p.strip_prefix("mon_host="))
        .map(|m| {
            m.split('\u{2}')
                .map(|h| match h.split_once('\u{1}') {
                    Some((host, port)) => (host.to_string(), Some(port.to_string())),
                    None => (h.to_string(), None),
                })
                .collect()
        })
        .unwrap_or_default();
    Some((name, hosts))
}

/// Appends one `<disk>`.
fn disk(x: &mut String, d: &Disk, guest: GuestType, sidecar: &Sidecar) {
    let target = d.target.as_deref().filter(|t| !t.is_empty());
    let network = target.and_then(rbd);
    let (kind, driver) = if d.cdrom {
        ("file", "qemu")
    } else if network.is_some() {
        ("network", "qemu")
    } else {
        match d.backendtype {
            Some(Backend::Phy) => ("block", "phy"),
            Some(Backend::Tap) => ("file", "tap"),
            Some(Backend::Standalone) => ("file", "standalone"),
            _ => ("file", "qemu"),
        }
    };
    let mode = sidecar.mode(&d.vdev);
    let snapshot = mode.snapshot.as_deref().map(|s| format!(" snapshot='{}'", attr(s))).unwrap_or_default();
    let device = if d.cdrom { "cdrom" } else { "disk" };
    let _ = writeln!(x, "    <disk type='{kind}' device='{device}'{snapshot}>");
    if d.format == Format::Empty || (d.cdrom && target.is_none()) {
        let _ = writeln!(x, "      <driver name='{driver}'/>");
    } else {
        let _ = writeln!(x, "      <driver name='{driver}' type='{}'/>", d.format.name());
    }
    match (&network, target) {
        (Some((name, hosts)), _) => {
            if hosts.is_empty() {
                let _ = writeln!(x, "      <source protocol='rbd' name='{}'/>", attr(name));
            } else {
                let _ = writeln!(x, "      <source protocol='rbd' name='{}'>", attr(name));
                for (h, port) in hosts {
                    let port = port.as_deref().map(|p| format!(" port='{}'", attr(p))).unwrap_or_default();
                    let _ = writeln!(x, "        <host name='{}'{port}/>", attr(h));
                }
                x.push_str("      </source>\n");
            }
        }
        (None, Some(t)) => {
            let a = if kind == "block" { "dev" } else { "file" };
            let _ = writeln!(x, "      <source {a}='{}'/>", attr(t));
        }
        (None, None) => {}
    }
    let bus = bus(&d.vdev, guest);
    let _ = writeln!(x, "      <target dev='{}' bus='{bus}'/>", attr(&d.vdev));
    if !d.readwrite {
        x.push_str("      <readonly/>\n");
    }
    if mode.transient {
        x.push_str("      <transient/>\n");
    }
    // libvirt's drive addresses: two units per IDE bus, seven per SCSI controller.
    if let Ok(v) = vdev::parse(&d.vdev).map_err(drop)
        && v.partition == 0
    {
        let (controller, bus_no, unit) = match (v.kind, bus) {
            (Kind::Ide, "ide") => (0, v.disk / 2, v.disk % 2),
            (Kind::Scsi, "scsi") => (v.disk / 7, 0, v.disk % 7),
            _ => {
                x.push_str("    </disk>\n");
                return;
            }
        };
        let _ = writeln!(
            x,
            "      <address type='drive' controller='{controller}' bus='{bus_no}' target='0' unit='{unit}'/>"
        );
    }
    x.push_str("    </disk>\n");
}
