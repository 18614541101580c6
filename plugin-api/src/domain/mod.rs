//! libvirt domain XML, kept losslessly, with a typed view of what luavirt works on: the
//! domain's name and UUID, its disks, and its disk sets.
//!
//! A [`DomainXml`] is checked when parsed (root element, name, UUID, one target per disk and no
//! target twice, disk set metadata), so every holder of one can rely on those rules.

mod devices;
mod disk;
mod disksets;
mod memo;
mod mode;

pub use devices::DiskElement;
pub use disk::{Disk, DiskSource};
pub use disksets::{DEFAULT_SET, DISKSETS_NS, DISKSETS_PREFIX, DiskSets, check_set_name};
pub use memo::ParseMemo;
pub use mode::{DISKMODES_NS, DiskMode};

use crate::xml::{Document, Element, Node, XmlError, namespace_of};

/// A domain's XML document.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainXml {
    doc: Document,
}

/// The largest domain XML luavirt reads, in bytes: virsh's limit for an XML file (10 MiB).
pub const MAX_SIZE: usize = 10 << 20;

/// How deep domain XML may nest elements: libxml2's default limit, so libvirt reads no deeper.
/// (Stored snapshot metadata nests a domain two levels further, within [`crate::xml::MAX_DEPTH`].)
pub const MAX_DEPTH: usize = 256;

/// Elements after which luavirt places a new `<uuid>` or `<metadata>`, as libvirt orders them.
const HEADER_ELEMENTS: &[&str] = &["name", "uuid", "genid", "title", "description"];

impl DomainXml {
    /// Parses and checks domain XML. `source_name` (a file name) goes into error messages.
    pub fn parse(text: &str, source_name: Option<&str>) -> Result<DomainXml, XmlError> {
        let name_it = |e: XmlError| match source_name {
            Some(n) => e.with_source(n),
            None => e,
        };
        if text.len() > MAX_SIZE {
            return Err(name_it(too_big(text)));
        }
        let doc = Document::parse_with_depth(text, MAX_DEPTH).map_err(name_it)?;
        let dom = DomainXml { doc };
        dom.check().map_err(name_it)?;
        Ok(dom)
    }

    fn error_at(e: &Element, message: String) -> XmlError {
        XmlError { source_name: None, line: e.line().max(1), column: e.column().max(1), message }
    }

    fn check(&self) -> Result<(), XmlError> {
        let root = &self.doc.root;
        if root.name() != "domain" {
            return Err(Self::error_at(
                root,
                format!("the root element is <{}>; domain XML starts with <domain type='...'>", root.name()),
            ));
        }
        let name_el = root
            .child("name")
            .ok_or_else(|| Self::error_at(root, "the domain has no <name>; add <name>NAME</name>".to_string()))?;
        check_domain_name(&name_el.text()).map_err(|m| Self::error_at(name_el, m))?;
        if let Some(u) = root.child("uuid") {
            normalize_uuid(&u.text()).ok_or_else(|| {
                Self::error_at(
                    u,
                    format!(
                        "invalid <uuid> {:?}; write 32 hex digits like 4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
                        u.text()
                    ),
                )
            })?;
        }
        // Target -> line of its disk; a map keeps this linear in the number of disks.
        let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        for el in self.disk_elements() {
            let disk = Disk::from_element(el);
            if disk.target.is_empty() {
                return Err(Self::error_at(
                    el,
                    "a <disk> has no <target dev='...'/>; every disk needs a target name like vda".to_string(),
                ));
            }
            if let Some(line) = seen.get(&disk.target) {
                return Err(Self::error_at(
                    el,
                    format!(
                        "disk target '{}' is used twice (lines {line} and {}); give each disk its own <target dev>",
                        disk.target,
                        el.line()
                    ),
                ));
            }
            if let Some(v) = el.attr("selected").filter(|v| v != "yes" && v != "no") {
                return Err(Self::error_at(
                    el,
                    format!("disk '{}' has selected={v:?}; use 'yes' or 'no'", disk.target),
                ));
            }
            seen.insert(disk.target, el.line());
        }
        if let Some(e) = self.disksets_element() {
            DiskSets::from_element(e).map_err(|(line, m)| XmlError {
                source_name: None,
                line,
                column: 1,
                message: m,
            })?;
        }
        Ok(())
    }

    /// The document.
    pub fn document(&self) -> &Document {
        &self.doc
    }

    /// The document, for changes. Changes that break the checks of [`DomainXml::parse`] are
    /// the caller's to avoid.
    pub fn document_mut(&mut self) -> &mut Document {
        &mut self.doc
    }

    /// Writes the XML back.
    pub fn to_xml(&self) -> String {
        self.doc.to_xml()
    }

    /// `<name>`.
    pub fn name(&self) -> String {
        self.doc.root.child("name").map(|e| e.text()).unwrap_or_default()
    }

    /// `<uuid>`, normalized to lower case with dashes.
    pub fn uuid(&self) -> Option<String> {
        self.doc.root.child("uuid").and_then(|u| normalize_uuid(&u.text()))
    }

    /// `type=` of `<domain>`: kvm, qemu, xen, ...
    pub fn domain_type(&self) -> Option<String> {
        self.doc.root.attr("type")
    }

    /// Sets `<uuid>`, adding it after `<name>` when absent.
    pub fn set_uuid(&mut self, uuid: &str) {
        if let Some(u) = self.doc.root.child_mut("uuid") {
            u.set_text(uuid);
            return;
        }
        let mut el = Element::new("uuid");
        el.set_text(uuid);
        let root = &self.doc.root;
        let pos = root.position(|e| e.name() == "name").map_or(0, |i| i + 1);
        let unit = self.doc.indent_unit();
        self.doc.root.insert_element(pos, el, "", &unit);
    }

    fn disk_elements(&self) -> impl Iterator<Item = &Element> {
        self.doc.root.child("devices").into_iter().flat_map(|d| d.children_named("disk"))
    }

    /// Every disk, in document order.
    pub fn disks(&self) -> Vec<Disk> {
        self.disk_elements().map(Disk::from_element).collect()
    }

    /// The disk whose target is `target`.
    pub fn disk(&self, target: &str) -> Option<Disk> {
        self.disks().into_iter().find(|d| d.target == target)
    }

    /// The `<disk>` element whose target is `target`, for changes.
    pub fn disk_element_mut(&mut self, target: &str) -> Option<&mut Element> {
        self.doc
            .root
            .child_mut("devices")?
            .elements_mut()
            .filter(|e| e.name() == "disk")
            .find(|e| e.child("target").and_then(|t| t.attr("dev")).as_deref() == Some(target))
    }

    /// Points disk `target` at image `file` of `format` (a snapshot overlay, a copy), keeping
    /// everything else of the disk as it is. A block or network source becomes a file source.
    pub fn set_disk_source(&mut self, target: &str, file: &str, format: &str) -> Result<(), String> {
        let unit = self.doc.indent_unit();
        let el = self.disk_element_mut(target).ok_or_else(|| format!("No disk '{target}'"))?;
        if el.attr("type").as_deref() != Some("file") {
            el.set_attr("type", "file");
        }
        match el.position(|e| e.name() == "source") {
            Some(i) if el.elements().nth(i).is_some_and(|s| s.attr("file").is_some()) => {
                el.elements_mut().nth(i).expect("position is valid").set_attr("file", file);
            }
            Some(i) => {
                el.remove_element(i);
                el.insert_element(i, Element::new("source").with_attr("file", file), &unit, &unit);
            }
            None => el.insert_element(0, Element::new("source").with_attr("file", file), &unit, &unit),
        }
        match el.child_mut("driver") {
            Some(d) => {
                if d.attr("type").as_deref() != Some(format) {
                    d.set_attr("type", format);
                }
            }
            None => el.insert_element(
                0,
                Element::new("driver").with_attr("name", "qemu").with_attr("type", format),
                &unit,
                &unit,
            ),
        }
        Ok(())
    }

    /// The metadata element of namespace `ns`, if any.
    pub fn metadata_element(&self, ns: &str) -> Option<&Element> {
        let root = &self.doc.root;
        let meta = root.child("metadata")?;
        meta.elements().find(|e| namespace_of(&[root, meta, e], e.prefix()).as_deref() == Some(ns))
    }

    fn disksets_element(&self) -> Option<&Element> {
        self.metadata_element(DISKSETS_NS)
    }

    /// The disk sets: those in luavirt's metadata, plus disks seeded with `selected='yes'`.
    pub fn disk_sets(&self) -> DiskSets {
        let mut sets = self.disksets_element().and_then(|e| DiskSets::from_element(e).ok()).unwrap_or_default();
        let disks = self.disks();
        for d in &disks {
            if d.selected == Some(true) {
                sets.add(DEFAULT_SET, &d.target);
            }
        }
        let targets: Vec<String> = disks.into_iter().map(|d| d.target).collect();
        sets.keep_only(&targets);
        sets
    }

    /// Drops disk set memberships of disks that are not in the domain (from luavirt's metadata
    /// only; seed attributes sit on the disks themselves). Returns the `(set, disk)` pairs
    /// dropped; the XML changes only if there were any.
    pub fn prune_disk_sets(&mut self) -> Vec<(String, String)> {
        let Some(mut sets) = self.disksets_element().and_then(|e| DiskSets::from_element(e).ok()) else {
            return Vec::new();
        };
        let targets: Vec<String> = self.disks().into_iter().map(|d| d.target).collect();
        let dropped = sets.keep_only(&targets);
        if !dropped.is_empty() {
            self.set_metadata_element(DISKSETS_NS, sets.to_element());
        }
        dropped
    }

    /// Whether the document says anything of disk sets (luavirt's metadata element, or seed
    /// attributes on disks).
    pub fn has_disk_sets_metadata(&self) -> bool {
        self.disksets_element().is_some() || self.has_seed_attributes()
    }

    /// Whether any disk carries the seed attribute `selected=`.
    pub fn has_seed_attributes(&self) -> bool {
        self.disks().iter().any(|d| d.selected.is_some())
    }

    /// Stores `sets` in luavirt's metadata element. Seed attributes (`selected='yes'`) move
    /// into it, so the XML stays valid for libvirt's schema. Nothing else changes.
    pub fn set_disk_sets(&mut self, sets: &DiskSets) {
        if let Some(devices) = self.doc.root.child_mut("devices") {
            for disk in devices.elements_mut().filter(|e| e.name() == "disk") {
                disk.remove_attr("selected");
            }
        }
        self.set_metadata_element(DISKSETS_NS, sets.to_element());
    }

    /// Replaces (or adds, or with `None` removes) the metadata element of namespace `ns`,
    /// keeping its place and the document's indentation.
    pub fn set_metadata_element(&mut self, ns: &str, new: Option<Element>) {
        let existing = self.metadata_element(ns);
        if let (Some(old), Some(new)) = (existing, &new)
            && old.same_content(new)
        {
            return;
        }
        let unit = self.doc.indent_unit();
        let root = &mut self.doc.root;
        let meta_pos = match root.position(|e| e.name() == "metadata") {
            Some(p) => p,
            None if new.is_none() => return,
            None => {
                let pos = root
                    .elements()
                    .enumerate()
                    .filter(|(_, e)| HEADER_ELEMENTS.contains(&e.name()))
                    .map(|(i, _)| i + 1)
                    .last()
                    .unwrap_or(0);
                root.insert_element(pos, Element::new("metadata"), "", &unit);
                pos
            }
        };
        // Find our element's position among metadata's children by namespace.
        let own_pos = {
            let root_ref = &*root;
            let meta = root_ref.elements().nth(meta_pos).expect("metadata position is valid");
            meta.elements().position(|e| namespace_of(&[root_ref, meta, e], e.prefix()).as_deref() == Some(ns))
        };
        let meta = root.elements_mut().nth(meta_pos).expect("metadata position is valid");
        let insert_at = match own_pos {
            Some(p) => {
                meta.remove_element(p);
                p
            }
            None => usize::MAX,
        };
        if let Some(new) = new {
            meta.insert_element(insert_at, new, &unit, &unit);
        }
        let meta_is_empty = meta.children.iter().all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        if meta_is_empty {
            root.remove_element(meta_pos);
        }
    }
}

/// The error for a document over [`MAX_SIZE`], placed where it crosses the limit.
fn too_big(text: &str) -> XmlError {
    let mut at = MAX_SIZE;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(1, |l| l.chars().count() + 1);
    XmlError {
        source_name: None,
        line: line as u32,
        column: column as u32,
        message: format!(
            "the document is {} bytes and goes past {MAX_SIZE} bytes (10 MiB) here; luavirt reads domain XML up to 10 MiB, as virsh does",
            text.len()
        ),
    }
}

/// Checks a domain name: it names files in state directories, so no `/`, no leading `.`, no
/// control characters, at most 200 bytes.
pub fn check_domain_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the domain <name> is empty".to_string());
    }
    if name.len() > 200 || name.starts_with('.') || name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!(
            "invalid domain name {name:?}: names may not contain '/' or control characters, start with '.', or exceed 200 bytes"
        ));
    }
    Ok(())
}

/// Normalizes a UUID written as 32 hex digits with optional dashes to `8-4-4-4-12` lower case.
pub fn normalize_uuid(text: &str) -> Option<String> {
    let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// A random (version 4) UUID.
pub fn generate_uuid() -> std::io::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(normalize_uuid(&hex).expect("32 hex digits"))
}

#[cfg(test)]
mod tests;
