//! What needs a running Xen: a domain's run state, `start` (`xl create`), `destroy`
//! (`xl destroy`), and the boundary of everything else. A change to a domain's disks is made
//! only while luavirt knows it is shut off: when xl says so, or when no domain can run here
//! (no xl, or no hypervisor). A running domain's snapshot would save its memory with
//! `xl save -c` and switch its disks in the device model over QMP; luavirt does not do that,
//! and says so precisely.

use crate::LibxlDriver;
use crate::dom::{Dom, DomDisk};
use crate::sidecar::Sidecar;
use crate::xl::XlError;
use crate::{images, records};
use luavirt_plugin_api::abi::LV_STATE_SHUTOFF;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::records::BlockInfo;
use luavirt_plugin_api::{DriverError, ErrorCode};

/// What luavirt knows of whether a domain runs.
pub(crate) enum Run {
    /// Xen runs it: its state (`LV_STATE_*`) and domain id.
    Running(u64, i64),
    /// It is shut off; why luavirt is sure, when no xl answered.
    Off(Option<XlError>),
    /// xl failed: luavirt cannot tell.
    Unknown(XlError),
}

impl Run {
    /// The state and id for records.
    pub fn state(&self) -> (u64, Option<i64>) {
        match self {
            Run::Running(state, id) => (*state, Some(*id)),
            _ => (LV_STATE_SHUTOFF, None),
        }
    }

    /// Why it reads as it does, when xl did not say.
    pub fn reason(&self) -> Option<String> {
        match self {
            Run::Off(Some(e)) => Some(format!("{e}; luavirt works on the config and its images")),
            Run::Unknown(e) => Some(format!("{e}; luavirt cannot tell whether Xen runs it")),
            _ => None,
        }
    }
}

/// An xl failure as the error of `doing` (sentence case, naming the domain).
fn xl_error(doing: &str, e: XlError) -> DriverError {
    let code = if matches!(e, XlError::Missing(_)) { ErrorCode::Unsupported } else { ErrorCode::Hypervisor };
    DriverError::new(code, format!("{doing}: {e}"))
}

impl LibxlDriver {
    /// Whether Xen runs domain `name`.
    pub(crate) fn run_state(&self, name: &str) -> Run {
        match self.xl.list() {
            Ok(list) => match list.into_iter().find(|d| d.name == name) {
                Some(d) => Run::Running(d.state, d.id),
                None => Run::Off(None),
            },
            Err(e) if e.nothing_runs() => Run::Off(Some(e)),
            Err(e) => Run::Unknown(e),
        }
    }

    /// Refuses `what` (sentence case) on domain `name` unless it is known to be shut off.
    pub(crate) fn require_off(&self, name: &str, what: &str) -> DriverResult {
        match self.run_state(name) {
            Run::Off(_) => Ok(()),
            Run::Running(_, id) => Err(DriverError::new(
                ErrorCode::Unsupported,
                format!(
                    "{what}: domain '{name}' runs under Xen (domain id {id}), and luavirt changes a Xen domain's disks only while it is shut off: a running one would need its memory saved with `xl save -c` and its disks switched by its device model over QMP (/var/run/xen/qmp-libxl-{id}), which luavirt does not do; shut it down (xl shutdown {name}) and try again (nothing was changed)"
                ),
            )),
            Run::Unknown(e) => Err(DriverError::new(
                ErrorCode::Hypervisor,
                format!(
                    "{what}: luavirt cannot tell whether Xen runs domain '{name}' ({e}), and changes its disks only while it is shut off (nothing was changed)"
                ),
            )),
        }
    }

    /// Refuses `what` unless xl can run domains here (checked before a change that ends
    /// with starting one); `instead` says what the user can do without.
    pub(crate) fn require_xl(&self, what: &str, instead: &str) -> DriverResult {
        self.xl.list().map(drop).map_err(|e| {
            let mut err = xl_error(what, e);
            err.message.push_str(&format!("; {instead} (nothing was changed)"));
            err
        })
    }

    /// Refuses a disk whose image is missing, naming the config line.
    pub(crate) fn check_image(&self, name: &str, dom: &Dom, d: &DomDisk) -> DriverResult {
        let Some(path) = d.spec.disk.path() else { return Ok(()) };
        if std::path::Path::new(&path).exists() {
            return Ok(());
        }
        let how = if path.starts_with("/dev/") {
            "create the device or fix the config".to_string()
        } else {
            format!("create it (qemu-img create -f {} {path} SIZE) or fix the config", d.spec.disk.format.qemu())
        };
        Err(DriverError::new(
            ErrorCode::Io,
            format!("Disk {} of domain '{name}' ({}): image {path} does not exist; {how}", d.target(), dom.at(d)),
        ))
    }

    /// The block info record of disk `d` of `dom`.
    pub(crate) fn block_info(&self, name: &str, dom: &Dom, d: &DomDisk) -> DriverResult<BlockInfo> {
        let disk = &d.spec.disk;
        let Some(path) = disk.path() else {
            return Ok(records::block_info_format(disk.format.name()));
        };
        self.check_image(name, dom, d)?;
        let chain = images::chain(&path, disk.format.qemu()).map_err(|e| {
            DriverError::new(e.code, format!("Disk {} of domain '{name}' ({}): {}", d.target(), dom.at(d), e.message))
        })?;
        Ok(records::block_info(&chain))
    }

    /// `domain_create`: `xl create` on the config, once its images are there.
    pub(crate) fn start_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        let found = self.find(name)?;
        let _lock = self.lock_for_change(name, &found.path, call)?;
        let dom = Dom::load(&found.path)?;
        let sidecar = Sidecar::read(&dom.sidecar_path())?;
        for d in &dom.disks {
            self.check_image(name, &dom, d)?;
            if sidecar.mode(d.target()).transient {
                return Err(DriverError::new(
                    ErrorCode::Unsupported,
                    format!(
                        "Disk {} of domain '{name}' is independent-nonpersistent, and xl has no way to discard a disk's changes when the domain stops; make it independent-persistent («do:disk-mode {name} {} independent-persistent») to start the domain with xl",
                        d.target(),
                        d.target()
                    ),
                ));
            }
        }
        if let Run::Running(_, id) = self.run_state(name) {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!("Domain '{name}' is already running (Xen domain id {id})"),
            ));
        }
        let path = dom.path.display().to_string();
        self.xl.run(&["create", &path]).map(drop).map_err(|e| xl_error(&format!("Starting domain '{name}'"), e))
    }

    /// `domain_destroy`: `xl destroy`.
    pub(crate) fn destroy_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        let found = self.find(name)?;
        let _lock = self.lock_for_change(name, &found.path, call)?;
        match self.run_state(name) {
            Run::Running(..) => {
                self.xl.run(&["destroy", name]).map(drop).map_err(|e| xl_error(&format!("Stopping domain '{name}'"), e))
            }
            Run::Off(why) => Err(DriverError::new(
                ErrorCode::InvalidState,
                match why {
                    Some(e) => format!("Domain '{name}' is not running: {e}"),
                    None => format!("Domain '{name}' is not running"),
                },
            )),
            Run::Unknown(e) => Err(xl_error(&format!("Stopping domain '{name}'"), e)),
        }
    }
}
