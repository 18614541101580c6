//! luavirt's VMware driver (`vmx:///DATASTORE`): being written; it refuses connections until
//! it can serve them.

use luavirt_plugin_api::kit::{Call, Driver, DriverResult};
use luavirt_plugin_api::{DriverError, ErrorCode, Uri};

/// A `vmx:///` connection.
pub struct VmxDriver;

impl Driver for VmxDriver {
    const NAME: &'static str = "vmx";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "VMware .vmx domains on a datastore folder";
    const URI_SCHEMES: &'static str = "vmx";
    const CAPABILITIES: u64 = 0;

    fn open(uri: &Uri, _flags: u32, _call: &mut Call) -> DriverResult<Self> {
        Err(DriverError::new(ErrorCode::Unsupported, format!("{uri}: the vmx driver is not finished yet")))
    }
}

luavirt_plugin_api::export_driver!(VmxDriver, ops: []);
