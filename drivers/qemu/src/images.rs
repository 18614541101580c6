//! Disk images, read through `qemu-img info`.

use luavirt_plugin_api::domain::Disk;
use luavirt_plugin_api::records::{BackingImage, BlockInfo};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::Deserialize;

/// What `qemu-img info --output=json` says of one image of a chain.
#[derive(Debug, Deserialize)]
struct ImageInfo {
    filename: String,
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "actual-size", default)]
    actual_size: Option<u64>,
    #[serde(rename = "cluster-size", default)]
    cluster_size: Option<u64>,
}

/// Checks that a disk's image exists and can be read; the error names the domain, disk,
/// file and the definition's line, and says what to do.
pub fn check_readable(domain: &str, disk: &Disk, path: &str) -> Result<(), DriverError> {
    let at = if disk.line > 0 { format!(" (definition line {})", disk.line) } else { String::new() };
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(m) if m.is_dir() => Err(DriverError::new(
            ErrorCode::Io,
            format!(
                "Disk {} of domain '{domain}': {path} is a directory, not an image{at}; fix its <source>",
                disk.target
            ),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DriverError::new(
            ErrorCode::Io,
            format!(
                "Disk {} of domain '{domain}': image {path} does not exist{at}; create it (qemu-img create -f {} {path} SIZE) or fix its <source>",
                disk.target,
                disk.format_or_raw()
            ),
        )),
        Err(e) => Err(DriverError::new(
            ErrorCode::Io,
            format!(
                "Disk {} of domain '{domain}': cannot read image {path}{at}: {e}; check its permissions",
                disk.target
            ),
        )),
    }
}

/// Runs `qemu-img` with `args`; its stdout, or an error carrying its stderr.
pub fn qemu_img(args: &[&str]) -> Result<String, DriverError> {
    let out =
        luavirt_plugin_api::child::output(luavirt_plugin_api::child::tool("qemu-img").args(args)).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "; install it: apt-get install -y qemu-utils"
            } else {
                ""
            };
            DriverError::new(ErrorCode::Hypervisor, format!("Cannot run qemu-img: {e}{hint}"))
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(DriverError::new(ErrorCode::Hypervisor, format!("qemu-img {} failed: {err}", args.join(" "))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The block info record of a disk: format, capacity, allocation, then its backing chain.
pub fn block_info(domain: &str, disk: &Disk, path: &str) -> Result<BlockInfo, DriverError> {
    check_readable(domain, disk, path)?;
    let mut args = vec!["info", "--output=json", "--backing-chain", "-U"];
    if let Some(f) = &disk.format {
        args.extend(["-f", f.as_str()]);
    }
    args.push(path);
    let json = qemu_img(&args)
        .map_err(|e| DriverError::new(e.code, format!("Disk {} of domain '{domain}': {}", disk.target, e.message)))?;
    let chain: Vec<ImageInfo> = serde_json::from_str(&json).map_err(|e| {
        DriverError::new(ErrorCode::Hypervisor, format!("Unexpected output of qemu-img info for {path}: {e}"))
    })?;
    let top = chain
        .first()
        .ok_or_else(|| DriverError::new(ErrorCode::Hypervisor, format!("qemu-img info printed no image for {path}")))?;
    Ok(BlockInfo {
        format: top.format.clone(),
        capacity: top.virtual_size,
        allocation: top.actual_size,
        cluster_size: top.cluster_size,
        physical: physical_size(path),
        backing: chain[1..]
            .iter()
            .map(|i| BackingImage { path: i.filename.clone(), format: i.format.clone() })
            .collect(),
    })
}

/// Creates a qcow2 overlay `overlay` on top of `backing` (of format `backing_format`).
pub fn create_overlay(overlay: &str, backing: &str, backing_format: &str) -> Result<(), DriverError> {
    qemu_img(&["create", "-q", "-f", "qcow2", "-F", backing_format, "-b", backing, overlay]).map(|_| ())
}

/// The backing file of `image` as recorded in it (absolute, as luavirt writes them), if any.
pub fn backing_of(image: &str) -> Result<Option<String>, DriverError> {
    #[derive(Deserialize)]
    struct Info {
        #[serde(rename = "full-backing-filename")]
        full: Option<String>,
        #[serde(rename = "backing-filename")]
        plain: Option<String>,
    }
    let json = qemu_img(&["info", "--output=json", "-U", image])?;
    let info: Info = serde_json::from_str(&json).map_err(|e| {
        DriverError::new(ErrorCode::Hypervisor, format!("Unexpected output of qemu-img info for {image}: {e}"))
    })?;
    Ok(info.full.or(info.plain))
}

/// Names of the internal snapshots in `image` (none unless it is qcow2).
pub fn internal_snapshots(image: &str) -> Result<Vec<String>, DriverError> {
    #[derive(Deserialize)]
    struct Snap {
        name: String,
    }
    #[derive(Deserialize)]
    struct Info {
        #[serde(default)]
        snapshots: Vec<Snap>,
    }
    let json = qemu_img(&["info", "--output=json", "-U", image])?;
    let info: Info = serde_json::from_str(&json).map_err(|e| {
        DriverError::new(ErrorCode::Hypervisor, format!("Unexpected output of qemu-img info for {image}: {e}"))
    })?;
    Ok(info.snapshots.into_iter().map(|s| s.name).collect())
}

/// The format of `image`, as `qemu-img info` detects it.
pub fn format_of(image: &str) -> Result<String, DriverError> {
    #[derive(Deserialize)]
    struct Info {
        format: String,
    }
    let json = qemu_img(&["info", "--output=json", "-U", image])?;
    let info: Info = serde_json::from_str(&json).map_err(|e| {
        DriverError::new(ErrorCode::Hypervisor, format!("Unexpected output of qemu-img info for {image}: {e}"))
    })?;
    Ok(info.format)
}

/// Whether `image`'s own layer (not its backing chain) holds any data: an overlay that a
/// guest wrote to. False when it cannot be read.
pub fn has_own_data(image: &str) -> bool {
    #[derive(Deserialize)]
    struct Extent {
        depth: u64,
        data: bool,
    }
    let Ok(json) = qemu_img(&["map", "--output=json", "-U", image]) else { return false };
    serde_json::from_str::<Vec<Extent>>(&json).is_ok_and(|map| map.iter().any(|e| e.depth == 0 && e.data))
}

/// The bytes `path` takes as a file: its length, or for a block device its size.
pub fn physical_size(path: &str) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::End(0)).ok()
}
