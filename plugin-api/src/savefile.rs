//! luavirt's save files: a header that says what was saved, then the hypervisor's memory
//! stream. The header names the domain, the snapshot the save took, and for each disk whether
//! the save kept its state and in which image, so that a save file restores on its own
//! (`luavirt restore FILE`) and a reader can tell what it holds without the domain's records.
//!
//! ```text
//! LUAVIRT-SAVE 1 <length of the JSON in bytes>\n
//! { "domain": ..., "snapshot": ..., "disks": [...], ... }\n
//! <the memory stream, to its end>
//! ```

use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::path::Path;

/// The first bytes of every save file.
pub const MAGIC: &str = "LUAVIRT-SAVE";
/// The header's version.
pub const VERSION: u32 = 1;
/// The longest header luavirt reads (a domain with many disks fits many times over).
const MAX_HEADER: usize = 1 << 20;

/// What a save file says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveHeader {
    /// The domain saved.
    pub domain: String,
    /// Its UUID.
    pub uuid: Option<String>,
    /// The snapshot the save took (its record holds the definition as saved).
    pub snapshot: String,
    /// When, seconds since the epoch.
    pub created: i64,
    /// The domain went on running after the save.
    pub live: bool,
    /// Each disk.
    pub disks: Vec<SavedDisk>,
}

/// One disk of a save.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDisk {
    /// Its target.
    pub target: String,
    /// The save kept its state (else it is used as it is when restored).
    pub saved: bool,
    /// The image that holds its saved state (frozen: later writes go to an overlay).
    pub image: Option<String>,
    /// That image's format.
    pub format: Option<String>,
}

/// The header as it starts a file.
pub fn encode(header: &SaveHeader) -> Vec<u8> {
    let json = serde_json::to_string(header).expect("a save header serializes");
    let mut out = format!("{MAGIC} {VERSION} {}\n", json.len()).into_bytes();
    out.extend_from_slice(json.as_bytes());
    out.push(b'\n');
    out
}

/// The header of save file `path` and where the memory stream starts, or `None` when the file
/// is not a save file (a plain memory stream). Errors name the file.
pub fn read(path: &Path) -> io::Result<Option<(SaveHeader, u64)>> {
    let mut file = std::fs::File::open(path)?;
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while first.len() < 64 {
        if file.read(&mut byte)? == 0 {
            break;
        }
        if byte[0] == b'\n' {
            break;
        }
        first.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&first);
    let mut words = line.split(' ');
    if words.next() != Some(MAGIC) {
        return Ok(None);
    }
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
    let version: u32 = words.next().and_then(|v| v.parse().ok()).ok_or_else(|| bad("no header version".into()))?;
    if version != VERSION {
        return Err(bad(format!("save file version {version}; this luavirt reads version {VERSION}")));
    }
    let len: usize = words.next().and_then(|v| v.parse().ok()).ok_or_else(|| bad("no header length".into()))?;
    if len > MAX_HEADER {
        return Err(bad(format!("a header of {len} bytes is more than luavirt reads")));
    }
    let mut json = vec![0u8; len + 1];
    file.read_exact(&mut json).map_err(|e| bad(format!("the header is cut short ({e})")))?;
    if json.pop() != Some(b'\n') {
        return Err(bad("the header does not end where it says".into()));
    }
    let header: SaveHeader = serde_json::from_slice(&json).map_err(|e| bad(format!("the header is corrupt ({e})")))?;
    let offset = (first.len() + 1 + len + 1) as u64;
    Ok(Some((header, offset)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_and_says_where_the_stream_starts() {
        let dir = std::env::temp_dir().join(format!("lv-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let h = SaveHeader {
            domain: "d".into(),
            uuid: Some("u".into()),
            snapshot: "save-1".into(),
            created: 5,
            live: true,
            disks: vec![SavedDisk {
                target: "vda".into(),
                saved: true,
                image: Some("/i/a".into()),
                format: Some("qcow2".into()),
            }],
        };
        let mut bytes = encode(&h);
        let offset = bytes.len() as u64;
        bytes.extend_from_slice(b"QEVM...");
        let path = dir.join("f.save");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap(), Some((h, offset)));
        std::fs::write(&path, b"QEVM plain stream").unwrap();
        assert_eq!(read(&path).unwrap(), None);
        std::fs::write(&path, b"LUAVIRT-SAVE 1 999\n{}").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("cut short"));
        std::fs::write(&path, b"LUAVIRT-SAVE 2 2\n{}\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("version 2"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
