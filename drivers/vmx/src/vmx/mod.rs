//! A `.vmx` file kept losslessly: every line keeps its bytes (comments, blank lines, key case,
//! spacing, escapes, line endings, unknown keys, the file's own encoding), so a file read and
//! written back unchanged is byte-identical, and changing one value rewrites only the bytes of
//! that value.
//!
//! Keys are looked up without case, as VMware does; a key set twice is an error naming both
//! lines. Values are unescaped (`|XX`) and decoded from the encoding `.encoding` names.

mod encoding;
mod escape;
mod line;

pub use encoding::Encoding;

use line::Kind;
use std::collections::HashMap;
use std::fmt;

/// A problem in a `.vmx`, with its file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmxError {
    /// The file, as it is named in messages.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for VmxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for VmxError {}

/// One line: its bytes, its line ending, what it holds, and an entry's decoded value.
#[derive(Clone, Debug)]
struct Line {
    raw: Vec<u8>,
    ending: Vec<u8>,
    kind: Kind,
    value: Option<String>,
}

/// A parsed `.vmx`.
#[derive(Clone, Debug)]
pub struct VmxFile {
    file: String,
    bom: bool,
    encoding: Encoding,
    lines: Vec<Line>,
}

/// One `key = "value"` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The key as written (its case kept).
    pub key: &'a str,
    /// The value, unescaped and decoded.
    pub value: &'a str,
    /// 1-based line.
    pub line: u32,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits `bytes` into (content, ending) pairs; a last line without a newline keeps an empty
/// ending, and a final newline does not start an extra line.
fn split_lines(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match rest.iter().position(|b| *b == b'\n') {
            Some(i) => {
                let (content, ending) = if i > 0 && rest[i - 1] == b'\r' {
                    (&rest[..i - 1], &rest[i - 1..=i])
                } else {
                    (&rest[..i], &rest[i..=i])
                };
                out.push((content.to_vec(), ending.to_vec()));
                rest = &rest[i + 1..];
            }
            None => {
                out.push((rest.to_vec(), Vec::new()));
                rest = &[];
            }
        }
    }
    out
}

impl VmxFile {
    /// Parses the bytes of a `.vmx`; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<VmxFile, VmxError> {
        let err = |line: usize, message: String| VmxError { file: file.to_string(), line: line as u32 + 1, message };
        let bom = bytes.starts_with(BOM);
        let body = if bom { &bytes[BOM.len()..] } else { bytes };
        let mut lines = Vec::new();
        for (n, (raw, ending)) in split_lines(body).into_iter().enumerate() {
            let kind = line::parse(&raw).map_err(|(col, m)| err(n, format!("syntax error at column {col}: {m}")))?;
            lines.push(Line { raw, ending, kind, value: None });
        }
        let mut vmx = VmxFile { file: file.to_string(), bom, encoding: Encoding::Utf8, lines };
        vmx.check_duplicates()?;
        let declared = vmx.find(".encoding");
        if let Some(n) = declared {
            let raw = vmx.raw_value(n);
            let name = String::from_utf8_lossy(&escape::unescape(raw)).into_owned();
            vmx.encoding = Encoding::from_name(&name).ok_or_else(|| {
                err(
                    n,
                    format!(
                        "unknown .encoding \"{name}\"; luavirt reads {}. Convert the file (iconv -f '{name}' -t UTF-8) and set .encoding = \"UTF-8\"",
                        Encoding::supported()
                    ),
                )
            })?;
        }
        for n in 0..vmx.lines.len() {
            let Kind::Entry { key, value } = &vmx.lines[n].kind else {
                continue;
            };
            let raw = &vmx.lines[n].raw;
            let bytes = escape::unescape(&raw[value.clone()]);
            let key_text = String::from_utf8_lossy(&raw[key.clone()]).into_owned();
            let decoded = vmx.encoding.decode(&bytes).map_err(|at| {
                let hint = if declared.is_none() {
                    "the file has no .encoding line, so it is read as UTF-8; add .encoding = \"windows-1252\" (or the encoding it is in)".to_string()
                } else {
                    format!("fix the value or the .encoding line (\"{}\")", vmx.encoding.name())
                };
                err(
                    n,
                    format!(
                        "the value of {key_text} is not valid {} (byte 0x{:02x}); {hint}",
                        vmx.encoding.name(),
                        bytes[at]
                    ),
                )
            })?;
            vmx.lines[n].value = Some(decoded);
        }
        Ok(vmx)
    }

    fn check_duplicates(&self) -> Result<(), VmxError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (n, line) in self.lines.iter().enumerate() {
            if let Kind::Entry { key, .. } = &line.kind {
                let k = String::from_utf8_lossy(&line.raw[key.clone()]).into_owned();
                if let Some(first) = seen.insert(k.to_ascii_lowercase(), n) {
                    return Err(VmxError {
                        file: self.file.clone(),
                        line: n as u32 + 1,
                        message: format!(
                            "key {k} is set twice (lines {} and {}; keys do not depend on case); VMware refuses duplicate keys, so remove one",
                            first + 1,
                            n + 1
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes the file back: unchanged lines exactly as read.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.bom {
            out.extend_from_slice(BOM);
        }
        for l in &self.lines {
            out.extend_from_slice(&l.raw);
            out.extend_from_slice(&l.ending);
        }
        out
    }

    /// The file's name in messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The encoding values are read and written in.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    fn raw_value(&self, n: usize) -> &[u8] {
        match &self.lines[n].kind {
            Kind::Entry { value, .. } => &self.lines[n].raw[value.clone()],
            _ => &[],
        }
    }

    fn entry_at(&self, n: usize) -> Option<Entry<'_>> {
        let l = &self.lines[n];
        match &l.kind {
            Kind::Entry { key, .. } => Some(Entry {
                // Keys are ASCII: the line parser accepts nothing else in them.
                key: std::str::from_utf8(&l.raw[key.clone()]).unwrap_or(""),
                value: l.value.as_deref().unwrap_or(""),
                line: n as u32 + 1,
            }),
            _ => None,
        }
    }

    /// Index of the line that sets `key` (any case).
    fn find(&self, key: &str) -> Option<usize> {
        (0..self.lines.len()).find(|&n| match &self.lines[n].kind {
            Kind::Entry { key: k, .. } => self.lines[n].raw[k.clone()].eq_ignore_ascii_case(key.as_bytes()),
            _ => false,
        })
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        (0..self.lines.len()).filter_map(|n| self.entry_at(n))
    }

    /// The entry for `key`, looked up without case.
    pub fn entry(&self, key: &str) -> Option<Entry<'_>> {
        self.find(key).and_then(|n| self.entry_at(n))
    }

    /// The value of `key`, looked up without case.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).map(|e| e.value)
    }

    /// An error at `line` of this file.
    pub fn error(&self, line: u32, message: impl Into<String>) -> VmxError {
        VmxError { file: self.file.clone(), line, message: message.into() }
    }

    fn encode_value(&self, key: &str, value: &str, line: u32) -> Result<Vec<u8>, VmxError> {
        let bytes = self.encoding.encode(value).map_err(|c| {
            self.error(
                line,
                format!(
                    "cannot write {c:?} into {key}: the file is in {}; convert it to UTF-8 first",
                    self.encoding.name()
                ),
            )
        })?;
        Ok(escape::escape(&bytes))
    }

    /// Sets the value of the existing entry `key`, rewriting only the bytes of its value.
    /// Returns false (and changes nothing) when the value is already `value`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, VmxError> {
        let n = self.find(key).ok_or_else(|| self.error(0, format!("internal: no entry {key} to set")))?;
        if self.lines[n].value.as_deref() == Some(value) {
            return Ok(false);
        }
        let bytes = self.encode_value(key, value, n as u32 + 1)?;
        let l = &mut self.lines[n];
        let Kind::Entry { key: k, value: v } = l.kind.clone() else {
            unreachable!("find returns entries only");
        };
        l.raw.splice(v.clone(), bytes.iter().copied());
        l.kind = Kind::Entry { key: k, value: v.start..v.start + bytes.len() };
        l.value = Some(value.to_string());
        Ok(true)
    }

    /// Adds `key = "value"` on a new line right after line `after` (1-based, an entry), copying
    /// that line's indentation, spacing around `=` and line ending. Returns the new line's
    /// number. `key` must not be set yet.
    pub fn insert_after(&mut self, after: u32, key: &str, value: &str) -> Result<u32, VmxError> {
        if let Some(e) = self.entry(key) {
            return Err(self.error(e.line, format!("internal: {key} is already set")));
        }
        let n = after as usize - 1;
        let Some(Line { raw, kind: Kind::Entry { key: k, value: v }, .. }) = self.lines.get(n) else {
            return Err(self.error(after, "internal: not an entry line"));
        };
        let bytes = self.encode_value(key, value, after + 1)?;
        let mut new_raw = raw[..k.start].to_vec();
        let key_start = new_raw.len();
        new_raw.extend_from_slice(key.as_bytes());
        let key_range = key_start..new_raw.len();
        new_raw.extend_from_slice(&raw[k.end..v.start]);
        let value_start = new_raw.len();
        new_raw.extend_from_slice(&bytes);
        let value_range = value_start..new_raw.len();
        new_raw.push(b'"');
        let mut ending = self.lines[n].ending.clone();
        if ending.is_empty() {
            // The line was the last one, with no newline: it needs one now, the new line not.
            self.lines[n].ending = self.usual_ending();
            ending = Vec::new();
        }
        self.lines.insert(
            n + 1,
            Line {
                raw: new_raw,
                ending,
                kind: Kind::Entry { key: key_range, value: value_range },
                value: Some(value.to_string()),
            },
        );
        Ok(after + 1)
    }

    /// Removes the line that sets `key`. Returns false when there is none.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Some(n) => {
                self.lines.remove(n);
                true
            }
            None => false,
        }
    }

    /// Renames the entry `key` to `new_key`, keeping its value and everything else on the line.
    /// `new_key` must not be set yet.
    pub fn rename(&mut self, key: &str, new_key: &str) -> Result<(), VmxError> {
        if let Some(e) = self.entry(new_key) {
            return Err(self.error(e.line, format!("internal: {new_key} is already set")));
        }
        let n = self.find(key).ok_or_else(|| self.error(0, format!("internal: no entry {key} to rename")))?;
        let l = &mut self.lines[n];
        let Kind::Entry { key: k, value: v } = l.kind.clone() else {
            unreachable!("find returns entries only");
        };
        l.raw.splice(k.clone(), new_key.bytes());
        let shift = |i: usize| i + new_key.len() - k.len();
        l.kind = Kind::Entry { key: k.start..k.start + new_key.len(), value: shift(v.start)..shift(v.end) };
        Ok(())
    }

    /// Adds `key = "value"` as the last line, with the line ending most lines use. Returns the
    /// new line's number. `key` must not be set yet.
    pub fn append(&mut self, key: &str, value: &str) -> Result<u32, VmxError> {
        if let Some(e) = self.entry(key) {
            return Err(self.error(e.line, format!("internal: {key} is already set")));
        }
        let ending = self.usual_ending();
        let line = self.lines.len() as u32 + 1;
        let bytes = self.encode_value(key, value, line)?;
        if let Some(last) = self.lines.last_mut()
            && last.ending.is_empty()
        {
            last.ending = ending.clone();
        }
        let mut raw = format!("{key} = \"").into_bytes();
        let value_start = raw.len();
        raw.extend_from_slice(&bytes);
        let value_range = value_start..raw.len();
        raw.push(b'"');
        self.lines.push(Line {
            raw,
            ending,
            kind: Kind::Entry { key: 0..key.len(), value: value_range },
            value: Some(value.to_string()),
        });
        Ok(line)
    }

    /// The line ending most lines use.
    pub fn usual_ending(&self) -> Vec<u8> {
        let crlf = self.lines.iter().filter(|l| l.ending == b"\r\n").count();
        let lf = self.lines.iter().filter(|l| l.ending == b"\n").count();
        if crlf > lf { b"\r\n".to_vec() } else { b"\n".to_vec() }
    }
}

/// Reads a `.vmx` boolean (`"TRUE"`, `"false"`, ...), without case.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
