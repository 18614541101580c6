//! The hosted sparse extent header (`KDMV`), enough to find the descriptor that
//! `monolithicSparse` and `streamOptimized` files embed: its offset and size in sectors sit at
//! fixed places of the little-endian header.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The first four bytes of a hosted sparse extent.
pub const MAGIC: &[u8; 4] = b"KDMV";
/// The first four bytes of an ESX VMFSSPARSE (COWD) extent.
pub const COWD_MAGIC: &[u8; 4] = b"COWD";

/// What luavirt reads of a sparse header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparseHeader {
    /// Disk size in sectors.
    pub capacity: u64,
    /// Where the embedded descriptor starts, in sectors (0: none).
    pub descriptor_offset: u64,
    /// Room for the embedded descriptor, in sectors.
    pub descriptor_size: u64,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"))
}

/// Reads the header from the first bytes of a file; `None` when they are not `KDMV`.
pub fn parse_header(first: &[u8]) -> Option<SparseHeader> {
    if first.len() < 44 || &first[..4] != MAGIC {
        return None;
    }
    // magic(4) version(4) flags(4) capacity(8) grainSize(8) descriptorOffset(8) descriptorSize(8)
    Some(SparseHeader {
        capacity: u64_at(first, 12),
        descriptor_offset: u64_at(first, 28),
        descriptor_size: u64_at(first, 36),
    })
}

/// Reads the descriptor embedded at the header's place: its bytes up to the first NUL.
pub fn read_embedded(path: &Path, h: &SparseHeader) -> io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(h.descriptor_offset * 512))?;
    let mut buf = vec![0u8; (h.descriptor_size * 512) as usize];
    let n = read_full(&mut f, &mut buf)?;
    buf.truncate(n);
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    buf.truncate(end);
    Ok(buf)
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Writes `text` over the embedded descriptor, padded with NULs to its full room, and syncs.
/// Refuses text that does not fit (the room is fixed when the file is made).
pub fn write_embedded(path: &Path, h: &SparseHeader, text: &[u8]) -> io::Result<()> {
    let room = (h.descriptor_size * 512) as usize;
    if h.descriptor_offset == 0 || text.len() >= room {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the descriptor ({} bytes) does not fit the {room} bytes the file keeps for it", text.len()),
        ));
    }
    let mut area = text.to_vec();
    area.resize(room, 0);
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(h.descriptor_offset * 512))?;
    f.write_all(&area)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_read_little_endian() {
        let mut b = vec![0u8; 512];
        b[..4].copy_from_slice(MAGIC);
        b[12..20].copy_from_slice(&131072u64.to_le_bytes());
        b[28..36].copy_from_slice(&1u64.to_le_bytes());
        b[36..44].copy_from_slice(&20u64.to_le_bytes());
        assert_eq!(
            parse_header(&b),
            Some(SparseHeader { capacity: 131072, descriptor_offset: 1, descriptor_size: 20 })
        );
        assert_eq!(parse_header(b"# Disk DescriptorFile"), None);
    }
}
