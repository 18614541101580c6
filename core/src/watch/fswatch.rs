//! Folders watched through `notify` and its full debouncer. Folders, never single files
//! (editors save by renaming a new file over the old one, which ends a watch on the file). A
//! folder that does not exist, or is removed, is reported; its nearest existing parent is
//! watched instead until it comes back, and then it is watched again and read afresh. The
//! inotify limits, when hit, become a message that names the limit and how to raise it.

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What happened to a folder the policies follow.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// It is missing (at start, or removed since); its parent is watched for it.
    Missing(PathBuf),
    /// It is back, and watched again: what is in it must be read afresh.
    Back(PathBuf),
    /// It cannot be watched (the message says why and what to do).
    Failed(PathBuf, String),
}

/// The watcher and the folders it watches now.
pub struct FsWatcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    /// Folders the policies follow, and whether with the folders below.
    wanted: BTreeMap<PathBuf, bool>,
    /// What is watched now: a path and its mode.
    current: BTreeMap<PathBuf, RecursiveMode>,
    /// Wanted folders that are missing now.
    missing: Vec<PathBuf>,
    /// Wanted folders that could not be watched, until the next [`FsWatcher::want`].
    failed: Vec<PathBuf>,
}

impl FsWatcher {
    /// Starts the watcher; batches of debounced events go to `handler`.
    pub fn new(
        window: Duration,
        handler: impl FnMut(DebounceEventResult) + Send + 'static,
    ) -> Result<FsWatcher, String> {
        let debouncer = new_debouncer(window, None, handler).map_err(|e| explain(None, &e))?;
        Ok(FsWatcher {
            debouncer,
            wanted: BTreeMap::new(),
            current: BTreeMap::new(),
            missing: Vec::new(),
            failed: Vec::new(),
        })
    }

    /// Sets the folders to follow (and with their subfolders when `true`); then
    /// [`FsWatcher::reconcile`] makes it so.
    pub fn want(&mut self, folders: BTreeMap<PathBuf, bool>) {
        self.wanted = folders;
        self.failed.clear();
        self.missing.retain(|m| self.wanted.contains_key(m));
    }

    /// Watches what is wanted: each wanted folder that exists, and for each missing one its
    /// nearest existing parent. Returns what changed for the wanted folders.
    pub fn reconcile(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut target: BTreeMap<PathBuf, RecursiveMode> = BTreeMap::new();
        let mut now_missing = Vec::new();
        for (folder, recursive) in &self.wanted {
            if self.failed.contains(folder) {
                continue;
            }
            if folder.is_dir() {
                let mode = if *recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
                let slot = target.entry(folder.clone()).or_insert(mode);
                if mode == RecursiveMode::Recursive {
                    *slot = mode;
                }
                if self.missing.contains(folder) {
                    changes.push(Change::Back(folder.clone()));
                }
            } else {
                if !self.missing.contains(folder) {
                    changes.push(Change::Missing(folder.clone()));
                }
                now_missing.push(folder.clone());
                if let Some(parent) = folder.ancestors().skip(1).find(|a| a.is_dir()) {
                    target.entry(parent.to_path_buf()).or_insert(RecursiveMode::NonRecursive);
                }
            }
        }
        self.missing = now_missing;
        // Unwatch what is no longer wanted or changes mode (a removed folder's watch is gone
        // already, so an error here means nothing).
        let stale: Vec<PathBuf> = self
            .current
            .iter()
            .filter(|(p, m)| target.get(*p) != Some(m) || !p.is_dir())
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            let _ = self.debouncer.unwatch(&p);
            self.current.remove(&p);
        }
        for (path, mode) in target {
            if self.current.contains_key(&path) {
                continue;
            }
            match self.debouncer.watch(&path, mode) {
                Ok(()) => {
                    self.current.insert(path, mode);
                }
                Err(e) => {
                    let wanted: Vec<PathBuf> = self.wanted.keys().filter(|w| w.starts_with(&path)).cloned().collect();
                    for w in wanted {
                        self.failed.push(w.clone());
                        changes.push(Change::Failed(w, explain(Some(&path), &e)));
                    }
                }
            }
        }
        changes
    }
}

/// The value of an inotify limit, as `/proc` says.
fn limit(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// A `notify` error in words, naming the inotify limit and how to raise it when one is hit.
pub fn explain(path: Option<&Path>, e: &notify::Error) -> String {
    let what = match path {
        Some(p) => format!("cannot watch {}", p.display()),
        None => "cannot start watching files".to_string(),
    };
    let raise = |name: &str, now: String, more: &str| {
        format!(
            "{what}: the system's limit fs.inotify.{name} ({now}) is reached; raise it with `sysctl -w fs.inotify.{name}={more}` (and put `fs.inotify.{name} = {more}` in /etc/sysctl.d/90-luavirt.conf to keep it), then send luavirt watch SIGHUP"
        )
    };
    let os_error = match &e.kind {
        notify::ErrorKind::Io(io) => io.raw_os_error(),
        _ => None,
    };
    match (&e.kind, os_error) {
        (notify::ErrorKind::MaxFilesWatch, _) | (_, Some(libc::ENOSPC)) => {
            raise("max_user_watches", limit("max_user_watches"), "524288")
        }
        (_, Some(libc::EMFILE)) => raise("max_user_instances", limit("max_user_instances"), "1024"),
        _ => format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inotify_limits_are_named_with_the_way_to_raise_them() {
        let e = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        let m = explain(Some(Path::new("/srv/ds")), &e);
        assert!(m.starts_with("cannot watch /srv/ds: the system's limit fs.inotify.max_user_watches ("), "{m}");
        assert!(m.contains("sysctl -w fs.inotify.max_user_watches=524288"), "{m}");
        let e = notify::Error::io(std::io::Error::from_raw_os_error(libc::EMFILE));
        let m = explain(None, &e);
        assert!(m.contains("fs.inotify.max_user_instances") && m.contains("sysctl -w"), "{m}");
        let e = notify::Error::path_not_found();
        assert!(!explain(None, &e).contains("sysctl"));
    }
}
