//! `attach-disk` and `detach-disk`.

use super::args::{AffectArgs, AttachDiskArgs, Command};
use super::run::{Output, out};
use luavirt_host::{Affect, Connection, DeviceChange, Error, NewDisk};
use luavirt_plugin_api::domain::DiskMode;
use serde_json::json;

/// What `--live`, `--config`, `--persistent` and `--current` ask of domain `domain`.
fn affect(conn: &Connection, domain: &str, a: AffectArgs) -> anyhow::Result<Affect> {
    Ok(if a.current {
        let running = conn.domain_state(domain)?.0.is_active();
        Affect { live: running, config: !running }
    } else {
        // --persistent is what no flag means: the host decides by the state.
        Affect { live: a.live, config: a.config }
    })
}

/// Where the change happened, with `to` (in, from) before the definition.
fn where_(c: &DeviceChange, to: &str) -> String {
    match (c.live, c.config) {
        (true, true) => format!("live and {to} its definition"),
        (true, false) => "live".to_string(),
        _ => format!("{to} its definition (if the domain runs, that applies at its next start)"),
    }
}

/// Runs `attach-disk` or `detach-disk`.
pub fn run(conn: &Connection, cmd: Command) -> anyhow::Result<Output> {
    match cmd {
        Command::AttachDisk(a) => attach(conn, a),
        Command::DetachDisk { domain, target, affect: flags, print_xml } => {
            if print_xml {
                let dom = conn.read_domain(&domain)?;
                let d = conn.disk(&domain, &target)?;
                let mut el = dom.clone();
                let (xml, _) = el.remove_disk(&d.target).expect("resolved");
                let text = xml.to_xml();
                return Ok(out(format!("{text}\n"), json!({ "domain": domain, "target": d.target, "xml": text })));
            }
            let want = affect(conn, &domain, flags)?;
            let c = conn.detach_disk(&domain, &target, want)?;
            let mut text = format!("Disk {} detached from domain '{domain}' {}\n", c.target, where_(&c, "from"));
            for (set, disk) in &c.left_sets {
                text.push_str(&format!("Disk {disk} left set '{set}'\n"));
            }
            Ok(out(text, json!({ "domain": domain, "change": c })))
        }
        _ => unreachable!("only disk verbs come here"),
    }
}

fn attach(conn: &Connection, a: AttachDiskArgs) -> anyhow::Result<Output> {
    let mode = a.disk_mode.as_deref().map(DiskMode::parse).transpose().map_err(Error::InvalidArg)?;
    let new = NewDisk {
        source: super::run::host_path(conn, std::path::Path::new(&a.source))?,
        target: a.target.clone(),
        format: a.subdriver.clone(),
        bus: a.targetbus.clone(),
        device: a.device.clone(),
        source_type: a.sourcetype.clone(),
        readonly: a.mode.as_deref() == Some("readonly"),
        shareable: a.mode.as_deref() == Some("shareable"),
        serial: a.serial.clone(),
        mode,
    };
    let built = conn.build_disk(&new)?;
    if a.print_xml {
        return Ok(out(built.xml.clone(), json!({ "domain": a.domain, "xml": built.xml })));
    }
    let want = affect(conn, &a.domain, a.affect)?;
    let c = conn.attach_disk(&a.domain, &built.xml, want)?;
    let how = if built.format_detected { " (read from the image's header; --subdriver sets it)" } else { "" };
    let text = format!(
        "Disk {} ({}, format {}{how}) attached to domain '{}' {}\n",
        c.target,
        new.source,
        built.format,
        a.domain,
        where_(&c, "in")
    );
    Ok(out(text, json!({ "domain": a.domain, "change": c, "format": built.format, "xml": built.xml })))
}
