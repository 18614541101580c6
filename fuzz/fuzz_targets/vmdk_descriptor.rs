//! VMDK descriptors (embedded in a sparse image or a file of their own): parse, write back
//! byte for byte, read what the driver reads (chain links, extents, capacity).
#![no_main]

use libfuzzer_sys::fuzz_target;
use luavirt_vmx::vmdk::Descriptor;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = Descriptor::parse(data) else {
        return;
    };
    assert_eq!(d.to_bytes(), data, "an unchanged descriptor writes back as read");
    let _ = (d.create_type(), d.cid(), d.parent_cid(), d.parent_hint(), d.capacity());
    let _ = d.extents().len();
});
