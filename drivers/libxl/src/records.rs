//! Every result record the driver hands the host, built here and nowhere else, so a change
//! of how records cross the ABI touches this file only. Field names and types are the
//! vtable's (`plugin-api/src/abi.rs`).

use crate::images::{ImageInfo, xl_name};
use luavirt_plugin_api::{Params, Value};

/// What `connect_list_domains` emits for one domain.
pub fn domain(name: &str, uuid: &str, state: u64, id: Option<i64>) -> Params {
    let mut r = Params::new();
    r.push_str("name", name)
        .push_str("uuid", uuid)
        .push("state", Value::UInt(state))
        .push("id", Value::Int(id.unwrap_or(-1)))
        .push("persistent", Value::Bool(true));
    r
}

/// What `domain_define_xml` emits.
pub fn defined(name: &str, uuid: &str) -> Params {
    let mut r = Params::new();
    r.push_str("name", name).push_str("uuid", uuid);
    r
}

/// What `domain_get_state` emits.
pub fn state(state: u64, id: Option<i64>, reason: Option<&str>) -> Params {
    let mut r = Params::new();
    r.push("state", Value::UInt(state)).push("id", Value::Int(id.unwrap_or(-1)));
    if let Some(reason) = reason {
        r.push_str("reason", reason);
    }
    r
}

/// What `domain_get_block_info` emits for an image and the chain below it.
pub fn block_info(chain: &[ImageInfo]) -> Params {
    let mut r = Params::new();
    let Some(top) = chain.first() else { return r };
    r.push_str("format", xl_name(&top.format)).push("capacity", Value::UInt(top.virtual_size));
    if let Some(a) = top.actual_size {
        r.push("allocation", Value::UInt(a));
    }
    for image in &chain[1..] {
        r.push_str("backing", image.filename.clone()).push_str("backing_format", xl_name(&image.format));
    }
    r
}

/// What `domain_get_block_info` emits for a disk without a local image (an empty CD-ROM
/// drive, a target a block script reads).
pub fn block_info_format(format: &str) -> Params {
    let mut r = Params::new();
    r.push_str("format", format);
    r
}

/// The record `domain_snapshot_list` ends with.
pub fn current_snapshot(current: Option<&str>) -> Params {
    let mut r = Params::new();
    if let Some(c) = current {
        r.push_str("current", c);
    }
    r
}
