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

    /// Removes item `index` of list setting `setting` with its separator; an item alone on its
    /// line takes the line with it.
    pub fn remove_item(&self, setting: usize, index: usize) -> Result<XlConfig, CfgError> {
        let list = self.list_at(setting)?;
        let item = list.items.get(index).ok_or_else(|| self.error(list.open, format!("no item {index}")))?;
        let b = &self.bytes;
        let (start, end) = (item.start(), item.end());
        let mut after = end;
        while after < b.len() && is_blank(b[after]) {
            after += 1;
        }
        if b.get(after) == Some(&b',') {
            after += 1;
            while after < b.len() && is_blank(b[after]) {
                after += 1;
            }
            let line_start = b[..start].iter().rposition(|c| *c == b'\n').map_or(0, |p| p + 1);
            let alone = b[line_start..start].iter().all(|c| is_blank(*c));
            // A comment after the item on its line is about the item: it goes too.
            let mut line_end = after;
            if b.get(line_end) == Some(&b'#') {
                while line_end < b.len() && b[line_end] != b'\n' {
                    line_end += 1;
                }
            }
            if alone && b.get(line_end) == Some(&b'\n') {
                return self.splice(line_start, line_end + 1, b"");
            }
            return self.splice(start, after, b"");
        }
        match index.checked_sub(1).and_then(|p| list.items.get(p)) {
            // The last item without a comma after it: the separator before it goes.
            Some(prev) => self.splice(prev.end(), end, b""),
            None => self.splice(start, end, b""),
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
