//! An xl domain config (xl.cfg(5)) kept losslessly: the file's bytes as read, and the settings
//! found in them with the byte range of every value, so a file written back unchanged is
//! byte-identical and a change rewrites only the bytes of what changed ([`edit`]).
//!
//! The syntax is what libxlutil accepts: `name = value` or `name += value` settings ended by a
//! newline or `;`; values are strings in either quote style, numbers, or lists of values
//! (nested, spread over lines, with a trailing comma); `#` comments anywhere. A setting may
//! repeat: the last `=` wins and `+=` appends, as xl reads it. Errors name the file, line and
//! column.

pub mod edit;
mod lex;

use lex::{Tok, Token};
use std::fmt;

/// A problem in an xl config, at a place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgError {
    /// The file, as named in messages.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (characters).
    pub column: u32,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for CfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for CfgError {}

/// A string or a number, with the bytes it was written as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    /// The value (a string decoded from its escapes; a number as written).
    pub text: String,
    /// `'` or `"` for a string, `None` for a number.
    pub quote: Option<u8>,
    /// Where it is written (quotes included).
    pub start: usize,
    /// Where it ends.
    pub end: usize,
}

/// A list, with its brackets' places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List {
    /// The items in order.
    pub items: Vec<Value>,
    /// The offset of `[`.
    pub open: usize,
    /// The offset of `]`.
    pub close: usize,
}

/// A setting's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string or number.
    Atom(Atom),
    /// A list.
    List(List),
}

impl Value {
    /// Where the value starts in the file.
    pub fn start(&self) -> usize {
        match self {
            Value::Atom(a) => a.start,
            Value::List(l) => l.open,
        }
    }

    /// Where it ends.
    pub fn end(&self) -> usize {
        match self {
            Value::Atom(a) => a.end,
            Value::List(l) => l.close + 1,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Atom(Atom { quote: Some(_), .. }) => "a string",
            Value::Atom(_) => "a number",
            Value::List(_) => "a list",
        }
    }
}

/// One `name = value` (or `name += value`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The name.
    pub key: String,
    /// `+=` rather than `=`.
    pub append: bool,
    /// Where the name starts.
    pub start: usize,
    /// The value.
    pub value: Value,
}

/// A parsed xl config.
#[derive(Clone, Debug)]
pub struct XlConfig {
    file: String,
    bytes: Vec<u8>,
    settings: Vec<Setting>,
}

/// One string of a list setting as xl reads it (across `=` and `+=`), with where it is.
#[derive(Clone, Debug)]
pub struct ListItem<'a> {
    /// The setting (index into [`XlConfig::settings`]) whose list holds it.
    pub setting: usize,
    /// Its index in that list.
    pub index: usize,
    /// The string.
    pub atom: &'a Atom,
}

impl XlConfig {
    /// Parses `bytes`; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<XlConfig, CfgError> {
        let at = |offset: usize, message: String| error_at(file, bytes, offset, message);
        let tokens = lex::tokens(bytes, &at)?;
        let settings = Parser { tokens: &tokens, pos: 0, at: &at }.file()?;
        let cfg = XlConfig { file: file.to_string(), bytes: bytes.to_vec(), settings };
        cfg.check_appends()?;
        Ok(cfg)
    }

    /// The bytes as read.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The file's name in messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every setting, in file order.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// An error at byte `offset` of the file.
    pub fn error(&self, offset: usize, message: impl Into<String>) -> CfgError {
        error_at(&self.file, &self.bytes, offset, message.into())
    }

    /// The 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> u32 {
        position(&self.bytes, offset).0
    }

    /// The settings that make up `key` as xl reads it: from the last `=` on, with every `+=`
    /// after it.
    fn effective(&self, key: &str) -> Vec<(usize, &Setting)> {
        let all: Vec<(usize, &Setting)> = self.settings.iter().enumerate().filter(|(_, s)| s.key == key).collect();
        let from = all.iter().rposition(|(_, s)| !s.append).unwrap_or(0);
        all[from..].to_vec()
    }

    /// The value of string or number setting `key` (`+=` concatenated), with the offset of
    /// its last piece; `None` when it is not set. A list is an error naming its place.
    pub fn get(&self, key: &str) -> Result<Option<(String, usize)>, CfgError> {
        let parts = self.effective(key);
        let mut text = String::new();
        for (_, s) in &parts {
            match &s.value {
                Value::Atom(a) => text.push_str(&a.text),
                Value::List(l) => {
                    return Err(self.error(l.open, format!("{key} is a list here, and xl reads it as a single value")));
                }
            }
        }
        Ok(parts.last().map(|(_, s)| (text, s.value.start())))
    }

    /// The strings of list setting `key` as xl reads it (`+=` appended). A string where a
    /// list belongs, or a list or number inside it, is an error naming its place.
    pub fn strings(&self, key: &str) -> Result<Vec<ListItem<'_>>, CfgError> {
        let mut out = Vec::new();
        for (i, s) in self.effective(key) {
            let Value::List(l) = &s.value else {
                return Err(self.error(
                    s.value.start(),
                    format!("{key} must be a list: write {key} = [ '...' ] (xl ignores a single value here)"),
                ));
            };
            for (index, item) in l.items.iter().enumerate() {
                match item {
                    Value::Atom(a) if a.quote.is_some() => out.push(ListItem { setting: i, index, atom: a }),
                    other => {
                        return Err(self.error(
                            other.start(),
                            format!("each item of {key} must be a quoted string, and this is {}", other.kind()),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The list of setting `index`.
    pub fn list(&self, index: usize) -> Option<&List> {
        match &self.settings.get(index)?.value {
            Value::List(l) => Some(l),
            Value::Atom(_) => None,
        }
    }

    /// xl refuses `+=` between a list and a single value: so does luavirt, at the same place.
    fn check_appends(&self) -> Result<(), CfgError> {
        for (i, s) in self.settings.iter().enumerate().filter(|(_, s)| s.append) {
            let Some(before) = self.settings[..i].iter().rev().find(|p| p.key == s.key) else { continue };
            let list = |v: &Value| matches!(v, Value::List(_));
            if list(&before.value) != list(&s.value) {
                return Err(self.error(
                    s.value.start(),
                    format!(
                        "{} += adds {} to {} (line {}); xl adds lists to lists and strings to strings only",
                        s.key,
                        s.value.kind(),
                        before.value.kind(),
                        self.line_of(before.start)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `bytes`.
fn position(bytes: &[u8], offset: usize) -> (u32, u32) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    // Characters, not bytes: count the bytes that start a UTF-8 sequence.
    let column = before[line_start..].iter().filter(|b| (**b & 0xC0) != 0x80).count() + 1;
    (line as u32, column as u32)
}

fn error_at(file: &str, bytes: &[u8], offset: usize, message: String) -> CfgError {
    let (line, column) = position(bytes, offset);
    CfgError { file: file.to_string(), line, column, message }
}

/// A recursive-descent parser over the tokens, with libxlutil's grammar.
struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    at: &'a dyn Fn(usize, String) -> CfgError,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self, t: &Token, wanted: &str) -> CfgError {
        let found = match &t.tok {
            Tok::Ident(n) => format!("the name {n}"),
            Tok::Number(n) => format!("the number {n}"),
            Tok::Str { .. } => "a string".to_string(),
            Tok::Open => "'['".to_string(),
            Tok::Close => "']'".to_string(),
            Tok::Comma => "','".to_string(),
            Tok::Assign => "'='".to_string(),
            Tok::Append => "'+='".to_string(),
            Tok::Semi => "';'".to_string(),
            Tok::Newline => "the end of the line".to_string(),
            Tok::End => "the end of the file".to_string(),
        };
        (self.at)(t.start, format!("{wanted}, but found {found}"))
    }

    fn file(&mut self) -> Result<Vec<Setting>, CfgError> {
        let mut settings = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::End => return Ok(settings),
                Tok::Newline | Tok::Semi => {}
                Tok::Ident(key) => {
                    let op = self.next();
                    let append = match op.tok {
                        Tok::Assign => false,
                        Tok::Append => true,
                        _ => return Err(self.unexpected(&op, &format!("expected '=' or '+=' after {key}"))),
                    };
                    let value = self.value(&format!("expected the value of {key} on its line"))?;
                    let end = self.next();
                    if !matches!(end.tok, Tok::Newline | Tok::Semi | Tok::End) {
                        return Err(self.unexpected(
                            &end,
                            &format!(
                                "expected the end of the setting {key} (one setting per line, or ';' between two)"
                            ),
                        ));
                    }
                    settings.push(Setting { key, append, start: t.start, value });
                }
                _ => return Err(self.unexpected(&t, "expected a setting (name = value)")),
            }
        }
    }

    fn skip_newlines(&mut self) {
        while self.peek().tok == Tok::Newline {
            self.pos += 1;
        }
    }

    fn value(&mut self, wanted: &str) -> Result<Value, CfgError> {
        let t = self.next();
        match t.tok {
            Tok::Str { value, quote } => {
                Ok(Value::Atom(Atom { text: value, quote: Some(quote), start: t.start, end: t.end }))
            }
            Tok::Number(n) => Ok(Value::Atom(Atom { text: n, quote: None, start: t.start, end: t.end })),
            Tok::Open => self.list(t.start),
            _ => Err(self.unexpected(&t, &format!("{wanted} (a string, a number or a list)"))),
        }
    }

    fn list(&mut self, open: usize) -> Result<Value, CfgError> {
        let mut items = Vec::new();
        self.skip_newlines();
        loop {
            if self.peek().tok == Tok::Close {
                let close = self.next().start;
                return Ok(Value::List(List { items, open, close }));
            }
            if self.peek().tok == Tok::Comma {
                let t = self.peek().clone();
                return Err(self.unexpected(&t, "expected a list item (xl allows no empty items)"));
            }
            items.push(self.value("expected a list item")?);
            self.skip_newlines();
            let t = self.next();
            match t.tok {
                Tok::Comma => self.skip_newlines(),
                Tok::Close => return Ok(Value::List(List { items, open, close: t.start })),
                _ => return Err(self.unexpected(&t, "expected ',' or ']' after a list item")),
            }
        }
    }
}

#[cfg(test)]
mod tests;
