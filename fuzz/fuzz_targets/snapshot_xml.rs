//! `<domainsnapshot>` documents and the `<snapshots>` tree a driver stores: parse, write,
//! and read back what was written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use luavirt_plugin_api::snapshot::{SnapshotTree, SnapshotXml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = SnapshotXml::parse(text) {
        let again = s.to_xml();
        SnapshotXml::parse(&again).expect("a written snapshot document parses again");
    }
    if let Ok(t) = SnapshotTree::parse(text) {
        SnapshotTree::parse(&t.to_xml()).expect("a written snapshot tree parses again");
    }
});
