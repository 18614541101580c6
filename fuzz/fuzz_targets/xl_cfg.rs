//! xl domain configs: parse, write back byte for byte, change each string list's items (each
//! change must read back), and read the domain as the libxl driver does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use luavirt_libxl::cfg::{Value, XlConfig};
use luavirt_libxl::dom::Dom;
use luavirt_libxl::{sidecar::Sidecar, view};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = XlConfig::parse(data, "fuzz.cfg") else {
        return;
    };
    assert_eq!(cfg.bytes(), data, "an unchanged config writes back as read");
    for (i, s) in cfg.settings().iter().enumerate() {
        let Value::List(l) = &s.value else { continue };
        if l.items.iter().any(|v| !matches!(v, Value::Atom(a) if a.quote.is_some())) {
            continue;
        }
        let added = cfg.append_item(i, "x,y'\"\\\n").expect("an appended item reads back");
        assert_eq!(added.list(i).unwrap().items.len(), l.items.len() + 1);
        if !l.items.is_empty() {
            cfg.replace_item(i, 0, "new").expect("a replaced item reads back");
            let fewer = cfg.remove_item(i, l.items.len() - 1).expect("a removed item reads back");
            assert_eq!(fewer.list(i).unwrap().items.len(), l.items.len() - 1);
        }
    }
    if let Ok(dom) = Dom::from_bytes(Path::new("/fuzz/fuzz.cfg"), data) {
        let _ = view::build(&dom, &Sidecar::default());
    }
});
