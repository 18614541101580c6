//! Datastores: the connection's map from datastore names to folders, and the two forms of a
//! disk path. In a `.vmx` a disk is named relative to the VM's folder (`web01.vmdk`), by an
//! absolute ESX path (`/vmfs/volumes/NAME/dir/x.vmdk`), or in datastore form
//! (`[NAME] dir/x.vmdk`). The domain XML shows every path on a datastore in datastore form, as
//! libvirt's ESX driver does, and the driver resolves that form to a local file through the
//! map: `vmx:///PATH` maps PATH under its folder name (or `?datastore=NAME`), and each
//! `?datastore.NAME=/folder` adds one.

use luavirt_plugin_api::{DriverError, ErrorCode, Uri};
use std::path::{Component, Path, PathBuf};

/// The connection's datastores.
#[derive(Clone, Debug)]
pub struct Datastores {
    /// `(name, folder)`; the first is the connection's own folder.
    stores: Vec<(String, PathBuf)>,
}

/// How a `.vmx` names a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRef {
    /// `[NAME] rel` or `/vmfs/volumes/NAME/rel`.
    Datastore {
        /// Datastore name (or UUID).
        name: String,
        /// Path inside it.
        rel: String,
    },
    /// A local absolute path.
    Absolute(PathBuf),
    /// Relative to the folder of the file that names it.
    Relative(String),
    /// A path of another host (`C:\...`, `\\server\...`).
    Foreign(String),
}

/// A datastore name the connection does not map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The datastore's name.
    pub name: String,
}

/// Reads a file name as a `.vmx` or descriptor writes it.
pub fn parse_ref(text: &str) -> FileRef {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('[')
        && let Some((name, rel)) = rest.split_once(']')
    {
        return FileRef::Datastore { name: name.trim().to_string(), rel: rel.trim_start().to_string() };
    }
    if let Some(rest) = t.strip_prefix("/vmfs/volumes/") {
        let (name, rel) = rest.split_once('/').unwrap_or((rest, ""));
        return FileRef::Datastore { name: name.to_string(), rel: rel.to_string() };
    }
    let b = t.as_bytes();
    let windows_drive = b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/');
    if windows_drive || t.starts_with("\\\\") {
        return FileRef::Foreign(t.to_string());
    }
    if t.starts_with('/') {
        return FileRef::Absolute(PathBuf::from(t));
    }
    FileRef::Relative(t.to_string())
}

/// Drops `.` and resolves `..` without touching the file system (a missing file must still
/// get a sensible name in messages).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn check_name(name: &str, uri: &Uri) -> Result<(), DriverError> {
    if name.is_empty() || name.contains(']') || name.contains('/') {
        return Err(DriverError::new(
            ErrorCode::InvalidUri,
            format!("{uri}: invalid datastore name {name:?}; use a name without '/' or ']'"),
        ));
    }
    Ok(())
}

impl Datastores {
    /// Reads the map from a `vmx:///PATH` URI. `root` is PATH, already checked to exist and
    /// made absolute.
    pub fn from_uri(uri: &Uri, root: &Path) -> Result<Datastores, DriverError> {
        let own = match uri.param("datastore") {
            Some(n) => n.to_string(),
            None => {
                root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "datastore".to_string())
            }
        };
        check_name(&own, uri)?;
        let mut stores = vec![(own, root.to_path_buf())];
        for (k, v) in &uri.query {
            let Some(name) = k.strip_prefix("datastore.") else {
                continue;
            };
            check_name(name, uri)?;
            if let Some((_, folder)) = stores.iter().find(|(n, _)| n == name) {
                return Err(DriverError::new(
                    ErrorCode::InvalidUri,
                    format!(
                        "{uri}: datastore '{name}' is mapped twice (to {} and {v}); map each name once (name the connection's own folder with ?datastore=OTHER)",
                        folder.display()
                    ),
                ));
            }
            let folder = PathBuf::from(v);
            if !folder.is_absolute() {
                return Err(DriverError::new(
                    ErrorCode::InvalidUri,
                    format!(
                        "{uri}: datastore.{name}={v} is not an absolute path; write ?datastore.{name}=/path/to/folder"
                    ),
                ));
            }
            let folder = folder.canonicalize().unwrap_or(folder);
            stores.push((name.to_string(), folder));
        }
        Ok(Datastores { stores })
    }

    /// The connection's own datastore: name and folder.
    pub fn own(&self) -> (&str, &Path) {
        (&self.stores[0].0, &self.stores[0].1)
    }

    /// The folder of datastore `name`.
    pub fn folder(&self, name: &str) -> Option<&Path> {
        self.stores.iter().find(|(n, _)| n == name).map(|(_, f)| f.as_path())
    }

    /// A local path in datastore form when it lies on a datastore (the deepest folder wins),
    /// else as it is.
    pub fn display_path(&self, path: &Path) -> String {
        let path = normalize(path);
        // The deepest folder wins; on a tie, the first mapped (the connection's own first).
        let mut best: Option<(&String, &PathBuf, &Path)> = None;
        for (n, f) in &self.stores {
            if let Ok(rel) = path.strip_prefix(f)
                && best.is_none_or(|(_, b, _)| f.components().count() > b.components().count())
            {
                best = Some((n, f, rel));
            }
        }
        match best {
            Some((name, _, rel)) => format!("[{name}] {}", rel.display()),
            None => path.display().to_string(),
        }
    }

    /// How the domain XML shows a file that a file in folder `base` names as `text`.
    pub fn display(&self, base: &Path, text: &str) -> String {
        match parse_ref(text) {
            FileRef::Datastore { name, rel } => format!("[{name}] {rel}"),
            FileRef::Absolute(p) => self.display_path(&p),
            FileRef::Relative(r) => self.display_path(&base.join(r)),
            FileRef::Foreign(t) => t,
        }
    }

    /// The local file that a file in folder `base` names as `text`.
    pub fn resolve(&self, base: &Path, text: &str) -> Result<PathBuf, Unmapped> {
        match parse_ref(text) {
            FileRef::Datastore { name, rel } => {
                self.folder(&name).map(|f| normalize(&f.join(rel))).ok_or(Unmapped { name })
            }
            FileRef::Absolute(p) => Ok(normalize(&p)),
            FileRef::Relative(r) => Ok(normalize(&base.join(r))),
            FileRef::Foreign(t) => Err(Unmapped { name: t }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(uri: &str) -> Datastores {
        let u = Uri::parse(uri).unwrap();
        Datastores::from_uri(&u, Path::new(&u.path)).unwrap()
    }

    #[test]
    fn file_names_are_read_in_every_form() {
        assert_eq!(parse_ref("[ds2]  a b/x.vmdk"), FileRef::Datastore { name: "ds2".into(), rel: "a b/x.vmdk".into() });
        assert_eq!(
            parse_ref("/vmfs/volumes/5f2b-aa/vm/x.vmdk"),
            FileRef::Datastore { name: "5f2b-aa".into(), rel: "vm/x.vmdk".into() }
        );
        assert_eq!(parse_ref("/isos/a.iso"), FileRef::Absolute("/isos/a.iso".into()));
        assert_eq!(parse_ref("disks/x.vmdk"), FileRef::Relative("disks/x.vmdk".into()));
        assert_eq!(parse_ref("C:\\VMs\\x.vmdk"), FileRef::Foreign("C:\\VMs\\x.vmdk".into()));
    }

    #[test]
    fn paths_show_in_datastore_form_and_resolve_back() {
        let d = stores("vmx:///srv/ds1?datastore.shared=/mnt/shared");
        let vm = Path::new("/srv/ds1/web");
        assert_eq!(d.display(vm, "web.vmdk"), "[ds1] web/web.vmdk");
        assert_eq!(d.display(vm, "../other/x.vmdk"), "[ds1] other/x.vmdk");
        assert_eq!(d.display(vm, "/mnt/shared/lib/a.vmdk"), "[shared] lib/a.vmdk");
        assert_eq!(d.display(vm, "/vmfs/volumes/zz/y.vmdk"), "[zz] y.vmdk");
        assert_eq!(d.display(vm, "/isos/a.iso"), "/isos/a.iso");
        assert_eq!(d.resolve(vm, "[shared] lib/a.vmdk").unwrap(), Path::new("/mnt/shared/lib/a.vmdk"));
        assert_eq!(d.resolve(vm, "/vmfs/volumes/ds1/web/x.vmdk").unwrap(), Path::new("/srv/ds1/web/x.vmdk"));
        assert_eq!(d.resolve(vm, "[nope] a.vmdk").unwrap_err(), Unmapped { name: "nope".into() });
    }

    #[test]
    fn the_own_folder_can_be_renamed_and_names_map_once() {
        let d = stores("vmx:///srv/ds1?datastore=local");
        assert_eq!(d.own().0, "local");
        assert_eq!(d.display(Path::new("/srv/ds1/a"), "a.vmdk"), "[local] a/a.vmdk");
        let u = Uri::parse("vmx:///srv/ds1?datastore.ds1=/mnt/x").unwrap();
        let e = Datastores::from_uri(&u, Path::new("/srv/ds1")).unwrap_err();
        assert!(e.message.contains("mapped twice"), "{e}");
        let u = Uri::parse("vmx:///srv/ds1?datastore.x=relative").unwrap();
        assert!(Datastores::from_uri(&u, Path::new("/srv/ds1")).is_err());
    }
}
