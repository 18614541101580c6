//! Checks what a driver's entry point returns before the host reads through it: the
//! `LvDriverInfo` and its vtable must be static data of the driver (inside its readable load
//! segments, aligned, as large as they claim), its strings too, and every function it gives
//! must be code. Any other answer is a refusal naming the field, so one broken driver cannot
//! crash every command (`luavirt drivers` included).

use super::mapped::Mapped;
use luavirt_plugin_api::abi::{self, LvDriverEntryFn, LvDriverInfo, LvDriverVtable, LvStr};
use std::mem::{align_of, offset_of, size_of};

/// The smallest `LvDriverInfo` whose ABI version can be read: `struct_size` and the version.
const VERSION_SIZE: usize = offset_of!(LvDriverInfo, pointer_width);
/// The smallest `LvDriverInfo` an ABI 1 driver can have: up to and including `vtable`.
pub const MIN_INFO_SIZE: usize = offset_of!(LvDriverInfo, vtable) + size_of::<*const LvDriverVtable>();
/// The smallest vtable: up to and including `connect_close`.
pub const MIN_VTABLE_SIZE: usize = offset_of!(LvDriverVtable, connect_close) + size_of::<usize>();

/// Every function of the vtable by offset, to name one that is not code. A test checks that
/// it covers the whole table.
const FUNCTIONS: &[(usize, &str)] = &[
    (offset_of!(LvDriverVtable, connect_open), "connect_open"),
    (offset_of!(LvDriverVtable, connect_close), "connect_close"),
    (offset_of!(LvDriverVtable, connect_list_domains), "connect_list_domains"),
    (offset_of!(LvDriverVtable, domain_define_xml), "domain_define_xml"),
    (offset_of!(LvDriverVtable, domain_undefine), "domain_undefine"),
    (offset_of!(LvDriverVtable, domain_get_xml), "domain_get_xml"),
    (offset_of!(LvDriverVtable, domain_get_state), "domain_get_state"),
    (offset_of!(LvDriverVtable, domain_create), "domain_create"),
    (offset_of!(LvDriverVtable, domain_destroy), "domain_destroy"),
    (offset_of!(LvDriverVtable, domain_get_block_info), "domain_get_block_info"),
    (offset_of!(LvDriverVtable, domain_snapshot_create), "domain_snapshot_create"),
    (offset_of!(LvDriverVtable, domain_snapshot_list), "domain_snapshot_list"),
    (offset_of!(LvDriverVtable, domain_snapshot_revert), "domain_snapshot_revert"),
    (offset_of!(LvDriverVtable, domain_snapshot_delete), "domain_snapshot_delete"),
    (offset_of!(LvDriverVtable, domain_block_copy), "domain_block_copy"),
    (offset_of!(LvDriverVtable, domain_block_pull), "domain_block_pull"),
    (offset_of!(LvDriverVtable, domain_block_commit), "domain_block_commit"),
    (offset_of!(LvDriverVtable, domain_block_job_info), "domain_block_job_info"),
    (offset_of!(LvDriverVtable, domain_block_job_abort), "domain_block_job_abort"),
    (offset_of!(LvDriverVtable, domain_block_job_wait), "domain_block_job_wait"),
    (offset_of!(LvDriverVtable, domain_reconcile), "domain_reconcile"),
    (offset_of!(LvDriverVtable, domain_migrate_begin), "domain_migrate_begin"),
    (offset_of!(LvDriverVtable, domain_migrate_prepare), "domain_migrate_prepare"),
    (offset_of!(LvDriverVtable, domain_migrate_perform), "domain_migrate_perform"),
    (offset_of!(LvDriverVtable, domain_migrate_finish), "domain_migrate_finish"),
    (offset_of!(LvDriverVtable, domain_migrate_confirm), "domain_migrate_confirm"),
    (offset_of!(LvDriverVtable, domain_abort_job), "domain_abort_job"),
    (offset_of!(LvDriverVtable, domain_shutdown), "domain_shutdown"),
    (offset_of!(LvDriverVtable, domain_reset), "domain_reset"),
    (offset_of!(LvDriverVtable, domain_suspend), "domain_suspend"),
    (offset_of!(LvDriverVtable, domain_resume), "domain_resume"),
    (offset_of!(LvDriverVtable, domain_attach_disk), "domain_attach_disk"),
    (offset_of!(LvDriverVtable, domain_detach_disk), "domain_detach_disk"),
    (offset_of!(LvDriverVtable, domain_snapshot_redefine), "domain_snapshot_redefine"),
];

/// Whether `vtable` has the function called `name` (a field name of `LvDriverVtable`).
pub fn has_function(vtable: &LvDriverVtable, name: &str) -> bool {
    let Some((offset, _)) = FUNCTIONS.iter().find(|(_, n)| *n == name) else { return false };
    // SAFETY: the offset is a field of the table, a function pointer or NULL (`Option<fn>`
    // has the layout of a nullable pointer).
    let word = unsafe { (vtable as *const LvDriverVtable).cast::<u8>().add(*offset).cast::<usize>().read_unaligned() };
    word != 0
}

/// The names of the functions `vtable` has, in table order.
pub fn function_names(vtable: &LvDriverVtable) -> Vec<String> {
    FUNCTIONS.iter().filter(|(_, n)| has_function(vtable, n)).map(|(_, n)| n.to_string()).collect()
}

/// A driver's answer, checked.
pub struct Checked {
    /// The info, readable in full.
    pub info: &'static LvDriverInfo,
    /// The vtable as copied: functions beyond the driver's declared size are NULL.
    pub vtable: LvDriverVtable,
}

/// Calls `entry` (the driver's entry point) and checks what it returns.
pub fn entry_result(entry: LvDriverEntryFn) -> Result<Checked, String> {
    let sym = abi::LV_DRIVER_ENTRY_SYMBOL;
    // SAFETY: the entry point takes no arguments and returns a pointer, checked below.
    let info_ptr = unsafe { entry() };
    let mapped = Mapped::now();
    let Some(object) = mapped.object_of(entry as usize) else {
        return Err(format!("its {sym} is in no loaded object"));
    };
    let at = info_ptr as usize;
    if info_ptr.is_null() {
        return Err(format!("{sym} returned NULL"));
    }
    if !at.is_multiple_of(align_of::<LvDriverInfo>()) || !mapped.readable_in(object, at, VERSION_SIZE) {
        return Err(format!(
            "{sym} returned {info_ptr:p}, which is not an LvDriverInfo in the driver's static data; return the address of a static const LvDriverInfo"
        ));
    }
    // SAFETY: the version fields are readable (checked just above).
    let (size, major, minor) =
        unsafe { ((*info_ptr).struct_size as usize, (*info_ptr).abi_major, (*info_ptr).abi_minor) };
    if size < VERSION_SIZE {
        return Err(format!("its LvDriverInfo is {size} bytes, too small to hold even its ABI version"));
    }
    if major != abi::LV_ABI_MAJOR {
        return Err(format!(
            "built for driver ABI {major}.{minor}, this host speaks ABI {}.{}; rebuild the driver against this luavirt's plugin-api",
            abi::LV_ABI_MAJOR,
            abi::LV_ABI_MINOR
        ));
    }
    if size < MIN_INFO_SIZE {
        return Err(format!(
            "its LvDriverInfo is {size} bytes; ABI {major} needs at least {MIN_INFO_SIZE}; rebuild it against the current header"
        ));
    }
    // The host reads the whole struct as it knows it, whatever size the driver declares.
    if !mapped.readable_in(object, at, size_of::<LvDriverInfo>()) {
        return Err(format!(
            "its LvDriverInfo at {info_ptr:p} says it is {size} bytes, but the driver's static data ends before it does"
        ));
    }
    // SAFETY: aligned and readable in full (checked above); the object is never unloaded.
    let info: &'static LvDriverInfo = unsafe { &*info_ptr };
    if info.pointer_width as usize != size_of::<usize>() {
        return Err(format!(
            "built for {}-bit pointers, this host uses {}-bit pointers",
            info.pointer_width as usize * 8,
            usize::BITS
        ));
    }
    for (field, s) in [
        ("name", info.name),
        ("version", info.version),
        ("uri_schemes", info.uri_schemes),
        ("description", info.description),
    ] {
        check_str(&mapped, object, field, s)?;
    }
    let vtable = check_vtable(&mapped, object, info.vtable)?;
    Ok(Checked { info, vtable })
}

fn check_str(mapped: &Mapped, object: usize, field: &str, s: LvStr) -> Result<(), String> {
    if s.len > 0 && (s.ptr.is_null() || !mapped.readable_in(object, s.ptr as usize, s.len)) {
        return Err(format!(
            "its LvDriverInfo.{field} ({:p}, {} bytes) is not a string in the driver's static data",
            s.ptr, s.len
        ));
    }
    Ok(())
}

fn check_vtable(mapped: &Mapped, object: usize, vt: *const LvDriverVtable) -> Result<LvDriverVtable, String> {
    if vt.is_null() {
        return Err("its LvDriverInfo has no vtable".to_string());
    }
    let at = vt as usize;
    if !at.is_multiple_of(align_of::<LvDriverVtable>()) || !mapped.readable_in(object, at, size_of::<u32>()) {
        return Err(format!(
            "its vtable pointer {vt:p} does not point at an LvDriverVtable in the driver's static data"
        ));
    }
    // SAFETY: struct_size is readable (checked above).
    let size = unsafe { (*vt).struct_size } as usize;
    if size < MIN_VTABLE_SIZE {
        return Err(format!("its LvDriverVtable is {size} bytes; ABI 1 needs at least {MIN_VTABLE_SIZE}"));
    }
    let read = size.min(size_of::<LvDriverVtable>());
    if !mapped.readable_in(object, at, read) {
        return Err(format!(
            "its LvDriverVtable at {vt:p} says it is {size} bytes, but the driver's static data ends before it does"
        ));
    }
    // SAFETY: `read` bytes are readable (checked above).
    let vtable = unsafe { super::copy_vtable(vt, size) };
    if vtable.connect_open.is_none() || vtable.connect_close.is_none() {
        return Err("its vtable lacks connect_open or connect_close, which every driver needs".to_string());
    }
    let words = (&vtable as *const LvDriverVtable).cast::<u8>();
    for (offset, name) in FUNCTIONS {
        // SAFETY: each offset is a function pointer field of `vtable` (an Option<fn>, which is
        // a nullable pointer), read as the address it holds.
        let f = unsafe { words.add(*offset).cast::<usize>().read() };
        if f != 0 && !mapped.is_code(f) {
            return Err(format!("its vtable's {name} is {f:#x}, which is not code of any loaded object"));
        }
    }
    Ok(vtable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_table_covers_every_vtable_entry() {
        // Every word after the size and reserved fields is a function; all must be named.
        let header = offset_of!(LvDriverVtable, connect_open);
        let count = (size_of::<LvDriverVtable>() - header) / size_of::<usize>();
        let mut offsets: Vec<usize> = FUNCTIONS.iter().map(|(o, _)| *o).collect();
        offsets.sort_unstable();
        let expected: Vec<usize> = (0..count).map(|i| header + i * size_of::<usize>()).collect();
        assert_eq!(offsets, expected, "add the new vtable functions to FUNCTIONS");
    }
}
