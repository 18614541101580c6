//! The character encodings a `.vmx` may declare with `.encoding`: UTF-8 and the legacy
//! single-byte encodings met in the wild, converted by table so nothing outside std is needed.
//!
//! Every supported encoding is a superset of ASCII, so a file's lines, keys, `=` and quotes can
//! be found in its bytes before its values are decoded. Decoding then encoding gives back the
//! same bytes (the tables are one-to-one), which keeps unchanged values byte-identical.

/// A supported encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, what VMware writes today (and the default when `.encoding` is absent).
    Utf8,
    /// windows-1252 (Western European, Windows hosts of old Workstation versions).
    Windows1252,
    /// ISO-8859-1 (Latin-1).
    Latin1,
    /// ISO-8859-15 (Latin-9: Latin-1 with the euro sign).
    Latin9,
}

/// Names accepted in `.encoding`, compared without case.
const NAMES: &[(&str, Encoding)] = &[
    ("utf-8", Encoding::Utf8),
    ("utf8", Encoding::Utf8),
    ("windows-1252", Encoding::Windows1252),
    ("cp1252", Encoding::Windows1252),
    ("x-cp1252", Encoding::Windows1252),
    ("iso-8859-1", Encoding::Latin1),
    ("iso8859-1", Encoding::Latin1),
    ("iso_8859-1", Encoding::Latin1),
    ("latin1", Encoding::Latin1),
    ("iso-8859-15", Encoding::Latin9),
    ("iso8859-15", Encoding::Latin9),
    ("latin9", Encoding::Latin9),
];

/// windows-1252 bytes 0x80..=0x9F. The five bytes the code page leaves undefined map to the
/// C1 control of the same number, as the WHATWG encoding standard does, so every byte decodes.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{02C6}',
    '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}', '\u{0090}', '\u{2018}',
    '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}',
    '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// ISO-8859-15 bytes that differ from ISO-8859-1.
const LATIN9_CHANGES: [(u8, char); 8] = [
    (0xA4, '\u{20AC}'),
    (0xA6, '\u{0160}'),
    (0xA8, '\u{0161}'),
    (0xB4, '\u{017D}'),
    (0xB8, '\u{017E}'),
    (0xBC, '\u{0152}'),
    (0xBD, '\u{0153}'),
    (0xBE, '\u{0178}'),
];

impl Encoding {
    /// Looks up an `.encoding` value.
    pub fn from_name(name: &str) -> Option<Encoding> {
        let n = name.trim().to_ascii_lowercase();
        NAMES.iter().find(|(k, _)| *k == n).map(|(_, e)| *e)
    }

    /// The encodings luavirt reads, for error messages.
    pub fn supported() -> &'static str {
        "UTF-8, windows-1252, ISO-8859-1, ISO-8859-15"
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Windows1252 => "windows-1252",
            Encoding::Latin1 => "ISO-8859-1",
            Encoding::Latin9 => "ISO-8859-15",
        }
    }

    fn decode_byte(self, b: u8) -> char {
        match self {
            Encoding::Windows1252 if (0x80..0xA0).contains(&b) => CP1252_HIGH[(b - 0x80) as usize],
            Encoding::Latin9 => LATIN9_CHANGES.iter().find(|(x, _)| *x == b).map_or(b as char, |(_, c)| *c),
            _ => b as char,
        }
    }

    fn encode_char(self, c: char) -> Option<u8> {
        let cp = c as u32;
        match self {
            Encoding::Utf8 => None,
            Encoding::Windows1252 => {
                if cp < 0x80 || (0xA0..0x100).contains(&cp) {
                    Some(cp as u8)
                } else {
                    CP1252_HIGH.iter().position(|x| *x == c).map(|i| 0x80 + i as u8)
                }
            }
            Encoding::Latin1 => (cp < 0x100).then_some(cp as u8),
            Encoding::Latin9 => {
                if let Some((b, _)) = LATIN9_CHANGES.iter().find(|(_, x)| *x == c) {
                    Some(*b)
                } else if cp < 0x100 && !LATIN9_CHANGES.iter().any(|(b, _)| *b as u32 == cp) {
                    Some(cp as u8)
                } else {
                    None
                }
            }
        }
    }

    /// Decodes `bytes`; on failure, the offset of the first byte that is not valid.
    pub fn decode(self, bytes: &[u8]) -> Result<String, usize> {
        match self {
            Encoding::Utf8 => std::str::from_utf8(bytes).map(str::to_string).map_err(|e| e.valid_up_to()),
            _ => Ok(bytes.iter().map(|b| self.decode_byte(*b)).collect()),
        }
    }

    /// Encodes `text`; on failure, the first character this encoding cannot hold.
    pub fn encode(self, text: &str) -> Result<Vec<u8>, char> {
        match self {
            Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
            _ => text.chars().map(|c| self.encode_char(c).ok_or(c)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_encodings_round_trip_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        for e in [Encoding::Windows1252, Encoding::Latin1, Encoding::Latin9] {
            let text = e.decode(&all).unwrap();
            assert_eq!(e.encode(&text).unwrap(), all, "{e:?}");
        }
    }

    #[test]
    fn tables_decode_the_characters_that_differ() {
        assert_eq!(Encoding::Windows1252.decode(b"\x80 \x93x\x94 caf\xe9").unwrap(), "€ “x” café");
        assert_eq!(Encoding::Latin1.decode(b"\x80\xe9").unwrap(), "\u{80}é");
        assert_eq!(Encoding::Latin9.decode(b"\xa4\xbd").unwrap(), "€œ");
        assert_eq!(Encoding::Latin1.encode("€"), Err('€'));
        assert_eq!(Encoding::Windows1252.encode("€").unwrap(), b"\x80");
        assert_eq!(Encoding::Utf8.decode(b"ok\xff"), Err(2));
    }

    #[test]
    fn names_are_matched_without_case() {
        assert_eq!(Encoding::from_name("Windows-1252"), Some(Encoding::Windows1252));
        assert_eq!(Encoding::from_name(" utf-8 "), Some(Encoding::Utf8));
        assert_eq!(Encoding::from_name("Shift_JIS"), None);
    }
}
