//! State files written so a crash never leaves a half-written one, and per-object locks so
//! two luavirt processes never lose each other's changes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename over
/// `path`, fsync of the folder. Readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        // The new file keeps the old one's permissions (a .vmx is often 0755).
        if let Ok(meta) = fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive lock on a lock file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
    path: PathBuf,
}

impl LockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes an exclusive lock on `path` (created with its folders if missing), waiting for any
/// other holder to release it.
pub fn lock_exclusive(path: &Path) -> io::Result<LockGuard> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    file.lock()?;
    Ok(LockGuard { _file: file, path: path.to_path_buf() })
}

/// luavirt's state folder, shared by the host and the drivers: `LUAVIRT_STATE_DIR` if set,
/// else `/var/lib/luavirt` for root, else `$XDG_DATA_HOME/luavirt`, else
/// `~/.local/share/luavirt`. A connection URI may name another with `?state=DIR`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LUAVIRT_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if running_as_root() {
        return PathBuf::from("/var/lib/luavirt");
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("luavirt");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/share/luavirt")
}

/// The state folder for a connection: its `?state=DIR`, else [`default_state_dir`].
pub fn state_dir_for(uri: &crate::Uri) -> PathBuf {
    uri.param("state").map(PathBuf::from).unwrap_or_else(default_state_dir)
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Takes an exclusive lock on `path` if nobody holds it; `None` when someone does.
pub fn try_lock_exclusive(path: &Path) -> io::Result<Option<LockGuard>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(LockGuard { _file: file, path: path.to_path_buf() })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temporary_files() {
        let dir = std::env::temp_dir().join(format!("lv-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("state.json");
        write_atomic(&p, b"one").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o751)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o751);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let missing = dir.join("no/such/dir/file");
        assert!(write_atomic(&missing, b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
