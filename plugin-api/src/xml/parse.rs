//! Builds the lossless tree from quick-xml's events, keeping each event's source text.

use super::escape::{decode_reference, unescape};
use super::{Attr, Document, Element, Node, XmlError};
use quick_xml::Reader;
use quick_xml::events::Event;
use std::collections::HashSet;

/// Maps byte offsets to 1-based line and column.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    fn at(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line as u32 + 1, col as u32 + 1)
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> XmlError {
        let (line, column) = self.at(offset);
        XmlError { source_name: None, line, column, message: message.into() }
    }
}

pub(super) fn parse_document(src: &str, max_depth: usize) -> Result<Document, XmlError> {
    let (bom, text) = match src.strip_prefix('\u{feff}') {
        Some(rest) => (true, rest),
        None => (false, src),
    };
    let lines = Lines::new(text);
    // quick-xml would skip this one too, and the source offsets would no longer match.
    if text.starts_with('\u{feff}') {
        return Err(lines.error(0, "a second byte order mark (U+FEFF) starts the document; remove it"));
    }
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;

    let mut prolog = Vec::new();
    let mut epilog = Vec::new();
    let mut root: Option<Element> = None;
    let mut stack: Vec<Element> = Vec::new();

    loop {
        let start = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| lines.error(reader.error_position() as usize, describe(&e)))?;
        let end = reader.buffer_position() as usize;
        let raw = &text[start..end];
        let node = match event {
            Event::Eof => break,
            Event::Start(_) | Event::Empty(_) => {
                let self_closing = matches!(event, Event::Empty(_));
                let inner = &raw[1..raw.len() - if self_closing { 2 } else { 1 }];
                let mut el = parse_start_tag(inner, start + 1, &lines)?;
                // The tree is walked recursively (writing, comparing, dropping): bound it here.
                if stack.len() >= max_depth {
                    return Err(lines.error(
                        start,
                        format!(
                            "<{}> is nested {} elements deep; this document may nest at most {max_depth} deep",
                            el.name,
                            stack.len() + 1
                        ),
                    ));
                }
                (el.line, el.column) = lines.at(start);
                el.raw_start = Some(inner.to_string());
                el.self_closing = self_closing;
                if stack.is_empty()
                    && let Some(r) = &root
                {
                    return Err(lines.error(
                        start,
                        format!(
                            "a second root element <{}>; the document already has <{}> as its root",
                            el.name, r.name
                        ),
                    ));
                }
                if self_closing {
                    Node::Element(el)
                } else {
                    stack.push(el);
                    continue;
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().expect("quick-xml checks end tags against open elements");
                el.raw_end = Some(raw[2..raw.len() - 1].to_string());
                el.self_closing = false;
                Node::Element(el)
            }
            Event::Text(_) => {
                if stack.is_empty() && !raw.trim().is_empty() {
                    return Err(lines.error(start, format!("text {:?} outside the root element", raw.trim())));
                }
                check_text(raw, start, &lines)?;
                Node::Text(raw.to_string())
            }
            Event::GeneralRef(_) => {
                decode_reference(&raw[1..raw.len() - 1]).map_err(|m| lines.error(start, m))?;
                if stack.is_empty() {
                    return Err(lines.error(start, format!("reference {raw} outside the root element")));
                }
                Node::Text(raw.to_string())
            }
            Event::CData(_) => {
                if stack.is_empty() {
                    return Err(lines.error(start, "CDATA section outside the root element"));
                }
                Node::CData(raw[9..raw.len() - 3].to_string())
            }
            Event::Comment(_) => Node::Comment(raw[4..raw.len() - 3].to_string()),
            Event::Decl(_) => {
                check_encoding(raw, start, &lines)?;
                Node::Pi(raw[2..raw.len() - 2].to_string())
            }
            Event::PI(_) => Node::Pi(raw[2..raw.len() - 2].to_string()),
            Event::DocType(_) => Node::DocType(raw[9..raw.len() - 1].to_string()),
        };
        match stack.last_mut() {
            Some(parent) => push_merging_text(&mut parent.children, node),
            None => match node {
                Node::Element(e) => root = Some(e),
                other if root.is_none() => push_merging_text(&mut prolog, other),
                other => push_merging_text(&mut epilog, other),
            },
        }
    }
    if let Some(open) = stack.last() {
        return Err(lines.error(
            text.len(),
            format!(
                "the document ends inside <{}>, opened at line {}, column {}; it needs a closing </{}>",
                open.name, open.line, open.column, open.name
            ),
        ));
    }
    let root = root.ok_or_else(|| lines.error(text.len(), "the document has no root element"))?;
    Ok(Document { bom, prolog, root, epilog })
}

/// Text and the references inside it arrive as separate events; keep them as one node.
fn push_merging_text(nodes: &mut Vec<Node>, node: Node) {
    if let (Some(Node::Text(prev)), Node::Text(t)) = (nodes.last_mut(), &node) {
        prev.push_str(t);
        return;
    }
    nodes.push(node);
}

fn check_text(raw: &str, offset: usize, lines: &Lines) -> Result<(), XmlError> {
    if let Some(i) = raw.find("]]>") {
        return Err(lines.error(offset + i, "']]>' is not allowed in text; write ']]&gt;'"));
    }
    Ok(())
}

fn check_encoding(raw: &str, offset: usize, lines: &Lines) -> Result<(), XmlError> {
    let Some(i) = raw.find("encoding") else {
        return Ok(());
    };
    let rest = raw[i + 8..].trim_start();
    let value = rest.strip_prefix('=').map(str::trim_start).and_then(|v| {
        let quote = v.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        v[1..].split_once(quote).map(|(value, _)| value)
    });
    let Some(value) = value else {
        return Err(lines.error(offset + i, "malformed encoding declaration; write encoding='UTF-8'"));
    };
    if !value.eq_ignore_ascii_case("utf-8") && !value.eq_ignore_ascii_case("utf8") {
        return Err(lines.error(
            offset,
            format!("the document declares encoding {value:?}; luavirt reads UTF-8 only: convert it with iconv -f {value} -t UTF-8 and change the declaration"),
        ));
    }
    Ok(())
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == ':' || !c.is_ascii()
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

/// Reads `name attr="v" attr2='w'` (the inside of a start tag at `offset`).
fn parse_start_tag(inner: &str, offset: usize, lines: &Lines) -> Result<Element, XmlError> {
    let err = |at: usize, m: String| lines.error(offset + at, m);
    let name_end = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
    let name = &inner[..name_end];
    check_name(name).map_err(|m| err(0, format!("bad element name {name:?}: {m}")))?;
    let mut el = Element::new(name);
    // Names seen so far: a set keeps the duplicate check linear in the number of attributes.
    let mut seen = HashSet::new();
    let mut pos = name_end;
    let bytes = inner.as_bytes();
    loop {
        let ws = inner[pos..].len() - inner[pos..].trim_start().len();
        pos += ws;
        if pos >= inner.len() {
            break;
        }
        if ws == 0 {
            return Err(err(pos, format!("expected a space before attribute {:?} in <{name}>", &inner[pos..])));
        }
        let name_len = inner[pos..].find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(inner.len() - pos);
        let attr_name = &inner[pos..pos + name_len];
        check_name(attr_name).map_err(|m| err(pos, format!("bad attribute name {attr_name:?} in <{name}>: {m}")))?;
        let at = pos;
        pos += name_len;
        pos += inner[pos..].len() - inner[pos..].trim_start().len();
        if bytes.get(pos) != Some(&b'=') {
            return Err(err(at, format!("attribute {attr_name:?} of <{name}> has no value; write {attr_name}='...'")));
        }
        pos += 1;
        pos += inner[pos..].len() - inner[pos..].trim_start().len();
        let quote = match bytes.get(pos) {
            Some(b'"') => '"',
            Some(b'\'') => '\'',
            _ => {
                return Err(err(pos, format!("the value of attribute {attr_name:?} of <{name}> must be quoted")));
            }
        };
        let len = inner[pos + 1..]
            .find(quote)
            .ok_or_else(|| err(pos, format!("unterminated value of attribute {attr_name:?} in <{name}>")))?;
        let raw_value = &inner[pos + 1..pos + 1 + len];
        if let Some(i) = raw_value.find('<') {
            return Err(err(
                pos + 1 + i,
                format!("'<' in the value of attribute {attr_name:?} of <{name}>; write '&lt;'"),
            ));
        }
        unescape(raw_value, true).map_err(|m| err(pos + 1, format!("in attribute {attr_name:?} of <{name}>: {m}")))?;
        if !seen.insert(attr_name) {
            return Err(err(at, format!("attribute {attr_name:?} appears twice in <{name}>")));
        }
        el.attrs.push(Attr { name: attr_name.to_string(), raw_value: raw_value.to_string(), quote });
        pos += len + 2;
    }
    Ok(el)
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err("empty name".to_string()),
        Some(c) if !is_name_start(c) => Err(format!("a name cannot start with {c:?}")),
        _ if !chars.all(is_name_char) => Err("names hold letters, digits, '-', '.', '_' and ':' only".to_string()),
        _ => Ok(()),
    }
}

fn describe(e: &quick_xml::Error) -> String {
    use quick_xml::errors::{IllFormedError, SyntaxError};
    match e {
        quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            format!("closing tag </{found}> does not match the open element <{expected}>")
        }
        quick_xml::Error::IllFormed(IllFormedError::UnmatchedEndTag(name)) => {
            format!("closing tag </{name}> has no matching opening tag")
        }
        quick_xml::Error::IllFormed(IllFormedError::DoubleHyphenInComment) => {
            "'--' is not allowed inside a comment".to_string()
        }
        quick_xml::Error::IllFormed(IllFormedError::UnclosedReference) => {
            "'&' starts a reference that is not closed with ';'; write '&amp;' for a literal '&'".to_string()
        }
        quick_xml::Error::Syntax(SyntaxError::UnclosedTag) => "a tag is not closed with '>'".to_string(),
        other => format!("malformed XML: {other}"),
    }
}
