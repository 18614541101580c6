//! What `domain_get_block_info` reports of a disk, read from the VMDK files themselves: format
//! `vmdk`, capacity (the sum of the descriptor's extents), allocation (the bytes the image's
//! files take on the host) and the chain of parents through `parentFileNameHint`, nearest
//! first. A child whose `parentCID` is not its parent's `CID` is a chain VMware refuses to
//! open; that is logged as a warning.

use crate::datastore::{Datastores, FileRef, parse_ref};
use crate::devices::{Device, Medium};
use crate::vm::Vm;
use crate::vmdk::{Image, OpenError};
use luavirt_plugin_api::kit::{Call, Level};
use luavirt_plugin_api::records::{BackingImage, BlockInfo};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Longest parent chain followed before calling it a loop.
const MAX_CHAIN: usize = 255;

/// Bytes the files take on the host, each file once.
/// The bytes the descriptor and its extents take as files (their lengths).
fn length(files: &[PathBuf]) -> u64 {
    let mut seen: Vec<&PathBuf> = Vec::new();
    let mut total = 0;
    for f in files {
        if !seen.contains(&f) {
            seen.push(f);
            total += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

fn allocation(files: &[PathBuf]) -> u64 {
    let mut seen: Vec<&PathBuf> = Vec::new();
    let mut total = 0;
    for f in files {
        if seen.contains(&f) {
            continue;
        }
        seen.push(f);
        if let Ok(m) = std::fs::metadata(f) {
            total += m.blocks() * 512;
        }
    }
    total
}

/// The local file that `text` (written in a file in folder `base`) names, or an error saying
/// which `?datastore.NAME=` to add. `what` names the reference for messages.
pub(crate) fn resolve(ds: &Datastores, base: &Path, text: &str, what: &str) -> Result<PathBuf, DriverError> {
    ds.resolve(base, text).map_err(|u| {
        let message = match parse_ref(text) {
            FileRef::Foreign(_) => format!("{what} names {text}, a path on another host; copy the file onto a datastore and name it there"),
            _ => format!(
                "{what} names {}, on datastore '{}', which this connection does not map; add ?datastore.{}=/path/to/its/folder to the connection URI",
                ds.display(base, text),
                u.name,
                u.name
            ),
        };
        DriverError::new(ErrorCode::InvalidArg, message)
    })
}

/// The block info record of device `d` of `vm`.
pub fn record(vm: &Vm, name: &str, d: &Device, ds: &Datastores, call: &mut Call) -> Result<BlockInfo, DriverError> {
    let disk = format!("Disk {} of domain '{name}'", d.target);
    let at = format!("{}:{}", vm.path.display(), d.file_line.unwrap_or(0));
    let file = match &d.medium {
        Medium::Disk(f) => f,
        Medium::CdromImage(f) => return Ok(media_record(ds.resolve(vm.dir(), f).ok())),
        _ => return Ok(media_record(None)),
    };
    let path = resolve(ds, vm.dir(), file, &format!("{disk}: {at}"))?;
    let top = match Image::open(&path) {
        Ok(i) => i,
        Err(OpenError::Missing) => {
            return Err(DriverError::new(
                ErrorCode::Io,
                format!(
                    "{disk}: {at} names {} ({}), which does not exist; restore the file or fix {}.fileName",
                    ds.display(vm.dir(), file),
                    path.display(),
                    d.node
                ),
            ));
        }
        Err(OpenError::Bad(why)) => {
            return Err(DriverError::new(ErrorCode::CorruptState, format!("{disk}: {} {why}", path.display())));
        }
    };
    let mut files = vec![top.path.clone()];
    for extent in top.extent_files() {
        if !extent.exists() {
            return Err(DriverError::new(
                ErrorCode::Io,
                format!("{disk}: extent {} of {} does not exist; restore it", extent.display(), path.display()),
            ));
        }
        files.push(extent);
    }
    let mut r = BlockInfo {
        format: "vmdk".to_string(),
        capacity: top.descriptor.capacity(),
        allocation: Some(allocation(&files)),
        backing: Vec::new(),
        cluster_size: None,
        physical: Some(length(&files)),
    };
    let mut child = top;
    let mut seen = vec![child.path.clone()];
    while let Some(hint) = child.descriptor.parent_hint().map(str::to_string) {
        let what = format!("{disk}: parentFileNameHint of {}", child.path.display());
        let parent_path = resolve(ds, child.dir(), &hint, &what)?;
        if seen.contains(&parent_path) || seen.len() > MAX_CHAIN {
            return Err(DriverError::new(
                ErrorCode::CorruptState,
                format!("{what} leads back to {} (a loop); fix the hint", parent_path.display()),
            ));
        }
        let parent = match Image::open(&parent_path) {
            Ok(p) => p,
            Err(OpenError::Missing) => {
                return Err(DriverError::new(
                    ErrorCode::Io,
                    format!(
                        "{what} names {hint} ({}), which does not exist; restore the parent",
                        parent_path.display()
                    ),
                ));
            }
            Err(OpenError::Bad(why)) => {
                return Err(DriverError::new(
                    ErrorCode::CorruptState,
                    format!("{disk}: parent {} {why}", parent_path.display()),
                ));
            }
        };
        if let (Some(want), Some(has)) = (child.descriptor.parent_cid(), parent.descriptor.cid())
            && want != has
        {
            call.log(
                Level::Warning,
                &format!(
                    "{disk}: {} expects its parent {} to have CID {want:08x}, but it has {has:08x}; VMware refuses this chain (the parent was written after the child was made)",
                    child.path.display(),
                    parent_path.display()
                ),
            );
        }
        r.backing.push(BackingImage { path: ds.display_path(&parent_path), format: "vmdk".to_string() });
        seen.push(parent_path);
        child = parent;
    }
    Ok(r)
}

/// A CD-ROM's record: raw, with sizes when its image file is there.
fn media_record(file: Option<PathBuf>) -> BlockInfo {
    let mut r = BlockInfo { format: "raw".to_string(), ..BlockInfo::default() };
    if let Some(m) = file.and_then(|f| std::fs::metadata(f).ok()).filter(|m| m.is_file()) {
        r.capacity = m.len();
        r.allocation = Some(m.blocks() * 512);
    }
    r
}
