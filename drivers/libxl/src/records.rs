//! Every result record the driver hands the host, built here from the contract's typed
//! records (`luavirt_plugin_api::records`), so no key is spelled in this driver.

use crate::images::{ImageInfo, xl_name};
use luavirt_plugin_api::records::{
    BackingImage, BlockInfo, Defined, DomainState, DomainStatus, DomainSummary, SnapshotCurrent,
};

/// What `connect_list_domains` emits for one domain (`state` is an `LV_STATE_*` number).
pub fn domain(name: &str, uuid: &str, state: u64, id: Option<i64>) -> DomainSummary {
    DomainSummary {
        name: name.to_string(),
        uuid: uuid.to_string(),
        state: DomainState::from_abi(state),
        id: id.unwrap_or(-1),
        persistent: true,
    }
}

/// What `domain_define_xml` emits.
pub fn defined(name: &str, uuid: &str) -> Defined {
    Defined { name: name.to_string(), uuid: uuid.to_string() }
}

/// What `domain_get_state` emits.
pub fn state(state: u64, id: Option<i64>, reason: Option<&str>) -> DomainStatus {
    DomainStatus { state: DomainState::from_abi(state), id: id.unwrap_or(-1), reason: reason.map(str::to_string) }
}

/// What `domain_get_block_info` emits for an image and the chain below it.
pub fn block_info(chain: &[ImageInfo]) -> BlockInfo {
    let Some(top) = chain.first() else { return BlockInfo::default() };
    BlockInfo {
        format: xl_name(&top.format).to_string(),
        capacity: top.virtual_size,
        allocation: top.actual_size,
        backing: chain[1..]
            .iter()
            .map(|i| BackingImage { path: i.filename.clone(), format: xl_name(&i.format).to_string() })
            .collect(),
        cluster_size: top.cluster_size,
        physical: std::fs::metadata(&top.filename).ok().map(|m| m.len()),
    }
}

/// What `domain_get_block_info` emits for a disk without a local image (an empty CD-ROM
/// drive, a target a block script reads).
pub fn block_info_format(format: &str) -> BlockInfo {
    BlockInfo { format: format.to_string(), ..BlockInfo::default() }
}

/// The record `domain_snapshot_list` ends with.
pub fn current_snapshot(current: Option<&str>) -> SnapshotCurrent {
    SnapshotCurrent { current: current.map(str::to_string) }
}
