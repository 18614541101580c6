//! Xen's `xl`, the one way luavirt reaches a running Xen: which domains run (`xl list`),
//! starting (`xl create`) and stopping (`xl destroy`) them. Where xl is missing, or finds no
//! hypervisor, the error says exactly that; everything luavirt does on files works without it.

use luavirt_plugin_api::abi::{LV_STATE_CRASHED, LV_STATE_PAUSED, LV_STATE_RUNNING, LV_STATE_SHUTDOWN};
use std::fmt;

/// Why an `xl` command did not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XlError {
    /// The program is not there.
    Missing(String),
    /// xl runs, but no Xen hypervisor does (its own words).
    NoHypervisor(String),
    /// xl failed otherwise: the command and what it said.
    Failed(String, String),
}

impl XlError {
    /// Whether this says no domain can be running here (no xl, or no hypervisor).
    pub fn nothing_runs(&self) -> bool {
        matches!(self, XlError::Missing(_) | XlError::NoHypervisor(_))
    }
}

impl fmt::Display for XlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XlError::Missing(where_) => write!(
                f,
                "xl is not installed ({where_}): Xen's toolstack (apt-get install xen-utils) and a Xen hypervisor run domains"
            ),
            XlError::NoHypervisor(said) => {
                write!(f, "no Xen hypervisor runs on this machine (xl says: {said}); boot it into Xen to run domains")
            }
            XlError::Failed(command, said) => write!(f, "`{command}` failed: {said}"),
        }
    }
}

/// What xl says when it finds no hypervisor: the real binary, and Debian's wrapper.
const NO_HYPERVISOR: &[&str] =
    &["cannot init xl context", "Can't find hypervisor information", "Could not obtain handle on privileged command"];

/// A domain xl lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its domain id.
    pub id: i64,
    /// Its state (`LV_STATE_*`).
    pub state: u64,
}

/// The `xl` program of a connection.
#[derive(Clone, Debug)]
pub struct Xl {
    program: String,
}

impl Xl {
    /// `program`: `xl` (found on PATH) or a path.
    pub fn new(program: &str) -> Xl {
        Xl { program: program.to_string() }
    }

    /// The program: `xl` (found on PATH) or a path.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Runs `xl ARGS`; its standard output.
    pub fn run(&self, args: &[&str]) -> Result<String, XlError> {
        let command = format!("{} {}", self.program, args.join(" "));
        let out = luavirt_plugin_api::child::output(luavirt_plugin_api::child::tool(&self.program).args(args))
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    XlError::Missing(if self.program.contains('/') {
                        format!("{} does not exist", self.program)
                    } else {
                        format!("no {} on PATH", self.program)
                    })
                } else {
                    XlError::Failed(command.clone(), e.to_string())
                }
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        // The last line says why; Debian's wrapper pads it with double spaces.
        let last = said.lines().last().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
        if NO_HYPERVISOR.iter().any(|m| said.contains(m)) {
            Err(XlError::NoHypervisor(last))
        } else {
            Err(XlError::Failed(command, if last.is_empty() { format!("exit status {}", out.status) } else { last }))
        }
    }

    /// The domains Xen runs (`xl list`), Domain-0 aside.
    pub fn list(&self) -> Result<Vec<Listed>, XlError> {
        Ok(parse_list(&self.run(&["list"])?))
    }
}

/// Reads `xl list` output: a header, then `NAME ID MEM VCPUS STATE TIME` per domain (a name
/// may hold spaces, so the fields are taken from the right).
pub fn parse_list(text: &str) -> Vec<Listed> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 {
            continue;
        }
        let n = fields.len();
        let (Ok(id), flags) = (fields[n - 5].parse::<i64>(), fields[n - 2]) else { continue };
        let name = fields[..n - 5].join(" ");
        if name == "Domain-0" {
            continue;
        }
        let state = if flags.contains('p') {
            LV_STATE_PAUSED
        } else if flags.contains('c') {
            LV_STATE_CRASHED
        } else if flags.contains('s') || flags.contains('d') {
            LV_STATE_SHUTDOWN
        } else {
            LV_STATE_RUNNING
        };
        out.push(Listed { name, id, state });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xl_list_output_reads_as_domains_with_ids_and_states() {
        let text = "Name                                        ID   Mem VCPUs\tState\tTime(s)\nDomain-0                                     0  2048     4     r-----     123.4\nweb01                                        3   512     1     -b----      10.0\nmy guest                                     7  1024     2     --p---       0.5\nold                                         12   256     1     ---sc-       1.0\n";
        assert_eq!(
            parse_list(text),
            [
                Listed { name: "web01".into(), id: 3, state: LV_STATE_RUNNING },
                Listed { name: "my guest".into(), id: 7, state: LV_STATE_PAUSED },
                Listed { name: "old".into(), id: 12, state: LV_STATE_CRASHED },
            ]
        );
    }

    #[test]
    fn a_missing_xl_is_named_as_missing() {
        let e = Xl::new("/nonexistent/xl").run(&["list"]).unwrap_err();
        assert_eq!(e, XlError::Missing("/nonexistent/xl does not exist".into()));
        assert!(e.to_string().starts_with("xl is not installed (/nonexistent/xl does not exist)"), "{e}");
        assert!(e.nothing_runs());
    }
}
