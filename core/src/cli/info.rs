//! `dominfo` and `domblkinfo`: facts in virsh's `Key: value` layout.

use super::args::Command;
use super::run::{Output, out};
use super::table::{human_size, render};
use luavirt_host::Connection;

/// `Key:` padded as virsh pads it (15 columns, more for a longer key).
fn lines(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0).max(15);
    pairs.iter().map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:"))).collect()
}

/// Runs `dominfo` or `domblkinfo`.
pub fn run(conn: &Connection, cmd: Command) -> anyhow::Result<Output> {
    Ok(match cmd {
        Command::Dominfo { domain } => {
            let d = conn.domain_details(&domain)?;
            let kib = |v: Option<u64>| v.map_or("-".to_string(), |k| format!("{k} KiB"));
            let or_dash = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
            let text = lines(&[
                ("Id", d.id.map_or("-".to_string(), |i| i.to_string())),
                ("Name", d.name.clone()),
                ("UUID", d.uuid.clone()),
                ("OS Type", d.os_type.clone().unwrap_or_else(|| "-".into())),
                ("State", d.state.as_str().to_string()),
                ("CPU(s)", d.vcpus.to_string()),
                ("Max memory", kib(d.max_memory_kib)),
                ("Used memory", kib(d.used_memory_kib)),
                ("Persistent", if d.persistent { "yes" } else { "no" }.to_string()),
                ("Driver", d.driver.clone()),
                ("Disks", or_dash(&d.disks)),
                ("Snapshots", d.snapshots.map_or("-".to_string(), |n| n.to_string())),
                ("Current snapshot", d.current_snapshot.clone().unwrap_or_else(|| "-".into())),
                ("Disk sets", or_dash(&d.disk_sets)),
            ]);
            out(text, serde_json::to_value(&d)?)
        }
        Command::Domblkinfo { domain, disk, human, all } => {
            let size = |v: Option<u64>| match v {
                None => "-".to_string(),
                Some(n) if human => human_size(n),
                Some(n) => n.to_string(),
            };
            if all {
                let devs = conn.block_devices(&domain, luavirt_host::ImageDetails::Required)?;
                let rows: Vec<Vec<String>> = devs
                    .iter()
                    .map(|d| vec![d.target.clone(), size(d.capacity), size(d.allocation), size(d.physical)])
                    .collect();
                let text = render(&["Target", "Capacity", "Allocation", "Physical"], &rows);
                return Ok(out(text, serde_json::to_value(&devs)?));
            }
            let d = conn.block_device(&domain, disk.as_deref().expect("clap requires a disk without --all"))?;
            let text = lines(&[
                ("Capacity", size(d.capacity)),
                ("Allocation", size(d.allocation)),
                ("Physical", size(d.physical)),
            ]);
            out(text, serde_json::to_value(&d)?)
        }
        _ => unreachable!("only dominfo and domblkinfo come here"),
    })
}
