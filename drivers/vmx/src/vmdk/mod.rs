//! VMDK images as VMware keeps them: a text descriptor, in its own small file (`vmfs`,
//! `monolithicFlat`, `twoGbMaxExtentSparse`, ESX deltas) or embedded in a hosted sparse file
//! (`monolithicSparse`, what `qemu-img create -f vmdk` makes), and the extents it names.

pub mod descriptor;
pub mod sparse;

pub use descriptor::Descriptor;

use luavirt_plugin_api::fsutil::write_atomic;
use sparse::SparseHeader;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A text descriptor file is small; anything bigger that is not sparse is an extent.
const MAX_DESCRIPTOR_FILE: u64 = 1 << 20;

/// One VMDK: the file the `.vmx` or a child names, and its descriptor.
#[derive(Clone, Debug)]
pub struct Image {
    /// The file.
    pub path: PathBuf,
    /// Its descriptor.
    pub descriptor: Descriptor,
    /// Where the descriptor is embedded, for sparse files.
    pub embedded: Option<SparseHeader>,
}

/// Why an image could not be read: the file is missing, or something else (a sentence).
#[derive(Debug)]
pub enum OpenError {
    /// The file does not exist.
    Missing,
    /// It cannot be read or is not a VMDK descriptor.
    Bad(String),
}

impl Image {
    /// Reads the descriptor of the VMDK at `path`.
    pub fn open(path: &Path) -> Result<Image, OpenError> {
        let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OpenError::Missing,
            _ => OpenError::Bad(format!("cannot be read: {e}")),
        })?;
        let meta = f.metadata().map_err(|e| OpenError::Bad(format!("cannot be read: {e}")))?;
        if meta.is_dir() {
            return Err(OpenError::Bad("is a folder, not a VMDK".to_string()));
        }
        let mut first = Vec::new();
        (&mut f).take(512).read_to_end(&mut first).map_err(|e| OpenError::Bad(format!("cannot be read: {e}")))?;
        let bad_descriptor =
            |e: descriptor::DescriptorError| OpenError::Bad(format!("has a malformed descriptor ({e})"));
        if let Some(h) = sparse::parse_header(&first) {
            let no_descriptor = || {
                OpenError::Bad(
                    "is a sparse extent without a descriptor; name the descriptor .vmdk that lists it instead"
                        .to_string(),
                )
            };
            if h.descriptor_offset == 0 {
                return Err(no_descriptor());
            }
            let bytes = sparse::read_embedded(path, &h).map_err(|e| OpenError::Bad(format!("cannot be read: {e}")))?;
            // Extents of split disks keep room for a descriptor but leave it empty.
            if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                return Err(no_descriptor());
            }
            let descriptor = Descriptor::parse(&bytes).map_err(bad_descriptor)?;
            return Ok(Image { path: path.to_path_buf(), descriptor, embedded: Some(h) });
        }
        if first.starts_with(sparse::COWD_MAGIC) {
            return Err(OpenError::Bad(
                "is a VMFS sparse extent (COWD), not a descriptor; name the descriptor .vmdk (without -delta) instead"
                    .to_string(),
            ));
        }
        if meta.len() > MAX_DESCRIPTOR_FILE {
            return Err(OpenError::Bad(format!(
                "is not a VMDK descriptor ({} bytes of data; a descriptor is a small text file): name the descriptor, not its -flat extent",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| OpenError::Bad(format!("cannot be read: {e}")))?;
        let descriptor = Descriptor::parse(&bytes).map_err(bad_descriptor)?;
        Ok(Image { path: path.to_path_buf(), descriptor, embedded: None })
    }

    /// The folder the descriptor's relative names start from.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// The extent files, resolved against the descriptor's folder.
    pub fn extent_files(&self) -> Vec<PathBuf> {
        self.descriptor
            .extents()
            .iter()
            .filter_map(|e| e.file.as_deref())
            .map(|f| crate::datastore::normalize(&self.dir().join(f)))
            .collect()
    }

    /// Writes the descriptor back: a text file atomically, an embedded one in place.
    pub fn save(&self) -> std::io::Result<()> {
        let bytes = self.descriptor.to_bytes();
        match &self.embedded {
            Some(h) => sparse::write_embedded(&self.path, h, &bytes),
            None => write_atomic(&self.path, &bytes),
        }
    }
}

#[cfg(test)]
mod tests;
