//! `--diskspec` and `--memspec` values as the CLI and Lua pass them to the host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use luavirt_core::host::snapshot::{DiskSpec, MemSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = DiskSpec::parse(text);
    let _ = MemSpec::parse(text);
});
