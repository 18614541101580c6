//! One call into a driver: the host callbacks it may use (`LvHostApi`), and the context that
//! collects its results, progress and error.

use crate::error::{Error, Result};
use crate::log;
use luavirt_plugin_api::abi::{self, LvCall, LvHostApi, LvParam, LvStr};
use luavirt_plugin_api::{ErrorCode, Params};
use std::sync::atomic::{AtomicBool, Ordering};

/// Receives progress reports: done, total, stage.
pub type ProgressFn<'a> = &'a dyn Fn(u64, u64, &str);

/// What the caller lets a call do beyond returning results.
#[derive(Default)]
pub struct CallOptions<'a> {
    /// Receives progress reports.
    pub progress: Option<ProgressFn<'a>>,
    /// Set to ask the driver to cancel.
    pub cancel: Option<&'a AtomicBool>,
    /// The progress receiver only shows reports and never calls a driver (the command's
    /// progress line), so drivers may report while holding their locks.
    pub progress_only_shows: bool,
}

/// What a call emitted.
#[derive(Debug, Default)]
pub struct CallOutput {
    /// Text results, in order.
    pub texts: Vec<String>,
    /// Records, in order.
    pub records: Vec<Params>,
}

impl CallOutput {
    /// The first text result, or an empty string.
    pub fn into_text(self) -> String {
        self.texts.into_iter().next().unwrap_or_default()
    }

    /// The first record, or an empty one.
    pub fn into_record(self) -> Params {
        self.records.into_iter().next().unwrap_or_default()
    }
}

/// The host-side state behind an `LvCall` pointer.
struct CallState<'a> {
    out: CallOutput,
    error: Option<(i32, String)>,
    driver: &'a str,
    options: &'a CallOptions<'a>,
    /// The thread the host called the driver on: the only one its callbacks may come from.
    thread: std::thread::ThreadId,
}

/// The state of a call, if the callback comes from the thread the call runs on. A callback
/// from another thread is ignored (and logged): the call's state is not its to touch.
///
/// # Safety
/// `call` is the pointer `invoke` passed, valid during the driver function.
unsafe fn state<'a>(call: *mut LvCall) -> Option<&'a mut CallState<'a>> {
    let ptr = call.cast::<CallState>();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `thread` is written once, before the driver runs, and only read after.
    let (thread, driver) = unsafe { ((*ptr).thread, (*ptr).driver) };
    if thread != std::thread::current().id() {
        log::write(
            log::Level::Error,
            driver,
            "the driver called back into the host from a thread other than the one it was called on; the callback was ignored (see the threading rules in luavirt_driver.h)",
        );
        return None;
    }
    unsafe { ptr.as_mut() }
}

unsafe extern "C" fn emit_text(call: *mut LvCall, text: LvStr) {
    if let Some(s) = unsafe { state(call) } {
        s.out.texts.push(unsafe { text.to_string_lossy() });
    }
}

unsafe extern "C" fn emit_record(call: *mut LvCall, params: *const LvParam, count: usize) {
    if let Some(s) = unsafe { state(call) } {
        s.out.records.push(unsafe { Params::from_abi(params, count) });
    }
}

unsafe extern "C" fn set_error(call: *mut LvCall, code: i32, message: LvStr) {
    if let Some(s) = unsafe { state(call) } {
        s.error = Some((code, unsafe { message.to_string_lossy() }));
    }
}

unsafe extern "C" fn progress(call: *mut LvCall, done: u64, total: u64, stage: LvStr) {
    if let Some(s) = unsafe { state(call) }
        && let Some(p) = s.options.progress
    {
        p(done, total, &unsafe { stage.to_string_lossy() });
    }
}

unsafe extern "C" fn progress_reenters(call: *mut LvCall) -> bool {
    unsafe { state(call) }.is_none_or(|s| !s.options.progress_only_shows)
}

unsafe extern "C" fn is_cancelled(call: *mut LvCall) -> bool {
    unsafe { state(call) }.and_then(|s| s.options.cancel).is_some_and(|c| c.load(Ordering::Relaxed))
}

thread_local! {
    /// The driver this thread is calling into, for lines logged without a call.
    static CURRENT_DRIVER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

unsafe extern "C" fn log_line(call: *mut LvCall, level: i32, message: LvStr) {
    let message = unsafe { message.to_string_lossy() };
    // A NULL call may log from any thread; it is the current call's driver's on the thread
    // that called it. A call's own lines come from its thread.
    if call.is_null() {
        CURRENT_DRIVER.with_borrow(|d| {
            log::write(log::Level::from_i32(level), if d.is_empty() { "driver" } else { d }, &message)
        });
        return;
    }
    if let Some(s) = unsafe { state(call) } {
        log::write(log::Level::from_i32(level), s.driver, &message);
    }
}

static HOST_API: LvHostApi = LvHostApi {
    struct_size: std::mem::size_of::<LvHostApi>() as u32,
    abi_major: abi::LV_ABI_MAJOR,
    abi_minor: abi::LV_ABI_MINOR,
    emit_text,
    emit_record,
    set_error,
    progress,
    is_cancelled,
    log: log_line,
    progress_reenters,
};

/// The host's callback table, passed to drivers at `connect_open`.
pub(crate) fn host_api() -> *const LvHostApi {
    &HOST_API
}

/// Runs `f` with a call context; turns a non-zero return into an error.
pub(crate) fn invoke(
    driver: &str,
    operation: &str,
    options: &CallOptions,
    f: impl FnOnce(*mut LvCall) -> i32,
) -> Result<CallOutput> {
    let mut st =
        CallState { out: CallOutput::default(), error: None, driver, options, thread: std::thread::current().id() };
    let outer = CURRENT_DRIVER.replace(driver.to_string());
    let rc = f((&mut st as *mut CallState).cast::<LvCall>());
    CURRENT_DRIVER.set(outer);
    if rc == abi::LV_OK {
        return Ok(st.out);
    }
    let code = ErrorCode::from_i32(rc);
    match st.error {
        Some((_, m)) if !m.is_empty() => Err(Error::Driver { code, message: m }),
        // An unsupported answer without words: the host says what was not supported.
        _ if code == ErrorCode::Unsupported => {
            Err(Error::Unsupported { driver: driver.to_string(), operation: operation.to_string() })
        }
        _ => Err(Error::Driver {
            code,
            message: format!("Driver '{driver}' failed while {operation} (error code {rc}) without saying why"),
        }),
    }
}
