//! The C header is what cbindgen makes of `src/abi.rs`, and a C compiler lays its structs out
//! exactly as Rust does.

use luavirt_plugin_api::abi::*;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let dir = crate_dir();
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    // cbindgen writes no string constants: the entry symbol and the record keys come from here.
    let mut defines = String::from("\n/* The entry symbol, and the keys of records and parameters (LvParam.key). */\n");
    for (name, value) in STRING_CONSTANTS {
        defines.push_str(&format!("#define {name} \"{value}\"\n"));
    }
    config.after_includes = Some(defines);
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/abi.rs"))
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn header_is_generated_from_the_rust_definitions() {
    let path = crate_dir().join("include/luavirt_driver.h");
    let fresh = generate();
    if std::env::var_os("LUAVIRT_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "include/luavirt_driver.h is out of date with src/abi.rs; regenerate it with\n  LUAVIRT_BLESS=1 cargo test -p luavirt-plugin-api --test header"
    );
}

/// Each line: a C expression and the value Rust computes for it.
fn layout_facts() -> Vec<(String, usize)> {
    let mut facts = Vec::new();
    macro_rules! layout {
        ($ty:ident { $($field:ident),* }) => {
            facts.push((format!("sizeof({})", stringify!($ty)), size_of::<$ty>()));
            $( facts.push((format!("offsetof({}, {})", stringify!($ty), stringify!($field)), offset_of!($ty, $field))); )*
        };
    }
    layout!(LvStr { ptr, len });
    layout!(LvParam { key, kind, reserved, int_value, uint_value, double_value, string_value });
    layout!(LvHostApi {
        struct_size,
        abi_major,
        abi_minor,
        emit_text,
        emit_record,
        set_error,
        progress,
        is_cancelled,
        log,
        progress_reenters
    });
    layout!(LvDriverVtable {
        struct_size,
        reserved,
        connect_open,
        connect_close,
        connect_list_domains,
        domain_define_xml,
        domain_undefine,
        domain_get_xml,
        domain_get_state,
        domain_create,
        domain_destroy,
        domain_get_block_info
    });
    layout!(LvDriverInfo {
        struct_size,
        abi_major,
        abi_minor,
        pointer_width,
        reserved16,
        reserved32,
        capabilities,
        name,
        version,
        uri_schemes,
        description,
        vtable
    });
    for (name, value) in [
        ("LV_ABI_MAJOR", LV_ABI_MAJOR as usize),
        ("LV_ABI_MINOR", LV_ABI_MINOR as usize),
        ("LV_ERR_INVALID_URI", LV_ERR_INVALID_URI as usize),
        ("LV_PARAM_STRING", LV_PARAM_STRING as usize),
        ("LV_STATE_SHUTOFF", LV_STATE_SHUTOFF as usize),
        ("LV_CAP_MIGRATION", LV_CAP_MIGRATION as usize),
        ("LV_SNAPSHOT_CREATE_LIVE", LV_SNAPSHOT_CREATE_LIVE as usize),
        ("LV_BLOCK_COPY_REUSE_EXT", LV_BLOCK_COPY_REUSE_EXT as usize),
    ] {
        facts.push((name.to_string(), value));
    }
    facts
}

#[test]
fn c_compiler_agrees_on_every_size_and_offset() {
    let facts = layout_facts();
    let mut c =
        String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"luavirt_driver.h\"\nint main(void) {\n");
    for (expr, _) in &facts {
        c.push_str(&format!("  printf(\"%s=%zu\\n\", \"{expr}\", (size_t)({expr}));\n"));
    }
    c.push_str("  return 0;\n}\n");
    let dir = std::env::temp_dir().join(format!("lv-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("probe.c"), c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(crate_dir().join("include"))
        .arg(dir.join("probe.c"))
        .arg("-o")
        .arg(dir.join("probe"))
        .status()
        .expect("a C compiler (cc) runs");
    assert!(status.success(), "the header does not compile as C11");
    let out = Command::new(dir.join("probe")).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for ((expr, rust), line) in facts.iter().zip(text.lines()) {
        assert_eq!(line, format!("{expr}={rust}"), "C and Rust disagree on {expr}");
    }
    assert_eq!(text.lines().count(), facts.len());
    std::fs::remove_dir_all(&dir).unwrap();
}
