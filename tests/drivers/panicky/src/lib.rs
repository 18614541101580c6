//! A test driver (`panicky:///`) whose calls misbehave on purpose: listing domains panics,
//! reading a domain's XML fails with an error, reading its state succeeds. The host must turn
//! the panic into an error and keep working.

use luavirt_plugin_api::abi::LV_CAP_READ_ONLY;
use luavirt_plugin_api::kit::{Call, Driver, DriverResult};
use luavirt_plugin_api::records::{DomainState, DomainStatus};
use luavirt_plugin_api::{DriverError, ErrorCode, Uri};

/// The misbehaving driver.
pub struct Panicky;

impl Driver for Panicky {
    const NAME: &'static str = "panicky";
    const VERSION: &'static str = "0.0.1";
    const DESCRIPTION: &'static str = "Test driver that panics on purpose";
    const URI_SCHEMES: &'static str = "panicky";
    const CAPABILITIES: u64 = LV_CAP_READ_ONLY;

    fn open(_uri: &Uri, _flags: u32, _call: &mut Call) -> DriverResult<Self> {
        Ok(Panicky)
    }

    fn list_domains(&self, _flags: u32, _call: &mut Call) -> DriverResult {
        panic!("listing is broken on purpose")
    }

    fn get_xml(&self, name: &str, _flags: u32, _call: &mut Call) -> DriverResult {
        Err(DriverError::new(ErrorCode::NoDomain, format!("Domain '{name}' is not defined")))
    }

    fn get_state(&self, _name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        call.emit(&DomainStatus { state: DomainState::ShutOff, id: -1, reason: None });
        Ok(())
    }
}

luavirt_plugin_api::export_driver!(Panicky, ops: [connect_list_domains, domain_get_xml, domain_get_state]);
