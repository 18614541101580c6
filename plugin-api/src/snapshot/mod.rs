//! The `<domainsnapshot>` document, in libvirt's format: a snapshot request (name,
//! description, memory, per-disk overrides with source, driver type and mirror) and, once
//! taken, the record luavirt keeps (creation time, state, parent, the domain as it was).

mod tree;

pub use tree::SnapshotTree;

use crate::xml::{Document, Element, XmlError};

/// Values of `snapshot=` for a disk in a snapshot.
pub const DISK_SNAPSHOT_MODES: &[&str] = &["no", "internal", "external", "manual"];

/// Memory state in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMemory {
    /// `no`, `internal` or `external`.
    pub snapshot: String,
    /// The file for `external`.
    pub file: Option<String>,
}

/// One disk's entry in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotDisk {
    /// The disk's target (vda) or source path.
    pub name: String,
    /// `no`, `internal`, `external` or `manual`; `None` takes the domain's default.
    pub snapshot: Option<String>,
    /// `type=` of the new source (file, block).
    pub source_type: Option<String>,
    /// The new overlay file for an external snapshot.
    pub source_file: Option<String>,
    /// The overlay's format (`<driver type>`).
    pub driver_type: Option<String>,
    /// The mirror file of a mirrored snapshot (`<mirror file=>`).
    pub mirror_file: Option<String>,
}

/// A `<domainsnapshot>` document.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SnapshotXml {
    /// `<name>`.
    pub name: Option<String>,
    /// `<description>`.
    pub description: Option<String>,
    /// `<memory>`.
    pub memory: Option<SnapshotMemory>,
    /// `<disks>`: per-disk overrides, or the disks as taken.
    pub disks: Vec<SnapshotDisk>,
    /// `<creationTime>`: seconds since the epoch (output).
    pub creation_time: Option<i64>,
    /// `<state>`: the domain's state when taken (output).
    pub state: Option<String>,
    /// `<parent><name>` (output).
    pub parent: Option<String>,
    /// `<domain>`: the domain definition as it was (output).
    pub domain: Option<Element>,
}

impl SnapshotXml {
    /// Parses and checks a `<domainsnapshot>` document.
    pub fn parse(text: &str) -> Result<SnapshotXml, XmlError> {
        SnapshotXml::from_element(&Document::parse(text)?.root)
    }

    /// Reads and checks a `<domainsnapshot>` element.
    pub fn from_element(root: &Element) -> Result<SnapshotXml, XmlError> {
        let fail =
            |e: &Element, m: String| XmlError { source_name: None, line: e.line(), column: e.column(), message: m };
        if root.name() != "domainsnapshot" {
            return Err(fail(root, format!("the root element is <{}>; expected <domainsnapshot>", root.name())));
        }
        let text_of = |n: &str| root.child(n).map(|e| e.text());
        let mut snap = SnapshotXml {
            name: text_of("name"),
            description: text_of("description"),
            state: text_of("state"),
            parent: root.child("parent").and_then(|p| p.child("name")).map(|n| n.text()),
            domain: root.child("domain").cloned(),
            ..SnapshotXml::default()
        };
        if let Some(t) = root.child("creationTime") {
            snap.creation_time =
                Some(t.text().trim().parse().map_err(|_| fail(t, format!("invalid <creationTime> {:?}", t.text())))?);
        }
        if let Some(m) = root.child("memory") {
            let mode = m.attr("snapshot").unwrap_or_else(|| "no".to_string());
            if !["no", "internal", "external"].contains(&mode.as_str()) {
                return Err(fail(m, format!("invalid memory snapshot={mode:?}; use no, internal or external")));
            }
            let file = m.attr("file");
            if mode == "external" && file.is_none() {
                return Err(fail(
                    m,
                    "external memory needs a file: <memory snapshot='external' file='/path'/>".to_string(),
                ));
            }
            snap.memory = Some(SnapshotMemory { snapshot: mode, file });
        }
        for d in root.child("disks").into_iter().flat_map(|ds| ds.children_named("disk")) {
            let name = d.attr("name").ok_or_else(|| fail(d, "a snapshot <disk> has no name".to_string()))?;
            if snap.disks.iter().any(|x| x.name == name) {
                return Err(fail(d, format!("disk {name:?} is named twice in the snapshot")));
            }
            let mode = d.attr("snapshot");
            if let Some(m) = mode.as_deref().filter(|m| !DISK_SNAPSHOT_MODES.contains(m)) {
                return Err(fail(
                    d,
                    format!("invalid snapshot={m:?} for disk {name:?}; use no, internal, external or manual"),
                ));
            }
            let source = d.child("source");
            snap.disks.push(SnapshotDisk {
                snapshot: mode,
                source_type: d.attr("type"),
                source_file: source.and_then(|s| s.attr("file").or_else(|| s.attr("dev"))),
                driver_type: d.child("driver").and_then(|x| x.attr("type")),
                mirror_file: d.child("mirror").and_then(|x| x.attr("file")),
                name,
            });
        }
        Ok(snap)
    }

    /// Writes the document, indented by two spaces.
    pub fn to_xml(&self) -> String {
        let mut root = self.to_element();
        root.indent_children("", "  ");
        let mut out = root.to_xml();
        out.push('\n');
        out
    }

    /// The document as an element (not indented).
    pub fn to_element(&self) -> Element {
        let mut root = Element::new("domainsnapshot");
        let mut text_el = |name: &str, text: &str| {
            let mut e = Element::new(name);
            e.set_text(text);
            root.push(e);
        };
        if let Some(n) = &self.name {
            text_el("name", n);
        }
        if let Some(d) = &self.description {
            text_el("description", d);
        }
        if let Some(s) = &self.state {
            text_el("state", s);
        }
        if let Some(t) = self.creation_time {
            text_el("creationTime", &t.to_string());
        }
        if let Some(p) = &self.parent {
            let mut name = Element::new("name");
            name.set_text(p);
            root.push(Element::new("parent")).push(name);
        }
        if let Some(m) = &self.memory {
            let mut e = Element::new("memory").with_attr("snapshot", &m.snapshot);
            if let Some(f) = &m.file {
                e.set_attr("file", f);
            }
            root.push(e);
        }
        if !self.disks.is_empty() {
            let disks = root.push(Element::new("disks"));
            for d in &self.disks {
                let mut e = Element::new("disk").with_attr("name", &d.name);
                if let Some(s) = &d.snapshot {
                    e.set_attr("snapshot", s);
                }
                if let Some(t) = &d.source_type {
                    e.set_attr("type", t);
                }
                if let Some(f) = &d.source_file {
                    let attr = if d.source_type.as_deref() == Some("block") { "dev" } else { "file" };
                    e.push(Element::new("source").with_attr(attr, f));
                }
                if let Some(t) = &d.driver_type {
                    e.push(Element::new("driver").with_attr("type", t));
                }
                if let Some(m) = &d.mirror_file {
                    e.push(Element::new("mirror").with_attr("file", m));
                }
                disks.push(e);
            }
        }
        if let Some(d) = &self.domain {
            root.push(d.clone());
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let xml = "<domainsnapshot>\n  <name>s1</name>\n  <description>before &amp; after</description>\n  <memory snapshot='external' file='/m/s1'/>\n  <disks>\n    <disk name='vda' snapshot='external' type='file'>\n      <source file='/i/a.s1'/>\n      <driver type='qcow2'/>\n      <mirror file='/mirror/a'/>\n    </disk>\n    <disk name='vdb' snapshot='no'/>\n  </disks>\n</domainsnapshot>\n";
        let s = SnapshotXml::parse(xml).unwrap();
        assert_eq!(s.description.as_deref(), Some("before & after"));
        assert_eq!(s.disks[0].mirror_file.as_deref(), Some("/mirror/a"));
        assert_eq!(s.to_xml(), xml);
    }

    #[test]
    fn bad_requests_are_refused() {
        let e =
            SnapshotXml::parse("<domainsnapshot><disks><disk name='vda'/><disk name='vda'/></disks></domainsnapshot>")
                .unwrap_err();
        assert!(e.message.contains("named twice"), "{e}");
        let e = SnapshotXml::parse("<domainsnapshot><memory snapshot='external'/></domainsnapshot>").unwrap_err();
        assert!(e.message.contains("needs a file"), "{e}");
        let e = SnapshotXml::parse("<domainsnapshot><disks><disk name='a' snapshot='yes'/></disks></domainsnapshot>")
            .unwrap_err();
        assert!(e.message.contains("invalid snapshot"), "{e}");
    }
}
