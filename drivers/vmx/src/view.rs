//! The domain XML a `.vmx` is shown as: `<domain type='vmware'>` with its name, UUID,
//! annotation, memory, vCPUs and disks, in libvirt's form, plus luavirt's metadata (disk sets
//! from the sidecar, and the old ESX disk modes libvirt has no form for).
//!
//! Disk modes map as DESIGN.md says: `independent-persistent` is `snapshot='no'`,
//! `independent-nonpersistent` is `snapshot='no'` with `<transient/>`. The old redo-log modes,
//! which ESX never snapshots either, show the same way (`nonpersistent` like
//! independent-nonpersistent, `undoable` like independent-persistent) and are named in the
//! `DISKMODES_NS` metadata, so they read back as themselves. A mode luavirt does not know
//! (`append`) shows as `snapshot='no'` and `mode='unknown'` there, with the `.vmx` value.

use crate::datastore::Datastores;
use crate::devices::{Bus, Device, Medium};
use crate::vm::{Vm, vmx_error};
use luavirt_plugin_api::domain::{DISKMODES_NS, DiskMode, DiskSets, DomainXml};
use luavirt_plugin_api::xml::{Element, escape_attr, escape_text};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::fmt::Write;

/// The prefix the view writes for [`DISKMODES_NS`].
const MODES_PREFIX: &str = "lvmode";
const UNIT: &str = "  ";

/// A number from the `.vmx`, or an error naming its line.
fn number(vm: &Vm, key: &str, default: u64) -> Result<u64, DriverError> {
    match vm.vmx.entry(key) {
        None => Ok(default),
        Some(e) => {
            e.value.trim().parse().map_err(|_| {
                vmx_error(vm.vmx.error(e.line, format!("{} is \"{}\", not a whole number", e.key, e.value)))
            })
        }
    }
}

/// Text content: escaped, with a carriage return as a reference (parsers would turn a raw one
/// into a newline) and control characters XML 1.0 cannot carry as U+FFFD.
fn text(v: &str) -> String {
    let kept: String =
        v.chars().map(|c| if c.is_control() && !matches!(c, '\t' | '\n' | '\r') { '\u{FFFD}' } else { c }).collect();
    escape_text(&kept).replace('\r', "&#13;")
}

fn attr(v: &str) -> String {
    escape_attr(v, '\'')
}

/// An element built in memory, written indented at `indent`.
fn indented(mut e: Element, indent: &str) -> String {
    e.indent_children(indent, UNIT);
    e.to_xml()
}

/// Builds the domain XML of `vm`, whose devices are `devices`, with the disk sets `sets`.
pub fn build(vm: &Vm, devices: &[Device], ds: &Datastores, sets: &DiskSets) -> Result<DomainXml, DriverError> {
    let mut x = String::from("<domain type='vmware'>\n");
    let _ = writeln!(x, "  <name>{}</name>", text(&vm.name()));
    if let Some(u) = vm.uuid().map_err(vmx_error)? {
        let _ = writeln!(x, "  <uuid>{u}</uuid>");
    }
    if let Some(a) = vm.vmx.get("annotation").filter(|a| !a.is_empty()) {
        let _ = writeln!(x, "  <description>{}</description>", text(a));
    }
    let metadata = metadata(devices, sets);
    if !metadata.is_empty() {
        let _ = writeln!(x, "  <metadata>\n{metadata}  </metadata>");
    }
    let memory = number(vm, "memsize", 32)?;
    let vcpus = number(vm, "numvcpus", 1)?;
    let _ = writeln!(x, "  <memory unit='KiB'>{}</memory>", memory * 1024);
    let _ = writeln!(x, "  <vcpu placement='static'>{vcpus}</vcpu>");
    let guest = vm.vmx.get("guestOS").unwrap_or("").to_ascii_lowercase();
    let arch = if guest.starts_with("arm-") {
        "aarch64"
    } else if guest.ends_with("-64") {
        "x86_64"
    } else {
        "i686"
    };
    let _ = writeln!(x, "  <os>\n    <type arch='{arch}'>hvm</type>\n  </os>");
    x.push_str("  <devices>\n");
    for d in devices {
        disk(&mut x, vm, d, ds);
    }
    x.push_str("  </devices>\n</domain>\n");
    DomainXml::parse(&x, None).map_err(|e| {
        DriverError::new(
            ErrorCode::Internal,
            format!("The domain XML made from {} does not parse ({e}); please report this", vm.path.display()),
        )
    })
}

/// luavirt's metadata elements, each on its own lines at four spaces.
fn metadata(devices: &[Device], sets: &DiskSets) -> String {
    let mut out = String::new();
    let mut sets = sets.clone();
    let targets: Vec<String> = devices.iter().map(|d| d.target.clone()).collect();
    sets.keep_only(&targets);
    if let Some(e) = sets.to_element() {
        let _ = writeln!(out, "    {}", indented(e, "    "));
    }
    let legacy: Vec<&Device> = devices
        .iter()
        .filter(|d| matches!(d.mode, DiskMode::Nonpersistent | DiskMode::Undoable | DiskMode::Unknown))
        .collect();
    if !legacy.is_empty() {
        let mut e =
            Element::new(format!("{MODES_PREFIX}:diskmodes")).with_attr(&format!("xmlns:{MODES_PREFIX}"), DISKMODES_NS);
        for d in legacy {
            e.push(mode_entry(d));
        }
        let _ = writeln!(out, "    {}", indented(e, "    "));
    }
    out
}

/// The metadata entry of a disk whose mode libvirt cannot express: `mode='undoable'`, or
/// `mode='unknown' text='append'` with the `.vmx` value (control characters, which XML cannot
/// carry, as U+FFFD), so the user sees what the file says.
fn mode_entry(d: &Device) -> Element {
    let e =
        Element::new(format!("{MODES_PREFIX}:disk")).with_attr("target", &d.target).with_attr("mode", d.mode.name());
    match (d.mode, &d.mode_text) {
        (DiskMode::Unknown, Some(t)) => {
            e.with_attr("text", &t.chars().map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect::<String>())
        }
        _ => e,
    }
}

/// Appends one `<disk>`.
fn disk(x: &mut String, vm: &Vm, d: &Device, ds: &Datastores) {
    let (kind, device, source) = match &d.medium {
        Medium::Disk(f) => ("file", "disk", Some(format!("file='{}'", attr(&ds.display(vm.dir(), f))))),
        Medium::CdromImage(f) => ("file", "cdrom", Some(format!("file='{}'", attr(&ds.display(vm.dir(), f))))),
        Medium::CdromEmpty => ("file", "cdrom", None),
        Medium::CdromHost(dev) => ("block", "cdrom", dev.as_ref().map(|p| format!("dev='{}'", attr(p)))),
        Medium::Passthrough(dev) => ("block", "lun", dev.as_ref().map(|p| format!("dev='{}'", attr(p)))),
    };
    // Only persistent disks take part in ESX snapshots; every other mode is snapshot='no'.
    let snapshot = if d.mode == DiskMode::Persistent { "" } else { " snapshot='no'" };
    let _ = writeln!(x, "    <disk type='{kind}' device='{device}'{snapshot}>");
    if let Medium::Disk(f) = &d.medium
        && f.to_ascii_lowercase().ends_with(".vmdk")
    {
        x.push_str("      <driver type='vmdk'/>\n");
    }
    if let Some(s) = source {
        let _ = writeln!(x, "      <source {s}/>");
    }
    let _ = writeln!(x, "      <target dev='{}' bus='{}'/>", d.target, d.bus.name());
    if !d.is_disk() {
        x.push_str("      <readonly/>\n");
    }
    // An unknown mode says nothing about persistence: no <transient/> for it.
    if !d.mode.persistent() && d.mode != DiskMode::Unknown {
        x.push_str("      <transient/>\n");
    }
    let (controller, bus) = match d.bus {
        Bus::Ide => (0, d.controller),
        _ => (d.controller, 0),
    };
    let _ =
        writeln!(x, "      <address type='drive' controller='{controller}' bus='{bus}' target='0' unit='{}'/>", d.unit);
    x.push_str("    </disk>\n");
}
