//! Disk images through `qemu-img`: what an image is (format, sizes, backing chain), overlays,
//! internal snapshots, merges. The tool ends with the luavirt process that runs it.

use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::Deserialize;

/// Runs `qemu-img ARGS`; its standard output, or an error with what it said.
pub fn run(args: &[&str]) -> Result<String, DriverError> {
    let out = luavirt_plugin_api::child::output(luavirt_plugin_api::child::tool("qemu-img").args(args)).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "qemu-img is not installed; the libxl driver reads images and takes snapshots with it (apt-get install qemu-utils)".to_string()
        } else {
            format!("qemu-img cannot be run: {e}")
        };
        DriverError::new(ErrorCode::Hypervisor, why)
    })?;
    if !out.status.success() {
        return Err(DriverError::new(
            ErrorCode::Hypervisor,
            format!("qemu-img {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One image of a chain, as `qemu-img info` reports it.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageInfo {
    /// Its file.
    pub filename: String,
    /// Its format (qemu-img's name: `vpc` for vhd).
    pub format: String,
    /// Its size as the guest sees it.
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    /// Bytes it takes on the host.
    #[serde(rename = "actual-size", default)]
    pub actual_size: Option<u64>,
    /// Its cluster size, for formats that have one.
    #[serde(rename = "cluster-size", default)]
    pub cluster_size: Option<u64>,
    /// Its backing file, as it names it.
    #[serde(rename = "full-backing-filename", default)]
    pub backing: Option<String>,
    /// Internal snapshots.
    #[serde(default)]
    pub snapshots: Vec<Tag>,
}

/// An internal snapshot.
#[derive(Clone, Debug, Deserialize)]
pub struct Tag {
    /// Its name.
    pub name: String,
}

fn parse<T: for<'a> Deserialize<'a>>(json: &str, path: &str) -> Result<T, DriverError> {
    serde_json::from_str(json).map_err(|e| {
        DriverError::new(ErrorCode::Hypervisor, format!("Unexpected output of qemu-img info for {path}: {e}"))
    })
}

/// The chain of `path` (opened as `format`, qemu-img's name), top first.
pub fn chain(path: &str, format: &str) -> Result<Vec<ImageInfo>, DriverError> {
    parse(&run(&["info", "--output=json", "--backing-chain", "-U", "-f", format, path])?, path)
}

/// The files of the chain of `path` (its format detected), top first; as far as they read.
pub fn chain_files(path: &str) -> Vec<String> {
    run(&["info", "--output=json", "--backing-chain", "-U", path])
        .ok()
        .and_then(|json| serde_json::from_str::<Vec<ImageInfo>>(&json).ok())
        .map(|c| c.into_iter().map(|i| i.filename).collect())
        .unwrap_or_else(|| vec![path.to_string()])
}

/// `path` alone, its format detected.
pub fn info(path: &str) -> Result<ImageInfo, DriverError> {
    parse(&run(&["info", "--output=json", "-U", path])?, path)
}

/// Makes the qcow2 overlay `overlay` on `base` (of qemu-img format `base_format`).
pub fn create_overlay(overlay: &str, base: &str, base_format: &str) -> Result<(), DriverError> {
    run(&["create", "-q", "-f", "qcow2", "-F", base_format, "-b", base, overlay]).map(drop)
}

/// The internal snapshots of `image`.
pub fn tags(image: &str) -> Result<Vec<String>, DriverError> {
    Ok(info(image)?.snapshots.into_iter().map(|t| t.name).collect())
}

/// Takes (`-c`), applies (`-a`) or deletes (`-d`) internal snapshot `tag` of `image`.
pub fn tag(op: &str, tag: &str, image: &str) -> Result<(), DriverError> {
    run(&["snapshot", op, tag, image]).map(drop)
}

/// Merges the qcow2 `top` into its backing image.
pub fn commit(top: &str) -> Result<(), DriverError> {
    run(&["commit", "-q", "-f", "qcow2", top]).map(drop)
}

/// Points the qcow2 `image` at `base` without copying (its data is there already).
pub fn rebase_unsafe(image: &str, base: &str, base_format: &str) -> Result<(), DriverError> {
    run(&["rebase", "-u", "-f", "qcow2", "-F", base_format, "-b", base, image]).map(drop)
}

/// The backing file `image` names, if any (`None` too when it cannot be read).
pub fn backing_of(image: &str) -> Option<String> {
    info(image).ok()?.backing
}

/// xl's name for a format qemu-img names `format` (`vpc` is `vhd`).
pub fn xl_name(format: &str) -> &str {
    if format == "vpc" { "vhd" } else { format }
}
