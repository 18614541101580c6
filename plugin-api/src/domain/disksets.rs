//! Disk sets: named, per-domain sets of disks (by target), kept in the domain XML under
//! luavirt's own namespace in `<metadata>`:
//!
//! ```xml
//! <metadata>
//!   <luavirt:disksets xmlns:luavirt="https://luavirt.org/xmlns/disksets/1">
//!     <luavirt:set name="selected">
//!       <luavirt:disk target="vda"/>
//!     </luavirt:set>
//!   </luavirt:disksets>
//! </metadata>
//! ```
//!
//! libvirt keeps namespaced metadata as it is, and the XML stays valid for `virt-xml-validate`.

use crate::xml::Element;
use std::collections::BTreeMap;

/// luavirt's namespace for disk sets in `<metadata>`.
pub const DISKSETS_NS: &str = "https://luavirt.org/xmlns/disksets/1";
/// The prefix luavirt writes for that namespace.
pub const DISKSETS_PREFIX: &str = "luavirt";
/// The default set, also the one `<disk selected='yes'>` seeds.
pub const DEFAULT_SET: &str = "selected";

/// All disk sets of one domain: set name to member targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskSets {
    sets: BTreeMap<String, Vec<String>>,
}

/// Checks a set name: letters, digits, `_`, `-`, `.`; 1 to 64 characters.
pub fn check_set_name(name: &str) -> Result<(), String> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid disk set name {name:?}: use 1 to 64 letters, digits, '_', '-' or '.'"))
    }
}

impl DiskSets {
    /// Reads a `<luavirt:disksets>` element (any prefix bound to [`DISKSETS_NS`]).
    pub fn from_element(e: &Element) -> Result<DiskSets, (u32, String)> {
        let mut sets = DiskSets::default();
        for set in e.elements() {
            if set.local_name() != "set" {
                return Err((
                    set.line(),
                    format!("unexpected <{}> in luavirt disk sets; only <set> belongs there", set.name()),
                ));
            }
            let name = set.attr("name").ok_or((set.line(), "a disk <set> has no name attribute".to_string()))?;
            check_set_name(&name).map_err(|m| (set.line(), m))?;
            let members = sets.sets.entry(name.clone()).or_default();
            for disk in set.elements() {
                let target = disk.attr("target").filter(|_| disk.local_name() == "disk").ok_or((
                    disk.line(),
                    format!("disk set {name:?} holds <{}>; expected <disk target='...'/>", disk.name()),
                ))?;
                if !members.contains(&target) {
                    members.push(target);
                }
            }
        }
        Ok(sets)
    }

    /// Writes the sets as a `<luavirt:disksets>` element; `None` when no set has members.
    pub fn to_element(&self) -> Option<Element> {
        let mut root = Element::new(format!("{DISKSETS_PREFIX}:disksets"))
            .with_attr(&format!("xmlns:{DISKSETS_PREFIX}"), DISKSETS_NS);
        for (name, members) in self.sets.iter().filter(|(_, m)| !m.is_empty()) {
            let set = root.push(Element::new(format!("{DISKSETS_PREFIX}:set")).with_attr("name", name));
            for t in members {
                set.push(Element::new(format!("{DISKSETS_PREFIX}:disk")).with_attr("target", t));
            }
        }
        if root.elements().next().is_some() { Some(root) } else { None }
    }

    /// Names of the sets that have members.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sets.iter().filter(|(_, m)| !m.is_empty()).map(|(n, _)| n.as_str())
    }

    /// Members of `set` (empty if the set does not exist).
    pub fn members(&self, set: &str) -> &[String] {
        self.sets.get(set).map_or(&[], |m| m.as_slice())
    }

    /// Whether `target` is in `set`.
    pub fn contains(&self, set: &str, target: &str) -> bool {
        self.members(set).iter().any(|t| t == target)
    }

    /// Adds `target` to `set`; false when it was already a member.
    pub fn add(&mut self, set: &str, target: &str) -> bool {
        let members = self.sets.entry(set.to_string()).or_default();
        if members.iter().any(|t| t == target) {
            return false;
        }
        members.push(target.to_string());
        true
    }

    /// Removes `target` from `set`; false when it was not a member.
    pub fn remove(&mut self, set: &str, target: &str) -> bool {
        let Some(members) = self.sets.get_mut(set) else {
            return false;
        };
        let before = members.len();
        members.retain(|t| t != target);
        before != members.len()
    }

    /// Empties `set`; returns how many members it had.
    pub fn clear(&mut self, set: &str) -> usize {
        self.sets.remove(set).map_or(0, |m| m.len())
    }

    /// Drops members that are not among `targets` (disks that left the domain) and orders the
    /// rest as the domain lists its disks. Returns the `(set, target)` pairs dropped.
    pub fn keep_only(&mut self, targets: &[String]) -> Vec<(String, String)> {
        let mut dropped = Vec::new();
        for (name, members) in &mut self.sets {
            for t in members.iter().filter(|t| !targets.contains(t)) {
                dropped.push((name.clone(), t.clone()));
            }
            members.retain(|t| targets.contains(t));
            members.sort_by_key(|t| targets.iter().position(|x| x == t));
        }
        self.sets.retain(|_, m| !m.is_empty());
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_remove_report_whether_they_changed_the_set() {
        let mut s = DiskSets::default();
        assert!(s.add("selected", "vda"));
        assert!(!s.add("selected", "vda"));
        assert!(s.contains("selected", "vda"));
        assert!(!s.remove("selected", "vdb"));
        assert!(!s.remove("other", "vda"));
        assert!(s.remove("selected", "vda"));
        assert_eq!(s.members("selected").len(), 0);
        assert!(s.to_element().is_none());
    }

    #[test]
    fn element_round_trip_and_pruning() {
        let mut s = DiskSets::default();
        s.add("migrate", "vdb");
        s.add("migrate", "vda");
        s.add("selected", "vdc");
        let back = DiskSets::from_element(&s.to_element().unwrap()).unwrap();
        assert_eq!(back, s);
        let dropped = s.keep_only(&["vda".into(), "vdb".into()]);
        assert_eq!(dropped, vec![("selected".to_string(), "vdc".to_string())]);
        assert_eq!(s.members("migrate"), ["vda", "vdb"]);
        assert_eq!(s.names().collect::<Vec<_>>(), ["migrate"]);
    }

    #[test]
    fn set_names_are_checked() {
        assert!(check_set_name("nightly-2.x_y").is_ok());
        assert!(check_set_name("").is_err());
        assert!(check_set_name("a b").is_err());
    }
}
