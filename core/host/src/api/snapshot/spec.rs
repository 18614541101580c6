//! virsh's `--diskspec` and `--memspec` strings, and the snapshot request they build.

use crate::error::{Error, Result};
use luavirt_plugin_api::snapshot::DISK_SNAPSHOT_MODES;

/// One `--diskspec disk[,snapshot=type][,driver=type][,file=name][,mirror=name]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskSpec {
    /// Disk target or source path.
    pub disk: String,
    /// `no`, `internal`, `external` or `manual`.
    pub snapshot: Option<String>,
    /// Overlay format (qcow2).
    pub driver: Option<String>,
    /// Overlay file.
    pub file: Option<String>,
    /// Mirror file of a mirrored snapshot.
    pub mirror: Option<String>,
}

/// What memory a snapshot keeps: `--memspec [file=]name[,snapshot=type]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemSpec {
    /// `no`, `internal` or `external`.
    pub snapshot: Option<String>,
    /// The file for external memory.
    pub file: Option<String>,
}

/// Splits on single commas; `,,` stands for a literal comma.
fn split_fields(text: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                fields.last_mut().expect("never empty").push(',');
            } else {
                fields.push(String::new());
            }
        } else {
            fields.last_mut().expect("never empty").push(c);
        }
    }
    fields
}

fn check_mode(value: &str, allowed: &[&str], what: &str) -> Result<String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(Error::InvalidArg(format!("Invalid snapshot={value:?} in {what}; use {}", allowed.join(", "))))
    }
}

impl DiskSpec {
    /// Parses one diskspec string.
    pub fn parse(text: &str) -> Result<DiskSpec> {
        let what = format!("--diskspec {text:?}");
        let mut fields = split_fields(text).into_iter();
        let disk = fields.next().unwrap_or_default();
        if disk.is_empty() {
            return Err(Error::InvalidArg(format!(
                "{what} names no disk; write DISK[,snapshot=TYPE][,driver=TYPE][,file=NAME][,mirror=NAME]"
            )));
        }
        let mut spec = DiskSpec { disk, ..DiskSpec::default() };
        for field in fields {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| Error::InvalidArg(format!("{what}: {field:?} is not key=value")))?;
            let slot = match key {
                "snapshot" => {
                    spec.snapshot = Some(check_mode(value, DISK_SNAPSHOT_MODES, &what)?);
                    continue;
                }
                "driver" => &mut spec.driver,
                "file" => &mut spec.file,
                "mirror" => &mut spec.mirror,
                other => {
                    return Err(Error::InvalidArg(format!(
                        "{what}: unknown key {other:?}; use snapshot, driver, file or mirror"
                    )));
                }
            };
            if value.is_empty() {
                return Err(Error::InvalidArg(format!("{what}: {key}= is empty")));
            }
            *slot = Some(value.to_string());
        }
        Ok(spec)
    }
}

impl MemSpec {
    /// Parses a memspec string; a bare value is the file.
    pub fn parse(text: &str) -> Result<MemSpec> {
        let what = format!("--memspec {text:?}");
        let mut spec = MemSpec::default();
        for field in split_fields(text).into_iter().filter(|f| !f.is_empty()) {
            match field.split_once('=') {
                Some(("file", v)) => spec.file = Some(v.to_string()),
                Some(("snapshot", v)) => spec.snapshot = Some(check_mode(v, &["no", "internal", "external"], &what)?),
                Some((k, _)) => {
                    return Err(Error::InvalidArg(format!("{what}: unknown key {k:?}; use file or snapshot")));
                }
                None => spec.file = Some(field),
            }
        }
        Ok(spec)
    }
}

/// A request for a snapshot, as `snapshot-create-as` and `dom:snapshot{}` give it.
#[derive(Clone, Debug, Default)]
pub struct SnapshotRequest {
    /// Name (default: the current time in seconds, as libvirt does).
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Explicit disks; when given, only these take part.
    pub disks: Vec<DiskSpec>,
    /// Else the members of this disk set take part.
    pub disk_set: Option<String>,
    /// Memory state.
    pub memory: Option<MemSpec>,
    /// Disks only, no memory state.
    pub disk_only: bool,
    /// Keep the domain running while its memory is saved.
    pub live: bool,
    /// Stop the domain afterwards.
    pub halt: bool,
    /// Use overlay files that already exist.
    pub reuse_external: bool,
    /// Take the snapshot but keep no metadata.
    pub no_metadata: bool,
    /// Whether the caller asked for all disks or none (virsh's `--atomic`). Every snapshot is
    /// all or nothing, and the host asks every driver for that, so `Some(true)` is what
    /// happens anyway and `Some(false)` is refused rather than ignored.
    pub atomic: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diskspecs_parse_with_escaped_commas() {
        let s = DiskSpec::parse("vda,snapshot=external,file=/i/a,,b.qcow2,driver=qcow2,mirror=/m/a").unwrap();
        assert_eq!(s.disk, "vda");
        assert_eq!(s.snapshot.as_deref(), Some("external"));
        assert_eq!(s.file.as_deref(), Some("/i/a,b.qcow2"));
        assert_eq!(s.mirror.as_deref(), Some("/m/a"));
        assert_eq!(DiskSpec::parse("/path/with,,comma.img").unwrap().disk, "/path/with,comma.img");
        assert!(
            DiskSpec::parse("vda,snapshot=yes").unwrap_err().to_string().contains("use no, internal, external, manual")
        );
        assert!(DiskSpec::parse("vda,colour=red").unwrap_err().to_string().contains("unknown key \"colour\""));
        assert!(DiskSpec::parse(",file=x").is_err());
    }

    #[test]
    fn memspecs_parse() {
        assert_eq!(MemSpec::parse("/m/s1").unwrap().file.as_deref(), Some("/m/s1"));
        let m = MemSpec::parse("file=/m/s1,snapshot=external").unwrap();
        assert_eq!((m.file.as_deref(), m.snapshot.as_deref()), (Some("/m/s1"), Some("external")));
        assert!(MemSpec::parse("snapshot=maybe").is_err());
    }
}
