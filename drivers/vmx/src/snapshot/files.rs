//! Writing a snapshot operation's `.vmx` and `.vmsd` together: each atomically, neither when
//! the VMware client changed one since luavirt read it, and the `.vmx` put back when the
//! `.vmsd` cannot be written, so the two never disagree.
//!
//! The `.vmx` goes first: it is the switch (it names the disks' files). If luavirt is killed
//! between the two writes, the intent record (`super::intent`) lets the next call write the
//! `.vmsd`.

use crate::vm::Vm;
use crate::vmsd::Vmsd;
use luavirt_plugin_api::fsutil::write_atomic;
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::Path;

/// Refuses when `path` no longer holds `was` (`None`: did not exist).
fn unchanged(path: &Path, was: Option<&[u8]>) -> Result<(), DriverError> {
    let now = match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(DriverError::io("read", path, e)),
    };
    if now.as_deref() != was {
        return Err(DriverError::new(
            ErrorCode::Busy,
            format!("{} changed while luavirt was about to write it; try again (nothing was changed)", path.display()),
        ));
    }
    Ok(())
}

/// Writes `vmx` over the `.vmx` of `vm` and `vmsd` over its `.vmsd`, each only if it changed.
pub fn save(vm: &Vm, vmx: &[u8], vmsd: &Vmsd) -> Result<(), DriverError> {
    unchanged(&vm.path, Some(&vm.bytes))?;
    unchanged(vmsd.path(), vmsd.original())?;
    let vmx_changed = vmx != vm.bytes.as_slice();
    if vmx_changed {
        write_atomic(&vm.path, vmx).map_err(|e| DriverError::io("write", &vm.path, e))?;
    }
    luavirt_plugin_api::failpoint::hit("vmx-snapshot:vmx-written");
    let new = vmsd.to_bytes();
    if vmsd.original() != Some(new.as_slice())
        && let Err(e) = write_atomic(vmsd.path(), &new)
    {
        let mut message = DriverError::io("write", vmsd.path(), e).message;
        if vmx_changed && let Err(back) = write_atomic(&vm.path, &vm.bytes) {
            message.push_str(&format!(
                "; and {} could not be put back ({back}): it names deltas the .vmsd does not know",
                vm.path.display()
            ));
        }
        return Err(DriverError::new(ErrorCode::Io, message));
    }
    Ok(())
}
