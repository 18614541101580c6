//! Delta chains: a VMDK and the parents its `parentFileNameHint` leads to, checked the way
//! VMware and QEMU open them (each parent exists, and has the CID its child recorded as
//! `parentCID`), and the images of a few folders that build on a given image.

use crate::blockinfo::resolve;
use crate::datastore::Datastores;
use crate::vmdk::{Image, OpenError};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::{Path, PathBuf};

/// Longest chain followed before calling it a loop.
const MAX_CHAIN: usize = 255;

/// The parent file of `image`, resolved through the datastores; `None` for a base disk.
pub fn parent_of(ds: &Datastores, image: &Image, what: &str) -> Result<Option<PathBuf>, DriverError> {
    match image.descriptor.parent_hint() {
        None => Ok(None),
        Some(hint) => {
            resolve(ds, image.dir(), hint, &format!("{what}: parentFileNameHint of {}", image.path.display())).map(Some)
        }
    }
}

/// Opens `path` for a chain; `named_by` says which file or line names it.
fn open(path: &Path, named_by: &str) -> Result<Image, DriverError> {
    Image::open(path).map_err(|e| match e {
        OpenError::Missing => DriverError::new(
            ErrorCode::Io,
            format!("{named_by} names {}, which does not exist; restore it (nothing was changed)", path.display()),
        ),
        OpenError::Bad(why) => DriverError::new(
            ErrorCode::CorruptState,
            format!("{named_by} names {}, which {why} (nothing was changed)", path.display()),
        ),
    })
}

/// The chain from `top` down to its base disk, top first, every link checked. `what` says
/// where `top` comes from (`Disk sda of domain 'web' (web.vmx:15)`).
pub fn read(ds: &Datastores, top: &Path, what: &str) -> Result<Vec<Image>, DriverError> {
    let mut chain = vec![open(top, what)?];
    loop {
        let child = chain.last().expect("the chain has its top");
        let Some(parent_path) = parent_of(ds, child, what)? else {
            return Ok(chain);
        };
        let named_by = format!("{what}: parentFileNameHint of {}", child.path.display());
        if chain.iter().any(|i| i.path == parent_path) || chain.len() > MAX_CHAIN {
            return Err(DriverError::new(
                ErrorCode::CorruptState,
                format!(
                    "{named_by} leads back to {} (a loop); fix the hint (nothing was changed)",
                    parent_path.display()
                ),
            ));
        }
        let parent = open(&parent_path, &named_by)?;
        if let (Some(want), Some(has)) = (child.descriptor.parent_cid(), parent.descriptor.cid())
            && want != has
        {
            return Err(DriverError::new(
                ErrorCode::CorruptState,
                format!(
                    "{what}: {} expects its parent {} to have CID {want:08x}, but it has {has:08x}: the parent was written after the delta was made, and VMware and QEMU refuse to read this chain. Restore the parent from a backup (or, if it holds the same data, set parentCID={has:08x} in {}) (nothing was changed)",
                    child.path.display(),
                    parent_path.display(),
                    child.path.display()
                ),
            ));
        }
        chain.push(parent);
    }
}

/// The files of the chain below `top`, top first, as far as they can be read (for reports,
/// which must not fail on a damaged chain).
pub fn paths(ds: &Datastores, top: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut at = Some(top.to_path_buf());
    while let Some(p) = at.take() {
        if out.contains(&p) || out.len() > MAX_CHAIN {
            break;
        }
        let Ok(image) = Image::open(&p) else {
            break;
        };
        out.push(p);
        at = parent_of(ds, &image, "").ok().flatten();
    }
    out
}

/// The VMDK descriptors found in a few folders, each with its parent.
pub struct Images {
    links: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Images {
    /// Reads every `.vmdk` descriptor in `folders` (extents and unreadable files are skipped:
    /// they build on nothing).
    pub fn scan(ds: &Datastores, folders: &[&Path]) -> Images {
        let mut links = Vec::new();
        let mut seen: Vec<&Path> = Vec::new();
        for folder in folders {
            if seen.contains(folder) {
                continue;
            }
            seen.push(folder);
            for e in std::fs::read_dir(folder).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().to_ascii_lowercase();
                if name.starts_with('.') || !name.ends_with(".vmdk") {
                    continue;
                }
                let path = crate::datastore::normalize(&e.path());
                if let Ok(image) = Image::open(&path) {
                    let parent = parent_of(ds, &image, "").ok().flatten();
                    links.push((path, parent));
                }
            }
        }
        Images { links }
    }

    /// The images whose parent is `of`.
    pub fn children(&self, of: &Path) -> Vec<PathBuf> {
        self.links.iter().filter(|(_, p)| p.as_deref() == Some(of)).map(|(c, _)| c.clone()).collect()
    }
}
