//! Writes the tree back: source text where unchanged, fresh text where changed.

use super::{Document, Element, Node};

pub(super) fn write_document(doc: &Document) -> String {
    let mut out = String::new();
    if doc.bom {
        out.push('\u{feff}');
    }
    for n in &doc.prolog {
        write_node(n, &mut out);
    }
    write_element(&doc.root, &mut out);
    for n in &doc.epilog {
        write_node(n, &mut out);
    }
    out
}

fn write_node(node: &Node, out: &mut String) {
    match node {
        Node::Element(e) => write_element(e, out),
        Node::Text(t) => out.push_str(t),
        Node::CData(t) => {
            out.push_str("<![CDATA[");
            out.push_str(t);
            out.push_str("]]>");
        }
        Node::Comment(t) => {
            out.push_str("<!--");
            out.push_str(t);
            out.push_str("-->");
        }
        Node::Pi(t) => {
            out.push_str("<?");
            out.push_str(t);
            out.push_str("?>");
        }
        Node::DocType(t) => {
            out.push_str("<!DOCTYPE");
            out.push_str(t);
            out.push('>');
        }
    }
}

pub(super) fn write_element(e: &Element, out: &mut String) {
    out.push('<');
    match &e.raw_start {
        Some(raw) => out.push_str(raw),
        None => {
            out.push_str(&e.name);
            for a in &e.attrs {
                out.push(' ');
                out.push_str(&a.name);
                out.push('=');
                out.push(a.quote);
                out.push_str(&a.raw_value);
                out.push(a.quote);
            }
        }
    }
    if e.children.is_empty() && e.self_closing {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for c in &e.children {
        write_node(c, out);
    }
    out.push_str("</");
    match &e.raw_end {
        Some(raw) => out.push_str(raw),
        None => out.push_str(&e.name),
    }
    out.push('>');
}
