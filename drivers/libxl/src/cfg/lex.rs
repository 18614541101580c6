//! The tokens of an xl config, as libxlutil's lexer (`libxlu_cfg_l.l`) reads them: setting
//! names `[a-z][._0-9a-z]*`, numbers `[0-9][0-9a-fx]*`, strings in either quote style on one
//! line with backslash escapes, `=`, `+=`, `[`, `]`, `,`, `;`, newlines, and `#` comments to
//! the end of the line. Spaces and tabs separate tokens; anything else is an error xl gives
//! too (a carriage return, a byte order mark, an upper-case name, a minus sign).

use super::CfgError;

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A setting name.
    Ident(String),
    /// A number, as written (xl keeps numbers as text).
    Number(String),
    /// A quoted string, decoded; `quote` is `'` or `"`.
    Str { value: String, quote: u8 },
    /// `[`
    Open,
    /// `]`
    Close,
    /// `,`
    Comma,
    /// `=`
    Assign,
    /// `+=`
    Append,
    /// `;`
    Semi,
    /// A line end.
    Newline,
    /// The end of the file.
    End,
}

/// A token and the bytes it spans.
#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Splits `bytes` into tokens; `at` turns an offset into an error at that place.
pub fn tokens(bytes: &[u8], at: &dyn Fn(usize, String) -> CfgError) -> Result<Vec<Token>, CfgError> {
    let mut out = Vec::new();
    let mut i = 0;
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(at(0, "the file starts with a byte order mark, which xl refuses; save it without one".into()));
    }
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\n' => {
                i += 1;
                Tok::Newline
            }
            b'\r' => {
                return Err(at(
                    i,
                    "a carriage return (a Windows line ending): xl reads only Unix line endings; convert the file (dos2unix)"
                        .into(),
                ));
            }
            b'[' | b']' | b',' | b'=' | b';' => {
                i += 1;
                match c {
                    b'[' => Tok::Open,
                    b']' => Tok::Close,
                    b',' => Tok::Comma,
                    b'=' => Tok::Assign,
                    _ => Tok::Semi,
                }
            }
            b'+' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Append
            }
            b'\'' | b'"' => {
                let (value, end) = string(bytes, i, at)?;
                i = end;
                Tok::Str { value, quote: c }
            }
            b'a'..=b'z' => {
                while i < bytes.len() && matches!(bytes[i], b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.') {
                    i += 1;
                }
                Tok::Ident(String::from_utf8_lossy(&bytes[start..i]).into_owned())
            }
            b'0'..=b'9' => {
                while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'a'..=b'f' | b'x') {
                    i += 1;
                }
                Tok::Number(String::from_utf8_lossy(&bytes[start..i]).into_owned())
            }
            b'A'..=b'Z' => {
                return Err(at(
                    i,
                    "xl setting names are lower case (a-z, digits, '_' and '.'); write the name in lower case".into(),
                ));
            }
            _ => {
                let shown = String::from_utf8_lossy(&bytes[i..bytes.len().min(i + 4)]).chars().next().unwrap_or('?');
                let hint = match c {
                    b'-' => "; xl numbers cannot be negative",
                    _ => "",
                };
                return Err(at(i, format!("unexpected character {shown:?}{hint}")));
            }
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token { tok: Tok::End, start: bytes.len(), end: bytes.len() });
    Ok(out)
}

/// Reads the string whose opening quote is at `open`: its decoded value and the offset after
/// its closing quote.
fn string(bytes: &[u8], open: usize, at: &dyn Fn(usize, String) -> CfgError) -> Result<(String, usize), CfgError> {
    let quote = bytes[open];
    let mut value = Vec::new();
    let mut i = open + 1;
    loop {
        let Some(&c) = bytes.get(i) else {
            return Err(at(open, "this string is not closed: add its closing quote on the same line".into()));
        };
        match c {
            b'\n' => {
                return Err(at(
                    open,
                    "this string is not closed on its line: xl strings end on the line they start (write a newline as \\n)"
                        .into(),
                ));
            }
            b'\\' => {
                let Some(&e) = bytes.get(i + 1).filter(|e| **e != b'\n') else {
                    return Err(at(i, "a backslash must be followed by the character it escapes".into()));
                };
                let simple = match e {
                    b'"' | b'\'' | b'\\' => Some(e),
                    b'a' => Some(0x07),
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(0x0b),
                    _ => None,
                };
                if let Some(b) = simple {
                    value.push(b);
                    i += 2;
                } else if e == b'x' || e.is_ascii_digit() {
                    // libxlutil refuses \x escapes and mis-reads octal ones (\101 is not 'A'
                    // there): a value written so would mean one thing to xl and another here.
                    return Err(at(
                        i,
                        "xl's parser refuses \\x escapes and mis-reads octal ones; write the character itself".into(),
                    ));
                } else {
                    return Err(at(
                        i,
                        format!("xl knows no escape \\{}; use \\\\ \\' \\\" \\a \\b \\f \\n \\r \\t or \\v", e as char),
                    ));
                }
            }
            _ if c == quote => return Ok((String::from_utf8_lossy(&value).into_owned(), i + 1)),
            _ => {
                value.push(c);
                i += 1;
            }
        }
    }
}
