//! Running `qemu-img`, which makes and merges the VMDK deltas of snapshots: its errors come
//! back with the command line and what qemu-img said.

use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

/// Runs `qemu-img ARGS` in folder `dir` (relative names in ARGS start there); returns its
/// standard output.
pub fn run(dir: &Path, args: &[&str]) -> Result<String, DriverError> {
    let out = luavirt_plugin_api::child::output(luavirt_plugin_api::child::tool("qemu-img").current_dir(dir).args(args)).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "qemu-img is not installed; the vmx driver makes and merges VMDK deltas with it (apt-get install qemu-utils)"
                .to_string()
        } else {
            format!("qemu-img cannot be run: {e}")
        };
        DriverError::new(ErrorCode::Hypervisor, hint)
    })?;
    if !out.status.success() {
        return Err(DriverError::new(
            ErrorCode::Hypervisor,
            format!(
                "qemu-img {} (in {}) failed: {}",
                args.join(" "),
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
