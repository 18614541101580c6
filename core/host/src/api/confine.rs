//! Connections held inside one folder. `luavirt test` gives each file a temporary host, and
//! a test must not reach real domains elsewhere: every folder a URI names (its state folder,
//! the path of `vmx:///DATASTORE` and the like, folders in its query) must lie inside.

use super::{Connection, Host};
use crate::error::{Error, Result};
use luavirt_plugin_api::Uri;
use luavirt_plugin_api::fsutil::state_dir_for;
use std::path::{Component, Path, PathBuf};

impl Host {
    /// Opens `uri` like [`Host::connect`], but only if everything it names lies inside `root`.
    pub fn connect_within(&self, uri: &str, root: &Path) -> Result<Connection> {
        let parsed = Uri::parse(uri).map_err(|e| Error::InvalidArg(e.to_string()))?;
        check_within(&parsed, root)?;
        self.connect(uri)
    }
}

impl Connection {
    /// The folders this connection's URI names, where its domains and luavirt's state about
    /// them live: the state folder, the URI's own folder (`vmx:///DATASTORE`), folders in its
    /// query. `luavirt watch` follows them for `domain:changed`. A remote connection's
    /// folders are on its host, none of them here.
    pub fn folders(&self) -> Vec<PathBuf> {
        if self.is_remote() {
            return Vec::new();
        }
        named_folders(&self.uri).into_iter().map(|(_, f)| f).collect()
    }
}

/// Every folder `uri` names, with what it is to the URI.
fn named_folders(uri: &Uri) -> Vec<(&'static str, PathBuf)> {
    let mut folders = vec![("its state folder", state_dir_for(uri))];
    // qemu:///session and ///system name a kind of connection; other paths name a folder
    // (vmx:///DATASTORE).
    if uri.path != "/session" && uri.path != "/system" && !uri.path.is_empty() {
        folders.push(("its folder", PathBuf::from(&uri.path)));
    }
    for (key, value) in &uri.query {
        // Query values that are paths: ?datastore.NAME=/folder, ?state=DIR, and any other.
        if key != "state" && (value.contains('/') || key.starts_with("datastore.")) {
            folders.push(("a folder in its query", PathBuf::from(value)));
        }
    }
    folders
}

/// Refuses a URI that reaches outside `root`.
fn check_within(uri: &Uri, root: &Path) -> Result<()> {
    let root = resolve(root);
    let refuse = |what: String| {
        Error::InvalidArg(format!(
            "{uri}: {what}, outside this test's temporary host {}; a test reaches only its own host: connect without a URI, or name folders under fixture.dir",
            root.display()
        ))
    };
    if !uri.host.is_empty() {
        return Err(refuse(format!("it names the host '{}'", uri.host)));
    }
    for (what, folder) in named_folders(uri) {
        let full = resolve(&folder);
        if !full.starts_with(&root) {
            return Err(refuse(format!("{what} is {}", full.display())));
        }
    }
    Ok(())
}

/// `path` made absolute, without `.` and `..`, and with the symlinks of the part that exists
/// resolved, so neither `..` nor a link leads out unseen.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::env::current_dir().map(|cwd| cwd.join(path)).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    // The longest part that exists, through its links; the rest as written.
    let mut existing = clean.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(rest.iter().rev());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(uri: &str, root: &Path) -> std::result::Result<(), String> {
        check_within(&Uri::parse(uri).unwrap(), root).map_err(|e| e.to_string())
    }

    #[test]
    fn only_folders_inside_the_root_are_reached() {
        let root = std::env::temp_dir().join(format!("lv-confine-{}", std::process::id()));
        std::fs::create_dir_all(root.join("state")).unwrap();
        let r = root.display();
        assert_eq!(within(&format!("qemu:///session?state={r}/state"), &root), Ok(()));
        assert_eq!(within(&format!("qemu:///session?state={r}/new/b"), &root), Ok(()));
        assert_eq!(within(&format!("vmx://{r}/ds?state={r}/state&datastore.two={r}/ds2"), &root), Ok(()));
        for (uri, why) in [
            (format!("qemu:///session?state={r}/state/../.."), "its state folder is "),
            (format!("qemu:///session?state={r}/../elsewhere"), "its state folder is "),
            (format!("vmx:///srv/ds?state={r}/state"), "its folder is /srv/ds"),
            (format!("vmx://{r}/ds?state={r}/state&datastore.x=/srv/x"), "a folder in its query is /srv/x"),
            (format!("qemu+ssh://other/session?state={r}/state"), "it names the host 'other'"),
        ] {
            let err = within(&uri, &root).unwrap_err();
            assert!(err.contains(why) && err.contains("outside this test's temporary host"), "{uri}: {err}");
        }
        // A link inside that leads out is followed.
        std::os::unix::fs::symlink("/", root.join("out")).unwrap();
        assert!(within(&format!("qemu:///session?state={r}/out/srv"), &root).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
