//! The sidecar file beside a `.vmx` (`<vm>.luavirt.xml`): luavirt's metadata that a `.vmx` has
//! no place for (today the disk sets), in a `<metadata>` element like the one the domain XML
//! shows it in. Written atomically; removed when it would be empty.
//!
//! Members are kept by device node (`scsi0:1`) as well as target: a target is a name luavirt
//! derives, and it can move to another device when the VMware client removes a disk (a SATA
//! disk may take a freed `sd` name), while the node is the device itself. So a disk that
//! leaves the VM leaves its sets, and no other disk inherits them.
//!
//! ```xml
//! <metadata>
//!   <luavirt:disksets xmlns:luavirt="https://luavirt.org/xmlns/disksets/1">
//!     <luavirt:set name="selected">
//!       <luavirt:disk node="scsi0:1" target="sdb"/>
//!     </luavirt:set>
//!   </luavirt:disksets>
//! </metadata>
//! ```

use crate::devices::Device;
use luavirt_plugin_api::domain::{DISKSETS_NS, DISKSETS_PREFIX, DiskSets, check_set_name};
use luavirt_plugin_api::fsutil::write_atomic;
use luavirt_plugin_api::xml::{Document, Element, namespace_of};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

const HEADER: &str = "<?xml version='1.0' encoding='UTF-8'?>\n<!-- luavirt's metadata for the .vmx beside this file: what a .vmx has no place for. Written by luavirt. -->\n";

fn corrupt(path: &Path, line: u32, message: &str) -> DriverError {
    DriverError::new(
        ErrorCode::CorruptState,
        format!(
            "{}:{line}: {message}; fix the file or remove it (it holds only luavirt's disk sets; nothing was changed)",
            path.display()
        ),
    )
}

/// The disk sets kept in the sidecar at `path` (none when it does not exist), by the current
/// targets of `devices`. Members whose device is gone are dropped.
pub fn read(path: &Path, devices: &[Device]) -> Result<DiskSets, DriverError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DiskSets::default()),
        Err(e) => return Err(DriverError::io("read", path, e)),
    };
    let doc = Document::parse(&text).map_err(|e| corrupt(path, e.line, &e.message))?;
    let root = &doc.root;
    if root.name() != "metadata" {
        return Err(corrupt(path, root.line(), &format!("the root element is <{}>, not <metadata>", root.name())));
    }
    let mut sets = DiskSets::default();
    let Some(el) = root.elements().find(|e| namespace_of(&[root, e], e.prefix()).as_deref() == Some(DISKSETS_NS))
    else {
        return Ok(sets);
    };
    for set in el.elements() {
        let name = set.attr("name").filter(|_| set.local_name() == "set").ok_or_else(|| {
            corrupt(path, set.line(), &format!("expected <{DISKSETS_PREFIX}:set name='...'>, found <{}>", set.name()))
        })?;
        check_set_name(&name).map_err(|m| corrupt(path, set.line(), &m))?;
        for disk in set.elements() {
            let target = match (disk.local_name(), disk.attr("node"), disk.attr("target")) {
                ("disk", Some(node), _) => {
                    devices.iter().find(|d| d.id().eq_ignore_ascii_case(&node)).map(|d| d.target.clone())
                }
                // Written by hand, without a node: the target is taken as it is.
                ("disk", None, Some(t)) => devices.iter().find(|d| d.target == t).map(|d| d.target.clone()),
                _ => {
                    return Err(corrupt(
                        path,
                        disk.line(),
                        &format!(
                            "set '{name}' holds <{}>; expected <{DISKSETS_PREFIX}:disk node='scsi0:0'/>",
                            disk.name()
                        ),
                    ));
                }
            };
            if let Some(t) = target {
                sets.add(&name, &t);
            }
        }
    }
    Ok(sets)
}

/// Stores `sets` (by target of `devices`) in the sidecar at `path`, atomically, unless it
/// already holds exactly that; removes the file when no set has members. Members of devices
/// that are gone are not written, so the sidecar forgets disks that left.
pub fn write(path: &Path, sets: &DiskSets, devices: &[Device]) -> Result<(), DriverError> {
    let mut root_el =
        Element::new(format!("{DISKSETS_PREFIX}:disksets")).with_attr(&format!("xmlns:{DISKSETS_PREFIX}"), DISKSETS_NS);
    for name in sets.names() {
        let set = root_el.push(Element::new(format!("{DISKSETS_PREFIX}:set")).with_attr("name", name));
        for t in sets.members(name) {
            if let Some(d) = devices.iter().find(|d| &d.target == t) {
                set.push(
                    Element::new(format!("{DISKSETS_PREFIX}:disk")).with_attr("node", &d.id()).with_attr("target", t),
                );
            }
        }
    }
    if root_el.elements().all(|s| s.elements().next().is_none()) {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::io("remove", path, e)),
            _ => Ok(()),
        };
    }
    let mut root = Element::new("metadata");
    root.insert_element(0, root_el, "", "  ");
    let text = format!("{HEADER}{}\n", root.to_xml());
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    write_atomic(path, text.as_bytes()).map_err(|e| DriverError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmx::VmxFile;

    fn devices(text: &str) -> Vec<Device> {
        crate::devices::read(&VmxFile::parse(text.as_bytes(), "t.vmx").unwrap()).unwrap()
    }

    #[test]
    fn sets_follow_devices_not_names() {
        let dir = std::env::temp_dir().join(format!("lv-vmx-sidecar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("web.luavirt.xml");
        let two = "scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"a.vmdk\"\nSATA0:0.present = \"TRUE\"\nsata0:0.fileName = \"b.vmdk\"\n";
        let devs = devices(two);
        assert_eq!(read(&p, &devs).unwrap(), DiskSets::default());
        let mut s = DiskSets::default();
        s.add("selected", "sda");
        s.add("migrate", "sdb");
        write(&p, &s, &devs).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.ends_with("<metadata>\n  <luavirt:disksets xmlns:luavirt='https://luavirt.org/xmlns/disksets/1'>\n    <luavirt:set name='migrate'>\n      <luavirt:disk node='sata0:0' target='sdb'/>\n    </luavirt:set>\n    <luavirt:set name='selected'>\n      <luavirt:disk node='scsi0:0' target='sda'/>\n    </luavirt:set>\n  </luavirt:disksets>\n</metadata>\n"),
            "{text}"
        );
        assert_eq!(read(&p, &devs).unwrap(), s);
        // scsi0:0 leaves: the SATA disk is now sda, and keeps its own set only.
        let one = devices(&two.replace("scsi0:0.present = \"TRUE\"", "scsi0:0.present = \"FALSE\""));
        let back = read(&p, &one).unwrap();
        assert_eq!((back.members("migrate"), back.members("selected")), (&["sda".to_string()][..], &[][..]));
        write(&p, &DiskSets::default(), &devs).unwrap();
        assert!(!p.exists());
        std::fs::write(&p, "<metadata><oops").unwrap();
        let e = read(&p, &devs).unwrap_err();
        assert!(e.message.starts_with(&format!("{}:1:", p.display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
