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

fn nested(depth: usize) -> String {
    format!("{}{}", "<a>\n".repeat(depth), "</a>".repeat(depth))
}

#[test]
fn nesting_is_bounded_with_an_error_instead_of_a_stack_overflow() {
    // 200,000 levels overflowed the stack when the tree was written or dropped.
    let e = Document::parse(&nested(200_000)).unwrap_err();
    assert_eq!((e.line, e.column), (MAX_DEPTH as u32 + 1, 1), "{e}");
    assert!(e.message.contains("<a> is nested 513 elements deep"), "{e}");
    assert!(e.message.contains("this document may nest at most 512 deep"), "{e}");
    // Self-closing elements count too.
    let text = format!("{}<b/>{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
    assert!(Document::parse(&text).unwrap_err().message.contains("<b> is nested 513"));
    // The limit itself reads and writes back unchanged.
    let text = nested(MAX_DEPTH);
    let doc = Document::parse(&text).unwrap();
    assert_eq!(doc.to_xml(), text);
    // A tighter limit, as domain XML has.
    let e = Document::parse_with_depth(&text, 3).unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (4, "<a> is nested 4 elements deep; this document may nest at most 3 deep")
    );
}

#[test]
fn many_attributes_are_checked_for_duplicates_in_one_pass() {
    // 100,000 attributes took 31 s when each was compared with every earlier one.
    let n = 100_000;
    let attrs: String = (0..n).map(|i| format!(" a{i}='{i}'")).collect();
    let doc = Document::parse(&format!("<r{attrs}/>")).unwrap();
    assert_eq!(doc.root.attrs().len(), n);
    assert_eq!(doc.root.attr("a99999").as_deref(), Some("99999"));
    // A duplicate at the very end is still found, at its column.
    let text = format!("<r{attrs} a7='x'/>");
    let e = Document::parse(&text).unwrap_err();
    assert_eq!(e.column as usize, text.len() - " a7='x'/>".len() + 2, "{e}");
    assert!(e.message.contains("attribute \"a7\" appears twice in <r>"), "{e}");
}

#[test]
fn malformed_encoding_declarations_are_errors_not_panics() {
    // Found by fuzzing (fuzz/fuzz_targets/domain_xml.rs): a multi-byte character where the
    // quote belongs was sliced in half.
    for decl in ["encoding=\u{7b3}TF-8\"", "encoding", "encoding=", "encoding = 'UTF-8", "encoding=UTF-8"] {
        let e = Document::parse(&format!("<?xml version=\"1.0\" {decl}?>\n<a/>")).unwrap_err();
        assert!(e.message.contains("malformed encoding declaration"), "{decl}: {e}");
        assert_eq!((e.line, e.column), (1, 21), "{decl}: {e}");
    }
    Document::parse("<?xml version=\"1.0\" encoding = \"utf8\" ?>\n<a/>").unwrap();
}

#[test]
fn a_second_byte_order_mark_is_an_error_not_a_panic() {
    // Found by fuzzing (domain_xml and snapshot_xml): quick-xml skipped the second mark as
    // well, and the tag's source text was sliced inside it.
    for text in ["\u{feff}\u{feff}<domain type='kvm'/>", "\u{feff}\u{feff}>t"] {
        let e = Document::parse(text).unwrap_err();
        assert_eq!((e.line, e.column), (1, 1), "{e}");
        assert!(e.message.contains("a second byte order mark (U+FEFF)"), "{e}");
    }
    assert!(Document::parse("\u{feff}<a/>").unwrap().bom);
}
