//! Changes to an xl config that rewrite only what they change: one list item replaced,
//! removed or added, one setting added at the end. Every other byte (comments, spacing, quote
//! style, the other items) stays as it was. Each change gives a new config, parsed again, so a
//! change that would not read back is an error, never a written file.

use super::{Atom, CfgError, List, Value, XlConfig};

/// `value` as an xl string in quotes `q` (`'` or `"`), escaped so xl reads it back as it is.
pub fn quote(value: &str, q: u8) -> String {
    let q = q as char;
    let mut out = String::with_capacity(value.len() + 2);
    out.push(q);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            // A string ends on its line; other control characters may stand as they are.
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl XlConfig {
    /// This config with bytes `start..end` replaced by `with`, parsed again.
    fn splice(&self, start: usize, end: usize, with: &[u8]) -> Result<XlConfig, CfgError> {
        let mut bytes = self.bytes[..start].to_vec();
        bytes.extend_from_slice(with);
        bytes.extend_from_slice(&self.bytes[end..]);
        XlConfig::parse(&bytes, &self.file).map_err(|e| CfgError {
            message: format!("luavirt's change would not read back ({}); please report this", e.message),
            ..e
        })
    }

    fn list_at(&self, setting: usize) -> Result<&List, CfgError> {
        self.list(setting).ok_or_else(|| self.error(0, format!("setting {setting} is not a list")))
    }

    fn item_atom(&self, setting: usize, index: usize) -> Result<&Atom, CfgError> {
        match self.list_at(setting)?.items.get(index) {
            Some(Value::Atom(a)) => Ok(a),
            _ => Err(self.error(0, format!("item {index} of setting {setting} is not a string"))),
        }
    }

    /// Replaces string item `index` of list setting `setting` by `value`, in the same quotes.
    pub fn replace_item(&self, setting: usize, index: usize, value: &str) -> Result<XlConfig, CfgError> {
        let a = self.item_atom(setting, index)?;
        self.splice(a.start, a.end, quote(value, a.quote.unwrap_or(b'\'')).as_bytes())
    }

    /// This config with each of `cuts` (byte ranges, in order, apart) removed, parsed again.
    fn cut(&self, cuts: &[(usize, usize)]) -> Result<XlConfig, CfgError> {
        let mut bytes = Vec::with_capacity(self.bytes.len());
        let mut at = 0;
        for &(start, end) in cuts {
            bytes.extend_from_slice(&self.bytes[at..start]);
            at = end;
        }
        bytes.extend_from_slice(&self.bytes[at..]);
        XlConfig::parse(&bytes, &self.file).map_err(|e| CfgError {
            message: format!("luavirt's change would not read back ({}); please report this", e.message),
            ..e
        })
    }

    /// The offset of the next token from `at` on: blanks, line ends and comments skipped.
    fn next_token(&self, mut at: usize) -> usize {
        let b = &self.bytes;
        while at < b.len() {
            match b[at] {
                b' ' | b'\t' | b'\n' => at += 1,
                b'#' => {
                    while at < b.len() && b[at] != b'\n' {
                        at += 1;
                    }
                }
                _ => break,
            }
        }
        at
    }

    /// Removes item `index` of list setting `setting` with its separator; an item alone on its
    /// line takes the line (and a comment after it) with it. Other comments stay.
    pub fn remove_item(&self, setting: usize, index: usize) -> Result<XlConfig, CfgError> {
        let list = self.list_at(setting)?;
        let item = list.items.get(index).ok_or_else(|| self.error(list.open, format!("no item {index}")))?;
        let b = &self.bytes;
        let (start, end) = (item.start(), item.end());
        let line_start = b[..start].iter().rposition(|c| *c == b'\n').map_or(0, |p| p + 1);
        let alone = b[line_start..start].iter().all(|c| is_blank(*c));
        // Where the item's line ends, when only blanks (and a comment) follow `from` on it.
        let line_end = |from: usize| {
            let mut at = from;
            while at < b.len() && is_blank(b[at]) {
                at += 1;
            }
            if b.get(at) == Some(&b'#') {
                while at < b.len() && b[at] != b'\n' {
                    at += 1;
                }
            }
            (b.get(at) == Some(&b'\n')).then_some(at + 1)
        };
        let next = self.next_token(end);
        if b.get(next) == Some(&b',') {
            if b[end..next].contains(&b'\n') {
                // The comma after it is on a later line: the item and that comma go.
                return self.cut(&[(start, end), (next, next + 1)]);
            }
            return match line_end(next + 1) {
                Some(to) if alone => self.cut(&[(line_start, to)]),
                _ => {
                    let mut after = next + 1;
                    while after < b.len() && is_blank(b[after]) {
                        after += 1;
                    }
                    self.cut(&[(start, after)])
                }
            };
        }
        // The last item: the comma before it goes.
        let Some(prev) = index.checked_sub(1).and_then(|p| list.items.get(p)) else {
            return self.cut(&[(start, end)]);
        };
        let comma = self.next_token(prev.end());
        if !b[prev.end()..start].iter().any(|c| *c == b'\n' || *c == b'#') {
            return self.cut(&[(prev.end(), end)]);
        }
        match line_end(end) {
            Some(to) if alone => self.cut(&[(comma, comma + 1), (line_start, to)]),
            _ => self.cut(&[(comma, comma + 1), (start, end)]),
        }
    }

    /// Adds string `value` at the end of list setting `setting`, in the quotes of its first
    /// item, on a line of its own when the items are one per line.
    pub fn append_item(&self, setting: usize, value: &str) -> Result<XlConfig, CfgError> {
        let list = self.list_at(setting)?;
        let b = &self.bytes;
        let q = list.items.iter().find_map(|i| if let Value::Atom(a) = i { a.quote } else { None }).unwrap_or(b'\'');
        let text = quote(value, q);
        let Some(last) = list.items.last() else {
            return self.splice(list.open + 1, list.close, format!(" {text} ").as_bytes());
        };
        let line_start = b[..last.start()].iter().rposition(|c| *c == b'\n').map_or(0, |p| p + 1);
        let indent = &b[line_start..last.start()];
        let one_per_line = indent.iter().all(|c| is_blank(*c)) && line_start > list.open;
        let mut comma = last.end();
        while comma < b.len() && is_blank(b[comma]) {
            comma += 1;
        }
        let has_comma = b.get(comma) == Some(&b',');
        let indent = String::from_utf8_lossy(indent);
        match (one_per_line, has_comma) {
            (true, true) => self.splice(comma + 1, comma + 1, format!("\n{indent}{text},").as_bytes()),
            (true, false) => self.splice(last.end(), last.end(), format!(",\n{indent}{text}").as_bytes()),
            (false, true) => self.splice(comma + 1, comma + 1, format!(" {text},").as_bytes()),
            (false, false) => self.splice(last.end(), last.end(), format!(", {text}").as_bytes()),
        }
    }

    /// Adds `key = [ 'item', ... ]` on a new line at the end of the file.
    pub fn append_list_setting(&self, key: &str, items: &[String]) -> Result<XlConfig, CfgError> {
        let quoted: Vec<String> = items.iter().map(|i| quote(i, b'\'')).collect();
        let mut line = String::new();
        if !self.bytes.is_empty() && !self.bytes.ends_with(b"\n") {
            line.push('\n');
        }
        line.push_str(&format!("{key} = [ {} ]\n", quoted.join(", ")));
        self.splice(self.bytes.len(), self.bytes.len(), line.as_bytes())
    }
}
