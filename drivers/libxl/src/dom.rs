//! One xl domain: its config file read and checked, with the name, UUID, guest type and disks
//! luavirt knows it by, and where each disk's spec is in the file.

use crate::cfg::{CfgError, XlConfig};
use crate::diskspec::{DiskSpec, vdev};
use luavirt_plugin_api::domain::{check_domain_name, normalize_uuid};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::{Path, PathBuf};

/// The kind of guest (`type=`, or the older `builder=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestType {
    /// Fully virtualized.
    Hvm,
    /// Paravirtualized (xl's default).
    Pv,
    /// PVH.
    Pvh,
}

/// One disk of the config.
#[derive(Clone, Debug)]
pub struct DomDisk {
    /// Its spec, parsed.
    pub spec: DiskSpec,
    /// The setting whose list holds it.
    pub setting: usize,
    /// Its index in that list.
    pub index: usize,
    /// The line of its spec.
    pub line: u32,
}

impl DomDisk {
    /// The target name luavirt gives it: its vdev.
    pub fn target(&self) -> &str {
        &self.spec.disk.vdev
    }
}

/// A loaded xl config.
#[derive(Clone, Debug)]
pub struct Dom {
    /// The config file.
    pub path: PathBuf,
    /// Its content.
    pub cfg: XlConfig,
    /// Its disks, in order.
    pub disks: Vec<DomDisk>,
}

/// A config problem as a driver error: the file is the user's and stays as it is.
pub fn cfg_error(e: CfgError) -> DriverError {
    DriverError::new(ErrorCode::CorruptState, format!("{e} (nothing was changed)"))
}

/// The name a config gets without a usable `name =`: its file name without `.cfg`.
pub fn stem_name(path: &Path) -> String {
    let file = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    file.strip_suffix(".cfg").map(str::to_string).unwrap_or(file)
}

impl Dom {
    /// Reads and checks the config at `path`.
    pub fn load(path: &Path) -> Result<Dom, DriverError> {
        let bytes = std::fs::read(path).map_err(|e| DriverError::io("read", path, e))?;
        Dom::from_bytes(path, &bytes)
    }

    /// Checks `bytes` as the config at `path`.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Dom, DriverError> {
        let cfg = XlConfig::parse(bytes, &path.display().to_string()).map_err(cfg_error)?;
        let disks = read_disks(&cfg).map_err(cfg_error)?;
        Ok(Dom { path: path.to_path_buf(), cfg, disks })
    }

    /// The folder holding the config.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// `name =`, when set to a name luavirt accepts.
    pub fn name(&self) -> Option<String> {
        self.cfg.get("name").ok().flatten().map(|(n, _)| n).filter(|n| check_domain_name(n).is_ok())
    }

    /// `uuid =` in libvirt's form; `None` when absent, an error naming the line when
    /// malformed.
    pub fn uuid(&self) -> Result<Option<String>, DriverError> {
        let Some((text, at)) = self.cfg.get("uuid").map_err(cfg_error)? else { return Ok(None) };
        normalize_uuid(&text).map(Some).ok_or_else(|| {
            cfg_error(self.cfg.error(
                at,
                format!("uuid \"{text}\" is not 32 hex digits; write it like \"4dea22b3-1d52-d8f3-2516-782e98ab3fa0\""),
            ))
        })
    }

    /// A string or number setting, as xl reads it.
    pub fn get(&self, key: &str) -> Result<Option<String>, DriverError> {
        Ok(self.cfg.get(key).map_err(cfg_error)?.map(|(v, _)| v))
    }

    /// A whole-number setting, or an error naming its line.
    pub fn number(&self, key: &str) -> Result<Option<u64>, DriverError> {
        let Some((text, at)) = self.cfg.get(key).map_err(cfg_error)? else { return Ok(None) };
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None if text.len() > 1 && text.starts_with('0') => u64::from_str_radix(&text[1..], 8).ok(),
            None => text.parse().ok(),
        };
        parsed
            .map(Some)
            .ok_or_else(|| cfg_error(self.cfg.error(at, format!("{key} is \"{text}\", not a whole number"))))
    }

    /// The guest type.
    pub fn guest_type(&self) -> Result<GuestType, DriverError> {
        let t = match self.get("type")? {
            Some(t) => t,
            None => match self.get("builder")?.as_deref() {
                Some("hvm") => "hvm".to_string(),
                _ => "pv".to_string(),
            },
        };
        match t.as_str() {
            "hvm" => Ok(GuestType::Hvm),
            "pv" => Ok(GuestType::Pv),
            "pvh" => Ok(GuestType::Pvh),
            other => {
                let at = self.cfg.get("type").ok().flatten().map_or(0, |(_, at)| at);
                Err(cfg_error(self.cfg.error(at, format!("type \"{other}\" is none xl knows; use hvm, pv or pvh"))))
            }
        }
    }

    /// The disk whose vdev is `target`.
    pub fn disk(&self, target: &str) -> Option<&DomDisk> {
        self.disks.iter().find(|d| d.target() == target)
    }

    /// Where luavirt keeps what the config has no place for: `<config file>.luavirt.xml`.
    pub fn sidecar_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".luavirt.xml");
        self.path.with_file_name(name)
    }

    /// `file:line` of disk `d`'s spec, for messages.
    pub fn at(&self, d: &DomDisk) -> String {
        format!("{}:{}", self.path.display(), d.line)
    }
}

/// Every disk of `cfg`, each spec parsed and its vdev checked; errors point into the file.
fn read_disks(cfg: &XlConfig) -> Result<Vec<DomDisk>, CfgError> {
    let mut out: Vec<DomDisk> = Vec::new();
    for item in cfg.strings("disk")? {
        let a = item.atom;
        // Where byte `offset` of the spec is in the file (exact unless the string has escapes).
        let place = |offset: usize| {
            if a.end - a.start == a.text.len() + 2 { a.start + 1 + offset.min(a.text.len()) } else { a.start }
        };
        let spec = DiskSpec::parse(&a.text)
            .map_err(|e| cfg.error(place(e.offset), format!("disk '{}': {}", a.text, e.message)))?;
        let vdev = &spec.disk.vdev;
        let vdev_at = spec.text.find(vdev.as_str()).map_or(a.start, place);
        vdev::parse(vdev).map_err(|m| cfg.error(vdev_at, format!("disk '{}': {m}", a.text)))?;
        if let Some(first) = out.iter().find(|d| d.target() == vdev) {
            return Err(cfg.error(
                a.start,
                format!("two disks are {vdev} (this one and line {}); give each its own vdev", first.line),
            ));
        }
        if spec.disk.target.as_deref() == Some("") && !spec.disk.cdrom {
            return Err(cfg
                .error(a.start, format!("disk {vdev} names no image: give its image or block device (target=/path)")));
        }
        out.push(DomDisk { spec, setting: item.setting, index: item.index, line: cfg.line_of(a.start) });
    }
    Ok(out)
}
