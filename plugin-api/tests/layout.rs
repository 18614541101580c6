//! The released ABI, pinned: every size and offset of 1.0, 1.1, 1.2 and 1.3 (on 64-bit targets),
//! and every number, held against fixed values. A regenerated header follows any change to
//! `abi.rs`; these do not, so moving or inserting a field, or renumbering a constant, fails
//! here. Appending for a new minor adds lines; it changes none.
#![cfg(target_pointer_width = "64")]

use luavirt_plugin_api::abi::*;
use std::mem::{offset_of, size_of};

macro_rules! pinned {
    ($ty:ident, size $size:expr, { $($field:ident: $at:expr),* $(,)? }) => {{
        $( assert_eq!(offset_of!($ty, $field), $at, "{}.{} moved", stringify!($ty), stringify!($field)); )*
        assert!(size_of::<$ty>() >= $size, "{} shrank", stringify!($ty));
    }};
}

#[test]
fn released_struct_layouts_stay_where_they_are() {
    pinned!(LvStr, size 16, { ptr: 0, len: 8 });
    assert_eq!(size_of::<LvStr>(), 16);
    pinned!(LvParam, size 64, {
        key: 0, kind: 16, reserved: 20, int_value: 24, uint_value: 32, double_value: 40, string_value: 48,
    });
    assert_eq!(size_of::<LvParam>(), 64, "LvParam is passed in arrays: its size is fixed");
    pinned!(LvHostApi, size 56, {
        struct_size: 0, abi_major: 4, abi_minor: 6, emit_text: 8, emit_record: 16, set_error: 24, progress: 32,
        is_cancelled: 40, log: 48,
    });
    // 1.3: 64 bytes.
    pinned!(LvHostApi, size 64, { progress_reenters: 56 });
    pinned!(LvDriverInfo, size 96, {
        struct_size: 0, abi_major: 4, abi_minor: 6, pointer_width: 8, reserved16: 10, reserved32: 12,
        capabilities: 16, name: 24, version: 40, uri_schemes: 56, description: 72, vtable: 88,
    });
    // 1.0: 88 bytes.
    pinned!(LvDriverVtable, size 88, {
        struct_size: 0, reserved: 4, connect_open: 8, connect_close: 16, connect_list_domains: 24,
        domain_define_xml: 32, domain_undefine: 40, domain_get_xml: 48, domain_get_state: 56, domain_create: 64,
        domain_destroy: 72, domain_get_block_info: 80,
    });
    // 1.1: 168 bytes.
    pinned!(LvDriverVtable, size 168, {
        domain_snapshot_create: 88, domain_snapshot_list: 96, domain_snapshot_revert: 104,
        domain_snapshot_delete: 112, domain_block_copy: 120, domain_block_pull: 128, domain_block_commit: 136,
        domain_block_job_info: 144, domain_block_job_abort: 152, domain_block_job_wait: 160,
    });
    // 1.2: 176 bytes.
    pinned!(LvDriverVtable, size 176, { domain_reconcile: 168 });
    // 1.3: 224 bytes.
    pinned!(LvDriverVtable, size 224, {
        domain_migrate_begin: 176, domain_migrate_prepare: 184, domain_migrate_perform: 192,
        domain_migrate_finish: 200, domain_migrate_confirm: 208, domain_abort_job: 216,
    });
    // 1.3, everyday lifecycle and disks: 280 bytes.
    pinned!(LvDriverVtable, size 280, {
        domain_shutdown: 224, domain_reset: 232, domain_suspend: 240, domain_resume: 248,
        domain_attach_disk: 256, domain_detach_disk: 264, domain_snapshot_redefine: 272,
    });
}

#[test]
fn released_numbers_keep_their_values() {
    let numbers: &[(&str, i64, i64)] = &[
        ("LV_ABI_MAJOR", LV_ABI_MAJOR as i64, 1),
        ("LV_OK", LV_OK as i64, 0),
        ("LV_ERR_INTERNAL", LV_ERR_INTERNAL as i64, 1),
        ("LV_ERR_UNSUPPORTED", LV_ERR_UNSUPPORTED as i64, 2),
        ("LV_ERR_INVALID_ARG", LV_ERR_INVALID_ARG as i64, 3),
        ("LV_ERR_NO_DOMAIN", LV_ERR_NO_DOMAIN as i64, 4),
        ("LV_ERR_EXISTS", LV_ERR_EXISTS as i64, 5),
        ("LV_ERR_INVALID_STATE", LV_ERR_INVALID_STATE as i64, 6),
        ("LV_ERR_XML", LV_ERR_XML as i64, 7),
        ("LV_ERR_IO", LV_ERR_IO as i64, 8),
        ("LV_ERR_HYPERVISOR", LV_ERR_HYPERVISOR as i64, 9),
        ("LV_ERR_DRIVER_PANIC", LV_ERR_DRIVER_PANIC as i64, 10),
        ("LV_ERR_NO_DISK", LV_ERR_NO_DISK as i64, 11),
        ("LV_ERR_CANCELLED", LV_ERR_CANCELLED as i64, 12),
        ("LV_ERR_CORRUPT_STATE", LV_ERR_CORRUPT_STATE as i64, 13),
        ("LV_ERR_NO_SNAPSHOT", LV_ERR_NO_SNAPSHOT as i64, 14),
        ("LV_ERR_BUSY", LV_ERR_BUSY as i64, 15),
        ("LV_ERR_INVALID_URI", LV_ERR_INVALID_URI as i64, 16),
        ("LV_PARAM_INT", LV_PARAM_INT as i64, 1),
        ("LV_PARAM_UINT", LV_PARAM_UINT as i64, 2),
        ("LV_PARAM_DOUBLE", LV_PARAM_DOUBLE as i64, 3),
        ("LV_PARAM_BOOL", LV_PARAM_BOOL as i64, 4),
        ("LV_PARAM_STRING", LV_PARAM_STRING as i64, 5),
        ("LV_STATE_RUNNING", LV_STATE_RUNNING as i64, 1),
        ("LV_STATE_PAUSED", LV_STATE_PAUSED as i64, 3),
        ("LV_STATE_SHUTOFF", LV_STATE_SHUTOFF as i64, 5),
        ("LV_STATE_PMSUSPENDED", LV_STATE_PMSUSPENDED as i64, 7),
        ("LV_CAP_DEFINE", LV_CAP_DEFINE as i64, 1),
        ("LV_CAP_MIGRATION", LV_CAP_MIGRATION as i64, 64),
        ("LV_XML_INACTIVE", LV_XML_INACTIVE as i64, 1),
        ("LV_SNAPSHOT_CREATE_NO_METADATA", LV_SNAPSHOT_CREATE_NO_METADATA as i64, 4),
        ("LV_SNAPSHOT_CREATE_HALT", LV_SNAPSHOT_CREATE_HALT as i64, 8),
        ("LV_SNAPSHOT_CREATE_DISK_ONLY", LV_SNAPSHOT_CREATE_DISK_ONLY as i64, 16),
        ("LV_SNAPSHOT_CREATE_REUSE_EXT", LV_SNAPSHOT_CREATE_REUSE_EXT as i64, 32),
        ("LV_SNAPSHOT_CREATE_ATOMIC", LV_SNAPSHOT_CREATE_ATOMIC as i64, 128),
        ("LV_SNAPSHOT_CREATE_LIVE", LV_SNAPSHOT_CREATE_LIVE as i64, 256),
        ("LV_SNAPSHOT_REVERT_RUNNING", LV_SNAPSHOT_REVERT_RUNNING as i64, 1),
        ("LV_SNAPSHOT_REVERT_PAUSED", LV_SNAPSHOT_REVERT_PAUSED as i64, 2),
        ("LV_SNAPSHOT_REVERT_FORCE", LV_SNAPSHOT_REVERT_FORCE as i64, 4),
        ("LV_SNAPSHOT_DELETE_METADATA_ONLY", LV_SNAPSHOT_DELETE_METADATA_ONLY as i64, 2),
        ("LV_SNAPSHOT_DELETE_MIRROR_PIVOT", LV_SNAPSHOT_DELETE_MIRROR_PIVOT as i64, 8),
        ("LV_SNAPSHOT_DELETE_MIRROR_ABORT", LV_SNAPSHOT_DELETE_MIRROR_ABORT as i64, 16),
        ("LV_BLOCK_JOB_WAIT", LV_BLOCK_JOB_WAIT as i64, 1),
        ("LV_BLOCK_JOB_PIVOT", LV_BLOCK_JOB_PIVOT as i64, 2),
        ("LV_BLOCK_JOB_FINISH", LV_BLOCK_JOB_FINISH as i64, 4),
        ("LV_BLOCK_COPY_SHALLOW", LV_BLOCK_COPY_SHALLOW as i64, 8),
        ("LV_BLOCK_COPY_REUSE_EXT", LV_BLOCK_COPY_REUSE_EXT as i64, 16),
        ("LV_MIGRATE_LIVE", LV_MIGRATE_LIVE as i64, 1),
        ("LV_MIGRATE_PERSIST_DEST", LV_MIGRATE_PERSIST_DEST as i64, 8),
        ("LV_MIGRATE_UNDEFINE_SOURCE", LV_MIGRATE_UNDEFINE_SOURCE as i64, 16),
        ("LV_MIGRATE_PAUSED", LV_MIGRATE_PAUSED as i64, 32),
        ("LV_MIGRATE_OFFLINE", LV_MIGRATE_OFFLINE as i64, 1024),
        ("LV_MIGRATE_FAILED", LV_MIGRATE_FAILED as i64, 1 << 24),
        ("LV_SNAPSHOT_CREATE_SAVE", LV_SNAPSHOT_CREATE_SAVE as i64, 1 << 24),
        ("LV_AFFECT_LIVE", LV_AFFECT_LIVE as i64, 1),
        ("LV_AFFECT_CONFIG", LV_AFFECT_CONFIG as i64, 2),
    ];
    for (name, now, released) in numbers {
        assert_eq!(now, released, "{name} changed its value");
    }
    assert_eq!(LV_DRIVER_ENTRY_SYMBOL, "luavirt_driver_entry_v1");
}
