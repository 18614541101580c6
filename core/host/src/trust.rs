//! Whether a file of code may be run at all: a driver (before `dlopen`, which runs the
//! object's constructors, so refusing afterwards is too late) or a policy script (policies run
//! with luavirt's rights).
//!
//! The rule is OpenSSH's StrictModes, applied to the real path (symlinks resolved): the file
//! or folder and every folder above it, up to `/`, are owned by root or by the user luavirt
//! runs as (its effective uid), and none is writable by group or others, with one exception:
//! a folder *above* the checked folder may be world-writable if it has the sticky bit
//! (`/tmp`), because there no one can rename or remove an entry they do not own. The file's
//! own folder never may: anyone could drop a file there. The file is then used by that real
//! path, so nothing can be swapped in between the check and the use.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const GROUP_OR_OTHERS_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// What the checked file holds, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// A driver plugin.
    Driver,
    /// A policy script (or a folder of them).
    Policy,
}

impl Holds {
    fn noun(self) -> &'static str {
        match self {
            Holds::Driver => "driver",
            Holds::Policy => "policy",
        }
    }
}

/// Checks the driver file at `path` and returns its real path to load, or the reason it may
/// not be loaded.
pub fn check(path: &Path) -> Result<PathBuf, String> {
    check_file(path, Holds::Driver)
}

/// Checks the regular file at `path` (and every folder above it); returns its real path.
pub fn check_file(path: &Path, holds: Holds) -> Result<PathBuf, String> {
    let real = path.canonicalize().map_err(|e| format!("cannot resolve its path: {e}"))?;
    let meta = std::fs::metadata(&real).map_err(|e| format!("cannot read {}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", real.display()));
    }
    check_one(&real, &meta, false, holds)?;
    check_above(&real, holds)?;
    Ok(real)
}

/// Checks the folder at `path` (and every folder above it); returns its real path.
pub fn check_folder(path: &Path, holds: Holds) -> Result<PathBuf, String> {
    let real = path.canonicalize().map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    let meta = std::fs::metadata(&real).map_err(|e| format!("cannot read folder {}: {e}", real.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a folder", real.display()));
    }
    check_one(&real, &meta, false, holds)?;
    check_above(&real, holds)?;
    Ok(real)
}

/// Checks the folders above `real`: its own folder strictly, the ones above that may be sticky.
fn check_above(real: &Path, holds: Holds) -> Result<(), String> {
    for (i, dir) in real.ancestors().skip(1).enumerate() {
        let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read folder {}: {e}", dir.display()))?;
        check_one(dir, &meta, i > 0, holds)?;
    }
    Ok(())
}

/// Checks one file or folder; `sticky_ok` lets a sticky folder be world-writable.
fn check_one(p: &Path, meta: &std::fs::Metadata, sticky_ok: bool, holds: Holds) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
    let kind = if meta.is_dir() { "folder" } else { "file" };
    let noun = holds.noun();
    if owner != 0 && owner != me {
        return Err(format!(
            "not loaded: {kind} {} is owned by uid {owner}, not by root or by the user luavirt runs as (uid {me}); a {noun} must be trusted as much as luavirt itself: chown it",
            p.display()
        ));
    }
    if mode & GROUP_OR_OTHERS_WRITE != 0 && !(sticky_ok && mode & STICKY != 0) {
        let who = if mode & 0o002 != 0 { "anyone" } else { "its group" };
        return Err(format!(
            "not loaded: {kind} {} is writable by {who} (mode {mode:04o}), who could replace the {noun}: run chmod go-w {}",
            p.display(),
            p.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn set_mode(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// `<tmp>/lv-trust-N/drivers/d.so` with explicit modes: 0755 folders, a 0644 file.
    fn layout(name: &str) -> (Dir, PathBuf) {
        let top = std::env::temp_dir().join(format!("lv-trust-{}-{name}", std::process::id()));
        let dir = top.join("drivers");
        std::fs::create_dir_all(&dir).unwrap();
        let so = dir.join("d.so");
        std::fs::write(&so, "not loaded by this test").unwrap();
        set_mode(&top, 0o755);
        set_mode(&dir, 0o755);
        set_mode(&so, 0o644);
        (Dir(top), so)
    }

    #[test]
    fn a_file_and_folders_owned_by_us_and_writable_by_no_one_else_pass() {
        let (_d, so) = layout("ok");
        assert_eq!(check(&so).unwrap(), so.canonicalize().unwrap());
        // Through a symlink elsewhere: the real path is what is checked and loaded.
        let link = so.parent().unwrap().parent().unwrap().join("link.so");
        std::os::unix::fs::symlink(&so, &link).unwrap();
        assert_eq!(check(&link).unwrap(), so.canonicalize().unwrap());
    }

    #[test]
    fn writable_files_and_folders_are_refused_with_the_fix() {
        let (_d, so) = layout("modes");
        let dir = so.parent().unwrap().to_path_buf();
        set_mode(&so, 0o666);
        let e = check(&so).unwrap_err();
        assert!(e.contains(&format!("file {} is writable by anyone (mode 0666)", so.display())), "{e}");
        assert!(e.contains(&format!("chmod go-w {}", so.display())), "{e}");
        set_mode(&so, 0o664);
        assert!(check(&so).unwrap_err().contains("is writable by its group (mode 0664)"));
        set_mode(&so, 0o644);
        set_mode(&dir, 0o777);
        let e = check(&so).unwrap_err();
        assert!(e.contains(&format!("folder {} is writable by anyone (mode 0777)", dir.display())), "{e}");
        // The sticky bit does not make the driver's own folder safe: anyone may add files.
        set_mode(&dir, 0o1777);
        assert!(check(&so).unwrap_err().contains("(mode 1777)"));
        // Above it, a sticky world-writable folder (like /tmp) is fine; without the bit it is not.
        set_mode(&dir, 0o755);
        let top = dir.parent().unwrap();
        set_mode(top, 0o1777);
        check(&so).unwrap();
        set_mode(top, 0o777);
        assert!(check(&so).unwrap_err().contains(&format!("folder {} is writable by anyone", top.display())));
        set_mode(top, 0o755);
    }

    #[test]
    fn a_file_owned_by_someone_else_is_refused() {
        // SAFETY: as in check().
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give a file away; the e2e tests cover it as root too
        }
        let (_d, so) = layout("owner");
        std::os::unix::fs::chown(&so, Some(65534), None).unwrap();
        let e = check(&so).unwrap_err();
        assert!(e.contains(&format!("file {} is owned by uid 65534, not by root", so.display())), "{e}");
        assert!(check(Path::new("/nonexistent/x.so")).unwrap_err().starts_with("cannot resolve its path"));
    }

    #[test]
    fn policy_folders_are_checked_like_driver_folders() {
        let (_d, so) = layout("policy");
        let dir = so.parent().unwrap().to_path_buf();
        assert_eq!(check_folder(&dir, Holds::Policy).unwrap(), dir.canonicalize().unwrap());
        set_mode(&dir, 0o775);
        let e = check_folder(&dir, Holds::Policy).unwrap_err();
        assert!(
            e.contains("is writable by its group (mode 0775), who could replace the policy: run chmod go-w"),
            "{e}"
        );
        set_mode(&dir, 0o755);
        assert!(check_folder(&so, Holds::Policy).unwrap_err().ends_with("is not a folder"));
    }
}
