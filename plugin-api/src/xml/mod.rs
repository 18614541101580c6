//! A lossless XML tree: what is read is written back byte for byte unless changed, and a change
//! touches only what it changes.
//!
//! Each node keeps its source text (start tags with their attribute quoting and spacing, text
//! with its entity references, comments, processing instructions, the declaration). Editing an
//! element's attributes rewrites only that start tag; inserting an element copies the
//! indentation of its siblings. This is what lets luavirt keep a user's libvirt XML as it is,
//! comments and unknown namespaces included, while it edits disk sets in `<metadata>`.

pub mod diff;
mod escape;
mod parse;
mod write;

pub use escape::{escape_attr, escape_text, unescape};

use std::fmt;

/// How deep any document may nest elements. Twice libxml2's default (256, which libvirt and
/// luavirt's domain XML keep), so that documents carrying a domain inside (stored snapshot
/// metadata) still read back. The tree is walked recursively; this bounds the stack it needs.
pub const MAX_DEPTH: usize = 512;

/// A parse error with its place in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError {
    /// File or other name of the source, when known.
    pub source_name: Option<String>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

impl XmlError {
    /// Names the source (a file path) in the message.
    pub fn with_source(mut self, name: impl Into<String>) -> XmlError {
        self.source_name = Some(name.into());
        self
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source_name {
            Some(n) => write!(f, "{n}:{}:{}: {}", self.line, self.column, self.message),
            None => write!(f, "line {}, column {}: {}", self.line, self.column, self.message),
        }
    }
}

impl std::error::Error for XmlError {}

/// A whole document: what comes before the root element, the root, and what comes after.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// A UTF-8 byte order mark was present.
    pub bom: bool,
    /// Declaration, comments, processing instructions, doctype and whitespace before the root.
    pub prolog: Vec<Node>,
    /// The root element.
    pub root: Element,
    /// Comments, processing instructions and whitespace after the root.
    pub epilog: Vec<Node>,
}

/// One node of the tree. Text-like variants hold their source text (escaped as written).
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data with its references as written (`a &amp; b`).
    Text(String),
    /// The inside of `<![CDATA[...]]>`.
    CData(String),
    /// The inside of `<!--...-->`.
    Comment(String),
    /// The inside of `<?...?>` (a processing instruction or the XML declaration).
    Pi(String),
    /// The inside of `<!DOCTYPE ...>`.
    DocType(String),
}

/// An attribute: name and value as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Attr {
    /// Qualified name (`xmlns:lv`, `type`).
    pub name: String,
    raw_value: String,
    quote: char,
}

/// An element.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    name: String,
    attrs: Vec<Attr>,
    /// Child nodes in order.
    pub children: Vec<Node>,
    /// The start tag's source between `<` and `>` (or `/>`), while unchanged.
    raw_start: Option<String>,
    /// The end tag's source between `</` and `>`, while unchanged.
    raw_end: Option<String>,
    /// Written as `<x/>`.
    self_closing: bool,
    line: u32,
    column: u32,
}

impl Document {
    /// Parses `text`. Only UTF-8 documents are accepted, nested at most [`MAX_DEPTH`] deep.
    pub fn parse(text: &str) -> Result<Document, XmlError> {
        parse::parse_document(text, MAX_DEPTH)
    }

    /// Parses `text` nested at most `max_depth` deep (capped at [`MAX_DEPTH`]).
    pub fn parse_with_depth(text: &str, max_depth: usize) -> Result<Document, XmlError> {
        parse::parse_document(text, max_depth.min(MAX_DEPTH))
    }

    /// Writes the document back.
    pub fn to_xml(&self) -> String {
        write::write_document(self)
    }

    /// The document's indentation step: the indentation of the root's children, or two spaces.
    pub fn indent_unit(&self) -> String {
        self.root.child_indent().filter(|u| !u.is_empty()).unwrap_or_else(|| "  ".to_string())
    }
}

impl Attr {
    /// The value with references decoded.
    pub fn value(&self) -> String {
        // Values were checked at parse time, and set_attr escapes, so this cannot fail.
        unescape(&self.raw_value, true).unwrap_or_else(|_| self.raw_value.clone())
    }
}

impl Element {
    /// A new element with no attributes or children.
    pub fn new(name: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
            raw_start: None,
            raw_end: None,
            self_closing: true,
            line: 0,
            column: 0,
        }
    }

    /// Qualified name as written (`disk`, `qemu:commandline`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The part of the name after any prefix.
    pub fn local_name(&self) -> &str {
        self.name.rsplit_once(':').map_or(&self.name, |(_, l)| l)
    }

    /// The prefix of the name, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.name.split_once(':').map(|(p, _)| p)
    }

    /// 1-based line of the start tag in the source (0 for elements built in memory).
    pub fn line(&self) -> u32 {
        self.line
    }

    /// 1-based column of the start tag in the source.
    pub fn column(&self) -> u32 {
        self.column
    }

    /// All attributes in order.
    pub fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    /// The decoded value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.attrs.iter().find(|a| a.name == name).map(Attr::value)
    }

    /// Sets attribute `name`, keeping its place (or appending it) and its quote character.
    pub fn set_attr(&mut self, name: &str, value: &str) {
        self.raw_start = None;
        match self.attrs.iter_mut().find(|a| a.name == name) {
            Some(a) => a.raw_value = escape_attr(value, a.quote),
            None => {
                let quote = self.attrs.first().map_or('\'', |a| a.quote);
                self.attrs.push(Attr { name: name.to_string(), raw_value: escape_attr(value, quote), quote });
            }
        }
    }

    /// Removes attribute `name`; returns whether it was there.
    pub fn remove_attr(&mut self, name: &str) -> bool {
        let before = self.attrs.len();
        self.attrs.retain(|a| a.name != name);
        let removed = self.attrs.len() != before;
        if removed {
            self.raw_start = None;
        }
        removed
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| if let Node::Element(e) = n { Some(e) } else { None })
    }

    /// Child elements in order, mutable.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| if let Node::Element(e) = n { Some(e) } else { None })
    }

    /// The first child element called `name` (qualified name as written).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The first child element called `name`, mutable.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.name == name)
    }

    /// Every child element called `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    /// The decoded text content of this element's direct text and CDATA children.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) => out.push_str(&unescape(t, false).unwrap_or_else(|_| t.clone())),
                Node::CData(t) => out.push_str(t),
                _ => {}
            }
        }
        out
    }

    /// Replaces all children with one text node.
    pub fn set_text(&mut self, text: &str) {
        self.children = if text.is_empty() { Vec::new() } else { vec![Node::Text(escape_text(text))] };
    }

    /// Index in `children` of the `n`th child element.
    fn node_index_of_element(&self, n: usize) -> Option<usize> {
        self.children.iter().enumerate().filter(|(_, c)| matches!(c, Node::Element(_))).nth(n).map(|(i, _)| i)
    }

    /// The indentation (whitespace after the last newline) in front of this element's child
    /// elements, if it has any indented ones.
    pub fn child_indent(&self) -> Option<String> {
        let mut prev: Option<&Node> = None;
        for n in &self.children {
            if let Node::Element(_) = n
                && let Some(Node::Text(t)) = prev
                && let Some(i) = t.rfind('\n')
            {
                let ws = &t[i + 1..];
                if ws.chars().all(|c| c == ' ' || c == '\t') {
                    return Some(ws.to_string());
                }
            }
            prev = Some(n);
        }
        None
    }

    /// Inserts `child` as the element at position `pos` among this element's child elements
    /// (`pos` = number of elements before it; past the end appends), formatted like its
    /// siblings: on its own line with their indentation. `parent_indent` is this element's own
    /// indentation and `unit` the document's indentation step (see [`Document::indent_unit`]),
    /// used when it has no indented children yet and for the children of `child`.
    pub fn insert_element(&mut self, pos: usize, mut child: Element, parent_indent: &str, unit: &str) {
        let indent = self.child_indent();
        let pretty = indent.is_some() || self.children.is_empty() || self.children.iter().all(is_blank);
        if !pretty {
            // Unindented content (all on one line): insert as is.
            let at = self.node_index_of_element(pos).unwrap_or(self.children.len());
            self.children.insert(at, Node::Element(child));
            self.self_closing = false;
            return;
        }
        let indent = indent.unwrap_or_else(|| format!("{parent_indent}{unit}"));
        child.indent_children(&indent, unit);
        if self.children.iter().all(is_blank) {
            // Empty or whitespace-only: becomes "\n<indent><child>\n<parent_indent>".
            self.children =
                vec![Node::Text(format!("\n{indent}")), Node::Element(child), Node::Text(format!("\n{parent_indent}"))];
        } else if let Some(mut at) = self.node_index_of_element(pos) {
            // Before an existing element, and before the comments just above it (they belong
            // to it): "<child>\n<indent>" goes right there.
            while at >= 2
                && matches!(&self.children[at - 1], Node::Text(t) if t.trim().is_empty())
                && matches!(self.children[at - 2], Node::Comment(_))
            {
                at -= 2;
            }
            self.children.insert(at, Node::Text(format!("\n{indent}")));
            self.children.insert(at, Node::Element(child));
        } else {
            // After the last element: "\n<indent><child>" goes right after it.
            let last = self.children.iter().rposition(|n| matches!(n, Node::Element(_)));
            let at = last.map_or(0, |i| i + 1);
            self.children.insert(at, Node::Element(child));
            self.children.insert(at, Node::Text(format!("\n{indent}")));
        }
        self.self_closing = false;
    }

    /// Removes the `n`th child element and the whitespace that indented it.
    pub fn remove_element(&mut self, n: usize) -> Option<Element> {
        let at = self.node_index_of_element(n)?;
        let removed = self.children.remove(at);
        if at > 0 && matches!(&self.children[at - 1], Node::Text(t) if t.trim().is_empty() && t.contains('\n')) {
            self.children.remove(at - 1);
        }
        if self.children.iter().all(is_blank) && self.elements().next().is_none() {
            self.children.clear();
        }
        match removed {
            Node::Element(e) => Some(e),
            _ => None,
        }
    }

    /// Position (among child elements) of the first child element satisfying `f`.
    pub fn position<F: Fn(&Element) -> bool>(&self, f: F) -> Option<usize> {
        self.elements().position(f)
    }

    /// Re-indents the subtree so it prints one child element per line: `own_indent` is this
    /// element's indentation, `unit` the step. Elements holding text are left as they are.
    pub fn indent_children(&mut self, own_indent: &str, unit: &str) {
        if self.elements().next().is_none()
            || self.children.iter().any(|n| matches!(n, Node::Text(t) if !t.trim().is_empty()))
        {
            return;
        }
        let inner = format!("{own_indent}{unit}");
        let old = std::mem::take(&mut self.children);
        for n in old {
            if let Node::Element(mut e) = n {
                e.indent_children(&inner, unit);
                self.children.push(Node::Text(format!("\n{inner}")));
                self.children.push(Node::Element(e));
            } else if !is_blank(&n) {
                self.children.push(n);
            }
        }
        self.children.push(Node::Text(format!("\n{own_indent}")));
    }

    /// Appends a child element without formatting (for elements built in memory).
    pub fn push(&mut self, child: Element) -> &mut Element {
        self.self_closing = false;
        self.children.push(Node::Element(child));
        match self.children.last_mut() {
            Some(Node::Element(e)) => e,
            _ => unreachable!("just pushed an element"),
        }
    }

    /// Builder form of [`Element::set_attr`].
    pub fn with_attr(mut self, name: &str, value: &str) -> Element {
        self.set_attr(name, value);
        self
    }

    /// Writes this element (and its subtree) as XML.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        write::write_element(self, &mut out);
        out
    }

    /// Whether this element and `other` are the same document fragment, ignoring formatting
    /// whitespace.
    pub fn same_content(&self, other: &Element) -> bool {
        self.name == other.name
            && {
                let mut a: Vec<(String, String)> = self.attrs.iter().map(|a| (a.name.clone(), a.value())).collect();
                let mut b: Vec<(String, String)> = other.attrs.iter().map(|a| (a.name.clone(), a.value())).collect();
                a.sort();
                b.sort();
                a == b
            }
            && {
                let a: Vec<&Node> = self.children.iter().filter(|n| !is_blank(n)).collect();
                let b: Vec<&Node> = other.children.iter().filter(|n| !is_blank(n)).collect();
                a.len() == b.len()
                    && a.iter().zip(&b).all(|(x, y)| match (x, y) {
                        (Node::Element(x), Node::Element(y)) => x.same_content(y),
                        (x, y) => x == y,
                    })
            }
    }
}

fn is_blank(n: &Node) -> bool {
    matches!(n, Node::Text(t) if t.trim().is_empty())
}

/// Resolves namespace prefixes along a path of elements from the root down.
pub fn namespace_of(path: &[&Element], prefix: Option<&str>) -> Option<String> {
    let attr = match prefix {
        Some("xml") => return Some("http://www.w3.org/XML/1998/namespace".to_string()),
        Some(p) => format!("xmlns:{p}"),
        None => "xmlns".to_string(),
    };
    path.iter().rev().find_map(|e| e.attr(&attr)).filter(|uri| !uri.is_empty())
}

#[cfg(test)]
mod tests;
