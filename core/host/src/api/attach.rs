//! Attaching and detaching disks: in the persistent definition (one atomic redefine, for
//! every driver that keeps definitions), and live where the driver can hot-plug (the driver
//! then makes both changes, crash safe, in one call). Without `live` or `config`, a running
//! domain gets both (virsh's `--persistent`) and a shut-off one its definition.

use super::Connection;
use crate::driver::client::Affect;
use crate::error::{Error, Result};
use luavirt_plugin_api::domain::DiskElement;
use serde::Serialize;

/// What an attach or a detach changed.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceChange {
    /// The disk's target.
    pub target: String,
    /// The running domain changed.
    pub live: bool,
    /// The definition changed.
    pub config: bool,
    /// `(set, disk)` memberships the disk left (detach).
    pub left_sets: Vec<(String, String)>,
}

impl Connection {
    /// Which of live and config a change affects: as asked, or by the domain's state.
    fn affect(&self, domain: &str, want: Affect, verb: &str) -> Result<Affect> {
        let running = self.domain_state(domain)?.0.is_active();
        let affect = if want.live || want.config { want } else { Affect { live: running, config: true } };
        if affect.live && !running {
            return Err(Error::InvalidArg(format!(
                "Domain '{domain}' is not running, so a disk can be {verb} only in its definition: drop «live»"
            )));
        }
        Ok(affect)
    }

    /// Attaches the disk `disk_xml` (one `<disk>` element) to `domain`.
    pub fn attach_disk(&self, domain: &str, disk_xml: &str, want: Affect) -> Result<DeviceChange> {
        let new = DiskElement::parse(disk_xml).map_err(|e| e.with_source("the disk's XML"))?;
        let target = new.disk.target.clone();
        let _lock = self.lock_domain(domain)?;
        let mut dom = self.read_domain(domain)?;
        if let Some(d) = dom.disk(&target) {
            return Err(Error::InvalidArg(format!(
                "Domain '{domain}' already has a disk {target} ({}); choose another target",
                d.source.display()
            )));
        }
        let affect = self.affect(domain, want, "attached")?;
        dom.add_disk(&new).map_err(Error::InvalidArg)?;
        if affect.live {
            let what = || format!("attach disk {target} ({})", words(affect));
            let ran = self.mutate(domain, what, || {
                self.client.attach_disk(domain, disk_xml, affect).map_err(|e| self.explain_missing(domain, e))
            })?;
            if ran.is_none() && affect.config {
                self.plan_definition(domain, Some(dom.to_xml()));
            }
        } else {
            self.redefine(dom, || format!("attach disk {target} to the definition"))?;
        }
        Ok(DeviceChange { target, live: affect.live, config: affect.config, left_sets: Vec::new() })
    }

    /// Detaches disk `disk` (a target or source path) from `domain`; its image stays.
    pub fn detach_disk(&self, domain: &str, disk: &str, want: Affect) -> Result<DeviceChange> {
        let _lock = self.lock_domain(domain)?;
        let mut dom = self.read_domain(domain)?;
        let target = super::diskset::resolve(domain, &dom.disks(), disk)?;
        let affect = self.affect(domain, want, "detached")?;
        let (_, left_sets) = dom.remove_disk(&target).expect("resolved disks exist");
        if affect.live {
            let what = || format!("detach disk {target} ({})", words(affect));
            let ran = self.mutate(domain, what, || {
                self.client.detach_disk(domain, &target, affect).map_err(|e| self.explain_missing(domain, e))
            })?;
            if ran.is_none() && affect.config {
                self.plan_definition(domain, Some(dom.to_xml()));
            }
        } else {
            self.redefine(dom, || format!("detach disk {target} from the definition"))?;
        }
        let left_sets = if affect.config { left_sets } else { Vec::new() };
        Ok(DeviceChange { target, live: affect.live, config: affect.config, left_sets })
    }
}

fn words(a: Affect) -> &'static str {
    match (a.live, a.config) {
        (true, true) => "live and in the definition",
        (true, false) => "live only",
        _ => "in the definition",
    }
}
