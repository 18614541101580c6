//! Delta VMDKs as VMware names and writes them.
//!
//! - A delta of `web01.vmdk` (or of its delta `web01-000002.vmdk`) is `web01-00000N.vmdk`,
//!   next to the `.vmx`. N is the next number of the folder: above every six-digit number
//!   its files already carry, whatever disk they belong to (vSphere: "the number ... is based
//!   on the files that already exist in the directory").
//! - It is made by `qemu-img create -f vmdk -b PARENT -F vmdk`: a hosted `monolithicSparse`
//!   file (descriptor embedded, one file per delta) with `parentCID` set to the parent's CID
//!   and `parentFileNameHint` relative to the delta's folder (the bare name when the parent
//!   is beside it). QEMU writes `ddb.adapterType = "ide"` and `ddb.virtualHWVersion = "4"`
//!   into it; the parent's values (and geometry) are copied over them, as VMware's deltas
//!   carry their disk's.

use crate::qemu_img;
use crate::vmdk::Image;
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::{Component, Path, PathBuf};

/// The disk database keys a delta takes from its parent.
const INHERITED: &[&str] = &[
    "ddb.adapterType",
    "ddb.virtualHWVersion",
    "ddb.geometry.cylinders",
    "ddb.geometry.heads",
    "ddb.geometry.sectors",
];

/// The delta number a file name carries: `x-000003.vmdk`, `x-000003-delta.vmdk`,
/// `x-000003-s001.vmdk` and `x-000003-sesparse.vmdk` carry 3.
pub fn number_of(file_name: &str) -> Option<u32> {
    let lower = file_name.to_ascii_lowercase();
    let body = lower.strip_suffix(".vmdk")?;
    let b = body.as_bytes();
    // The last `-DDDDDD` followed by the end or by `-`.
    (0..b.len().saturating_sub(6)).rev().find_map(|i| {
        let digits = &b[i + 1..i + 7];
        let after = b.get(i + 7);
        (b[i] == b'-' && digits.iter().all(u8::is_ascii_digit) && matches!(after, None | Some(b'-')))
            .then(|| body[i + 1..i + 7].parse().ok())
            .flatten()
    })
}

/// The name a disk's deltas start with: the file name without `.vmdk` and without the
/// number of the delta it may already be (`web01-000002.vmdk` → `web01`).
pub fn stem(file_name: &str) -> String {
    let body = match file_name.len().checked_sub(5) {
        Some(i) if file_name.is_char_boundary(i) && file_name[i..].eq_ignore_ascii_case(".vmdk") => &file_name[..i],
        _ => file_name,
    };
    let b = body.as_bytes();
    let numbered = b.len() > 7 && b[b.len() - 7] == b'-' && b[b.len() - 6..].iter().all(u8::is_ascii_digit);
    if numbered { body[..body.len() - 7].to_string() } else { body.to_string() }
}

/// Hands out delta names in one folder.
pub struct Namer {
    next: u32,
}

impl Namer {
    /// Starts above every delta number the files of `folder` carry.
    pub fn new(folder: &Path) -> Result<Namer, DriverError> {
        let entries = std::fs::read_dir(folder).map_err(|e| DriverError::io("read the folder", folder, e))?;
        let highest = entries.flatten().filter_map(|e| number_of(&e.file_name().to_string_lossy())).max().unwrap_or(0);
        Ok(Namer { next: highest + 1 })
    }

    /// The next delta's file name for a disk whose current file is named `file_name`.
    pub fn name(&mut self, file_name: &str) -> String {
        let n = self.next;
        self.next += 1;
        format!("{}-{n:06}.vmdk", stem(file_name))
    }
}

/// `to` as a path relative to folder `from` (both absolute and normalized).
pub fn relative(from: &Path, to: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c.as_os_str());
    }
    out.to_string_lossy().into_owned()
}

/// Makes the delta `name` in `folder` on `parent`, with its parent's disk database values.
/// On failure nothing is left behind.
pub fn create(folder: &Path, name: &str, parent: &Image) -> Result<PathBuf, DriverError> {
    let path = folder.join(name);
    if path.exists() {
        return Err(DriverError::new(
            ErrorCode::Exists,
            format!("{} already exists; luavirt does not overwrite files (nothing was changed)", path.display()),
        ));
    }
    let hint = relative(folder, &parent.path);
    let made = qemu_img::run(folder, &["create", "-q", "-f", "vmdk", "-b", &hint, "-F", "vmdk", name])
        .and_then(|_| inherit(&path, parent));
    if let Err(e) = made {
        // qemu-img may leave the new file behind when it fails.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Copies the parent's disk database values over the ones QEMU wrote.
fn inherit(path: &Path, parent: &Image) -> Result<(), DriverError> {
    let mut delta = Image::open(path).map_err(|_| {
        DriverError::new(
            ErrorCode::Hypervisor,
            format!("qemu-img made {}, but it does not read as a VMDK", path.display()),
        )
    })?;
    let mut changed = false;
    for key in INHERITED {
        if let (Some(want), Some(has)) = (parent.descriptor.get(key), delta.descriptor.get(key))
            && want != has
        {
            let want = want.to_string();
            delta.descriptor.set(key, &want, true);
            changed = true;
        }
    }
    if changed {
        delta.save().map_err(|e| DriverError::io("write the descriptor of", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_every_kind_of_delta_file() {
        assert_eq!(number_of("web01-000003.vmdk"), Some(3));
        assert_eq!(number_of("web01_1-000012-delta.vmdk"), Some(12));
        assert_eq!(number_of("x-000004-s001.VMDK"), Some(4));
        assert_eq!(number_of("x-000005-sesparse.vmdk"), Some(5));
        assert_eq!(number_of("web01.vmdk"), None);
        assert_eq!(number_of("web01-flat.vmdk"), None);
        assert_eq!(number_of("db-2024.vmdk"), None);
        assert_eq!(number_of("a-0000012.vmdk"), None, "seven digits are not a delta number");
        assert_eq!(number_of("web01-Snapshot3.vmsn"), None);
    }

    #[test]
    fn deltas_are_named_after_their_disk_with_the_folders_next_number() {
        assert_eq!(stem("web01.vmdk"), "web01");
        assert_eq!(stem("web01-000002.vmdk"), "web01");
        assert_eq!(stem("Büro-PC.VMDK"), "Büro-PC");
        assert_eq!(stem("Virtual Disk-000001.vmdk"), "Virtual Disk");
        let dir = std::env::temp_dir().join(format!("lv-vmx-namer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["app.vmdk", "app_1.vmdk", "app-000001.vmdk", "app_1-000004-delta.vmdk", "app-Snapshot9.vmsn"] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        let mut n = Namer::new(&dir).unwrap();
        // One number per delta, across the disks of one snapshot.
        assert_eq!(n.name("app-000001.vmdk"), "app-000005.vmdk");
        assert_eq!(n.name("app_1.vmdk"), "app_1-000006.vmdk");
        std::fs::remove_dir_all(&dir).unwrap();
        let empty = std::env::temp_dir().join(format!("lv-vmx-namer-e-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        assert_eq!(Namer::new(&empty).unwrap().name("disk.vmdk"), "disk-000001.vmdk");
        std::fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn parent_hints_are_relative_to_the_delta() {
        assert_eq!(relative(Path::new("/ds/vm"), Path::new("/ds/vm/a.vmdk")), "a.vmdk");
        assert_eq!(relative(Path::new("/ds/vm"), Path::new("/ds/lib/b.vmdk")), "../lib/b.vmdk");
        assert_eq!(relative(Path::new("/ds/vm"), Path::new("/mnt/s/c.vmdk")), "../../mnt/s/c.vmdk");
    }
}
