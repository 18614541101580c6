//! The first difference between two XML elements that matters (names, attribute values in
//! any order, text, child elements in order; not formatting or comments), in words, to tell a
//! user which part of a domain XML an xl config cannot take.

use luavirt_plugin_api::xml::Element;
use std::collections::BTreeMap;

fn shown(v: &str) -> String {
    let v = v.trim();
    if v.chars().count() > 60 { format!("'{}...'", v.chars().take(57).collect::<String>()) } else { format!("'{v}'") }
}

/// `disk[xvda]` for a disk, `name[2]` for a repeated name, else the name.
fn label(e: &Element, siblings: &[&Element]) -> String {
    if e.name() == "disk"
        && let Some(t) = e.child("target").and_then(|t| t.attr("dev"))
    {
        return format!("disk[{t}]");
    }
    let same: Vec<&&Element> = siblings.iter().filter(|o| o.name() == e.name()).collect();
    match same.iter().position(|o| std::ptr::eq(**o, e)) {
        Some(i) if same.len() > 1 => format!("{}[{}]", e.name(), i + 1),
        _ => e.name().to_string(),
    }
}

/// The first difference between `config` (what the config gives) and `given` (the XML), like
/// "/domain/memory is '2097152' in the XML and '1048576' in the config"; `None` when none.
pub fn first_difference(config: &Element, given: &Element) -> Option<String> {
    diff(config, given, &format!("/{}", config.name()))
}

fn diff(a: &Element, b: &Element, path: &str) -> Option<String> {
    let attrs =
        |e: &Element| -> BTreeMap<String, String> { e.attrs().iter().map(|x| (x.name.clone(), x.value())).collect() };
    let (aa, ba) = (attrs(a), attrs(b));
    for k in aa.keys().chain(ba.keys()) {
        match (aa.get(k), ba.get(k)) {
            (Some(x), Some(y)) if x != y => {
                return Some(format!(
                    "attribute {k} of {path} is {} in the XML and {} in the config",
                    shown(y),
                    shown(x)
                ));
            }
            (Some(x), None) => {
                return Some(format!("the XML has no attribute {k} on {path} (the config gives {})", shown(x)));
            }
            (None, Some(y)) => return Some(format!("the XML adds attribute {k}={} on {path}", shown(y))),
            _ => {}
        }
    }
    let (at, bt) = (a.text(), b.text());
    if at.trim() != bt.trim() {
        return Some(format!("{path} is {} in the XML and {} in the config", shown(&bt), shown(&at)));
    }
    let ak: Vec<&Element> = a.elements().collect();
    let bk: Vec<&Element> = b.elements().collect();
    let al: Vec<String> = ak.iter().map(|e| label(e, &ak)).collect();
    let bl: Vec<String> = bk.iter().map(|e| label(e, &bk)).collect();
    for i in 0..ak.len().max(bk.len()) {
        match (al.get(i), bl.get(i)) {
            (Some(x), Some(y)) if x == y => {
                if let Some(d) = diff(ak[i], bk[i], &format!("{path}/{x}")) {
                    return Some(d);
                }
            }
            (Some(_), Some(y)) if !al.contains(y) => return Some(format!("the XML adds <{y}> in {path}")),
            (Some(x), Some(_)) if !bl.contains(x) => return Some(format!("the XML has no <{x}> in {path}")),
            (Some(x), Some(y)) => return Some(format!("the XML has <{y}> in {path} where the config gives <{x}>")),
            (Some(x), None) => return Some(format!("the XML has no <{x}> in {path}")),
            (None, Some(y)) => return Some(format!("the XML adds <{y}> in {path}")),
            (None, None) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use luavirt_plugin_api::xml::Document;

    fn d(config: &str, given: &str) -> Option<String> {
        first_difference(&Document::parse(config).unwrap().root, &Document::parse(given).unwrap().root)
    }

    #[test]
    fn differences_are_named_with_their_place_and_formatting_does_not_matter() {
        assert_eq!(d("<a x='1' y='2'><b/>\n</a>", "<a y=\"2\" x=\"1\">\n  <!-- hi -->\n  <b></b>\n</a>"), None);
        assert_eq!(
            d("<domain><memory>1</memory></domain>", "<domain><memory>2</memory></domain>").unwrap(),
            "/domain/memory is '2' in the XML and '1' in the config"
        );
        assert_eq!(
            d(
                "<d><devices><disk><source file='a'/><target dev='xvdb'/></disk></devices></d>",
                "<d><devices><disk><source file='b'/><target dev='xvdb'/></disk></devices></d>"
            )
            .unwrap(),
            "attribute file of /d/devices/disk[xvdb]/source is 'b' in the XML and 'a' in the config"
        );
        assert_eq!(d("<a><b/></a>", "<a><b/><c/></a>").unwrap(), "the XML adds <c> in /a");
        assert_eq!(d("<a><b/><c/></a>", "<a><c/></a>").unwrap(), "the XML has no <b> in /a");
        assert_eq!(d("<a/>", "<a k='v'/>").unwrap(), "the XML adds attribute k='v' on /a");
        assert_eq!(d("<a><b/><b/></a>", "<a><b/><b x='1'/></a>").unwrap(), "the XML adds attribute x='1' on /a/b[2]");
    }
}
