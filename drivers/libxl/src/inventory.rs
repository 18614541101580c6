//! The domains of a config folder (`/etc/xen` by default): each `*.cfg` file, and each file
//! without an extension that reads as an xl domain config (`xl create NAME` looks for both),
//! named by its `name =`. A `.cfg` that cannot be read is still listed, under its file name,
//! so `dumpxml` on it can say what is wrong. Sidecars, backups, hidden files and xl's own
//! `xl.conf` are not domains.

use crate::dom::{Dom, stem_name};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::path::{Path, PathBuf};

/// One config of the folder.
pub struct Listed {
    /// The file.
    pub path: PathBuf,
    /// The domain name.
    pub name: String,
    /// The loaded config, or why it could not be read.
    pub dom: Result<Dom, DriverError>,
}

/// Settings only a domain config has (a file of other settings is not a domain).
const DOMAIN_KEYS: &[&str] = &["memory", "maxmem", "vcpus", "kernel", "type", "builder", "disk", "bootloader", "uuid"];

/// Whether `name` can be a domain config: `.cfg`, or no extension at all.
fn candidate(name: &str) -> Option<bool> {
    if name.starts_with('.') || name.ends_with('~') || name == "xl.conf" {
        return None;
    }
    if name.ends_with(".cfg") {
        return Some(true);
    }
    (!name.contains('.')).then_some(false)
}

/// Every domain config in `root`, sorted by file name.
pub fn list(root: &Path) -> Result<Vec<Listed>, DriverError> {
    let entries = std::fs::read_dir(root).map_err(|e| DriverError::io("read the folder", root, e))?;
    let mut files: Vec<(PathBuf, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let cfg = candidate(&e.file_name().to_string_lossy())?;
            let path = e.path();
            std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
            Some((path, cfg))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for (path, is_cfg) in files {
        let dom = Dom::load(&path);
        let name = match &dom {
            Ok(d) => {
                let looks_like_domain = DOMAIN_KEYS.iter().any(|k| d.cfg.settings().iter().any(|s| s.key == *k));
                if !is_cfg && (d.name().is_none() || !looks_like_domain) {
                    continue;
                }
                d.name().unwrap_or_else(|| stem_name(&path))
            }
            Err(_) if !is_cfg => continue,
            Err(_) => stem_name(&path),
        };
        out.push(Listed { path, name, dom });
    }
    Ok(out)
}

/// The domain called `name`; an error when there is none, when two configs share the name, or
/// when its config cannot be read.
pub fn find(root: &Path, name: &str) -> Result<Dom, DriverError> {
    let mut matches: Vec<Listed> = list(root)?.into_iter().filter(|l| l.name == name).collect();
    match matches.len() {
        0 => Err(DriverError::new(
            ErrorCode::NoDomain,
            format!("Domain '{name}' is not in {} (no xl config there has name = \"{name}\")", root.display()),
        )),
        1 => {
            let l = matches.remove(0);
            let dom = l.dom?;
            if dom.name().is_none() {
                return Err(DriverError::new(
                    ErrorCode::CorruptState,
                    format!(
                        "{} has no name = setting (or one luavirt cannot use), and xl refuses a config without one; add name = \"{name}\" (nothing was changed)",
                        l.path.display()
                    ),
                ));
            }
            Ok(dom)
        }
        _ => {
            let files: Vec<String> = matches.iter().map(|l| l.path.display().to_string()).collect();
            Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "Domain name '{name}' is ambiguous: {} {} have name = \"{name}\"; give each config its own name",
                    files.join(" and "),
                    if files.len() == 2 { "both" } else { "all" }
                ),
            ))
        }
    }
}
