//! Adding and removing one disk of a domain: a standalone `<disk>` element (what
//! `attach-disk` builds, what a driver receives in `domain_attach_disk`) checked on its own,
//! then placed after the domain's last disk the way its siblings are formatted; a disk
//! removed takes its disk set memberships with it.

use super::{Disk, DomainXml};
use crate::xml::{Document, Element, XmlError};

/// One `<disk>` element, read on its own and checked: it has a target.
#[derive(Clone, Debug)]
pub struct DiskElement {
    /// The element, as written.
    pub element: Element,
    /// Its typed view.
    pub disk: Disk,
}

impl DiskElement {
    /// Parses `<disk ...>...</disk>`.
    pub fn parse(text: &str) -> Result<DiskElement, XmlError> {
        let doc = Document::parse_with_depth(text, super::MAX_DEPTH)?;
        let root = doc.root;
        let at = |e: &Element, message: String| XmlError {
            source_name: None,
            line: e.line().max(1),
            column: e.column().max(1),
            message,
        };
        if root.name() != "disk" {
            return Err(at(&root, format!("the root element is <{}>; a disk is one <disk> element", root.name())));
        }
        let disk = Disk::from_element(&root);
        if disk.target.is_empty() {
            return Err(at(&root, "the <disk> has no <target dev='...'/>; give it a target name like vdb".to_string()));
        }
        Ok(DiskElement { element: root, disk })
    }
}

impl DomainXml {
    /// Adds `disk` after the domain's last disk (or first in `<devices>`, after an
    /// `<emulator>`), formatted like its siblings. Refuses a target the domain has.
    pub fn add_disk(&mut self, disk: &DiskElement) -> Result<(), String> {
        let target = &disk.disk.target;
        if self.disk(target).is_some() {
            return Err(format!("Domain '{}' already has a disk {target}", self.name()));
        }
        let unit = self.doc.indent_unit();
        let root = &mut self.doc.root;
        if root.child("devices").is_none() {
            let at = root.elements().count();
            root.insert_element(at, Element::new("devices"), "", &unit);
        }
        let devices = root.child_mut("devices").expect("added above");
        let names: Vec<String> = devices.elements().map(|e| e.name().to_string()).collect();
        let at = match names.iter().rposition(|n| n == "disk") {
            Some(last) => last + 1,
            None => names.iter().position(|n| n == "emulator").map_or(0, |e| e + 1),
        };
        devices.insert_element(at, disk.element.clone(), &unit, &unit);
        Ok(())
    }

    /// Removes disk `target`, and its memberships in the domain's disk sets. Returns the
    /// element removed and the `(set, disk)` memberships dropped; `None` when there is no
    /// such disk.
    pub fn remove_disk(&mut self, target: &str) -> Option<(Element, Vec<(String, String)>)> {
        let devices = self.doc.root.child_mut("devices")?;
        let n = devices.position(|e| {
            e.name() == "disk" && e.child("target").and_then(|t| t.attr("dev")).as_deref() == Some(target)
        })?;
        let removed = devices.remove_element(n)?;
        let left = self.prune_disk_sets();
        Some((removed, left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOM: &str = "<domain type='qemu'>\n  <name>d</name>\n  <metadata>\n    <lv:disksets xmlns:lv='https://luavirt.org/xmlns/disksets/1'>\n      <lv:set name='selected'>\n        <lv:disk target='vdb'/>\n      </lv:set>\n    </lv:disksets>\n  </metadata>\n  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n    <disk type='file' device='disk'>\n      <source file='/i/a'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n    <disk type='file' device='disk'>\n      <source file='/i/b'/>\n      <target dev='vdb' bus='virtio'/>\n    </disk>\n    <interface type='user'/>\n  </devices>\n</domain>\n";

    #[test]
    fn a_disk_goes_after_the_last_disk_and_leaves_with_its_sets() {
        let mut dom = DomainXml::parse(DOM, None).unwrap();
        let new = DiskElement::parse("<disk type='file'><driver name='qemu' type='qcow2'/><source file='/i/c'/><target dev='vdc' bus='virtio'/></disk>").unwrap();
        assert_eq!(new.disk.format.as_deref(), Some("qcow2"));
        dom.add_disk(&new).unwrap();
        let text = dom.to_xml();
        assert!(text.contains("    </disk>\n    <disk type='file'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='/i/c'/>\n      <target dev='vdc' bus='virtio'/>\n    </disk>\n    <interface"), "{text}");
        assert!(DomainXml::parse(&text, None).is_ok());
        assert!(dom.add_disk(&new).unwrap_err().contains("already has a disk vdc"));
        let (_, left) = dom.remove_disk("vdc").unwrap();
        assert!(left.is_empty());
        assert_eq!(dom.to_xml(), DOM);
        let (_, left) = dom.remove_disk("vdb").unwrap();
        assert_eq!(left, vec![("selected".to_string(), "vdb".to_string())]);
        assert!(!dom.to_xml().contains("vdb"));
        assert!(dom.remove_disk("vdz").is_none());
    }

    #[test]
    fn a_first_disk_follows_the_emulator_and_bad_disks_are_refused() {
        let mut dom = DomainXml::parse("<domain type='qemu'><name>e</name></domain>", None).unwrap();
        dom.add_disk(&DiskElement::parse("<disk><target dev='vda'/></disk>").unwrap()).unwrap();
        assert_eq!(dom.disks().len(), 1);
        assert!(DiskElement::parse("<disk><source file='/x'/></disk>").unwrap_err().to_string().contains("no <target"));
        assert!(DiskElement::parse("<interface/>").unwrap_err().to_string().contains("one <disk> element"));
    }
}
