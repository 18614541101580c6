//! Files followed by `luavirt.watch{}` hooks: what each held when its hooks last saw it (or
//! when their own change was written), so an event whose file holds nothing new runs nothing.
//! That is what stops a hook that rewrites its own file: the content its change left is
//! recorded as seen, and the event the change causes finds nothing new.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most of a file handed to hooks as `ev.content`; larger files are known by size and time.
pub const MAX_CONTENT: u64 = 16 << 20;

/// What a file holds, in short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fingerprint {
    /// No such file.
    Gone,
    /// A hash of the whole content.
    Content(u64),
    /// Too large to read: size, modification time and inode.
    Large(u64, i64, u64),
}

/// A file as read now: its fingerprint and content (when small enough).
pub struct FileNow {
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// Its bytes, up to [`MAX_CONTENT`].
    pub content: Option<Vec<u8>>,
}

/// Reads `path` now.
pub fn read(path: &Path) -> FileNow {
    use std::os::unix::fs::MetadataExt;
    let gone = FileNow { fingerprint: Fingerprint::Gone, content: None };
    let Ok(file) = std::fs::File::open(path) else { return gone };
    let Ok(meta) = file.metadata() else { return gone };
    if !meta.is_file() {
        return gone;
    }
    if meta.len() > MAX_CONTENT {
        return FileNow { fingerprint: Fingerprint::Large(meta.len(), meta.mtime_nsec(), meta.ino()), content: None };
    }
    let mut bytes = Vec::new();
    if file.take(MAX_CONTENT + 1).read_to_end(&mut bytes).is_err() {
        return gone;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    FileNow { fingerprint: Fingerprint::Content(h.finish()), content: Some(bytes) }
}

/// What the hooks saw of each file.
#[derive(Default)]
pub struct Seen(BTreeMap<PathBuf, Fingerprint>);

impl Seen {
    /// Whether `now` is news for the hooks of `path`.
    pub fn is_new(&self, path: &Path, now: &Fingerprint) -> bool {
        match self.0.get(path) {
            Some(seen) => seen != now,
            None => *now != Fingerprint::Gone,
        }
    }

    /// Records what the hooks of `path` have seen (or their change left).
    pub fn record(&mut self, path: &Path, now: Fingerprint) {
        if now == Fingerprint::Gone {
            self.0.remove(path);
        } else {
            self.0.insert(path.to_path_buf(), now);
        }
    }

    /// Every file seen under `folder`.
    pub fn under(&self, folder: &Path) -> Vec<PathBuf> {
        self.0.keys().filter(|p| p.starts_with(folder)).cloned().collect()
    }
}

/// The files in `folder` (and below it when `recursive`), sorted.
pub fn list(folder: &Path, recursive: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![folder.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() && recursive {
                dirs.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}
