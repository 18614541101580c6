//! The typed view of one `<disk>` of a domain.

use crate::xml::Element;

/// Where a disk's data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskSource {
    /// No medium (an empty CD-ROM drive).
    None,
    /// `type='file'`: an image file.
    File(String),
    /// `type='block'`: a block device.
    Block(String),
    /// `type='dir'`: a host directory presented as a disk.
    Dir(String),
    /// `type='network'`: a protocol, an export or image name, and hosts.
    Network {
        /// `nbd`, `iscsi`, `rbd`, `gluster`, `http`, ...
        protocol: String,
        /// Export, volume or image name.
        name: Option<String>,
        /// `(host name, port)` pairs.
        hosts: Vec<(String, Option<String>)>,
    },
    /// `type='volume'`: a volume of a storage pool.
    Volume {
        /// Pool name.
        pool: String,
        /// Volume name.
        volume: String,
    },
    /// Another source type, kept by name.
    Other(String),
}

impl DiskSource {
    /// The local path, for file, block and dir sources.
    pub fn path(&self) -> Option<&str> {
        match self {
            DiskSource::File(p) | DiskSource::Block(p) | DiskSource::Dir(p) => Some(p),
            _ => None,
        }
    }

    /// A one-word display form: a path, `protocol://host:port/name`, `pool/volume`, or `-`.
    pub fn display(&self) -> String {
        match self {
            DiskSource::None => "-".to_string(),
            DiskSource::File(p) | DiskSource::Block(p) | DiskSource::Dir(p) => p.clone(),
            DiskSource::Network { protocol, name, hosts } => {
                let host = hosts
                    .first()
                    .map(|(h, p)| match p {
                        Some(p) => format!("{h}:{p}"),
                        None => h.clone(),
                    })
                    .unwrap_or_default();
                format!("{protocol}://{host}/{}", name.as_deref().unwrap_or(""))
            }
            DiskSource::Volume { pool, volume } => format!("{pool}/{volume}"),
            DiskSource::Other(t) => format!("({t})"),
        }
    }
}

/// One `<disk>` of a domain, read from its XML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// `type=`: file, block, dir, network, volume, ... (default file).
    pub disk_type: String,
    /// `device=`: disk, cdrom, floppy, lun (default disk).
    pub device: String,
    /// `<driver name=>`, like `qemu`.
    pub driver_name: Option<String>,
    /// `<driver type=>`: the image format, like `qcow2` or `raw`.
    pub format: Option<String>,
    /// `<source>`.
    pub source: DiskSource,
    /// `<target dev=>`: the disk's name within the domain (vda, sdb, hdc).
    pub target: String,
    /// `<target bus=>`: virtio, scsi, sata, ide, usb, fdc, ...
    pub bus: Option<String>,
    /// `<readonly/>`.
    pub readonly: bool,
    /// `<shareable/>`.
    pub shareable: bool,
    /// `<transient/>`: changes are discarded when the domain stops.
    pub transient: bool,
    /// `snapshot=`: the disk's default in snapshots (no, internal, external, manual).
    pub snapshot: Option<String>,
    /// `<serial>`.
    pub serial: Option<String>,
    /// `<boot order=>`.
    pub boot_order: Option<u32>,
    /// The seed attribute `selected='yes|no'` (membership in the disk set `selected`).
    pub selected: Option<bool>,
    /// Line of the `<disk>` start tag in the source (0 if unknown).
    pub line: u32,
}

impl Disk {
    /// Reads a `<disk>` element. The caller checks that a target exists.
    pub(crate) fn from_element(e: &Element) -> Disk {
        let disk_type = e.attr("type").unwrap_or_else(|| "file".to_string());
        let source = match e.child("source") {
            None => DiskSource::None,
            Some(s) => source_of(&disk_type, s),
        };
        let target = e.child("target");
        let driver = e.child("driver");
        Disk {
            device: e.attr("device").unwrap_or_else(|| "disk".to_string()),
            driver_name: driver.and_then(|d| d.attr("name")),
            format: driver.and_then(|d| d.attr("type")),
            source,
            target: target.and_then(|t| t.attr("dev")).unwrap_or_default(),
            bus: target.and_then(|t| t.attr("bus")),
            readonly: e.child("readonly").is_some(),
            shareable: e.child("shareable").is_some(),
            transient: e.child("transient").is_some(),
            snapshot: e.attr("snapshot"),
            serial: e.child("serial").map(|s| s.text()),
            boot_order: e.child("boot").and_then(|b| b.attr("order")).and_then(|o| o.parse().ok()),
            selected: e.attr("selected").map(|v| v == "yes"),
            line: e.line(),
            disk_type,
        }
    }

    /// The image format to open the disk with: `<driver type>`, else raw (as libvirt).
    pub fn format_or_raw(&self) -> &str {
        self.format.as_deref().unwrap_or("raw")
    }
}

fn source_of(disk_type: &str, s: &Element) -> DiskSource {
    let attr = |n: &str| s.attr(n);
    match disk_type {
        "file" => attr("file").map_or(DiskSource::None, DiskSource::File),
        "block" => attr("dev").map_or(DiskSource::None, DiskSource::Block),
        "dir" => attr("dir").map_or(DiskSource::None, DiskSource::Dir),
        "network" => DiskSource::Network {
            protocol: attr("protocol").unwrap_or_default(),
            name: attr("name"),
            hosts: s.children_named("host").filter_map(|h| Some((h.attr("name")?, h.attr("port")))).collect(),
        },
        "volume" => {
            DiskSource::Volume { pool: attr("pool").unwrap_or_default(), volume: attr("volume").unwrap_or_default() }
        }
        other => DiskSource::Other(other.to_string()),
    }
}
