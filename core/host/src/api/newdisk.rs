//! The `<disk>` that `attach-disk` and `dom:attach_disk{}` describe with a few words, built
//! once for both: the format from the image's own header when none is given, the bus from
//! the target's prefix (vd: virtio, sd: scsi, hd: ide, xvd: xen), `block` for a block device.

use crate::error::{Error, Result};
use luavirt_plugin_api::domain::DiskMode;
use luavirt_plugin_api::xml::escape_attr;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;

/// What a new disk's source is on the domain's host (asked there for a remote connection).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageProbe {
    /// Nothing is there.
    Missing,
    /// It cannot be looked at: why.
    Unreachable(String),
    /// A folder.
    Folder,
    /// A file or block device, and the format its header announces (or why it could not be
    /// read).
    Present {
        /// A block device.
        block: bool,
        /// The format, or the read error.
        header: std::result::Result<String, String>,
    },
}

/// Looks at `path` on this host.
pub(crate) fn probe(path: &str) -> ImageProbe {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ImageProbe::Missing,
        Err(e) => ImageProbe::Unreachable(e.to_string()),
        Ok(m) if m.is_dir() => ImageProbe::Folder,
        Ok(m) => ImageProbe::Present {
            block: m.file_type().is_block_device(),
            header: detect_format(path).map_err(|e| e.to_string()),
        },
    }
}

/// A disk to attach.
#[derive(Clone, Debug, Default)]
pub struct NewDisk {
    /// The image file or block device.
    pub source: String,
    /// The target name in the domain (vdb, sdc).
    pub target: String,
    /// The image format (virsh's `--subdriver`); read from the image when not given.
    pub format: Option<String>,
    /// The bus (virsh's `--targetbus`); from the target's prefix when not given.
    pub bus: Option<String>,
    /// `disk` (default), `cdrom`, `floppy` or `lun` (virsh's `--type`).
    pub device: Option<String>,
    /// `file` or `block` (virsh's `--sourcetype`); a block device's path gives `block`.
    pub source_type: Option<String>,
    /// The guest may only read it.
    pub readonly: bool,
    /// Several domains may use it at once.
    pub shareable: bool,
    /// Its serial number.
    pub serial: Option<String>,
    /// Its mode: persistent (default), independent-persistent, independent-nonpersistent.
    pub mode: Option<DiskMode>,
}

/// The disk's XML, and how its format was chosen.
#[derive(Clone, Debug)]
pub struct BuiltDisk {
    /// One `<disk>` element.
    pub xml: String,
    /// The format it has.
    pub format: String,
    /// Whether the format was read from the image's header (none was given).
    pub format_detected: bool,
}

impl NewDisk {
    /// Builds the `<disk>` element; `source` is what its source is on the domain's host.
    pub(crate) fn build(&self, source: &ImageProbe) -> Result<BuiltDisk> {
        let bad = |m: String| Error::InvalidArg(m);
        if self.target.is_empty() || !self.target.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(bad(format!(
                "Disk target {:?} is not a target name; use lower-case letters and digits, like vdb or sdc",
                self.target
            )));
        }
        let device = self.device.clone().unwrap_or_else(|| "disk".to_string());
        if !["disk", "cdrom", "floppy", "lun"].contains(&device.as_str()) {
            return Err(bad(format!("Disk type {device:?} is not one of disk, cdrom, floppy, lun")));
        }
        let is_block = matches!(source, ImageProbe::Present { block: true, .. });
        let source_type = self.source_type.clone().unwrap_or_else(|| if is_block { "block" } else { "file" }.into());
        let (format, detected) = match &self.format {
            Some(f) => (f.clone(), false),
            None => match source {
                ImageProbe::Folder => return Err(bad(format!("{} is a folder, not a disk image", self.source))),
                ImageProbe::Present { header: Ok(f), .. } => (f.clone(), true),
                ImageProbe::Present { header: Err(e), .. } => {
                    return Err(Error::Io {
                        doing: "read",
                        path: self.source.clone().into(),
                        source: std::io::Error::other(e.clone()),
                    });
                }
                ImageProbe::Missing => {
                    return Err(bad(format!(
                        "Image {} does not exist; create it first (qemu-img create -f qcow2 {} SIZE), or name its format with «subdriver FORMAT» to attach it to the definition as it will be",
                        self.source, self.source
                    )));
                }
                ImageProbe::Unreachable(e) => return Err(bad(format!("Cannot read image {}: {e}", self.source))),
            },
        };
        let bus = match &self.bus {
            Some(b) => b.clone(),
            None => bus_of(&self.target).ok_or_else(|| {
                bad(format!(
                    "Which bus does target {} use? Its prefix says none (vd: virtio, sd: scsi, hd: ide, xvd: xen); name it with «targetbus BUS»",
                    self.target
                ))
            })?,
        };
        let (snapshot, transient) = match self.mode.unwrap_or(DiskMode::Persistent) {
            DiskMode::Persistent => ("", false),
            DiskMode::IndependentPersistent => (" snapshot='no'", false),
            DiskMode::IndependentNonpersistent => (" snapshot='no'", true),
            other => {
                return Err(bad(format!(
                    "A new disk cannot have mode {other}; use one of persistent, independent-persistent, independent-nonpersistent"
                )));
            }
        };
        let source_attr = if source_type == "block" { "dev" } else { "file" };
        let mut xml = format!(
            "<disk type='{}' device='{}'{snapshot}>\n  <driver name='qemu' type='{}'/>\n  <source {source_attr}='{}'/>\n  <target dev='{}' bus='{}'/>\n",
            escape_attr(&source_type, '\''),
            escape_attr(&device, '\''),
            escape_attr(&format, '\''),
            escape_attr(&self.source, '\''),
            escape_attr(&self.target, '\''),
            escape_attr(&bus, '\'')
        );
        if self.readonly {
            xml.push_str("  <readonly/>\n");
        }
        if self.shareable {
            xml.push_str("  <shareable/>\n");
        }
        if transient {
            xml.push_str("  <transient/>\n");
        }
        if let Some(s) = &self.serial {
            xml.push_str(&format!("  <serial>{}</serial>\n", luavirt_plugin_api::xml::escape_text(s)));
        }
        xml.push_str("</disk>\n");
        Ok(BuiltDisk { xml, format, format_detected: detected })
    }
}

/// The bus a target's prefix implies, as libvirt reads it.
fn bus_of(target: &str) -> Option<String> {
    let bus = if target.starts_with("vd") {
        "virtio"
    } else if target.starts_with("sd") {
        "scsi"
    } else if target.starts_with("hd") {
        "ide"
    } else if target.starts_with("xvd") {
        "xen"
    } else if target.starts_with("fd") {
        "fdc"
    } else {
        return None;
    };
    Some(bus.to_string())
}

/// The format an image's first bytes announce: qcow2, vmdk (sparse extent or descriptor),
/// else raw. Only the header is read, never guessed from the name.
fn detect_format(path: &str) -> std::io::Result<String> {
    let mut head = [0u8; 21];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head))?;
    let head = &head[..n];
    Ok(if head.starts_with(b"QFI\xfb") {
        "qcow2"
    } else if head.starts_with(b"KDMV") || head.starts_with(b"# Disk DescriptorFile") {
        "vmdk"
    } else {
        "raw"
    }
    .to_string())
}
