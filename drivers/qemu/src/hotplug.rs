//! Disks attached to and detached from a running QEMU (`blockdev-add` + `device_add`,
//! `device_del` + `blockdev-del`) and its definition in one change: the intent is recorded
//! first, QEMU's graph changes next, the definition last. A change killed half-way is
//! finished when QEMU has reached the new state (the guest sees the disk, or has let it go),
//! else undone, from QEMU's own answer. A change to the definition alone is one atomic write.

use crate::QemuDriver;
use crate::cmdline::{self, node_name};
use crate::intent::Change;
use crate::monitor::Monitor;
use luavirt_plugin_api::abi::{LV_AFFECT_CONFIG, LV_AFFECT_LIVE};
use luavirt_plugin_api::domain::{DiskElement, DomainXml};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a detach waits for the guest to let a device go (libvirt waits 5 s).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// A disk hot-plugged or unplugged, as the intent records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Hotplug {
    /// The disk's target (its device id; its nodes are `lv-TARGET` and `lv-TARGET-file`).
    pub target: String,
    /// Attach: the `<disk>` as given, which the definition gets.
    pub disk_xml: Option<String>,
}

fn invalid(message: String) -> DriverError {
    DriverError::new(ErrorCode::InvalidArg, message)
}

/// What the flags ask: (live, config).
fn affect(name: &str, flags: u32, verb: &str) -> DriverResult<(bool, bool)> {
    let (live, config) = (flags & LV_AFFECT_LIVE != 0, flags & LV_AFFECT_CONFIG != 0);
    if live && !config {
        return Err(DriverError::new(
            ErrorCode::Unsupported,
            format!(
                "Domain '{name}': luavirt's QEMU driver keeps one definition per domain, which snapshots and block jobs work from, so a disk is {verb} live only together with the definition: add «config»"
            ),
        ));
    }
    if !live && !config {
        return Err(invalid(format!("Domain '{name}': say whether the disk is {verb} live or in the definition")));
    }
    Ok((live, config))
}

impl QemuDriver {
    /// `domain_attach_disk`.
    pub(crate) fn attach_disk_impl(&self, name: &str, xml: &str, flags: u32, call: &mut Call) -> DriverResult {
        let (live, _) = affect(name, flags, "attached")?;
        let new =
            DiskElement::parse(xml).map_err(|e| DriverError::new(ErrorCode::Xml, format!("The disk's XML: {e}")))?;
        let target = new.disk.target.clone();
        self.known(name)?;
        let _lock = self.lock_domain(name, call)?;
        let (_, mut dom) = self.state.read_definition(name)?;
        dom.add_disk(&new).map_err(invalid)?;
        if !live {
            return self.state.write_definition(name, &dom.to_xml());
        }
        if self.running(name)?.is_none() {
            return Err(DriverError::new(ErrorCode::InvalidState, format!("Domain '{name}' is not running")));
        }
        let d = &new.disk;
        if d.transient {
            return Err(DriverError::new(
                ErrorCode::Unsupported,
                format!(
                    "Disk {target} is independent-nonpersistent, which QEMU runs on a throw-away overlay made at start: attach it with «config» alone, and it runs so from the next start"
                ),
            ));
        }
        if let Some(path) = d.source.path() {
            crate::images::check_readable(name, d, path)?;
        }
        let q35 = is_q35(&dom);
        let bus = d.bus.clone().unwrap_or_default();
        if q35 && bus == "virtio" || !["virtio", "scsi", "usb"].contains(&bus.as_str()) {
            return Err(DriverError::new(
                ErrorCode::Unsupported,
                format!(
                    "Disk {target} is on bus '{bus}'{}, where QEMU cannot plug a disk into a running machine as luavirt starts it; use bus virtio (machine pc), scsi or usb, or attach it with «config» alone for the next start",
                    if q35 { " of a q35 machine" } else { "" }
                ),
            ));
        }
        let mut warnings = Vec::new();
        let dev = cmdline::disk_device(name, d, q35, &mut warnings)?
            .ok_or_else(|| DriverError::new(ErrorCode::Unsupported, warnings.join("; ")))?;
        let mut mon = self.monitor(name)?;
        if mon.has_device(&target)? {
            return Err(invalid(format!(
                "QEMU of domain '{name}' already has a device {target}; choose another target"
            )));
        }
        if let Some(ctl) = &dev.controller {
            let id = ctl.json()["id"].as_str().unwrap_or_default().to_string();
            if !mon.has_device(&id)? {
                return Err(DriverError::new(
                    ErrorCode::Unsupported,
                    format!(
                        "Domain '{name}' runs without the {} controller bus {bus} needs (it had no {bus} disk when it started); attach the disk with «config» alone, and it has one from the next start",
                        ctl.driver
                    ),
                ));
            }
        }
        let plan = Hotplug { target: target.clone(), disk_xml: Some(xml.to_string()) };
        let pending = self.begin(name, Change::AttachDisk(plan.clone()))?;
        let result = (|| -> DriverResult {
            for n in &dev.nodes {
                mon.exec("blockdev-add", n.json())?;
            }
            failpoint::hit("attach-disk:nodes");
            mon.exec("device_add", dev.device.json())?;
            failpoint::hit("attach-disk:device");
            self.state.write_definition(name, &dom.to_xml())?;
            failpoint::hit("attach-disk:defined");
            Ok(())
        })();
        drop(mon);
        self.end_change(name, pending, result, |call| self.settle_attach(name, &plan, call), call)
    }

    /// `domain_detach_disk`.
    pub(crate) fn detach_disk_impl(&self, name: &str, target: &str, flags: u32, call: &mut Call) -> DriverResult {
        let (live, _) = affect(name, flags, "detached")?;
        self.known(name)?;
        let _lock = self.lock_domain(name, call)?;
        let (_, mut dom) = self.state.read_definition(name)?;
        if dom.remove_disk(target).is_none() {
            let all: Vec<String> = dom.disks().into_iter().map(|d| d.target).collect();
            return Err(DriverError::new(
                ErrorCode::NoDisk,
                format!("Domain '{name}' has no disk '{target}'; its disks are: {}", all.join(", ")),
            ));
        }
        if !live {
            return self.state.write_definition(name, &dom.to_xml());
        }
        let mut mon = self.monitor(name)?;
        if !mon.has_device(target)? {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "QEMU of domain '{name}' has no disk {target} (it joined the definition after the domain started): detach it with «config» alone"
                ),
            ));
        }
        let plan = Hotplug { target: target.to_string(), disk_xml: None };
        let pending = self.begin(name, Change::DetachDisk(plan.clone()))?;
        let result = (|| -> DriverResult {
            mon.exec("device_del", json!({ "id": target }))?;
            failpoint::hit("detach-disk:requested");
            wait_released(&mut mon, name, target)?;
            failpoint::hit("detach-disk:released");
            for node in [node_name(target), format!("{}-file", node_name(target))] {
                if mon.has_node(&node)? {
                    mon.exec("blockdev-del", json!({ "node-name": node }))?;
                }
            }
            self.state.write_definition(name, &dom.to_xml())?;
            failpoint::hit("detach-disk:defined");
            Ok(())
        })();
        drop(mon);
        self.end_change(name, pending, result, |call| self.settle_detach(name, &plan, call), call)
    }

    /// Ends a change: done when it succeeded; else settled at once from QEMU's answer (the
    /// record stays for the next call if even that fails), and the error returned.
    fn end_change(
        &self,
        name: &str,
        pending: crate::intent::Pending,
        result: DriverResult,
        settle: impl FnOnce(&mut Call) -> DriverResult<String>,
        call: &mut Call,
    ) -> DriverResult {
        match result {
            Ok(()) => pending.done(),
            Err(e) => {
                if let Err(s) = settle(call) {
                    call.log(
                        luavirt_plugin_api::kit::Level::Warning,
                        &format!("domain '{name}': the failed change could not be settled yet ({}); the next change to the domain settles it", s.message),
                    );
                    return Err(e);
                }
                pending.done()?;
                Err(e)
            }
        }
    }

    /// Settles an attach a call left: finished when QEMU has the device (the definition gets
    /// the disk), else undone (its nodes removed; the definition never had it).
    pub(crate) fn settle_attach(&self, name: &str, p: &Hotplug, _call: &mut Call) -> DriverResult<String> {
        let t = &p.target;
        let (_, mut dom) = self.state.read_definition(name)?;
        if self.running(name)?.is_none() {
            return Ok(if dom.disk(t).is_some() {
                format!("disk {t} is in the definition; QEMU has stopped")
            } else {
                format!("QEMU has stopped and the definition does not have disk {t}: the attach was undone")
            });
        }
        let mut mon = self.monitor(name)?;
        if mon.has_device(t)? {
            if dom.disk(t).is_none()
                && let Some(xml) = &p.disk_xml
            {
                let new = DiskElement::parse(xml).map_err(|e| DriverError::new(ErrorCode::Xml, e.to_string()))?;
                dom.add_disk(&new).map_err(invalid)?;
                self.state.write_definition(name, &dom.to_xml())?;
            }
            return Ok(format!("QEMU has disk {t}, and so has the definition now: the attach was finished"));
        }
        remove_nodes(&mut mon, t)?;
        Ok(format!("QEMU had not plugged disk {t} in; its block nodes were removed: the attach was undone"))
    }

    /// Settles a detach a call left: finished when the guest let the device go (its nodes go,
    /// and the definition loses the disk); else the disk stays where it is, live and defined.
    pub(crate) fn settle_detach(&self, name: &str, p: &Hotplug, _call: &mut Call) -> DriverResult<String> {
        let t = &p.target;
        if self.running(name)?.is_some() {
            let mut mon = self.monitor(name)?;
            if mon.has_device(t)? {
                return Ok(format!(
                    "the guest has not let disk {t} go: it stays, live and in the definition (detach it again once the guest releases it)"
                ));
            }
            remove_nodes(&mut mon, t)?;
        }
        let (_, mut dom) = self.state.read_definition(name)?;
        if dom.remove_disk(t).is_some() {
            self.state.write_definition(name, &dom.to_xml())?;
        }
        Ok(format!("disk {t} is gone from QEMU, and now from the definition: the detach was finished"))
    }
}

fn is_q35(dom: &DomainXml) -> bool {
    let root = &dom.document().root;
    root.child("os").and_then(|o| o.child("type")).and_then(|t| t.attr("machine")).is_some_and(|m| m.contains("q35"))
}

/// Removes disk `target`'s block nodes that QEMU still has. A device QEMU has just removed
/// lets go of its node a moment later (when QEMU frees the device object), so "in use" is
/// tried again for a while.
fn remove_nodes(mon: &mut Monitor, target: &str) -> DriverResult {
    for node in [node_name(target), format!("{}-file", node_name(target))] {
        let end = Instant::now() + RELEASE_TIMEOUT;
        while mon.has_node(&node)? {
            match mon.exec("blockdev-del", json!({ "node-name": node })) {
                Ok(_) => break,
                Err(e) if e.message.contains("is in use") && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Waits until QEMU has removed device `target` (the guest let it go), at most
/// [`RELEASE_TIMEOUT`].
fn wait_released(mon: &mut Monitor, name: &str, target: &str) -> DriverResult {
    let end = Instant::now() + RELEASE_TIMEOUT;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "The guest of domain '{name}' has not let disk {target} go within {} s (a guest without an OS, or without hot-plug support, never does); QEMU keeps the request and removes the device when the guest lets go: detach it again then. Nothing else changed: the definition keeps the disk",
                    RELEASE_TIMEOUT.as_secs()
                ),
            ));
        }
        match mon.next_event(left.min(Duration::from_millis(250)))? {
            Some(ev) if ev["event"] == "DEVICE_DELETED" && ev["data"]["device"] == target => return Ok(()),
            Some(_) => {}
            None if !mon.has_device(target)? => return Ok(()),
            None => {}
        }
    }
}
