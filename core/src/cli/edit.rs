//! `edit` and `snapshot-edit`: the XML in the user's editor, then defined (or the
//! snapshot's record changed). An unchanged file changes nothing. When what was written is
//! refused, the edit is kept in its file and the message says where, so no work is lost; on
//! a terminal the editor can be opened again on it.

use super::args::Command;
use super::run::{Output, out};
use luavirt_host::{Connection, Error};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::fsutil::{create_private_dir, write_atomic};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// Runs `edit` or `snapshot-edit`.
pub fn run(conn: &Connection, cmd: Command) -> anyhow::Result<Output> {
    match cmd {
        Command::Edit { domain } => {
            let original = conn.domain_xml(&domain, true)?;
            let file = Scratch::new(&format!("{domain}.xml"), &original)?;
            loop {
                let edited = file.edit()?;
                if edited == original {
                    file.remove();
                    return Ok(out(
                        format!("Domain '{domain}' XML configuration not changed.\n"),
                        json!({ "domain": domain, "changed": false }),
                    ));
                }
                let attempt = DomainXml::parse(&edited, Some(&file.path.display().to_string()))
                    .map_err(Error::from)
                    .and_then(|d| {
                        if d.name() == domain {
                            Ok(())
                        } else {
                            Err(Error::InvalidArg(format!(
                                "The edit renames domain '{domain}' to '{}', which edit does not do (it would define a second domain); keep <name>{domain}</name>",
                                d.name()
                            )))
                        }
                    })
                    .and_then(|()| conn.define(&edited, Some(&file.path.display().to_string())));
                match attempt {
                    Ok(_) => {
                        file.remove();
                        return Ok(out(
                            format!("Domain '{domain}' XML configuration edited.\n"),
                            json!({ "domain": domain, "changed": true }),
                        ));
                    }
                    Err(e) => file.refused(e)?,
                }
            }
        }
        Command::SnapshotEdit { domain, snapshot, current } => {
            let name = super::snapshot::pick(&domain, snapshot, current, &conn.snapshots(&domain)?)?;
            let original = conn.snapshot(&domain, &name)?.to_xml();
            let file = Scratch::new(&format!("{domain}-{name}.xml"), &original)?;
            loop {
                let edited = file.edit()?;
                match conn.snapshot_edit(&domain, &name, &edited) {
                    Ok(changed) => {
                        file.remove();
                        let text = if changed {
                            format!("Snapshot {name} edited.\n")
                        } else {
                            format!("Snapshot {name} XML configuration not changed.\n")
                        };
                        return Ok(out(text, json!({ "domain": domain, "snapshot": name, "changed": changed })));
                    }
                    Err(e) => file.refused(e)?,
                }
            }
        }
        _ => unreachable!("only the edit verbs come here"),
    }
}

/// The file being edited, in a private folder of its own.
struct Scratch {
    dir: PathBuf,
    path: PathBuf,
}

impl Scratch {
    fn new(name: &str, text: &str) -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("luavirt-edit-{}-{}", std::process::id(), unique()));
        create_private_dir(&dir).map_err(|source| Error::Io { doing: "create", path: dir.clone(), source })?;
        let path = dir.join(name.replace('/', "_"));
        write_atomic(&path, text.as_bytes()).map_err(|source| Error::Io {
            doing: "write",
            path: path.clone(),
            source,
        })?;
        Ok(Scratch { dir, path })
    }

    /// Runs the editor on the file and reads it back.
    fn edit(&self) -> anyhow::Result<String> {
        let editor = ["VISUAL", "EDITOR"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
            .unwrap_or_else(|| "vi".to_string());
        // Through the shell, as git does, so an editor with options ("code --wait") works.
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("{editor} \"$1\""), "luavirt-editor"])
            .arg(&self.path)
            .status()
            .map_err(|e| Error::InvalidArg(format!("Cannot run the editor {editor:?}: {e}")))?;
        if !status.success() {
            return Err(Error::InvalidArg(format!(
                "The editor {editor:?} failed ({status}); nothing was changed, and the file is kept: {}",
                self.path.display()
            ))
            .into());
        }
        std::fs::read_to_string(&self.path)
            .map_err(|source| Error::Io { doing: "read", path: self.path.clone(), source }.into())
    }

    /// What was written was refused: on a terminal, offers to edit again; else fails, saying
    /// where the edit is kept.
    fn refused(&self, e: Error) -> anyhow::Result<()> {
        let message = luavirt_host::words::render(&e.to_string());
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            eprint!("error: {message}\nEdit again? [y/N] ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if answer.trim().eq_ignore_ascii_case("y") {
                return Ok(());
            }
        }
        let message = format!("{message}\nNothing was changed; your edit is kept in {}", self.path.display());
        Err(Error::Driver { code: e.code(), message }.into())
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
}
