//! The snapshot verbs: turn arguments into host calls and results into virsh-like text.

use super::args::{Command, SnapshotCreateArgs};
use super::run::{Output, out};
use super::table::render;
use luavirt_host::error::Error;
use luavirt_host::snapshot::{DeleteOptions, DiskSpec, MemSpec, RevertOptions, SnapshotInfo, SnapshotRequest};
use luavirt_host::{Connection, JobControl};
use luavirt_plugin_api::snapshot::{SnapshotTree, SnapshotXml};
use luavirt_plugin_api::time::format_local;
use serde_json::json;

/// Runs one snapshot command.
pub fn run(conn: &Connection, cmd: Command) -> anyhow::Result<Output> {
    Ok(match cmd {
        Command::SnapshotCreateAs(a) => create(conn, a)?,
        Command::SnapshotCreate { domain, xmlfile, disk_only, live, halt, reuse_external, no_metadata, atomic } => {
            let mut req = match &xmlfile {
                None => SnapshotRequest::default(),
                Some(f) => {
                    let (text, source) = if f.as_os_str() == "-" {
                        let mut s = String::new();
                        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                        (s, "standard input".to_string())
                    } else {
                        let text = std::fs::read_to_string(f).map_err(|source| Error::Io {
                            doing: "read",
                            path: f.clone(),
                            source,
                        })?;
                        (text, f.display().to_string())
                    };
                    SnapshotRequest::from_xml(&text, &source)?
                }
            };
            req.disk_only = disk_only;
            req.live = live;
            req.halt = halt;
            req.reuse_external = reuse_external;
            req.no_metadata = no_metadata;
            req.atomic = atomic.then_some(true);
            let (plan, stored) = conn.snapshot_create(&domain, &req)?;
            let name = stored.name.clone().unwrap_or_default();
            out(
                format!("Domain snapshot {name} created\n"),
                json!({ "domain": domain, "snapshot": name, "plan": plan }),
            )
        }
        Command::SnapshotParent { domain, snapshot, current } => {
            let name = pick(&domain, snapshot, current, &conn.snapshots(&domain)?)?;
            let parent = conn.snapshot_parent(&domain, &name)?;
            let text = match &parent {
                Some(p) => format!("{p}\n"),
                None => {
                    return Err(Error::InvalidArg(format!(
                        "Snapshot '{name}' of domain '{domain}' has no parent (it is a root)"
                    ))
                    .into());
                }
            };
            out(text, json!({ "domain": domain, "snapshot": name, "parent": parent }))
        }
        Command::SnapshotList { domain, tree, parent, roots, leaves, current, name } => {
            let t = conn.snapshots(&domain)?;
            list(&t, tree, parent, roots, leaves, current, name)
        }
        Command::SnapshotDumpxml { domain, snapshot } => {
            let s = conn.snapshot(&domain, &snapshot)?;
            out(s.to_xml(), json!({ "domain": domain, "snapshot": snapshot, "xml": s.to_xml() }))
        }
        Command::SnapshotInfo { domain, snapshot, current } => {
            let t = conn.snapshots(&domain)?;
            let name = pick(&domain, snapshot, current, &t)?;
            info(&conn.snapshot_info(&domain, &name)?)
        }
        Command::SnapshotCurrent { domain, name } => {
            let t = conn.snapshots(&domain)?;
            let cur = t
                .current
                .clone()
                .ok_or_else(|| Error::InvalidArg(format!("Domain '{domain}' has no current snapshot")))?;
            let s = conn.snapshot(&domain, &cur)?;
            let text = if name { format!("{cur}\n") } else { s.to_xml() };
            out(text, json!({ "domain": domain, "current": cur }))
        }
        Command::SnapshotRevert { domain, snapshot, current, running, paused, force } => {
            let name = pick(&domain, snapshot, current, &conn.snapshots(&domain)?)?;
            conn.snapshot_revert(&domain, &name, RevertOptions { running, paused, force })?;
            let (state, _) = conn.domain_state(&domain)?;
            out(
                format!("Domain '{domain}' reverted to snapshot '{name}' ({})\n", state.as_str()),
                json!({ "domain": domain, "snapshot": name, "state": state }),
            )
        }
        Command::SnapshotDelete {
            domain,
            snapshot,
            current,
            children,
            children_only,
            metadata,
            mirror_pivot,
            mirror_abort,
        } => {
            let name = pick(&domain, snapshot, current, &conn.snapshots(&domain)?)?;
            let opts = DeleteOptions { children, children_only, metadata_only: metadata, mirror_pivot, mirror_abort };
            let deleted = conn.snapshot_delete(&domain, &name, opts)?;
            let text = if children_only {
                format!("Domain snapshot {name} children deleted\n")
            } else {
                format!("Domain snapshot {name} deleted\n")
            };
            out(text, json!({ "domain": domain, "deleted": deleted }))
        }
        _ => unreachable!("only snapshot commands come here"),
    })
}

/// The snapshot a command is about: the one named, or the current one with `--current`.
/// The snapshot a verb names: by name, or `--current`.
pub(super) fn pick(domain: &str, name: Option<String>, current: bool, tree: &SnapshotTree) -> anyhow::Result<String> {
    match (name, current) {
        (Some(n), false) => Ok(n),
        (None, true) => tree
            .current
            .clone()
            .ok_or_else(|| Error::InvalidArg(format!("Domain '{domain}' has no current snapshot")).into()),
        (Some(_), true) => Err(Error::InvalidArg("Give a snapshot name or --current, not both".into()).into()),
        (None, false) => Err(Error::InvalidArg("Which snapshot? Give its name, or --current".into()).into()),
    }
}

fn create(conn: &Connection, a: SnapshotCreateArgs) -> anyhow::Result<Output> {
    let req = SnapshotRequest {
        name: a.name.or(a.name_pos),
        description: a.description.or(a.description_pos),
        disks: a.diskspecs.iter().map(|s| DiskSpec::parse(s)).collect::<Result<_, _>>()?,
        disk_set: a.disk_set,
        memory: a.memspec.as_deref().map(MemSpec::parse).transpose()?,
        disk_only: a.disk_only,
        live: a.live,
        halt: a.halt,
        reuse_external: a.reuse_external,
        no_metadata: a.no_metadata,
        atomic: a.atomic.then_some(true),
    };
    if a.print_plan || a.print_xml {
        let plan = conn.snapshot_plan(&a.domain, &req)?;
        let text = if a.print_xml { plan.to_snapshot_xml().to_xml() } else { plan.describe() };
        return Ok(out(text, serde_json::to_value(&plan)?));
    }
    // Saving memory can take long: its progress shows.
    let draw = super::progress::draw;
    let control = JobControl {
        progress: super::progress::wanted(a.verbose).then_some(&draw as &dyn Fn(u64, u64, &str)),
        cancel: None,
        progress_only_shows: true,
    };
    let taken = conn.snapshot_create_with(&a.domain, &req, control);
    super::progress::finish();
    let (plan, stored) = taken?;
    let name = stored.name.clone().unwrap_or_default();
    Ok(out(format!("Domain snapshot {name} created\n"), json!({ "domain": a.domain, "snapshot": name, "plan": plan })))
}

fn row_json(s: &SnapshotXml, tree: &SnapshotTree) -> serde_json::Value {
    json!({
        "name": s.name, "parent": s.parent, "creation_time": s.creation_time, "state": s.state,
        "description": s.description, "current": tree.current == s.name,
        "disks": s.disks.iter().map(|d| json!({ "disk": d.name, "snapshot": d.snapshot, "file": d.source_file, "mirror": d.mirror_file })).collect::<Vec<_>>(),
        "memory": s.memory.as_ref().map(|m| json!({ "snapshot": m.snapshot, "file": m.file })),
    })
}

fn list(
    t: &SnapshotTree,
    as_tree: bool,
    parent: bool,
    roots: bool,
    leaves: bool,
    current: bool,
    names: bool,
) -> Output {
    let shown: Vec<&SnapshotXml> = t
        .all()
        .iter()
        .filter(|s| !roots || s.parent.is_none())
        .filter(|s| !leaves || t.children(s.name.as_deref()).is_empty())
        .filter(|s| !current || t.current == s.name)
        .collect();
    let json = json!(shown.iter().map(|s| row_json(s, t)).collect::<Vec<_>>());
    if as_tree {
        let mut text = String::new();
        for root in t.children(None) {
            text.push_str(&format!("{root}\n"));
            tree_lines(t, &root, "", &mut text);
            text.push('\n');
        }
        return out(text, json);
    }
    if names {
        return out(shown.iter().map(|s| format!("{}\n", s.name.as_deref().unwrap_or(""))).collect::<String>(), json);
    }
    let mut headers = vec!["Name", "Creation Time", "State"];
    if parent {
        headers.push("Parent");
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|s| {
            let mut r = vec![
                s.name.clone().unwrap_or_default(),
                s.creation_time.map(format_local).unwrap_or_default(),
                s.state.clone().unwrap_or_default(),
            ];
            if parent {
                r.push(s.parent.clone().unwrap_or_default());
            }
            r
        })
        .collect();
    out(render(&headers, &rows), json)
}

/// virsh's tree: `+- child` under `|` rules.
fn tree_lines(t: &SnapshotTree, name: &str, indent: &str, text: &mut String) {
    let children = t.children(Some(name));
    for (i, child) in children.iter().enumerate() {
        text.push_str(&format!("{indent}  |\n{indent}  +- {child}\n"));
        let next = format!("{indent}{}", if i + 1 == children.len() { "    " } else { "  | " });
        tree_lines(t, child, &next, text);
    }
}

fn info(i: &SnapshotInfo) -> Output {
    let lines = [
        ("Name", i.name.clone()),
        ("Domain", i.domain.clone()),
        ("Current", if i.current { "yes" } else { "no" }.to_string()),
        ("State", i.state.clone().unwrap_or_default()),
        ("Location", i.location.to_string()),
        ("Parent", i.parent.clone().unwrap_or_else(|| "-".to_string())),
        ("Children", i.children.len().to_string()),
        ("Descendants", i.descendants.to_string()),
        ("Metadata", if i.metadata { "yes" } else { "no" }.to_string()),
    ];
    let text: String = lines.iter().map(|(k, v)| format!("{:<15} {v}\n", format!("{k}:"))).collect();
    out(
        text,
        json!({ "name": i.name, "domain": i.domain, "current": i.current, "state": i.state, "location": i.location,
                "parent": i.parent, "children": i.children.len(), "descendants": i.descendants, "metadata": i.metadata }),
    )
}
