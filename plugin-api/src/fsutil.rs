//! State files written so a crash never leaves a half-written one, per-object locks so two
//! luavirt processes never lose each other's changes, and folders and files private to their
//! owner whatever the umask (state and run folders 0700, state files 0600).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Mode of the folders luavirt creates for its state: owner only.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of the files luavirt creates for its state (definitions, records, memory files).
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates folder `dir` and its missing parents with mode 0700. Folders that exist keep
/// their mode (a state folder given by the user is theirs to set).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    match DirBuilder::new().mode(PRIVATE_DIR).create(dir) {
        // The umask may have taken bits off: set the mode exactly.
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the new file `path` with mode 0600 whatever the umask; fails if it exists.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new().write(true).create_new(true).mode(PRIVATE_FILE).open(path)?;
    f.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))?;
    Ok(f)
}

/// Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename over
/// `path`, fsync of the folder. Readers see the old content or the new, never a mix. A new
/// file gets mode 0600; a replaced one keeps its mode (a `.vmx` is often 0755).
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
        let mut f = create_private_file(&tmp)?;
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

/// Removes the temporary files [`write_atomic`] left in `dir` when its process was killed
/// between creating and renaming one (`.NAME.tmp-PID-N` of a PID that no longer runs). Once
/// per folder per process: a folder of 10,000 definitions is listed once by a script that
/// changes them all, not once per change; what a process killed later leaves is for the next
/// process.
pub fn remove_stale_temporaries(dir: &Path) {
    static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if swept.iter().any(|d| d == dir) {
            return;
        }
        swept.push(dir.to_path_buf());
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp-"))
            .and_then(|(_, tail)| tail.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(e.path());
        }
    }
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
    let file = open_lock_file(path)?;
    file.lock()?;
    Ok(LockGuard { _file: file, path: path.to_path_buf() })
}

/// Opens (creating if missing, mode 0600 in a 0700 folder) the lock file `path`.
fn open_lock_file(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(PRIVATE_FILE).open(path)
}

/// Removes file `path` if it exists, then syncs its folder so the removal survives a crash.
pub fn remove_durably(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
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

/// The machine's own state folder, which `qemu:///system` names (as libvirt's system
/// connection keeps its state under `/var/lib/libvirt`).
pub const SYSTEM_STATE_DIR: &str = "/var/lib/luavirt";

/// The state folder for a connection: its `?state=DIR`, else [`SYSTEM_STATE_DIR`] for a
/// `qemu:///system`, else [`default_state_dir`].
pub fn state_dir_for(uri: &crate::Uri) -> PathBuf {
    match uri.param("state") {
        Some(dir) => PathBuf::from(dir),
        None if uri.scheme == "qemu" && uri.path == "/system" => PathBuf::from(SYSTEM_STATE_DIR),
        None => default_state_dir(),
    }
}

/// Whether this process runs as root.
pub fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Takes an exclusive lock on `path` if nobody holds it; `None` when someone does.
pub fn try_lock_exclusive(path: &Path) -> io::Result<Option<LockGuard>> {
    let file = open_lock_file(path)?;
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
    fn qemu_system_is_the_machines_state_folder_whatever_the_environment() {
        let uri = |u: &str| crate::Uri::parse(u).unwrap();
        assert_eq!(state_dir_for(&uri("qemu:///system")), Path::new("/var/lib/luavirt"));
        assert_eq!(state_dir_for(&uri("qemu:///system?state=/srv/b")), Path::new("/srv/b"));
        assert_eq!(state_dir_for(&uri("qemu:///session")), default_state_dir());
    }

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
        let fresh = dir.join("fresh");
        write_atomic(&fresh, b"x").unwrap();
        assert_eq!(fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_file(&fresh).unwrap();
        let missing = dir.join("no/such/dir/file");
        assert!(write_atomic(&missing, b"x").is_err());
        // A temporary file of a killed writer goes; another's stays.
        fs::write(dir.join(".state.json.tmp-999999999-0"), b"half").unwrap();
        fs::write(dir.join(format!(".state.json.tmp-{}-7", std::process::id())), b"mine").unwrap();
        remove_stale_temporaries(&dir);
        assert!(!dir.join(".state.json.tmp-999999999-0").exists());
        assert!(dir.join(format!(".state.json.tmp-{}-7", std::process::id())).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_folders_are_0700_whatever_the_umask() {
        let dir = std::env::temp_dir().join(format!("lv-fsutil-private-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        // SAFETY: umask has no memory effects; tests in this binary do not depend on it.
        let old = unsafe { libc::umask(0) };
        create_private_dir(&dir.join("a/b")).unwrap();
        let lock = lock_exclusive(&dir.join("a/l.lock")).unwrap();
        unsafe { libc::umask(old) };
        for d in [dir.clone(), dir.join("a"), dir.join("a/b")] {
            assert_eq!(fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700, "{}", d.display());
        }
        assert_eq!(fs::metadata(lock.path()).unwrap().permissions().mode() & 0o777, 0o600);
        drop(lock);
        fs::remove_dir_all(&dir).unwrap();
    }
}
