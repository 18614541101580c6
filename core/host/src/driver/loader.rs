//! Finds driver plugins, loads them, and checks each against the ABI before trusting it.
//!
//! Drivers are found beside the `luavirt` binary (`libluavirt_*.so`), in `../lib/luavirt/drivers`
//! from it (every `*.so`: where `tools/install.sh` puts them, `PREFIX/lib/luavirt/drivers`)
//! and in every folder of `LUAVIRT_DRIVER_DIR` (colon-separated; every `*.so`). A file that
//! anyone but root or this user could have changed is refused before it is opened
//! ([`crate::trust`]); a driver whose entry point answers with something that does not fit
//! is refused with the reason ([`super::validate`]), never half-loaded. Loaded drivers are
//! never unloaded (unloading code with
//! thread-local destructors is unsafe), so their static data lives as long as the process.

use super::{LoadedDriver, RefusedDriver};
use luavirt_plugin_api::abi::{self, LvDriverEntryFn};
use std::path::{Path, PathBuf};

/// Folders to search, in order: beside the binary (only `libluavirt_*.so`), the installed
/// drivers' folder `../lib/luavirt/drivers` from it, then each folder of `LUAVIRT_DRIVER_DIR`.
pub fn search_path() -> Vec<(PathBuf, bool)> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
        let installed = dir.parent().map(|prefix| prefix.join("lib/luavirt/drivers"));
        dirs.push((dir, true));
        dirs.extend(installed.map(|d| (d, false)));
    }
    if let Some(list) = std::env::var_os("LUAVIRT_DRIVER_DIR") {
        dirs.extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).map(|p| (p, false)));
    }
    dirs
}

/// Shared objects in `dir`, sorted by name; with `prefixed_only`, only `libluavirt_*.so`.
fn candidates(dir: &Path, prefixed_only: bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.ends_with(".so") && (!prefixed_only || name.starts_with("libluavirt_"))
        })
        .collect();
    found.sort();
    found
}

/// Loads every driver found on `dirs`. The first driver of a name wins; later ones are refused.
pub fn load_all(dirs: &[(PathBuf, bool)]) -> (Vec<LoadedDriver>, Vec<RefusedDriver>) {
    let mut loaded: Vec<LoadedDriver> = Vec::new();
    let mut refused = Vec::new();
    let mut seen = Vec::new();
    for (dir, prefixed_only) in dirs {
        for path in candidates(dir, *prefixed_only) {
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if seen.contains(&canonical) {
                continue;
            }
            seen.push(canonical);
            match load_one(&path) {
                Ok(d) => match loaded.iter().find(|l| l.name == d.name) {
                    Some(first) => refused.push(RefusedDriver {
                        path,
                        reason: format!("a driver named '{}' is already loaded from {}", d.name, first.path.display()),
                    }),
                    None => loaded.push(d),
                },
                Err(reason) => refused.push(RefusedDriver { path, reason }),
            }
        }
    }
    (loaded, refused)
}

/// Loads one shared object and checks it; the error is the reason for refusing it.
pub fn load_one(path: &Path) -> Result<LoadedDriver, String> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // RTLD_NODELETE: even if a handle were dropped, the code stays mapped.
    const RTLD_NODELETE: i32 = 0x1000;
    // Before dlopen, which runs the object's constructors; load the path that was checked.
    let real = crate::trust::check(path)?;
    // SAFETY: loading runs the object's initializers; drivers are trusted code chosen by the
    // operator (as libvirt trusts its modules), in files only root or this user can change.
    let lib = unsafe { Library::open(Some(&real), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) }
        .map_err(|e| format!("cannot load: {e}"))?;
    let entry: LvDriverEntryFn = match unsafe { lib.get::<LvDriverEntryFn>(abi::LV_DRIVER_ENTRY_SYMBOL.as_bytes()) } {
        Ok(sym) => *sym,
        Err(_) => {
            return Err(format!(
                "no entry point {} in {}; a luavirt driver exports `const LvDriverInfo *{}(void)`",
                abi::LV_DRIVER_ENTRY_SYMBOL,
                path.display(),
                abi::LV_DRIVER_ENTRY_SYMBOL
            ));
        }
    };
    // Never unload: the info, vtable and code must outlive every use.
    std::mem::forget(lib);
    let super::validate::Checked { info, vtable } = super::validate::entry_result(entry)?;
    // SAFETY: validate checked that each string lies in the driver's static data.
    let text = |s: abi::LvStr| unsafe { s.to_string_lossy() };
    let name = text(info.name);
    if name.is_empty() {
        return Err("it has no name".to_string());
    }
    Ok(LoadedDriver {
        name,
        version: text(info.version),
        description: text(info.description),
        schemes: text(info.uri_schemes)
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        capabilities: info.capabilities,
        abi: (info.abi_major, info.abi_minor),
        path: path.to_path_buf(),
        vtable,
    })
}
