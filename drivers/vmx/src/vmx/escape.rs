//! The `|XX` escapes of `.vmx` values: `|` and two hex digits stand for the byte 0xXX
//! (`|22` is `"`, `|7C` is `|`, `|0A` a newline). They work on bytes, before the file's
//! encoding is applied, so an escaped byte decodes like any other byte of the value.

/// Replaces each `|XX` by its byte. A `|` not followed by two hex digits stays as it is
/// (VMware never writes one; keeping it loses nothing).
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'|'
            && let Some(b) = raw.get(i + 1..i + 3).and_then(hex_byte)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(two).ok()?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(s, 16).ok()
}

/// Escapes what cannot stand inside a quoted value: `"`, `|` and control bytes. Uses
/// lower-case hex, as VMware and libvirt write it.
pub fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b'"' || b == b'|' || b < 0x20 || b == 0x7F {
            out.extend_from_slice(format!("|{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_in_either_case_and_stray_pipes_stay() {
        assert_eq!(unescape(b"a|22b|7C|7cc|0A"), b"a\"b||c\n");
        assert_eq!(unescape(b"x|zz|2"), b"x|zz|2");
        assert_eq!(unescape(b"|e9"), b"\xe9");
    }

    #[test]
    fn escape_and_unescape_are_inverse() {
        let s = b"say \"hi\" | #1\n\tok";
        let e = escape(s);
        assert_eq!(e, b"say |22hi|22 |7c #1|0a|09ok");
        assert_eq!(unescape(&e), s);
    }
}
