//! The sidecar beside an xl config (`<config>.luavirt.xml`): what an xl config has no place
//! for. Disk sets and disk modes by vdev, and the snapshots (each with the domain as it was),
//! in one file written atomically (0600), so a change to any of them is all or nothing. It is
//! removed when it would hold nothing.
//!
//! ```xml
//! <metadata>
//!   <luavirt:disksets xmlns:luavirt='https://luavirt.org/xmlns/disksets/1'>...</luavirt:disksets>
//!   <xl:disks xmlns:xl='https://luavirt.org/xmlns/libxl/1'>
//!     <xl:disk target='xvdb' snapshot='no' transient='yes'/>
//!   </xl:disks>
//!   <xl:snapshots xmlns:xl='https://luavirt.org/xmlns/libxl/1' current='s1'>
//!     <domainsnapshot>...</domainsnapshot>
//!   </xl:snapshots>
//! </metadata>
//! ```

use luavirt_plugin_api::domain::{DISKSETS_NS, DiskSets};
use luavirt_plugin_api::fsutil::{remove_durably, write_atomic};
use luavirt_plugin_api::snapshot::{SnapshotTree, SnapshotXml};
use luavirt_plugin_api::xml::{Document, Element, namespace_of};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// luavirt's namespace for what it keeps about xl domains.
pub const LIBXL_NS: &str = "https://luavirt.org/xmlns/libxl/1";

const HEADER: &str = "<?xml version='1.0' encoding='UTF-8'?>\n<!-- luavirt's metadata for the xl config beside this file (disk sets, disk modes, snapshots): what an xl config has no place for. Written by luavirt. -->\n";

/// A disk's mode, as libvirt's XML says it: the `snapshot=` default and `<transient/>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    /// `snapshot=` of the disk (no, internal, external, manual).
    pub snapshot: Option<String>,
    /// `<transient/>`.
    pub transient: bool,
}

/// What the sidecar holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sidecar {
    /// The disk sets, by vdev.
    pub sets: DiskSets,
    /// Disks with a mode other than plain persistent, by vdev.
    pub modes: BTreeMap<String, Mode>,
    /// The snapshots.
    pub snapshots: SnapshotTree,
}

fn corrupt(path: &Path, line: u32, message: &str) -> DriverError {
    DriverError::new(
        ErrorCode::CorruptState,
        format!(
            "{}:{line}: {message}; fix the file or move it away (it holds luavirt's disk sets, disk modes and snapshot records for the config beside it; nothing was changed)",
            path.display()
        ),
    )
}

impl Sidecar {
    /// Reads the sidecar at `path`; an empty one when there is none.
    pub fn read(path: &Path) -> Result<Sidecar, DriverError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Sidecar::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Sidecar::default()),
            Err(e) => Err(DriverError::io("read", path, e)),
        }
    }

    /// Reads sidecar text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Sidecar, DriverError> {
        let doc = Document::parse(text).map_err(|e| corrupt(path, e.line, &e.message))?;
        let root = &doc.root;
        if root.name() != "metadata" {
            return Err(corrupt(path, root.line(), &format!("the root element is <{}>, not <metadata>", root.name())));
        }
        let mut out = Sidecar::default();
        for e in root.elements() {
            match (namespace_of(&[root, e], e.prefix()).as_deref(), e.local_name()) {
                (Some(DISKSETS_NS), _) => {
                    out.sets = DiskSets::from_element(e).map_err(|(l, m)| corrupt(path, l, &m))?
                }
                (Some(LIBXL_NS), "disks") => {
                    for d in e.elements() {
                        let target = d
                            .attr("target")
                            .ok_or_else(|| corrupt(path, d.line(), "a disk mode has no target attribute"))?;
                        let mode = Mode {
                            snapshot: d.attr("snapshot"),
                            transient: d.attr("transient").as_deref() == Some("yes"),
                        };
                        out.modes.insert(target, mode);
                    }
                }
                (Some(LIBXL_NS), "snapshots") => {
                    let mut snaps = Vec::new();
                    for s in e.elements() {
                        let snap = SnapshotXml::from_element(s).map_err(|x| corrupt(path, x.line, &x.message))?;
                        if snap.name.is_none() {
                            return Err(corrupt(path, s.line(), "a snapshot record has no <name>"));
                        }
                        snaps.push(snap);
                    }
                    out.snapshots = SnapshotTree::new(e.attr("current"), snaps);
                }
                _ => return Err(corrupt(path, e.line(), &format!("unexpected <{}>", e.name()))),
            }
        }
        Ok(out)
    }

    /// The file's text for disks `targets` (members and modes of other disks are dropped);
    /// `None` when it holds nothing.
    pub fn to_text(&self, targets: &[String]) -> Option<String> {
        let mut root = Element::new("metadata");
        let mut sets = self.sets.clone();
        sets.keep_only(targets);
        if let Some(e) = sets.to_element() {
            root.push(e);
        }
        let mut modes = Element::new("xl:disks").with_attr("xmlns:xl", LIBXL_NS);
        for (target, m) in self.modes.iter().filter(|(t, _)| targets.contains(t)) {
            let mut d = Element::new("xl:disk").with_attr("target", target);
            if let Some(s) = &m.snapshot {
                d.set_attr("snapshot", s);
            }
            if m.transient {
                d.set_attr("transient", "yes");
            }
            modes.push(d);
        }
        if modes.elements().next().is_some() {
            root.push(modes);
        }
        if !self.snapshots.is_empty() {
            let mut snaps = Element::new("xl:snapshots").with_attr("xmlns:xl", LIBXL_NS);
            if let Some(c) = &self.snapshots.current {
                snaps.set_attr("current", c);
            }
            for s in self.snapshots.all() {
                snaps.push(s.to_element());
            }
            root.push(snaps);
        }
        root.elements().next()?;
        root.indent_children("", "  ");
        Some(format!("{HEADER}{}\n", root.to_xml()))
    }

    /// The mode of disk `target`.
    pub fn mode(&self, target: &str) -> Mode {
        self.modes.get(target).cloned().unwrap_or_default()
    }
}

/// The sidecar file as it should be, for intent records: its path and bytes (`None`: no file).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SidecarFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its bytes, `None` when there is no file.
    pub bytes: Option<Vec<u8>>,
}

impl SidecarFile {
    /// `sidecar` for disks `targets`, at `path`.
    pub fn of(path: &Path, sidecar: &Sidecar, targets: &[String]) -> SidecarFile {
        SidecarFile { path: path.to_path_buf(), bytes: sidecar.to_text(targets).map(String::into_bytes) }
    }

    /// The file as it is now.
    pub fn current(path: &Path) -> Result<SidecarFile, DriverError> {
        match std::fs::read(path) {
            Ok(b) => Ok(SidecarFile { path: path.to_path_buf(), bytes: Some(b) }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(SidecarFile { path: path.to_path_buf(), bytes: None })
            }
            Err(e) => Err(DriverError::io("read", path, e)),
        }
    }

    /// Makes the file hold what this says (atomically; nothing happens when it does already).
    pub fn write(&self) -> Result<(), DriverError> {
        if SidecarFile::current(&self.path)?.bytes == self.bytes {
            return Ok(());
        }
        match &self.bytes {
            Some(b) => write_atomic(&self.path, b).map_err(|e| DriverError::io("write", &self.path, e)),
            None => remove_durably(&self.path).map_err(|e| DriverError::io("remove", &self.path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use luavirt_plugin_api::snapshot::SnapshotXml;

    #[test]
    fn sets_modes_and_snapshots_round_trip_and_an_empty_sidecar_is_no_file() {
        let dir = std::env::temp_dir().join(format!("lv-xl-sidecar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("web.cfg.luavirt.xml");
        let targets = vec!["xvda".to_string(), "xvdb".to_string()];
        assert_eq!(Sidecar::read(&path).unwrap(), Sidecar::default());
        let mut s = Sidecar::default();
        s.sets.add("selected", "xvda");
        s.sets.add("gone", "xvdz");
        s.modes.insert("xvdb".into(), Mode { snapshot: Some("no".into()), transient: true });
        s.snapshots.add(SnapshotXml { name: Some("s1".into()), ..SnapshotXml::default() });
        s.snapshots.current = Some("s1".into());
        SidecarFile::of(&path, &s, &targets).write().unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("<xl:disk target='xvdb' snapshot='no' transient='yes'/>"), "{text}");
        assert!(!text.contains("xvdz"), "members of disks that are gone are dropped: {text}");
        let back = Sidecar::read(&path).unwrap();
        assert_eq!(back.sets.members("selected"), ["xvda".to_string()]);
        assert_eq!(back.mode("xvdb"), Mode { snapshot: Some("no".into()), transient: true });
        assert_eq!(back.mode("xvda"), Mode::default());
        assert_eq!(back.snapshots.current.as_deref(), Some("s1"));
        assert_eq!(back.snapshots.all().len(), 1);
        SidecarFile::of(&path, &Sidecar::default(), &targets).write().unwrap();
        assert!(!path.exists());
        std::fs::write(&path, "<metadata>\n  <oops/>\n</metadata>\n").unwrap();
        let e = Sidecar::read(&path).unwrap_err();
        assert!(e.message.starts_with(&format!("{}:2: unexpected <oops>", path.display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
