//! Whether a VM's `.vmsd` agrees with its `.vmx` and its disk files, before a snapshot
//! operation writes anything: every persistent disk's chain reads (parents exist, CIDs
//! match), every image a snapshot recorded exists, and each disk the current snapshot took
//! descends from the image it recorded, through no other snapshot's image. What disagrees is
//! an error naming the files, the lines and what to do.

use super::{Loaded, chain};
use crate::blockinfo::resolve;
use crate::datastore::Datastores;
use crate::devices::Medium;
use crate::vmdk::Image;
use luavirt_plugin_api::domain::DiskMode;
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The persistent disks of the `.vmx`, each with its checked chain (top first), by index
/// into the devices.
pub type Chains = BTreeMap<usize, Vec<Image>>;

/// Checks `l` and returns the chains of its persistent disks.
pub fn full(l: &Loaded, ds: &Datastores) -> Result<Chains, DriverError> {
    let vmx = l.vm.path.display();
    let vmsd = l.vmsd.path().display();
    let mut chains = Chains::new();
    for (i, d) in l.devices.iter().enumerate() {
        let Medium::Disk(file) = &d.medium else {
            continue;
        };
        if d.mode != DiskMode::Persistent {
            continue;
        }
        let what = format!("Disk {} of domain '{}' ({vmx}:{})", d.target, l.name, d.file_line.unwrap_or(0));
        let top = resolve(ds, l.vm.dir(), file, &what)?;
        chains.insert(i, chain::read(ds, &top, &what)?);
    }
    // The image each snapshot recorded, by snapshot uid and node.
    let mut recorded: Vec<(u32, String, PathBuf)> = Vec::new();
    for s in l.vmsd.snapshots() {
        for d in &s.disks {
            let what = format!("{vmsd}:{}: snapshot '{}' (uid {})", d.line, s.name, s.uid);
            let path = resolve(ds, l.vm.dir(), &d.file, &what)?;
            if Image::open(&path).is_err() {
                return Err(DriverError::new(
                    ErrorCode::CorruptState,
                    format!(
                        "{what} took disk {} as {} ({}), which is missing or not a VMDK: the .vmsd and the VM's files disagree. Restore the file, or drop the snapshot's record with «do:snapshot-delete '{}' '{}' --metadata» (nothing was changed)",
                        d.node,
                        d.file,
                        path.display(),
                        l.name,
                        s.name
                    ),
                ));
            }
            recorded.push((s.uid, d.node.trim().to_ascii_lowercase(), path));
        }
    }
    let Some(current) = l.vmsd.current() else {
        return Ok(chains);
    };
    for cd in &current.disks {
        let node = cd.node.trim().to_ascii_lowercase();
        // A disk that left the VM, or that is independent now, has nothing to agree with.
        let Some((dev, chain)) =
            l.devices.iter().position(|d| d.id() == node).and_then(|i| Some((&l.devices[i], chains.get(&i)?)))
        else {
            continue;
        };
        // The nearest image on the chain that a snapshot recorded for this disk.
        let nearest = chain.iter().find_map(|img| {
            let by: Vec<u32> =
                recorded.iter().filter(|(_, n, p)| *n == node && *p == img.path).map(|(u, _, _)| *u).collect();
            (!by.is_empty()).then_some((img, by))
        });
        let shown: Vec<String> = chain.iter().map(|i| i.path.display().to_string()).collect();
        let descends = match &nearest {
            Some((_, by)) if by.contains(&current.uid) => continue,
            Some((img, by)) => {
                let other = l.vmsd.by_uid(by[0]).map_or(String::new(), |s| s.name.clone());
                format!("descends from {}, which snapshot '{other}' took", img.path.display())
            }
            None => "descends from no snapshot's image".to_string(),
        };
        return Err(DriverError::new(
            ErrorCode::CorruptState,
            format!(
                "{vmx}:{}: {}.fileName names {}, whose chain ({}) {descends}, but the current snapshot '{}' ({vmsd}:{}) took {} of {node}: the .vmx and the .vmsd disagree. Point {}.fileName at {} or a delta of it, or set snapshot.current to the snapshot this disk descends from (nothing was changed)",
                dev.file_line.unwrap_or(0),
                dev.node,
                chain[0].path.display(),
                shown.join(" -> "),
                current.name,
                l.vmsd.current_line(),
                cd.file,
                dev.node,
                cd.file
            ),
        ));
    }
    Ok(chains)
}
