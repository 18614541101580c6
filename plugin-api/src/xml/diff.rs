//! The first difference between two XML elements that matters: names, attribute values (in
//! any order), text, and child elements in order; formatting whitespace and comments do not
//! matter. Drivers that keep domains in their own format (a `.vmx`, an xl config) use it to tell
//! a user exactly which part of a domain XML their format cannot take.

use super::Element;
use std::collections::BTreeMap;

/// A value for a message, shortened when long.
fn shown(v: &str) -> String {
    let v = v.trim();
    if v.chars().count() > 60 { format!("'{}...'", v.chars().take(57).collect::<String>()) } else { format!("'{v}'") }
}

/// How an element is named in a path: `disk[sdb]` for disks, `name[2]` for a repeated name.
fn label(e: &Element, index: usize, repeated: bool) -> String {
    if e.name() == "disk"
        && let Some(t) = e.child("target").and_then(|t| t.attr("dev"))
    {
        return format!("disk[{t}]");
    }
    if repeated { format!("{}[{}]", e.name(), index + 1) } else { e.name().to_string() }
}

fn children_labels(e: &Element) -> Vec<(String, &Element)> {
    let kids: Vec<&Element> = e.elements().collect();
    kids.iter()
        .map(|k| {
            let same: Vec<&&Element> = kids.iter().filter(|o| o.name() == k.name()).collect();
            let index = same.iter().position(|o| std::ptr::eq(**o, *k)).unwrap_or(0);
            (label(k, index, same.len() > 1), *k)
        })
        .collect()
}

/// The first difference between `current` (what `theirs` — "the .vmx", "the config" — gives)
/// and `given` (the XML), as a phrase like "/domain/memory is '4194304' in the XML and
/// '2097152' in the .vmx"; `None` when they are the same.
pub fn first_difference(current: &Element, given: &Element, theirs: &str) -> Option<String> {
    diff(current, given, &format!("/{}", current.name()), theirs)
}

fn diff(a: &Element, b: &Element, path: &str, theirs: &str) -> Option<String> {
    let attrs =
        |e: &Element| -> BTreeMap<String, String> { e.attrs().iter().map(|x| (x.name.clone(), x.value())).collect() };
    let (aa, ba) = (attrs(a), attrs(b));
    for k in aa.keys().chain(ba.keys()) {
        match (aa.get(k), ba.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => {
                return Some(format!(
                    "attribute {k} of {path} is {} in the XML and {} in {theirs}",
                    shown(y),
                    shown(x)
                ));
            }
            (Some(x), None) => {
                return Some(format!("the XML has no attribute {k} on {path} ({theirs} gives {})", shown(x)));
            }
            (None, Some(y)) => {
                return Some(format!("the XML adds attribute {k}={} on {path}", shown(y)));
            }
            (None, None) => {}
        }
    }
    let (at, bt) = (a.text(), b.text());
    if at.trim() != bt.trim() {
        return Some(format!("{path} is {} in the XML and {} in {theirs}", shown(&bt), shown(&at)));
    }
    let (ak, bk) = (children_labels(a), children_labels(b));
    for i in 0..ak.len().max(bk.len()) {
        match (ak.get(i), bk.get(i)) {
            (Some((al, ae)), Some((bl, be))) if al == bl && ae.name() == be.name() => {
                if let Some(d) = diff(ae, be, &format!("{path}/{al}"), theirs) {
                    return Some(d);
                }
            }
            (Some((al, _)), Some((bl, _))) => {
                return Some(if !ak.iter().any(|(l, _)| l == bl) {
                    format!("the XML adds <{bl}> in {path}")
                } else if !bk.iter().any(|(l, _)| l == al) {
                    format!("the XML has no <{al}> in {path}")
                } else {
                    format!("the XML has <{bl}> in {path} where {theirs} gives <{al}>")
                });
            }
            (Some((al, _)), None) => return Some(format!("the XML has no <{al}> in {path}")),
            (None, Some((bl, _))) => return Some(format!("the XML adds <{bl}> in {path}")),
            (None, None) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Document;

    fn d(a: &str, b: &str) -> Option<String> {
        first_difference(&Document::parse(a).unwrap().root, &Document::parse(b).unwrap().root, "the .vmx")
    }

    #[test]
    fn formatting_comments_and_attribute_order_do_not_matter() {
        assert_eq!(d("<a x='1' y='2'><b/>\n</a>", "<a y=\"2\" x=\"1\">\n  <!-- hi -->\n  <b></b>\n</a>"), None);
    }

    #[test]
    fn differences_are_named_with_their_place() {
        assert_eq!(
            d("<domain><memory>1</memory></domain>", "<domain><memory>2</memory></domain>").unwrap(),
            "/domain/memory is '2' in the XML and '1' in the .vmx"
        );
        assert_eq!(
            d(
                "<domain><devices><disk><source file='a'/><target dev='sdb'/></disk></devices></domain>",
                "<domain><devices><disk><source file='b'/><target dev='sdb'/></disk></devices></domain>"
            )
            .unwrap(),
            "attribute file of /domain/devices/disk[sdb]/source is 'b' in the XML and 'a' in the .vmx"
        );
        assert_eq!(d("<a><b/></a>", "<a><b/><c/></a>").unwrap(), "the XML adds <c> in /a");
        assert_eq!(d("<a><b/><c/></a>", "<a><c/></a>").unwrap(), "the XML has no <b> in /a");
        assert_eq!(d("<a/>", "<a k='v'/>").unwrap(), "the XML adds attribute k='v' on /a");
        assert_eq!(d("<a><b/><b/></a>", "<a><b/><b x='1'/></a>").unwrap(), "the XML adds attribute x='1' on /a/b[2]");
    }
}
