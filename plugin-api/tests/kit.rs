//! The kit as the host sees it: a driver written with it refuses flag bits its functions do
//! not take, naming them, emits typed records the host reads back, and asks a host whether
//! progress may call back only where the host's table has that entry.

use luavirt_plugin_api::abi::*;
use luavirt_plugin_api::kit::{Call, Driver, DriverResult, entry};
use luavirt_plugin_api::records::{DomainState, DomainStatus, Record};
use luavirt_plugin_api::{Params, Uri};
use std::cell::RefCell;
use std::ffi::c_void;

struct Tiny;

impl Driver for Tiny {
    const NAME: &'static str = "tiny";
    const VERSION: &'static str = "0";
    const DESCRIPTION: &'static str = "a driver for this test";
    const URI_SCHEMES: &'static str = "tiny";
    const CAPABILITIES: u64 = 0;

    fn open(_uri: &Uri, _flags: u32, _call: &mut Call) -> DriverResult<Self> {
        Ok(Tiny)
    }

    fn get_xml(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        call.emit_text(&format!("<domain><name>{name}</name></domain>"));
        call.emit_text(if call.progress_may_reenter() { "progress may call back" } else { "progress only shows" });
        Ok(())
    }

    fn get_state(&self, _name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        call.emit(&DomainStatus { state: DomainState::Paused, id: 7, reason: Some("test".into()) });
        Ok(())
    }
}

/// What the host callbacks received: texts, records, the last error.
type Seen = (Vec<String>, Vec<Params>, Option<(i32, String)>);

thread_local! {
    static SEEN: RefCell<Seen> = const { RefCell::new((Vec::new(), Vec::new(), None)) };
}

unsafe extern "C" fn emit_text(_: *mut LvCall, text: LvStr) {
    SEEN.with(|s| s.borrow_mut().0.push(unsafe { text.to_string_lossy() }));
}
unsafe extern "C" fn emit_record(_: *mut LvCall, params: *const LvParam, count: usize) {
    SEEN.with(|s| s.borrow_mut().1.push(unsafe { Params::from_abi(params, count) }));
}
unsafe extern "C" fn set_error(_: *mut LvCall, code: i32, message: LvStr) {
    SEEN.with(|s| s.borrow_mut().2 = Some((code, unsafe { message.to_string_lossy() })));
}
unsafe extern "C" fn progress(_: *mut LvCall, _: u64, _: u64, _: LvStr) {}
unsafe extern "C" fn is_cancelled(_: *mut LvCall) -> bool {
    false
}
unsafe extern "C" fn log(_: *mut LvCall, _: i32, _: LvStr) {}
unsafe extern "C" fn progress_reenters(_: *mut LvCall) -> bool {
    false
}

static HOST: LvHostApi = LvHostApi {
    struct_size: std::mem::size_of::<LvHostApi>() as u32,
    abi_major: LV_ABI_MAJOR,
    abi_minor: LV_ABI_MINOR,
    emit_text,
    emit_record,
    set_error,
    progress,
    is_cancelled,
    log,
    progress_reenters,
};

/// A host built before ABI 1.3: its table ends before `progress_reenters` (the entry here is
/// only there because Rust needs every field; a driver must not read it).
static OLD_HOST: LvHostApi = LvHostApi { struct_size: 56, abi_minor: 2, ..HOST };

fn open() -> *mut c_void {
    open_with(&HOST)
}

fn open_with(host: &LvHostApi) -> *mut c_void {
    let mut conn: *mut c_void = std::ptr::null_mut();
    let call = std::ptr::NonNull::<LvCall>::dangling().as_ptr();
    let rc = unsafe { entry::connect_open::<Tiny>(host, LvStr::from_str("tiny:///"), 0, &mut conn, call) };
    assert_eq!(rc, LV_OK);
    conn
}

#[test]
fn a_flag_bit_a_function_does_not_take_is_refused_naming_it() {
    let conn = open();
    let call = std::ptr::NonNull::<LvCall>::dangling().as_ptr();
    let rc = unsafe { entry::domain_get_xml::<Tiny>(conn, LvStr::from_str("d"), LV_XML_INACTIVE, call) };
    assert_eq!(rc, LV_OK, "a documented flag is taken");
    let rc = unsafe { entry::domain_get_xml::<Tiny>(conn, LvStr::from_str("d"), 1 << 9, call) };
    assert_eq!(rc, LV_ERR_UNSUPPORTED);
    let (_, _, error) = SEEN.with(|s| s.borrow().clone());
    let (code, message) = error.unwrap();
    assert_eq!(code, LV_ERR_UNSUPPORTED);
    assert!(message.contains("Driver 'tiny' does not know flag bit(s) 0x200 of domain_get_xml"), "{message}");
    let rc = unsafe { entry::domain_get_state::<Tiny>(conn, LvStr::from_str("d"), LV_XML_INACTIVE, call) };
    assert_eq!(rc, LV_ERR_UNSUPPORTED, "domain_get_state takes no flag at all");
    unsafe { entry::connect_close::<Tiny>(conn) };
}

#[test]
fn a_typed_record_reaches_the_host_as_the_same_record() {
    let conn = open();
    let call = std::ptr::NonNull::<LvCall>::dangling().as_ptr();
    let rc = unsafe { entry::domain_get_state::<Tiny>(conn, LvStr::from_str("d"), 0, call) };
    assert_eq!(rc, LV_OK);
    let records = SEEN.with(|s| s.borrow().1.clone());
    let status = DomainStatus::from_params(records.last().unwrap());
    assert_eq!(status, DomainStatus { state: DomainState::Paused, id: 7, reason: Some("test".into()) });
    unsafe { entry::connect_close::<Tiny>(conn) };
}

#[test]
fn progress_may_call_back_unless_a_host_that_knows_says_it_only_shows() {
    let call = std::ptr::NonNull::<LvCall>::dangling().as_ptr();
    for (host, expect) in [(&HOST, "progress only shows"), (&OLD_HOST, "progress may call back")] {
        let conn = open_with(host);
        let rc = unsafe { entry::domain_get_xml::<Tiny>(conn, LvStr::from_str("d"), 0, call) };
        assert_eq!(rc, LV_OK);
        assert_eq!(SEEN.with(|s| s.borrow().0.last().cloned()).as_deref(), Some(expect));
        unsafe { entry::connect_close::<Tiny>(conn) };
    }
}
