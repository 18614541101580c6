//! The VMs of a datastore folder: every `.vmx` under it (ESX keeps one folder per VM), each a
//! domain named by its `displayName`. A `.vmx` that cannot be read is still listed, under its
//! file name, so `dumpxml` on it can say what is wrong.

use crate::vm::{Vm, stem_name};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::{Path, PathBuf};

/// How deep below the datastore folder `.vmx` files are looked for.
const MAX_DEPTH: usize = 6;

/// One `.vmx` of the datastore.
pub struct Listed {
    /// The file.
    pub path: PathBuf,
    /// The domain name.
    pub name: String,
    /// The loaded VM, or why it could not be read.
    pub vm: Result<Vm, DriverError>,
}

/// Every `.vmx` under `root`, sorted; hidden files and folders (lock folders, temporary
/// files) are skipped.
pub fn vmx_files(root: &Path) -> Result<Vec<PathBuf>, DriverError> {
    let mut out = Vec::new();
    walk(root, 0, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), DriverError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DriverError::io("read the folder", dir, e))?;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, depth + 1, out)?;
            }
        } else if name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case(".vmx") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every VM under `root`.
pub fn list(root: &Path) -> Result<Vec<Listed>, DriverError> {
    Ok(vmx_files(root)?
        .into_iter()
        .map(|path| {
            let vm = Vm::load(&path);
            let name = match &vm {
                Ok(vm) => vm.name(),
                Err(_) => stem_name(&path),
            };
            Listed { path, name, vm }
        })
        .collect())
}

/// The VM called `name`; an error when there is none, when two share the name, or when its
/// `.vmx` cannot be read.
pub fn find(root: &Path, name: &str) -> Result<Vm, DriverError> {
    let mut matches: Vec<Listed> = list(root)?.into_iter().filter(|l| l.name == name).collect();
    match matches.len() {
        0 => Err(DriverError::new(
            ErrorCode::NoDomain,
            format!("Domain '{name}' is not on datastore {} (no .vmx there has that displayName)", root.display()),
        )),
        1 => matches.remove(0).vm,
        _ => {
            let files: Vec<String> = matches.iter().map(|l| l.path.display().to_string()).collect();
            Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "Domain name '{name}' is ambiguous: {} {} have that displayName; give each VM its own name in the VMware client",
                    files.join(" and "),
                    if files.len() == 2 { "both" } else { "all" }
                ),
            ))
        }
    }
}
