use super::*;

const SAMPLE: &str = "\u{feff}<?xml version=\"1.0\" encoding='UTF-8'?>\n<!-- before -->\n<?app x?>\n<domain type='kvm'  id = \"1\">\n\t<name>a &amp; b&#x41;</name>\n  <desc><![CDATA[<raw> & ]]></desc>\n  <empty/><empty2 ></empty2>\n  <x:y xmlns:x=\"urn:x\" x:a='&quot;q&quot;'><!-- in --></x:y >\n</domain>\n<!-- after -->\n";

#[test]
fn unchanged_documents_write_back_byte_identical() {
    let doc = Document::parse(SAMPLE).unwrap();
    assert_eq!(doc.to_xml(), SAMPLE);
    assert_eq!(doc.root.child("name").unwrap().text(), "a & bA");
    assert_eq!(doc.root.child("desc").unwrap().text(), "<raw> & ");
    assert_eq!(doc.root.attr("id").as_deref(), Some("1"));
    assert_eq!(doc.root.child("x:y").unwrap().attr("x:a").as_deref(), Some("\"q\""));
}

#[test]
fn changing_one_attribute_rewrites_only_that_tag() {
    let mut doc = Document::parse(SAMPLE).unwrap();
    doc.root.child_mut("empty").unwrap().set_attr("k", "v<'>");
    let out = doc.to_xml();
    assert_eq!(out, SAMPLE.replace("<empty/>", "<empty k='v&lt;&apos;>'/>"));
    let back = Document::parse(&out).unwrap();
    assert_eq!(back.root.child("empty").unwrap().attr("k").as_deref(), Some("v<'>"));
}

#[test]
fn inserted_elements_copy_sibling_indentation() {
    let mut doc = Document::parse("<a>\n    <b/>\n    <c/>\n</a>").unwrap();
    doc.root.insert_element(1, Element::new("n").with_attr("x", "1"), "", "    ");
    doc.root.insert_element(9, Element::new("z"), "", "    ");
    assert_eq!(doc.to_xml(), "<a>\n    <b/>\n    <n x='1'/>\n    <c/>\n    <z/>\n</a>");
    doc.root.remove_element(1);
    doc.root.remove_element(2);
    assert_eq!(doc.to_xml(), "<a>\n    <b/>\n    <c/>\n</a>");
}

#[test]
fn nested_new_elements_are_indented() {
    let mut doc = Document::parse("<a>\n  <m/>\n</a>").unwrap();
    let mut set = Element::new("s");
    set.push(Element::new("d"));
    let mut outer = Element::new("o");
    outer.push(set);
    doc.root.child_mut("m").unwrap().insert_element(0, outer, "  ", "  ");
    assert_eq!(doc.to_xml(), "<a>\n  <m>\n    <o>\n      <s>\n        <d/>\n      </s>\n    </o>\n  </m>\n</a>");
}

#[test]
fn errors_name_line_and_column() {
    let e = Document::parse("<a>\n  <b>\n</a>").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("</a>"), "{e}");
    let e = Document::parse("<a>\n <b x='1' x='2'/></a>").unwrap_err();
    assert_eq!((e.line, e.column), (2, 11), "{e}");
    assert!(e.message.contains("twice"), "{e}");
    let e = Document::parse("<a>\n  <b>").unwrap_err();
    assert!(e.message.contains("opened at line 2, column 3"), "{e}");
    let e = Document::parse("<a>&nbsp;</a>").unwrap_err();
    assert!(e.message.contains("undefined entity"), "{e}");
    let e = Document::parse("<a/><b/>").unwrap_err();
    assert!(e.message.contains("second root"), "{e}");
    let e = Document::parse("<a x=1/>").unwrap_err();
    assert!(e.message.contains("quoted"), "{e}");
    let e = Document::parse("<?xml version='1.0' encoding='ISO-8859-1'?><a/>").unwrap_err();
    assert!(e.message.contains("UTF-8"), "{e}");
    assert!(Document::parse("").unwrap_err().message.contains("no root"));
    assert!(Document::parse("<a><!-- x -- y --></a>").is_err());
}

#[test]
fn namespaces_resolve_along_the_path() {
    let doc = Document::parse("<r xmlns:p='urn:p'><m><p:x xmlns:q='urn:q'/></m></r>").unwrap();
    let m = doc.root.child("m").unwrap();
    let x = m.child("p:x").unwrap();
    assert_eq!(namespace_of(&[&doc.root, m, x], Some("p")).as_deref(), Some("urn:p"));
    assert_eq!(namespace_of(&[&doc.root, m, x], Some("q")).as_deref(), Some("urn:q"));
    assert_eq!(namespace_of(&[&doc.root, m, x], None), None);
}
