//! Embeds the Lua scripts shipped in `scripts/` (not their tests, not the editor
//! definitions), so `require` finds them wherever the binary runs.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let rel = p.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/");
        if p.is_dir() {
            if rel != "types" {
                collect(&p, root, out);
            }
        } else if let Some(stem) = rel.strip_suffix(".lua").filter(|s| !s.ends_with("_test")) {
            out.push((stem.replace('/', "."), p.clone()));
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut found = Vec::new();
    collect(&root, &root, &mut found);
    let mut code = String::from(
        "/// Shipped Lua modules: (module name, path in scripts/, source).\npub static SHIPPED: &[(&str, &str, &str)] = &[\n",
    );
    for (module, path) in &found {
        let rel = path.strip_prefix(&root).expect("under root").display().to_string();
        code.push_str(&format!(
            "    ({module:?}, {rel:?}, include_str!({:?})),\n",
            path.canonicalize().expect("exists")
        ));
        println!("cargo:rerun-if-changed={}", path.display());
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("shipped_scripts.rs");
    std::fs::write(out, code).expect("write shipped_scripts.rs");
}
