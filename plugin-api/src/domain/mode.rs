//! Disk modes by their ESX names, kept in the domain XML the way libvirt already reads it:
//! the `snapshot=` default of a `<disk>` and `<transient/>`. Every driver shares this mapping.
//!
//! | mode                        | snapshot= | `<transient/>` |
//! |-----------------------------|-----------|----------------|
//! | `persistent`                | (not no)  | no             |
//! | `independent-persistent`    | `no`      | no             |
//! | `independent-nonpersistent` | `no`      | yes            |
//!
//! ESX's old `nonpersistent` and `undoable` modes have no libvirt form; a driver that reads
//! them (the .vmx driver) records them in luavirt's metadata (`DISKMODES_NS`) so they are
//! reported as such. They can be read, not set. A recorded mode that luavirt does not know
//! (`mode='unknown'`, or any other) reads as [`DiskMode::Unknown`]: the disk keeps it, and
//! luavirt neither changes it nor takes the disk in snapshots.

use super::{Disk, DomainXml};
use crate::xml::{Element, namespace_of};

/// luavirt's namespace for disk modes that libvirt cannot express.
pub const DISKMODES_NS: &str = "https://luavirt.org/xmlns/diskmodes/1";

/// A disk's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskMode {
    /// Changes are written at once; snapshots include the disk.
    Persistent,
    /// Changes are written at once; snapshots leave the disk out (its content survives revert).
    IndependentPersistent,
    /// Changes are discarded when the domain stops; snapshots leave the disk out.
    IndependentNonpersistent,
    /// ESX's old mode: changes go to a redo log discarded at power-off (read only).
    Nonpersistent,
    /// ESX's old mode: changes go to a redo log kept or discarded at power-off (read only).
    Undoable,
    /// A mode luavirt does not know, kept as written in the hypervisor's file (read only).
    Unknown,
}

const NAMES: &[(DiskMode, &str)] = &[
    (DiskMode::Persistent, "persistent"),
    (DiskMode::IndependentPersistent, "independent-persistent"),
    (DiskMode::IndependentNonpersistent, "independent-nonpersistent"),
    (DiskMode::Nonpersistent, "nonpersistent"),
    (DiskMode::Undoable, "undoable"),
];

impl DiskMode {
    /// The modes luavirt can set, by name.
    pub const SETTABLE: [DiskMode; 3] =
        [DiskMode::Persistent, DiskMode::IndependentPersistent, DiskMode::IndependentNonpersistent];

    /// The ESX name (`independent-persistent`).
    pub fn name(self) -> &'static str {
        // `unknown` is a name to show, not one to parse.
        NAMES.iter().find(|(m, _)| *m == self).map_or("unknown", |(_, n)| *n)
    }

    /// Reads an ESX name; case and `_` for `-` do not matter (the vSphere API spells
    /// `independent_persistent`).
    pub fn parse(text: &str) -> Result<DiskMode, String> {
        let t = text.trim().to_ascii_lowercase().replace('_', "-");
        NAMES.iter().find(|(_, n)| *n == t).map(|(m, _)| *m).ok_or_else(|| {
            format!("Unknown disk mode {text:?}; use persistent, independent-persistent or independent-nonpersistent")
        })
    }

    /// The mode that `snapshot=` and `<transient/>` describe.
    pub fn from_xml(snapshot: Option<&str>, transient: bool) -> DiskMode {
        match (snapshot, transient) {
            (_, true) => DiskMode::IndependentNonpersistent,
            (Some("no"), false) => DiskMode::IndependentPersistent,
            _ => DiskMode::Persistent,
        }
    }

    /// Whether luavirt can set this mode (the old ESX modes can only be read).
    pub fn settable(self) -> bool {
        matches!(self, DiskMode::Persistent | DiskMode::IndependentPersistent | DiskMode::IndependentNonpersistent)
    }

    /// Whether snapshots take the disk. ESX leaves out independent disks, and disks in the
    /// old redo-log modes too.
    pub fn in_snapshots(self) -> bool {
        self == DiskMode::Persistent
    }

    /// Whether changes survive the domain stopping (for an unknown mode: not known, false).
    pub fn persistent(self) -> bool {
        matches!(self, DiskMode::Persistent | DiskMode::IndependentPersistent | DiskMode::Undoable)
    }
}

impl std::fmt::Display for DiskMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl DomainXml {
    /// The mode of disk `target`, including a mode recorded in luavirt's metadata: an old ESX
    /// mode, or [`DiskMode::Unknown`] for one that luavirt does not know.
    pub fn disk_mode(&self, target: &str) -> Option<DiskMode> {
        self.disk(target).map(|d| self.mode_of(&d))
    }

    /// The mode of `disk`, one of this domain's disks (as [`DomainXml::disk_mode`]).
    pub fn mode_of(&self, disk: &Disk) -> DiskMode {
        let target = disk.target.as_str();
        let legacy = self
            .metadata_element(DISKMODES_NS)
            .and_then(|e| {
                e.elements().find(|d| d.attr("target").as_deref() == Some(target)).and_then(|d| d.attr("mode"))
            })
            .map(|m| DiskMode::parse(&m).unwrap_or(DiskMode::Unknown));
        legacy.unwrap_or_else(|| DiskMode::from_xml(disk.snapshot.as_deref(), disk.transient))
    }

    /// Sets the mode of disk `target` through `snapshot=` and `<transient/>`, changing nothing
    /// else. Errors name the disk and what to do.
    pub fn set_disk_mode(&mut self, target: &str, mode: DiskMode) -> Result<(), String> {
        if !mode.settable() {
            let what = if mode == DiskMode::Unknown { "not a mode luavirt knows" } else { "ESX's old mode" };
            return Err(format!(
                "Disk mode '{mode}' is {what} and can only be read; use persistent, independent-persistent or independent-nonpersistent"
            ));
        }
        let unit = self.document().indent_unit();
        let legacy_left = self.without_legacy_mode(target);
        let el = self.disk_element_mut(target).ok_or_else(|| format!("No disk '{target}'"))?;
        match mode {
            DiskMode::Persistent => {
                if el.attr("snapshot").as_deref() == Some("no") {
                    el.remove_attr("snapshot");
                }
            }
            _ => {
                if el.attr("snapshot").as_deref() != Some("no") {
                    el.set_attr("snapshot", "no");
                }
            }
        }
        let transient_at = el.position(|e| e.name() == "transient");
        match (mode == DiskMode::IndependentNonpersistent, transient_at) {
            (true, None) => {
                let indent = format!("{unit}{unit}");
                el.insert_element(usize::MAX, Element::new("transient"), &indent, &unit);
            }
            (false, Some(i)) => {
                el.remove_element(i);
            }
            _ => {}
        }
        if let Some(modes) = legacy_left {
            self.set_metadata_element(DISKMODES_NS, modes);
        }
        Ok(())
    }

    /// If disk `target` has an old ESX mode recorded, the metadata element without it.
    fn without_legacy_mode(&self, target: &str) -> Option<Option<Element>> {
        let root = &self.document().root;
        let meta = root.child("metadata")?;
        let modes =
            meta.elements().find(|e| namespace_of(&[root, meta, e], e.prefix()).as_deref() == Some(DISKMODES_NS))?;
        let pos = modes.position(|d| d.attr("target").as_deref() == Some(target))?;
        let mut rest = modes.clone();
        rest.remove_element(pos);
        let empty = rest.elements().next().is_none();
        Some(if empty { None } else { Some(rest) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = "<domain>\n  <name>m</name>\n  <devices>\n    <disk type='file' snapshot='external'>\n      <source file='/a'/>\n      <target dev='sda'/>\n    </disk>\n  </devices>\n</domain>";

    #[test]
    fn modes_map_to_snapshot_and_transient_and_back() {
        let mut d = DomainXml::parse(XML, None).unwrap();
        assert_eq!(d.disk_mode("sda"), Some(DiskMode::Persistent));
        d.set_disk_mode("sda", DiskMode::IndependentNonpersistent).unwrap();
        assert_eq!(
            d.to_xml(),
            XML.replace("snapshot='external'", "snapshot='no'")
                .replace("<target dev='sda'/>", "<target dev='sda'/>\n      <transient/>")
        );
        assert_eq!(d.disk_mode("sda"), Some(DiskMode::IndependentNonpersistent));
        d.set_disk_mode("sda", DiskMode::IndependentPersistent).unwrap();
        assert_eq!(d.to_xml(), XML.replace("snapshot='external'", "snapshot='no'"));
        d.set_disk_mode("sda", DiskMode::Persistent).unwrap();
        assert_eq!(d.to_xml(), XML.replace(" snapshot='external'", ""));
        assert!(d.set_disk_mode("sda", DiskMode::Undoable).unwrap_err().contains("can only be read"));
        assert!(d.set_disk_mode("sdz", DiskMode::Persistent).is_err());
    }

    #[test]
    fn names_parse_in_either_spelling() {
        assert_eq!(DiskMode::parse("Independent_NonPersistent").unwrap(), DiskMode::IndependentNonpersistent);
        assert!(DiskMode::parse("sometimes").is_err());
        for (m, n) in NAMES {
            assert_eq!(DiskMode::parse(n).unwrap(), *m);
        }
    }

    #[test]
    fn old_esx_modes_come_from_metadata_and_setting_a_mode_clears_them() {
        let xml = XML.replace(
            "<name>m</name>",
            "<name>m</name>\n  <metadata>\n    <lv:diskmodes xmlns:lv='https://luavirt.org/xmlns/diskmodes/1'>\n      <lv:disk target='sda' mode='undoable'/>\n    </lv:diskmodes>\n  </metadata>",
        );
        let mut d = DomainXml::parse(&xml, None).unwrap();
        assert_eq!(d.disk_mode("sda"), Some(DiskMode::Undoable));
        d.set_disk_mode("sda", DiskMode::Persistent).unwrap();
        assert_eq!(d.disk_mode("sda"), Some(DiskMode::Persistent));
        assert!(!d.to_xml().contains("diskmodes"));
    }

    #[test]
    fn a_mode_no_one_here_knows_reads_as_unknown_with_its_text() {
        let xml = XML.replace(
            "<name>m</name>",
            "<name>m</name>\n  <metadata>\n    <lv:diskmodes xmlns:lv='https://luavirt.org/xmlns/diskmodes/1'>\n      <lv:disk target='sda' mode='unknown' text='append'/>\n    </lv:diskmodes>\n  </metadata>",
        );
        let mut d = DomainXml::parse(&xml, None).unwrap();
        assert_eq!(d.disk_mode("sda"), Some(DiskMode::Unknown));
        let other = DomainXml::parse(&xml.replace("mode='unknown'", "mode='append'"), None).unwrap();
        assert_eq!(other.disk_mode("sda"), Some(DiskMode::Unknown));
        assert_eq!((DiskMode::Unknown.name(), DiskMode::Unknown.in_snapshots()), ("unknown", false));
        assert!(DiskMode::parse("unknown").is_err(), "unknown is shown, never asked for");
        assert!(d.set_disk_mode("sda", DiskMode::Unknown).unwrap_err().contains("not a mode luavirt knows"));
    }
}
