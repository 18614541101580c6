//! The syntax of one `.vmx` line, on its raw bytes: blank, `#` comment, or
//! `key = "value"` (with an optional trailing `# comment`). Only where things are is recorded;
//! values are unescaped and decoded later, once the file's encoding is known.

use std::ops::Range;

/// What a line holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Nothing but spaces or tabs.
    Blank,
    /// A `#` comment (also a `#!` first line).
    Comment,
    /// `key = "value"`: byte ranges of the key and of the value between its quotes.
    Entry {
        /// The key as written.
        key: Range<usize>,
        /// The escaped value, without its quotes.
        value: Range<usize>,
    },
}

/// A syntax error: the 1-based column and what is wrong.
pub type SyntaxError = (usize, String);

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_key_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'.'
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_:.-*".contains(&b)
}

/// Parses one line (without its line ending).
pub fn parse(line: &[u8]) -> Result<Kind, SyntaxError> {
    let skip = |mut i: usize| {
        while i < line.len() && is_blank(line[i]) {
            i += 1;
        }
        i
    };
    let start = skip(0);
    match line.get(start) {
        None => return Ok(Kind::Blank),
        Some(b'#') => return Ok(Kind::Comment),
        Some(&b) if !is_key_start(b) => {
            return Err((
                start + 1,
                format!("expected a key or a '#' comment, found {}; each line is key = \"value\"", shown(b)),
            ));
        }
        _ => {}
    }
    let mut i = start;
    while i < line.len() && is_key_byte(line[i]) {
        i += 1;
    }
    let key = start..i;
    let key_text = String::from_utf8_lossy(&line[key.clone()]).into_owned();
    i = skip(i);
    match line.get(i) {
        Some(b'=') => i += 1,
        Some(&b) => {
            return Err((
                i + 1,
                format!(
                    "unexpected {} in key {key_text:?}; keys hold letters, digits and . : _ - *, followed by =",
                    shown(b)
                ),
            ));
        }
        None => {
            return Err((i + 1, format!("key {key_text:?} has no '= \"value\"'; write {key_text} = \"VALUE\"")));
        }
    }
    i = skip(i);
    if line.get(i) != Some(&b'"') {
        return Err((i + 1, format!("the value of {key_text} is not in double quotes; write {key_text} = \"VALUE\"")));
    }
    let value_start = i + 1;
    let Some(len) = line[value_start..].iter().position(|b| *b == b'"') else {
        return Err((
            i + 1,
            format!("the value of {key_text} has no closing double quote (values are one line; write a quote as |22)"),
        ));
    };
    let value = value_start..value_start + len;
    let after = skip(value.end + 1);
    match line.get(after) {
        None | Some(b'#') => Ok(Kind::Entry { key, value }),
        Some(&b) => Err((
            after + 1,
            format!(
                "unexpected {} after the value of {key_text}; write one key = \"value\" per line, and a quote inside a value as |22",
                shown(b)
            ),
        )),
    }
}

fn shown(b: u8) -> String {
    if b.is_ascii_graphic() { format!("'{}'", b as char) } else { format!("byte 0x{b:02x}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> (String, String) {
        match parse(line.as_bytes()).unwrap() {
            Kind::Entry { key, value } => (line[key].to_string(), line[value].to_string()),
            k => panic!("{line:?} parsed as {k:?}"),
        }
    }

    #[test]
    fn entries_comments_and_blanks() {
        assert_eq!(entry("displayName = \"web\""), ("displayName".into(), "web".into()));
        assert_eq!(entry("  scsi0:0.fileName=\"a b.vmdk\"  # disk"), ("scsi0:0.fileName".into(), "a b.vmdk".into()));
        assert_eq!(entry(".encoding = \"UTF-8\""), (".encoding".into(), "UTF-8".into()));
        assert_eq!(entry("x = \"\""), ("x".into(), "".into()));
        assert_eq!(parse(b"   \t").unwrap(), Kind::Blank);
        assert_eq!(parse(b"#!/usr/bin/vmware").unwrap(), Kind::Comment);
        assert_eq!(parse(b"  # note").unwrap(), Kind::Comment);
    }

    #[test]
    fn errors_say_where_and_what_to_write() {
        let e = parse(b"memsize = 1024").unwrap_err();
        assert_eq!(e.0, 11);
        assert!(e.1.contains("not in double quotes"), "{}", e.1);
        let e = parse(b"annotation = \"a\"b\"").unwrap_err();
        assert!(e.1.contains("after the value of annotation"), "{}", e.1);
        let e = parse(b"x = \"open").unwrap_err();
        assert!(e.1.contains("no closing double quote"), "{}", e.1);
        let e = parse(b"numvcpus").unwrap_err();
        assert!(e.1.contains("has no '= \"value\"'"), "{}", e.1);
        let e = parse(b"bad key = \"1\"").unwrap_err();
        assert_eq!(e.0, 5);
        let e = parse(b"= \"1\"").unwrap_err();
        assert!(e.1.contains("expected a key"), "{}", e.1);
    }
}
