//! The `.vmx` reader and writer on the corpus in tests/data/vmx: byte-identical round trips,
//! lookups without case, escapes, encodings, one-line edits, and errors with file and line.

use super::*;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vmx")
}

fn read(name: &str) -> (Vec<u8>, VmxFile) {
    let bytes = std::fs::read(corpus_dir().join(name)).unwrap();
    let vmx = VmxFile::parse(&bytes, name).unwrap_or_else(|e| panic!("{e}"));
    (bytes, vmx)
}

/// The lines that differ between two texts, as (line number, old, new).
fn changed_lines(a: &[u8], b: &[u8]) -> Vec<(usize, String, String)> {
    let a: Vec<&[u8]> = a.split(|c| *c == b'\n').collect();
    let b: Vec<&[u8]> = b.split(|c| *c == b'\n').collect();
    (0..a.len().max(b.len()))
        .filter(|&i| a.get(i) != b.get(i))
        .map(|i| {
            let s = |x: Option<&&[u8]>| x.map(|l| String::from_utf8_lossy(l).into_owned()).unwrap_or_default();
            (i + 1, s(a.get(i)), s(b.get(i)))
        })
        .collect()
}

#[test]
fn every_corpus_file_writes_back_byte_identical() {
    let mut n = 0;
    for e in std::fs::read_dir(corpus_dir()).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "vmx") {
            let bytes = std::fs::read(&p).unwrap();
            let vmx = VmxFile::parse(&bytes, &p.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(vmx.to_bytes(), bytes, "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 9, "only {n} corpus files");
}

#[test]
fn keys_are_looked_up_without_case_and_keep_theirs() {
    let (_, v) = read("workstation-linux-case.vmx");
    assert_eq!(v.get("displayName"), Some("build-runner"));
    assert_eq!(v.get("memsize"), Some("3072"));
    assert_eq!(v.get("scsi0:0.fileName"), Some("build-runner.vmdk"));
    assert_eq!(v.get("uuid.bios"), Some("564d0000111122223333444455556666"));
    let e = v.entry("SCSI0:1.MODE").unwrap();
    assert_eq!((e.key, e.value, e.line), ("scsi0:1.Mode", "Independent-NonPersistent", 23));
    assert_eq!(v.get("nosuchkey"), None);
}

#[test]
fn escapes_are_decoded() {
    let (_, v) = read("esx7-web.vmx");
    assert_eq!(v.get("annotation"), Some("Front web server\nOwner: \"ops team\"\nticket | 4711"));
    assert_eq!(v.get("guestinfo.appInfo"), Some("{\"version\":\"1\", \"state\":\"ok\"}"));
}

#[test]
fn legacy_encodings_are_converted_on_read() {
    let (bytes, v) = read("workstation-win1252.vmx");
    assert_eq!(v.encoding(), Encoding::Windows1252);
    assert!(bytes.windows(3).any(|w| w == b"B\xfcr"), "the file itself is windows-1252");
    assert_eq!(v.get("displayName"), Some("Büro-PC – Empfang"));
    assert_eq!(v.get("annotation"), Some("Rechner am Empfang\r\nZuständig: „IT-Team“ • Raum 0.12\r\nPreis: 450 €"));
    assert_eq!(v.get("sata0:0.fileName"), Some("Büro-PC.vmdk"));
    let (_, v) = read("latin1-fr.vmx");
    assert_eq!(v.encoding(), Encoding::Latin1);
    assert_eq!(v.get("displayName"), Some("Serveur-Héloïse"));
    assert_eq!(v.get("annotation"), Some("Machine de démonstration\nrôle : test"));
}

#[test]
fn setting_a_value_rewrites_only_that_value_in_the_files_encoding() {
    let (bytes, mut v) = read("workstation-win1252.vmx");
    assert!(v.set("IDE0:1.MODE", "independent-persistent").unwrap());
    let out = v.to_bytes();
    assert_eq!(
        changed_lines(&bytes, &out),
        [(21, "ide0:1.mode = \"undoable\"\r".to_string(), "ide0:1.mode = \"independent-persistent\"\r".to_string())]
    );
    // A value set to what it already is changes nothing.
    assert!(!v.set("displayName", "Büro-PC – Empfang").unwrap());
    // A non-ASCII value is written in the file's encoding, with what needs escaping escaped.
    v.set("annotation", "Café \"neu\"").unwrap();
    let out = v.to_bytes();
    let want: &[u8] = b"annotation = \"Caf\xe9 |22neu|22\"\r\nguestOS";
    assert!(out.windows(want.len()).any(|w| w == want), "{}", String::from_utf8_lossy(&out));
    let back = VmxFile::parse(&out, "x").unwrap();
    assert_eq!(back.get("annotation"), Some("Café \"neu\""));
}

#[test]
fn a_character_the_encoding_lacks_is_refused() {
    let (_, mut v) = read("latin1-fr.vmx");
    let e = v.set("annotation", "price: 5 €").unwrap_err();
    assert_eq!(e.line, 5);
    assert!(e.message.contains("the file is in ISO-8859-1"), "{e}");
}

#[test]
fn a_line_added_after_a_disk_copies_its_neighbours_form() {
    let (bytes, mut v) = read("workstation-win1252.vmx");
    assert_eq!(v.insert_after(12, "sata0:0.mode", "independent-nonpersistent").unwrap(), 13);
    let out = v.to_bytes();
    let mut expected = bytes.clone();
    let at = bytes.windows(26).position(|w| w == b"sata0:0.present = \"TRUE\"\r\n").unwrap() + 26;
    expected.splice(at..at, b"sata0:0.mode = \"independent-nonpersistent\"\r\n".iter().copied());
    assert_eq!(out, expected);
    // Indentation and spacing come from the line before.
    let (_, mut w) = read("workstation-linux-case.vmx");
    w.insert_after(23, "scsi0:1.writeThrough", "TRUE").unwrap();
    assert!(
        String::from_utf8(w.to_bytes())
            .unwrap()
            .contains("   # keep it that way\n\tscsi0:1.writeThrough = \"TRUE\"\n\nide1:0")
    );
}

#[test]
fn a_line_added_at_the_end_of_a_file_without_final_newline() {
    let (bytes, mut v) = read("gsx-noeol.vmx");
    assert!(!bytes.ends_with(b"\n"));
    v.insert_after(7, "ide0:0.mode", "independent-persistent").unwrap();
    let mut expected = bytes.clone();
    expected.extend_from_slice(b"\nide0:0.mode = \"independent-persistent\"");
    assert_eq!(v.to_bytes(), expected);
}

#[test]
fn bad_files_are_errors_with_file_and_line() {
    let e = VmxFile::parse(&std::fs::read(corpus_dir().join("bad/syntax.vmx")).unwrap(), "syntax.vmx").unwrap_err();
    assert_eq!(
        e.to_string(),
        "syntax.vmx:3: syntax error at column 11: the value of memsize is not in double quotes; write memsize = \"VALUE\""
    );
    let e = VmxFile::parse(&std::fs::read(corpus_dir().join("bad/duplicate.vmx")).unwrap(), "dup.vmx").unwrap_err();
    assert_eq!(e.line, 5);
    assert!(e.message.contains("key SCSI0:0.FileName is set twice (lines 3 and 5"), "{e}");
    let e = VmxFile::parse(&std::fs::read(corpus_dir().join("bad/encoding.vmx")).unwrap(), "enc.vmx").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.starts_with("unknown .encoding \"GBK\"; luavirt reads UTF-8, windows-1252"), "{e}");
    let e = VmxFile::parse(&std::fs::read(corpus_dir().join("bad/not-utf8.vmx")).unwrap(), "n.vmx").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("not valid UTF-8 (byte 0xe9)") && e.message.contains("has no .encoding line"), "{e}");
}

#[test]
fn line_endings_and_a_byte_order_mark_are_kept() {
    let text = b"\xEF\xBB\xBF.encoding = \"UTF-8\"\r\ndisplayName = \"a\"\nmemsize = \"1\"";
    let v = VmxFile::parse(text, "x").unwrap();
    assert_eq!(v.get(".encoding"), Some("UTF-8"));
    assert_eq!(v.to_bytes(), text);
}

#[test]
fn booleans_are_read_without_case() {
    assert_eq!(parse_bool("TRUE"), Some(true));
    assert_eq!(parse_bool("false"), Some(false));
    assert_eq!(parse_bool("True "), Some(true));
    assert_eq!(parse_bool("maybe"), None);
}

#[test]
fn lines_are_removed_renamed_and_appended_leaving_the_others_as_they_are() {
    let text = "a = \"1\"\r\n# note\r\n  Snapshot3.Uid=\"7\"  # kept\r\nb = \"2\"\r\n";
    let mut v = VmxFile::parse(text.as_bytes(), "t.vmsd").unwrap();
    v.rename("snapshot3.uid", "snapshot2.Uid").unwrap();
    assert_eq!(v.get("snapshot2.uid"), Some("7"));
    assert!(v.rename("a", "b").is_err(), "b is set");
    assert!(v.remove("A"));
    assert!(!v.remove("a"));
    assert_eq!(v.append("c", "say \"x\"").unwrap(), 4);
    assert_eq!(
        String::from_utf8(v.to_bytes()).unwrap(),
        "# note\r\n  snapshot2.Uid=\"7\"  # kept\r\nb = \"2\"\r\nc = \"say |22x|22\"\r\n"
    );
    // A last line without a newline gets one before the new line.
    let mut v = VmxFile::parse(b"a = \"1\"", "t.vmsd").unwrap();
    v.append("b", "2").unwrap();
    assert_eq!(v.to_bytes(), b"a = \"1\"\nb = \"2\"\n");
}
