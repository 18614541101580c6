//! A domain's snapshots as a tree: each knows its parent; one is current (the one the domain's
//! present state descends from). Drivers keep it in one file, written atomically, so a change
//! to the tree is all-or-nothing:
//!
//! ```xml
//! <snapshots current='s2'>
//!   <domainsnapshot>...<name>s1</name>...</domainsnapshot>
//!   <domainsnapshot>...<name>s2</name><parent><name>s1</name></parent>...</domainsnapshot>
//! </snapshots>
//! ```

use super::SnapshotXml;
use crate::xml::{Document, Element, XmlError};

/// All snapshots of one domain, in creation order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotTree {
    /// The current snapshot.
    pub current: Option<String>,
    snapshots: Vec<SnapshotXml>,
}

impl SnapshotTree {
    /// A tree of `snapshots` (in creation order, each naming its parent).
    pub fn new(current: Option<String>, snapshots: Vec<SnapshotXml>) -> SnapshotTree {
        SnapshotTree { current, snapshots }
    }

    /// Reads a `<snapshots>` document.
    pub fn parse(text: &str) -> Result<SnapshotTree, XmlError> {
        let doc = Document::parse(text)?;
        let mut tree = SnapshotTree { current: doc.root.attr("current"), snapshots: Vec::new() };
        for e in doc.root.children_named("domainsnapshot") {
            let snap = SnapshotXml::from_element(e)?;
            if snap.name.is_none() {
                return Err(XmlError {
                    source_name: None,
                    line: e.line(),
                    column: e.column(),
                    message: "a stored snapshot has no <name>".into(),
                });
            }
            tree.snapshots.push(snap);
        }
        Ok(tree)
    }

    /// Writes the tree as a `<snapshots>` document.
    pub fn to_xml(&self) -> String {
        let mut root = Element::new("snapshots");
        if let Some(c) = &self.current {
            root.set_attr("current", c);
        }
        for s in &self.snapshots {
            root.push(s.to_element());
        }
        root.indent_children("", "  ");
        let mut out = root.to_xml();
        out.push('\n');
        out
    }

    /// Snapshots in creation order.
    pub fn all(&self) -> &[SnapshotXml] {
        &self.snapshots
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }

    /// The snapshot called `name`.
    pub fn get(&self, name: &str) -> Option<&SnapshotXml> {
        self.snapshots.iter().find(|s| s.name.as_deref() == Some(name))
    }

    /// The snapshot called `name`, for changes.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut SnapshotXml> {
        self.snapshots.iter_mut().find(|s| s.name.as_deref() == Some(name))
    }

    /// Names of the children of `name` (of the roots, for `None`), in creation order.
    pub fn children(&self, name: Option<&str>) -> Vec<String> {
        self.snapshots.iter().filter(|s| s.parent.as_deref() == name).filter_map(|s| s.name.clone()).collect()
    }

    /// Every descendant of `name`, each after its own descendants (leaves first), so deleting
    /// in this order never deletes a parent before its children.
    pub fn descendants(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for child in self.children(Some(name)) {
            out.extend(self.descendants(&child));
            out.push(child);
        }
        out
    }

    /// Adds `snap` as a child of the current snapshot and makes it current.
    pub fn add(&mut self, mut snap: SnapshotXml) {
        snap.parent = self.current.clone();
        self.current = snap.name.clone();
        self.snapshots.push(snap);
    }

    /// Removes `name`; its children take its parent, and if it was current its parent becomes
    /// current. Returns the removed snapshot.
    pub fn remove(&mut self, name: &str) -> Option<SnapshotXml> {
        let pos = self.snapshots.iter().position(|s| s.name.as_deref() == Some(name))?;
        let removed = self.snapshots.remove(pos);
        for s in &mut self.snapshots {
            if s.parent.as_deref() == Some(name) {
                s.parent = removed.parent.clone();
            }
        }
        if self.current.as_deref() == Some(name) {
            self.current = removed.parent.clone();
        }
        Some(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str) -> SnapshotXml {
        SnapshotXml { name: Some(name.into()), ..SnapshotXml::default() }
    }

    #[test]
    fn a_tree_grows_from_current_and_keeps_shape_when_a_middle_snapshot_goes() {
        let mut t = SnapshotTree::default();
        t.add(snap("a"));
        t.add(snap("b"));
        t.current = Some("a".into()); // a revert to a
        t.add(snap("c"));
        t.add(snap("d"));
        assert_eq!(t.children(None), ["a"]);
        assert_eq!(t.children(Some("a")), ["b", "c"]);
        assert_eq!(t.descendants("a"), ["b", "d", "c"]);
        let back = SnapshotTree::parse(&t.to_xml()).unwrap();
        assert_eq!(back, t);
        t.remove("c");
        assert_eq!(t.children(Some("a")), ["b", "d"]);
        assert_eq!(t.current.as_deref(), Some("d"));
        t.remove("d");
        assert_eq!(t.current.as_deref(), Some("a"));
    }
}
