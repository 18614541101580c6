//! `.vmx` files: parse, write back byte for byte, read the devices as the driver does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use luavirt_vmx::devices;
use luavirt_vmx::vmx::VmxFile;

fuzz_target!(|data: &[u8]| {
    let Ok(vmx) = VmxFile::parse(data, "fuzz.vmx") else {
        return;
    };
    assert_eq!(vmx.to_bytes(), data, "an unchanged .vmx writes back as read");
    let _ = vmx.entries().count();
    let _ = devices::read(&vmx);
});
