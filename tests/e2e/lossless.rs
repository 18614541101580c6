//! Domain XML survives luavirt: `define` then `dumpxml` gives back the same document (the
//! project's check, tests/tools/xml-same.py), and disk-set changes touch only luavirt's
//! metadata and keep the XML valid for libvirt's schema.

use luavirt_plugin_api::domain::{DISKSETS_NS, DomainXml};
use luavirt_tests::{Env, corpus, domain_name, require, validate_domain, xml_same};

#[test]
fn every_corpus_file_round_trips_through_define_and_dumpxml() {
    let env = Env::new("lossless");
    let mut failures = Vec::new();
    let mut count = 0;
    for kind in ["valid", "odd"] {
        for (file, xml) in corpus(kind) {
            let original = env.write(&file, &xml);
            env.ok(&["define", original.to_str().unwrap()]);
            let dumped = env.ok(&["dumpxml", &domain_name(&xml)]);
            let written = env.write(&format!("{file}.out"), &dumped);
            if let Err(why) = xml_same(&original, &written) {
                failures.push(format!("{kind}/{file}: {why}"));
            }
            // With a <uuid> already present nothing is added: the bytes come back as they were.
            if xml.contains("<uuid>") && dumped.trim_end() != xml.trim_end() {
                failures.push(format!("{kind}/{file}: not byte-identical"));
            }
            count += 1;
        }
    }
    assert!(count >= 40, "corpus too small: {count}");
    assert!(failures.is_empty(), "{} of {count} files changed:\n{}", failures.len(), failures.join("\n"));
}

/// The document without luavirt's disk-set metadata (and `<metadata>` if that leaves it empty).
fn without_disksets(xml: &str) -> String {
    let mut d = DomainXml::parse(xml, None).unwrap();
    d.set_metadata_element(DISKSETS_NS, None);
    d.to_xml()
}

#[test]
fn disk_set_changes_touch_only_metadata_and_stay_schema_valid() {
    require("virt-xml-validate", "libvirt-clients and libxml2-utils");
    let env = Env::new("setvalid");
    let mut failures = Vec::new();
    for (file, xml) in corpus("valid") {
        let original = env.write(&file, &xml);
        env.ok(&["define", original.to_str().unwrap()]);
        let name = domain_name(&xml);
        let before = env.ok(&["dumpxml", &name]);
        let disks: Vec<String> = DomainXml::parse(&xml, None).unwrap().disks().into_iter().map(|d| d.target).collect();
        env.ok(&["diskset", "add-all", &name]);
        if let Some(first) = disks.first() {
            env.ok(&["diskset", "add", &name, first, "--set", "migrate"]);
            env.ok(&["diskset", "remove", &name, first]);
        }
        let after = env.ok(&["dumpxml", &name]);
        let written = env.write(&format!("{file}.sets"), &after);
        if let Err(why) = validate_domain(&written) {
            failures.push(format!("{file}: no longer valid: {why}"));
        }
        let sets_of = |x: &str| DomainXml::parse(x, None).unwrap().disk_sets();
        if disks.len() > 1 {
            let sets = sets_of(&after);
            if sets.members("selected") != &disks[1..] || sets.members("migrate") != &disks[..1] {
                failures.push(format!("{file}: wrong sets {sets:?}"));
            }
        }
        // Removing luavirt's metadata again gives the document as it was.
        let stripped = env.write(&format!("{file}.stripped"), &without_disksets(&after));
        let before_file = env.write(&format!("{file}.before"), &before);
        if let Err(why) = xml_same(&before_file, &stripped) {
            failures.push(format!("{file}: a set change changed more than metadata: {why}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seed_attribute_selected_yes_means_membership_in_selected() {
    let env = Env::new("seeds");
    for (file, xml) in corpus("odd") {
        let dom = DomainXml::parse(&xml, None).unwrap();
        let seeded: Vec<String> =
            dom.disks().into_iter().filter(|d| d.selected == Some(true)).map(|d| d.target).collect();
        let path = env.write(&file, &xml);
        env.ok(&["define", path.to_str().unwrap()]);
        let listed: Vec<String> = env.ok(&["diskset", "list", &dom.name()]).lines().map(str::to_string).collect();
        assert_eq!(listed, seeded, "{file}");
    }
}
