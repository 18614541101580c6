//! xl disk specs (xl-disk-configuration(5)), read as libxlutil's `xlu_disk_parse` reads them
//! and written back with the smallest change ([`write`]).
//!
//! A spec is comma-separated parameters: positional ones (target, format, vdev, access, in
//! that order, each skipped by a named one), `key=value` pairs, bare flags, and `target=`,
//! which takes the rest of the string, commas included. Old forms work too: prefixes before
//! the target (`phy:`, `file:`, `tap:aio:`, `raw:`, `qcow2:`, `iscsi:`, ...) and `vdev:cdrom`.
//! Each parameter keeps its place in the text, so a change rewrites only its value.
//!
//! What the parser accepts and refuses, and how it reads each form, follows libxlutil 4.17
//! (checked against it by the end-to-end tests); `trusted`, `untrusted`, `specification`
//! and `grant_usage` come from the Xen 4.20 documentation. Whether the vdev names a disk Xen
//! knows is checked apart ([`vdev`]): libxl checks it only when the domain starts.

pub mod vdev;
pub mod write;

use std::fmt;

/// An image format xl knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `raw` (the default).
    #[default]
    Raw,
    /// `qcow`
    Qcow,
    /// `qcow2`
    Qcow2,
    /// `vhd`
    Vhd,
    /// `qed`
    Qed,
    /// `empty`: a CD-ROM drive without a disc.
    Empty,
}

const FORMATS: &[(Format, &str)] = &[
    (Format::Raw, "raw"),
    (Format::Qcow, "qcow"),
    (Format::Qcow2, "qcow2"),
    (Format::Vhd, "vhd"),
    (Format::Qed, "qed"),
    (Format::Empty, "empty"),
];

impl Format {
    /// xl's name.
    pub fn name(self) -> &'static str {
        FORMATS.iter().find(|(f, _)| *f == self).map_or("raw", |(_, n)| n)
    }

    /// The format xl calls `name` (libvirt's `<driver type>` uses the same names).
    pub fn parse(name: &str) -> Option<Format> {
        FORMATS.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    /// The name `qemu-img` knows it by (`vhd` is `vpc` there).
    pub fn qemu(self) -> &'static str {
        match self {
            Format::Vhd => "vpc",
            f => f.name(),
        }
    }
}

/// `backendtype=`: which backend serves the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The kernel's blkback on a block device (raw only).
    Phy,
    /// QEMU's Xen disk backend.
    Qdisk,
    /// blktap.
    Tap,
    /// A standalone virtio backend.
    Standalone,
}

const BACKENDS: &[(Backend, &str)] =
    &[(Backend::Phy, "phy"), (Backend::Qdisk, "qdisk"), (Backend::Tap, "tap"), (Backend::Standalone, "standalone")];

impl Backend {
    /// xl's name.
    pub fn name(self) -> &'static str {
        BACKENDS.iter().find(|(b, _)| *b == self).map_or("phy", |(_, n)| n)
    }

    fn parse(name: &str) -> Option<Backend> {
        BACKENDS.iter().find(|(_, n)| *n == name).map(|(b, _)| *b)
    }
}

/// A disk as a spec describes it, after xl's defaults (libxl's `libxl_device_disk`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disk {
    /// The target: an image, a block device, or what `script` reads (`None`: not given, as
    /// for an empty CD-ROM drive).
    pub target: Option<String>,
    /// The format.
    pub format: Format,
    /// The virtual device (`xvda`).
    pub vdev: String,
    /// Read-write (CD-ROMs never are).
    pub readwrite: bool,
    /// A CD-ROM drive.
    pub cdrom: bool,
    /// `backend=`: the backend domain.
    pub backend_domain: Option<String>,
    /// `backendtype=`.
    pub backendtype: Option<Backend>,
    /// `script=` (or an `iscsi:`, `nbd:`, `enbd:`, `drbd:` prefix).
    pub script: Option<String>,
    /// `direct-io-safe`.
    pub direct_io_safe: bool,
    /// `discard` / `no-discard`.
    pub discard: Option<bool>,
    /// `colo` / `no-colo`.
    pub colo: Option<bool>,
    /// `colo-host=`.
    pub colo_host: Option<String>,
    /// `colo-port=`.
    pub colo_port: Option<u32>,
    /// `colo-export=`.
    pub colo_export: Option<String>,
    /// `active-disk=`.
    pub active_disk: Option<String>,
    /// `hidden-disk=`.
    pub hidden_disk: Option<String>,
    /// `trusted` / `untrusted`.
    pub trusted: Option<bool>,
    /// `specification=` (`xen` or `virtio`).
    pub specification: Option<String>,
    /// `grant_usage=`.
    pub grant_usage: Option<bool>,
}

impl Disk {
    /// The host path the target names, as libxl opens it: a path not starting with `/`
    /// lies under `/dev`. `None` for an empty drive and for targets a `script` reads.
    pub fn path(&self) -> Option<String> {
        let t = self.target.as_deref().filter(|t| !t.is_empty())?;
        if self.script.is_some() {
            return None;
        }
        Some(if t.starts_with('/') { t.to_string() } else { format!("/dev/{t}") })
    }
}

/// Which parameter a piece of the spec sets, and how it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The target, positional.
    Target,
    /// `target=...`
    TargetKey,
    /// The format, positional.
    Format,
    /// `format=...`
    FormatKey,
    /// A `raw:` / `qcow:` / `qcow2:` / `vhd:` prefix (the span is the name before `:`).
    FormatPrefix,
    /// Anything else.
    Other,
}

/// One parameter: what it sets and where its value is in the spec's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// What it sets.
    pub slot: Slot,
    /// Where its value starts.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
}

/// A parsed disk spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// The spec as written.
    pub text: String,
    /// The disk it describes.
    pub disk: Disk,
    /// Its parameters, in order.
    pub params: Vec<Param>,
}

/// Why a spec does not parse: a message, and the byte of the spec it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// Byte offset in the spec.
    pub offset: usize,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Keys with a value, as the documentation lists them.
const KEYS: &[&str] = &[
    "target",
    "format",
    "vdev",
    "access",
    "devtype",
    "backend",
    "backendtype",
    "script",
    "specification",
    "grant_usage",
    "colo-host",
    "colo-port",
    "colo-export",
    "active-disk",
    "hidden-disk",
];

/// Bare flags.
const FLAGS: &[&str] = &["cdrom", "direct-io-safe", "discard", "no-discard", "colo", "no-colo", "trusted", "untrusted"];

/// Prefixes that only say how xend used to reach the disk; xl ignores them.
const IGNORED_PREFIXES: &[&str] = &["tapdisk", "tap2", "tap", "aio", "ioemu", "file", "phy"];
/// Prefixes that name a block script (`script=block-NAME`).
const SCRIPT_PREFIXES: &[&str] = &["iscsi", "nbd", "enbd", "drbd"];
/// Prefixes that name the format.
const FORMAT_PREFIXES: &[&str] = &["raw", "qcow2", "qcow", "vhd"];

/// The parse state, as libxlutil keeps it.
#[derive(Default)]
struct State {
    disk: Disk,
    target: Option<String>,
    format: Option<Format>,
    vdev: Option<String>,
    access: Option<bool>,
    access_positional: bool,
    had_prefix: bool,
    params: Vec<Param>,
}

fn err(offset: usize, message: impl Into<String>) -> SpecError {
    SpecError { offset, message: message.into() }
}

/// A string parameter that may be given once (an empty value may be given again).
fn save(slot: &mut Option<String>, value: &str, what: &str, offset: usize) -> Result<(), SpecError> {
    if slot.as_deref().is_some_and(|v| !v.is_empty()) {
        return Err(err(offset, format!("{what} is given twice; give it once")));
    }
    *slot = Some(value.to_string());
    Ok(())
}

impl State {
    fn set_format(&mut self, value: &str, offset: usize) -> Result<(), SpecError> {
        if self.format.is_some() {
            return Err(err(offset, "the format is given twice; give it once"));
        }
        self.format = Some(if value.is_empty() {
            Format::Raw
        } else {
            Format::parse(value).ok_or_else(|| {
                err(offset, format!("unknown format '{value}'; xl knows raw, qcow, qcow2, vhd, qed and empty"))
            })?
        });
        Ok(())
    }

    fn set_access(&mut self, value: &str, offset: usize) -> Result<(), SpecError> {
        self.access = Some(match value {
            "" | "rw" | "w" => true,
            "ro" | "r" => false,
            _ => return Err(err(offset, format!("unknown access '{value}'; use rw (or w) or ro (or r)"))),
        });
        Ok(())
    }

    /// `vdev:devtype`, the old way to name a CD-ROM drive; false when `value` has no colon.
    fn vdev_and_devtype(&mut self, value: &str, offset: usize) -> Result<bool, SpecError> {
        let Some(colon) = value.rfind(':') else { return Ok(false) };
        save(&mut self.vdev, &value[..colon], "the vdev", offset)?;
        match &value[colon + 1..] {
            "cdrom" => self.disk.cdrom = true,
            "disk" => {}
            other => {
                return Err(err(
                    offset + colon + 1,
                    format!("unknown device type '{other}' after the vdev; use cdrom or disk"),
                ));
            }
        }
        Ok(true)
    }

    fn positional(&mut self, value: &str, start: usize) -> Result<(), SpecError> {
        let end = start + value.len();
        let slot = if self.target.is_none() {
            self.target = Some(value.to_string());
            Slot::Target
        } else if !self.had_prefix && self.format.is_none() {
            if self.target.as_deref() == Some("") && self.vdev_and_devtype(value, start)? {
                self.format = Some(Format::Empty);
                Slot::Other
            } else {
                self.set_format(value, start)?;
                Slot::Format
            }
        } else if self.vdev.is_none() {
            if !self.vdev_and_devtype(value, start)? {
                self.vdev = Some(value.to_string());
            }
            Slot::Other
        } else if !self.access_positional {
            self.access_positional = true;
            self.set_access(value, start)?;
            Slot::Other
        } else {
            return Err(err(
                start,
                format!(
                    "'{value}' is a fifth positional parameter; a spec has four (target, format, vdev, access): name it, or give a target with commas as target=... at the end"
                ),
            ));
        };
        self.params.push(Param { slot, start, end });
        Ok(())
    }

    fn key(&mut self, key: &str, value: &str, start: usize) -> Result<(), SpecError> {
        let d = &mut self.disk;
        let mut slot = Slot::Other;
        match key {
            "vdev" => save(&mut self.vdev, value, "the vdev", start)?,
            "format" => {
                self.set_format(value, start)?;
                slot = Slot::FormatKey;
            }
            "access" => self.set_access(value, start)?,
            "devtype" => match value {
                "cdrom" => d.cdrom = true,
                "disk" => {}
                _ => return Err(err(start, format!("unknown devtype '{value}'; use cdrom"))),
            },
            "backend" => save(&mut d.backend_domain, value, "backend=", start)?,
            "backendtype" => {
                if d.backendtype.is_some() {
                    return Err(err(start, "backendtype= is given twice; give it once"));
                }
                d.backendtype = Some(Backend::parse(value).ok_or_else(|| {
                    err(start, format!("unknown backendtype '{value}'; use phy, qdisk, standalone or tap"))
                })?);
            }
            "script" => save(&mut d.script, value, "the script", start)?,
            "colo-host" => save(&mut d.colo_host, value, "colo-host=", start)?,
            "colo-export" => save(&mut d.colo_export, value, "colo-export=", start)?,
            "active-disk" => save(&mut d.active_disk, value, "active-disk=", start)?,
            "hidden-disk" => save(&mut d.hidden_disk, value, "hidden-disk=", start)?,
            "colo-port" => {
                d.colo_port =
                    Some(value.parse().map_err(|_| err(start, format!("colo-port '{value}' is not a port number")))?);
            }
            "specification" => match value {
                "xen" | "virtio" => d.specification = Some(value.to_string()),
                _ => return Err(err(start, format!("unknown specification '{value}'; use xen or virtio"))),
            },
            "grant_usage" => match value {
                "0" | "1" => d.grant_usage = Some(value == "1"),
                _ => return Err(err(start, format!("grant_usage is '{value}'; use 0 or 1"))),
            },
            _ => unreachable!("only known keys come here"),
        }
        self.params.push(Param { slot, start, end: start + value.len() });
        Ok(())
    }

    fn flag(&mut self, flag: &str) {
        let d = &mut self.disk;
        match flag {
            "cdrom" => d.cdrom = true,
            "direct-io-safe" => d.direct_io_safe = true,
            "discard" | "no-discard" => d.discard = Some(flag == "discard"),
            "colo" | "no-colo" => d.colo = Some(flag == "colo"),
            "trusted" | "untrusted" => d.trusted = Some(flag == "trusted"),
            _ => unreachable!("only known flags come here"),
        }
    }

    /// A prefix `name:` at `start`; false when `name` is none xl knows.
    fn prefix(&mut self, name: &str, start: usize) -> Result<bool, SpecError> {
        if FORMAT_PREFIXES.contains(&name) {
            self.set_format(name, start)?;
            self.params.push(Param { slot: Slot::FormatPrefix, start, end: start + name.len() });
        } else if SCRIPT_PREFIXES.contains(&name) {
            save(&mut self.disk.script, &format!("block-{name}"), "the script", start)?;
        } else if !IGNORED_PREFIXES.contains(&name) {
            return Ok(false);
        }
        self.had_prefix = true;
        Ok(true)
    }
}

/// `[a-z][a-z0-9]*` at the start of `s`, and its length.
fn word(s: &str) -> usize {
    let b = s.as_bytes();
    if b.first().is_none_or(|c| !c.is_ascii_lowercase()) {
        return 0;
    }
    b.iter().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit()).count()
}

impl DiskSpec {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<DiskSpec, SpecError> {
        let mut st = State::default();
        let mut pos = 0;
        loop {
            // Blanks before each parameter do not count.
            pos += text[pos..].bytes().take_while(|c| matches!(c, b' ' | b'\t' | b'\n')).count();
            if pos >= text.len() {
                break;
            }
            let rest = &text[pos..];
            if let Some(value) = rest.strip_prefix("target=") {
                let value = value.strip_suffix(',').unwrap_or(value);
                let start = pos + "target=".len();
                save(&mut st.target, value, "the target", start)?;
                st.params.push(Param { slot: Slot::TargetKey, start, end: start + value.len() });
                break;
            }
            let w = word(rest);
            if w > 0 && rest[w..].starts_with(':') {
                if st.prefix(&rest[..w], pos)? {
                    pos += w + 1;
                    continue;
                }
                // `name:` then a letter or digit is a target like `host:1234`; otherwise it
                // is a prefix xl does not know.
                if !rest[w + 1..].starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                    return Err(err(
                        pos,
                        format!(
                            "unknown prefix '{}:'; xl knows phy: file: tap: tap2: tapdisk: aio: ioemu: raw: qcow: qcow2: vhd: iscsi: nbd: enbd: drbd: (give other targets as target=...)",
                            &rest[..w]
                        ),
                    ));
                }
            }
            let len = rest.find(',').unwrap_or(rest.len());
            let token = &rest[..len];
            let next = pos + len + usize::from(len < rest.len());
            if let Some(eq) = token.find('=') {
                let key = &token[..eq];
                if KEYS.contains(&key) {
                    st.key(key, &token[eq + 1..], pos + eq + 1)?;
                } else {
                    let known = KEYS.join(", ");
                    let looks_like_key = key.starts_with(|c: char| c.is_ascii_lowercase())
                        && key.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
                    return Err(err(
                        pos,
                        if looks_like_key {
                            format!("unknown parameter '{key}'; the keys are {known} (see xl-disk-configuration(5))")
                        } else {
                            format!(
                                "'{token}' is neither a key=value parameter (keys are lower case: {known}) nor a positional one (those hold no '='); give a target with '=' as target=... at the end"
                            )
                        },
                    ));
                }
            } else if FLAGS.contains(&token) {
                st.flag(token);
            } else {
                st.positional(token, pos)?;
            }
            pos = next;
        }
        let mut disk = st.disk;
        disk.vdev = st.vdev.ok_or_else(|| {
            err(text.len(), "no vdev: name the virtual device the guest sees (xvda, hda, sda) as the third positional parameter or vdev=")
        })?;
        if st.target.is_none() && !disk.cdrom {
            return Err(err(
                text.len(),
                format!(
                    "disk {} has no target: name its image or block device (target=/path), or make it an empty CD-ROM drive (devtype=cdrom)",
                    disk.vdev
                ),
            ));
        }
        disk.target = st.target;
        disk.format = st.format.unwrap_or(Format::Raw);
        disk.readwrite = st.access.unwrap_or(true);
        if disk.cdrom {
            disk.readwrite = false;
            if disk.target.as_deref().is_none_or(str::is_empty) {
                disk.format = Format::Empty;
            }
        }
        Ok(DiskSpec { text: text.to_string(), disk, params: st.params })
    }

    /// The parameter that gives the value of one of `slots` (the last: `target=` after an
    /// empty positional target holds the target).
    pub fn param(&self, slots: &[Slot]) -> Option<Param> {
        self.params.iter().rev().copied().find(|p| slots.contains(&p.slot))
    }
}

#[cfg(test)]
mod tests;
