//! Domain XML: parse, then what every reader of a domain does (disks, modes, disk sets);
//! what parses must write back byte for byte (luavirt's lossless promise).
#![no_main]

use libfuzzer_sys::fuzz_target;
use luavirt_plugin_api::domain::DomainXml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(dom) = DomainXml::parse(text, Some("fuzz.xml")) else {
        return;
    };
    assert_eq!(dom.to_xml(), text, "an unchanged document writes back as read");
    let _ = (dom.name(), dom.uuid(), dom.domain_type());
    for d in dom.disks() {
        let _ = dom.disk_mode(&d.target);
    }
    let mut changed = dom.clone();
    let sets = changed.disk_sets();
    changed.set_disk_sets(&sets);
    changed.prune_disk_sets();
    // A document luavirt changed still parses.
    DomainXml::parse(&changed.to_xml(), None).expect("a changed document parses again");
});
