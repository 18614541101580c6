//! `.vmsd` snapshot databases: parse, write back byte for byte, walk the snapshots.
#![no_main]

use libfuzzer_sys::fuzz_target;
use luavirt_vmx::vmsd::Vmsd;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = Vmsd::parse(data, Path::new("fuzz.vmsd")) else {
        return;
    };
    assert_eq!(v.to_bytes(), data, "an unchanged .vmsd writes back as read");
    let _ = (v.current(), v.current_line(), v.next_uid());
    for s in v.snapshots() {
        let _ = (v.by_name(&s.name), s.parent.and_then(|p| v.by_uid(p)));
    }
});
