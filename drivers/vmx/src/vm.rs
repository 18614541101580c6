//! One VM on the datastore: its `.vmx` read from disk, with the name and UUID luavirt knows
//! it by, and the name of its sidecar file.

use crate::devices::{self, Device};
use crate::vmx::{VmxError, VmxFile};
use luavirt_plugin_api::domain::{check_domain_name, normalize_uuid};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::{Path, PathBuf};

/// A loaded `.vmx`.
#[derive(Clone, Debug)]
pub struct Vm {
    /// The `.vmx` file.
    pub path: PathBuf,
    /// Its bytes as read (to prove nothing else changed before writing).
    pub bytes: Vec<u8>,
    /// Its content.
    pub vmx: VmxFile,
}

/// The name a `.vmx` gets when it has no usable `displayName`: its file name without `.vmx`.
pub fn stem_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A `.vmx` problem as a driver error: the file is on disk and was left as it was.
pub fn vmx_error(e: VmxError) -> DriverError {
    DriverError::new(ErrorCode::CorruptState, format!("{e} (nothing was changed)"))
}

impl Vm {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Vm, DriverError> {
        let bytes = std::fs::read(path).map_err(|e| DriverError::io("read", path, e))?;
        let vmx = VmxFile::parse(&bytes, &path.display().to_string()).map_err(vmx_error)?;
        Ok(Vm { path: path.to_path_buf(), bytes, vmx })
    }

    /// The folder holding the `.vmx` (relative disk names start there).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// The domain name: `displayName`, or the file name when that is missing or is not a
    /// valid luavirt name (a `/` in it, say).
    pub fn name(&self) -> String {
        self.vmx
            .get("displayName")
            .map(str::to_string)
            .filter(|n| check_domain_name(n).is_ok())
            .unwrap_or_else(|| stem_name(&self.path))
    }

    /// `uuid.bios` in libvirt's form (`42 1a 5c ...-...` becomes `421a5c..-....`); `None`
    /// when absent, an error naming the line when malformed.
    pub fn uuid(&self) -> Result<Option<String>, VmxError> {
        let Some(e) = self.vmx.entry("uuid.bios") else {
            return Ok(None);
        };
        let hex: String = e.value.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        normalize_uuid(&hex).map(Some).ok_or_else(|| {
            self.vmx.error(
                e.line,
                format!("uuid.bios \"{}\" is not 16 hex bytes; write it as \"42 1a 5c 3e 9d 7f 0b 21-6e 4c 88 aa 01 23 45 67\"", e.value),
            )
        })
    }

    /// The devices.
    pub fn devices(&self) -> Result<Vec<Device>, DriverError> {
        devices::read(&self.vmx).map_err(vmx_error)
    }

    /// The sidecar file beside the `.vmx` that holds what a `.vmx` has no place for.
    pub fn sidecar_path(&self) -> PathBuf {
        self.path.with_file_name(format!("{}.luavirt.xml", stem_name(&self.path)))
    }
}
