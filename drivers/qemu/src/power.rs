//! A running domain's buttons: the ACPI power button (a graceful shutdown the guest carries
//! out), reset, pause and resume. Each is one QMP command; none needs an intent.

use crate::QemuDriver;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde_json::Value;

impl QemuDriver {
    /// Runs QMP `command` on running domain `name` under its lock, first checking that QEMU's
    /// run status is one of `from` (as `query-status` names them).
    fn press(&self, name: &str, command: &str, from: &[&str], call: &mut Call) -> DriverResult {
        self.known(name)?;
        let _lock = self.lock_domain(name, call)?;
        let mut mon = self.monitor(name)?;
        let status = mon.status()?;
        if !from.contains(&status.as_str()) {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!("QEMU of domain '{name}' is {status}; {command} needs it {}", from.join(" or ")),
            ));
        }
        mon.exec(command, Value::Null).map(drop)
    }

    /// `shutdown`: presses the ACPI power button; the guest decides.
    pub(crate) fn shutdown_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        self.press(name, "system_powerdown", &["running", "paused", "prelaunch"], call)
    }

    /// `reset`: the reset button.
    pub(crate) fn reset_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        self.press(name, "system_reset", &["running", "paused", "prelaunch"], call)
    }

    /// `suspend`: stops the vCPUs.
    pub(crate) fn suspend_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        self.press(name, "stop", &["running"], call)
    }

    /// `resume`: runs the vCPUs again.
    pub(crate) fn resume_impl(&self, name: &str, call: &mut Call) -> DriverResult {
        // A domain started or reverted paused waits in QEMU's "prelaunch".
        self.press(name, "cont", &["paused", "prelaunch"], call)
    }
}
