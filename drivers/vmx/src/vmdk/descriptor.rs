//! The text descriptor of a VMDK, kept losslessly: header pairs (`version`, `CID`,
//! `parentCID`, `createType`, `parentFileNameHint`, ...), extent lines
//! (`RW 131072 SPARSE "x.vmdk"`) and the disk database (`ddb.* = "..."`), with comments, blank
//! lines and line endings as written. Keys are read without case (the format is case-insensitive)
//! and CIDs leniently: QEMU writes them without zero padding.
//!
//! Setting a value rewrites only that value; an unchanged descriptor writes back identical.

use crate::vmx::Encoding;
use std::fmt;
use std::ops::Range;

/// A problem in a descriptor: its 1-based line and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptorError {
    /// 1-based line (0 when about the whole text).
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One extent: where a range of the disk's sectors is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extent {
    /// `RW`, `RDONLY` or `NOACCESS`.
    pub access: String,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// `SPARSE`, `FLAT`, `ZERO`, `VMFS`, `VMFSSPARSE`, `SESPARSE`, ...
    pub kind: String,
    /// The extent file, relative to the descriptor (none for `ZERO`).
    pub file: Option<String>,
    /// Offset in sectors inside the file (flat extents).
    pub offset: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Blank,
    Comment,
    /// `key=value` or `key = "value"`: byte ranges in the line, value without quotes.
    Pair {
        key: Range<usize>,
        value: Range<usize>,
    },
    Extent(Extent),
}

#[derive(Clone, Debug)]
struct Line {
    text: String,
    ending: String,
    kind: Kind,
}

/// A parsed descriptor.
#[derive(Clone, Debug)]
pub struct Descriptor {
    lines: Vec<Line>,
    encoding: Encoding,
}

/// "No parent" as `parentCID` writes it.
pub const NO_PARENT: u32 = 0xffff_ffff;

fn is_access(word: &str) -> bool {
    ["RW", "RDONLY", "NOACCESS"].iter().any(|a| a.eq_ignore_ascii_case(word))
}

fn parse_extent(t: &str) -> Result<Extent, String> {
    let usage = "write an extent as ACCESS SECTORS TYPE \"FILE\" [OFFSET], like RW 2048 SPARSE \"x.vmdk\"";
    let mut rest = t.trim();
    let mut word = || {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let w = &rest[..end];
        rest = rest[end..].trim_start();
        w
    };
    let access = word().to_ascii_uppercase();
    let sectors = word();
    let sectors =
        sectors.parse().map_err(|_| format!("extent size {sectors:?} is not a number of sectors; {usage}"))?;
    let kind = word().to_ascii_uppercase();
    if kind.is_empty() {
        return Err(format!("the extent has no type; {usage}"));
    }
    let mut file = None;
    if let Some(q) = rest.strip_prefix('"') {
        let end = q.find('"').ok_or_else(|| format!("the extent's file name has no closing quote; {usage}"))?;
        file = Some(q[..end].to_string());
        rest = q[end + 1..].trim_start();
    }
    let mut offset = None;
    let tail = rest.split('#').next().unwrap_or("").trim();
    if !tail.is_empty() {
        offset = Some(tail.parse().map_err(|_| format!("unexpected {tail:?} after the extent's file; {usage}"))?);
    }
    if file.is_none() && kind != "ZERO" {
        return Err(format!("the {kind} extent names no file; {usage}"));
    }
    Ok(Extent { access, sectors, kind, file, offset })
}

fn parse_line(text: &str) -> Result<Kind, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Kind::Blank);
    }
    if t.starts_with('#') {
        return Ok(Kind::Comment);
    }
    let first = t.split_whitespace().next().unwrap_or("");
    if is_access(first) && t[first.len()..].starts_with(char::is_whitespace) {
        return parse_extent(t).map(Kind::Extent);
    }
    let Some(eq) = text.find('=') else {
        return Err("expected key=value, an extent line (RW 2048 SPARSE \"x.vmdk\") or a # comment".to_string());
    };
    let key_start = text.len() - text.trim_start().len();
    let key_end = text[..eq].trim_end().len();
    if key_end <= key_start {
        return Err("a line starts with '='; write key=value".to_string());
    }
    let after = &text[eq + 1..];
    let vstart = eq + 1 + (after.len() - after.trim_start().len());
    let v = &text[vstart..];
    let value = if let Some(q) = v.strip_prefix('"') {
        let end =
            q.find('"').ok_or_else(|| format!("the value of {} has no closing quote", &text[key_start..key_end]))?;
        vstart + 1..vstart + 1 + end
    } else {
        let end = v.find('#').unwrap_or(v.len());
        vstart..vstart + v[..end].trim_end().len()
    };
    Ok(Kind::Pair { key: key_start..key_end, value })
}

/// Reads a CID in hex, with or without zero padding.
pub fn parse_cid(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() || t.len() > 8 {
        return None;
    }
    u32::from_str_radix(t, 16).ok()
}

impl Descriptor {
    /// Parses descriptor bytes. UTF-8 unless the text declares another `encoding=`.
    pub fn parse(bytes: &[u8]) -> Result<Descriptor, DescriptorError> {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => return Self::parse_text(t, Encoding::Utf8),
            // Every byte is valid Latin-1: good enough to find the encoding line.
            Err(_) => Encoding::Latin1.decode(bytes).unwrap_or_default(),
        };
        let probe = Self::parse_text(&text, Encoding::Latin1)?;
        let name = probe.get("encoding").unwrap_or("UTF-8").to_string();
        let enc = Encoding::from_name(&name).ok_or_else(|| DescriptorError {
            line: probe.line_of("encoding").unwrap_or(0),
            message: format!("unknown encoding \"{name}\"; luavirt reads {}", Encoding::supported()),
        })?;
        let text = enc.decode(bytes).map_err(|at| DescriptorError {
            line: bytes[..at].iter().filter(|b| **b == b'\n').count() as u32 + 1,
            message: format!("not valid {} (byte 0x{:02x}); fix the text or its encoding= line", enc.name(), bytes[at]),
        })?;
        Self::parse_text(&text, enc)
    }

    fn parse_text(text: &str, encoding: Encoding) -> Result<Descriptor, DescriptorError> {
        let mut lines = Vec::new();
        let mut bytes: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let (content, ending, next) = match rest.find('\n') {
                Some(i) if i > 0 && rest.as_bytes()[i - 1] == b'\r' => (&rest[..i - 1], "\r\n", &rest[i + 1..]),
                Some(i) => (&rest[..i], "\n", &rest[i + 1..]),
                None => (rest, "", ""),
            };
            let kind =
                parse_line(content).map_err(|message| DescriptorError { line: lines.len() as u32 + 1, message })?;
            if let Kind::Extent(e) = &kind {
                // The capacity is counted in bytes: it must fit in 64 bits.
                bytes =
                    e.sectors.checked_mul(512).and_then(|b| b.checked_add(bytes)).ok_or_else(|| DescriptorError {
                        line: lines.len() as u32 + 1,
                        message: format!(
                            "the extents add up to more than 2^64 bytes with this one of {} sectors; fix its size",
                            e.sectors
                        ),
                    })?;
            }
            lines.push(Line { text: content.to_string(), ending: ending.to_string(), kind });
            rest = next;
        }
        let d = Descriptor { lines, encoding };
        if d.get("createType").is_none() && d.extents().is_empty() {
            return Err(DescriptorError {
                line: 0,
                message: "this is not a VMDK descriptor (no createType and no extent lines)".to_string(),
            });
        }
        Ok(d)
    }

    /// Writes the descriptor back in its encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let text: String = self.lines.iter().flat_map(|l| [l.text.as_str(), l.ending.as_str()]).collect();
        // Only values luavirt wrote can fail to encode, and it writes ASCII.
        self.encoding.encode(&text).unwrap_or_else(|_| text.into_bytes())
    }

    fn find(&self, key: &str) -> Option<usize> {
        self.lines.iter().position(|l| match &l.kind {
            Kind::Pair { key: k, .. } => l.text[k.clone()].eq_ignore_ascii_case(key),
            _ => false,
        })
    }

    fn line_of(&self, key: &str) -> Option<u32> {
        self.find(key).map(|n| n as u32 + 1)
    }

    /// The value of header or `ddb.` key `key`, without case.
    pub fn get(&self, key: &str) -> Option<&str> {
        let l = &self.lines[self.find(key)?];
        match &l.kind {
            Kind::Pair { value, .. } => Some(&l.text[value.clone()]),
            _ => None,
        }
    }

    /// `createType`.
    pub fn create_type(&self) -> Option<&str> {
        self.get("createType")
    }

    /// `CID`.
    pub fn cid(&self) -> Option<u32> {
        self.get("CID").and_then(parse_cid)
    }

    /// `parentCID`; `None` when absent or `ffffffff`.
    pub fn parent_cid(&self) -> Option<u32> {
        self.get("parentCID").and_then(parse_cid).filter(|c| *c != NO_PARENT)
    }

    /// `parentFileNameHint`, when set and not empty.
    pub fn parent_hint(&self) -> Option<&str> {
        self.get("parentFileNameHint").filter(|h| !h.trim().is_empty())
    }

    /// The extents, in order.
    pub fn extents(&self) -> Vec<&Extent> {
        self.lines
            .iter()
            .filter_map(|l| match &l.kind {
                Kind::Extent(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    /// The disk's size: the sum of its extents, in bytes (parsing checked that it fits).
    pub fn capacity(&self) -> u64 {
        self.extents().iter().map(|e| e.sectors * 512).sum()
    }

    /// Sets `key` to `value`. An existing line keeps everything but the value (and its
    /// quotes, if it had them); a new line goes after the last header pair before the extents,
    /// quoted when `quoted`.
    pub fn set(&mut self, key: &str, value: &str, quoted: bool) {
        if let Some(n) = self.find(key) {
            let l = &mut self.lines[n];
            let Kind::Pair { key: k, value: v } = l.kind.clone() else {
                unreachable!("find returns pairs");
            };
            l.text.replace_range(v.clone(), value);
            l.kind = Kind::Pair { key: k, value: v.start..v.start + value.len() };
            return;
        }
        let first_extent =
            self.lines.iter().position(|l| matches!(l.kind, Kind::Extent(_))).unwrap_or(self.lines.len());
        let at = self.lines[..first_extent]
            .iter()
            .rposition(|l| matches!(l.kind, Kind::Pair { .. }))
            .map_or(first_extent, |i| i + 1);
        let text = if quoted { format!("{key}=\"{value}\"") } else { format!("{key}={value}") };
        let vstart = key.len() + 1 + usize::from(quoted);
        let ending = self
            .lines
            .first()
            .map_or("\n".to_string(), |l| if l.ending.is_empty() { "\n".to_string() } else { l.ending.clone() });
        self.lines.insert(
            at,
            Line { kind: Kind::Pair { key: 0..key.len(), value: vstart..vstart + value.len() }, text, ending },
        );
    }

    /// Removes the line of `key`, if any.
    pub fn remove(&mut self, key: &str) {
        if let Some(n) = self.find(key) {
            self.lines.remove(n);
        }
    }

    /// Sets `CID`, written as eight hex digits.
    pub fn set_cid(&mut self, cid: u32) {
        self.set("CID", &format!("{cid:08x}"), false);
    }

    /// Sets `parentCID` (`None`: no parent).
    pub fn set_parent_cid(&mut self, cid: Option<u32>) {
        self.set("parentCID", &format!("{:08x}", cid.unwrap_or(NO_PARENT)), false);
    }

    /// Sets or removes `parentFileNameHint`.
    pub fn set_parent_hint(&mut self, hint: Option<&str>) {
        match hint {
            Some(h) => self.set("parentFileNameHint", h, true),
            None => self.remove("parentFileNameHint"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_DELTA: &str = "# Disk DescriptorFile\nversion=1\nCID=65de4067\nparentCID=892b8fd\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\n\n# Extent description\nRW 131072 SPARSE \"base-000001.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n";

    const ESX_FLAT: &str = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\nparentCID=ffffffff\r\nisNativeSnapshot=\"no\"\r\ncreateType=\"vmfs\"\r\n\r\n# Extent description\r\nRW 41943040 VMFS \"web01-flat.vmdk\"\r\n\r\n# The Disk Data Base\r\n#DDB\r\n\r\nddb.adapterType = \"lsilogic\"\r\nddb.uuid = \"60 00 C2 91 2a 3b 4c 5d-6e 7f 80 91 a2 b3 c4 d5\"\r\nddb.thinProvisioned = \"1\"\r\n";

    #[test]
    fn reads_header_extents_and_ddb_leniently() {
        let d = Descriptor::parse(QEMU_DELTA.as_bytes()).unwrap();
        assert_eq!(d.create_type(), Some("monolithicSparse"));
        assert_eq!(d.cid(), Some(0x65de4067));
        assert_eq!(d.parent_cid(), Some(0x0892b8fd), "unpadded hex");
        assert_eq!(d.parent_hint(), Some("base.vmdk"));
        assert_eq!(d.get("DDB.ADAPTERTYPE"), Some("ide"));
        assert_eq!(
            d.extents(),
            [&Extent {
                access: "RW".into(),
                sectors: 131072,
                kind: "SPARSE".into(),
                file: Some("base-000001.vmdk".into()),
                offset: None
            }]
        );
        assert_eq!(d.capacity(), 64 << 20);
        let e = Descriptor::parse(ESX_FLAT.as_bytes()).unwrap();
        assert_eq!((e.parent_cid(), e.parent_hint(), e.capacity()), (None, None, 20 << 30));
        assert_eq!(e.get("ddb.thinProvisioned"), Some("1"));
    }

    #[test]
    fn unchanged_descriptors_write_back_identical_and_edits_touch_one_value() {
        for text in [QEMU_DELTA, ESX_FLAT] {
            assert_eq!(Descriptor::parse(text.as_bytes()).unwrap().to_bytes(), text.as_bytes());
        }
        let mut d = Descriptor::parse(QEMU_DELTA.as_bytes()).unwrap();
        d.set_parent_cid(Some(0xabc));
        d.set_parent_hint(Some("web-000002.vmdk"));
        let out = String::from_utf8(d.to_bytes()).unwrap();
        assert_eq!(
            out,
            QEMU_DELTA
                .replace("parentCID=892b8fd", "parentCID=00000abc")
                .replace("\"base.vmdk\"", "\"web-000002.vmdk\"")
        );
        let mut e = Descriptor::parse(ESX_FLAT.as_bytes()).unwrap();
        e.set_parent_hint(Some("base.vmdk"));
        let out = String::from_utf8(e.to_bytes()).unwrap();
        assert_eq!(
            out,
            ESX_FLAT.replace("createType=\"vmfs\"\r\n", "createType=\"vmfs\"\r\nparentFileNameHint=\"base.vmdk\"\r\n")
        );
        e.set_parent_hint(None);
        assert_eq!(e.to_bytes(), ESX_FLAT.as_bytes());
    }

    #[test]
    fn extents_of_every_shape() {
        let d = Descriptor::parse(b"createType=\"custom\"\nRW 16384 FLAT \"a b-flat.vmdk\" 0\nRDONLY 100 ZERO\nrw 8 vmfssparse \"x-delta.vmdk\"\n").unwrap();
        let x = d.extents();
        assert_eq!((x[0].file.as_deref(), x[0].offset), (Some("a b-flat.vmdk"), Some(0)));
        assert_eq!((x[1].kind.as_str(), x[1].file.as_deref()), ("ZERO", None));
        assert_eq!((x[2].access.as_str(), x[2].kind.as_str()), ("RW", "VMFSSPARSE"));
    }

    #[test]
    fn a_capacity_past_64_bits_is_an_error_not_an_overflow() {
        // Seen while writing fuzz/fuzz_targets/vmdk_descriptor.rs: sectors * 512 overflowed.
        let e = Descriptor::parse(b"createType=\"x\"\nRW 99999999999999999 SPARSE \"a.vmdk\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("more than 2^64 bytes with this one of 99999999999999999 sectors"), "{e}");
        let half = u64::MAX / 512 / 2 + 1;
        let text = format!("createType=\"x\"\nRW {half} SPARSE \"a.vmdk\"\nRW {half} SPARSE \"b.vmdk\"\n");
        assert_eq!(Descriptor::parse(text.as_bytes()).unwrap_err().line, 3);
        let most = u64::MAX / 512;
        let d = Descriptor::parse(format!("createType=\"x\"\nRW {most} SPARSE \"a.vmdk\"\n").as_bytes()).unwrap();
        assert_eq!(d.capacity(), most * 512);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Descriptor::parse(b"version=1\nRW lots SPARSE \"x.vmdk\"\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not a number of sectors"), "{e}");
        let e = Descriptor::parse(b"version=1\nhello world\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Descriptor::parse(b"version=1\n").unwrap_err();
        assert!(e.message.contains("not a VMDK descriptor"), "{e}");
        assert_eq!(parse_cid("7235c39"), Some(0x07235c39));
        assert_eq!(parse_cid("123456789"), None);
    }

    #[test]
    fn legacy_encodings_are_read_and_kept() {
        let bytes = b"encoding=\"windows-1252\"\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"B\xfcro-flat.vmdk\" 0\n";
        let d = Descriptor::parse(bytes).unwrap();
        assert_eq!(d.extents()[0].file.as_deref(), Some("Büro-flat.vmdk"));
        assert_eq!(d.to_bytes(), bytes);
    }
}
