//! xl disk specs: parse, and rewrite with a new target and format; whatever is written must
//! read back as the disk meant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use luavirt_libxl::diskspec::{Disk, DiskSpec, Format, vdev};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = vdev::parse(text);
    let Ok(spec) = DiskSpec::parse(text) else {
        return;
    };
    let _ = spec.disk.path();
    for want in [
        spec.disk.clone(),
        Disk { target: Some("/srv/new,one.s1".into()), format: Format::Qcow2, ..spec.disk.clone() },
        Disk { readwrite: !spec.disk.readwrite, ..spec.disk.clone() },
    ] {
        if let Ok(written) = spec.rewrite(&want) {
            assert_eq!(DiskSpec::parse(&written).map(|s| s.disk), Ok(want), "{text:?} became {written:?}");
        }
    }
});
