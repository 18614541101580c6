//! Virtual device names (xen-vbd-interface(7)), checked as libxl checks them when a domain
//! starts: `xvdX` (disks up to 2^20, partitions up to 255), `hdX` (IDE, hda to hdd,
//! partitions up to 63), `sdX` (SCSI, sda to sdp, partitions up to 15), `dNpN`, or a raw
//! xenstore number. Disk letters count like spreadsheet columns: `xvdz` is 25, `xvdaa` 26.

/// The kind of disk a vdev names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `xvd*`, `dNpN`, or a number: a Xen virtual disk.
    Xen,
    /// `hd*`: IDE on an HVM guest.
    Ide,
    /// `sd*`: SCSI on an HVM guest.
    Scsi,
}

/// A valid vdev: its kind, disk number and partition (0: the whole disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vdev {
    /// The kind.
    pub kind: Kind,
    /// Disk number, from 0.
    pub disk: u32,
    /// Partition, 0 for the whole disk.
    pub partition: u32,
}

/// `prefix` + disk letters + optional partition, within the limits.
fn lettered(name: &str, prefix: &str, max_disk: u32, max_partition: u32) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(prefix)?;
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    if letters == 0 {
        return None;
    }
    let mut disk: i64 = -1;
    for c in rest[..letters].bytes() {
        disk = (disk + 1) * 26 + i64::from(c - b'a');
        if disk > i64::from(max_disk) {
            return None;
        }
    }
    let digits = &rest[letters..];
    let partition = if digits.is_empty() {
        0
    } else if digits.starts_with('0') || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    } else {
        digits.parse::<u32>().ok().filter(|p| *p <= max_partition)?
    };
    Some((disk as u32, partition))
}

/// `dNpN` (or `dN`).
fn numbered(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix('d')?;
    let (disk, partition) = rest.split_once('p').unwrap_or((rest, "0"));
    let num =
        |s: &str| (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten();
    let (d, p) = (num(disk)?, num(partition)?);
    (d < 1 << 20 && p < 256).then_some((d, p))
}

/// A xenstore device number written directly (decimal, `0x` hex or `0` octal).
fn raw_number(name: &str) -> bool {
    let parsed = if let Some(hex) = name.strip_prefix("0x").or_else(|| name.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16)
    } else if name.len() > 1 && name.starts_with('0') {
        u32::from_str_radix(&name[1..], 8)
    } else {
        name.parse::<u32>()
    };
    parsed.is_ok_and(|n| n <= i32::MAX as u32)
}

/// Reads `name`, or says why Xen would refuse it.
pub fn parse(name: &str) -> Result<Vdev, String> {
    let v = |kind, (disk, partition)| Vdev { kind, disk, partition };
    if let Some(x) = lettered(name, "xvd", (1 << 20) - 1, 255).or_else(|| numbered(name)) {
        return Ok(v(Kind::Xen, x));
    }
    if !name.is_empty() && raw_number(name) {
        return Ok(v(Kind::Xen, (0, 0)));
    }
    if let Some(x) = lettered(name, "hd", 3, 63) {
        return Ok(v(Kind::Ide, x));
    }
    if let Some(x) = lettered(name, "sd", 15, 15) {
        return Ok(v(Kind::Scsi, x));
    }
    Err(format!(
        "'{name}' is not a virtual disk Xen knows: use xvdX (xvda, xvdb, ... with an optional partition number), hdX (hda to hdd, IDE) or sdX (sda to sdp, SCSI) (xen-vbd-interface(7))"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_xen_accepts_and_refuses() {
        let ok = |n: &str| parse(n).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok("xvda"), Vdev { kind: Kind::Xen, disk: 0, partition: 0 });
        assert_eq!(ok("xvdb2"), Vdev { kind: Kind::Xen, disk: 1, partition: 2 });
        assert_eq!(ok("xvdtq37"), Vdev { kind: Kind::Xen, disk: 536, partition: 37 });
        assert_eq!(ok("xvdaa"), Vdev { kind: Kind::Xen, disk: 26, partition: 0 });
        assert_eq!(ok("d536p37"), Vdev { kind: Kind::Xen, disk: 536, partition: 37 });
        assert_eq!(ok("hdc"), Vdev { kind: Kind::Ide, disk: 2, partition: 0 });
        assert_eq!(ok("hdd63"), Vdev { kind: Kind::Ide, disk: 3, partition: 63 });
        assert_eq!(ok("sdb3"), Vdev { kind: Kind::Scsi, disk: 1, partition: 3 });
        assert_eq!(ok("sdp"), Vdev { kind: Kind::Scsi, disk: 15, partition: 0 });
        assert_eq!(ok("51712").kind, Kind::Xen);
        assert_eq!(ok("0xca00").kind, Kind::Xen);
        for bad in [
            "", "xvd", "xvda0", "xvda01", "xvda256", "hde", "hda64", "sdq", "sda16", "vda", "xvda ", "Xvda", "d1p256",
            "dx",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("is not a virtual disk Xen knows"), "{bad}: {e}");
        }
    }
}
