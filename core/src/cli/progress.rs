//! Progress of long jobs on a terminal, and Ctrl-C as a request to cancel them.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by Ctrl-C while a job runs; the driver then cancels the job and cleans up.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    CANCEL.store(true, Ordering::Relaxed);
}

/// Makes Ctrl-C ask for cancellation instead of killing luavirt mid-job.
pub fn catch_interrupt() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
    }
}

/// Whether progress should be drawn: on a terminal, or when asked.
pub fn wanted(verbose: bool) -> bool {
    verbose || std::io::stderr().is_terminal()
}

/// A progress line is drawn and not yet ended.
static OPEN_LINE: AtomicBool = AtomicBool::new(false);

/// Draws one progress line on standard error, replacing the previous one.
pub fn draw(done: u64, total: u64, stage: &str) {
    // A job with nothing to do (total 0) is done.
    let pct = (done.min(total) * 100).checked_div(total).unwrap_or(100) as usize;
    let filled = pct * 30 / 100;
    let mut err = std::io::stderr();
    let _ = write!(err, "\r{stage}: [{}{}] {pct:3} %", "#".repeat(filled), " ".repeat(30 - filled));
    OPEN_LINE.store(pct != 100, Ordering::Relaxed);
    if pct == 100 {
        let _ = writeln!(err);
    }
    let _ = err.flush();
}

/// Ends a progress line a job left open (it failed or was cancelled mid-way).
pub fn finish() {
    if OPEN_LINE.swap(false, Ordering::Relaxed) {
        let _ = writeln!(std::io::stderr());
    }
}

/// When the stage being drawn began, and its name, for rates.
static STAGE: std::sync::Mutex<Option<(String, std::time::Instant)>> = std::sync::Mutex::new(None);

/// Draws a transfer's progress on standard error: bytes moved of all, rate, time left.
pub fn draw_transfer(done: u64, total: u64, stage: &str) {
    use super::table::human_size;
    let elapsed = {
        let mut s = STAGE.lock().unwrap_or_else(|e| e.into_inner());
        if s.as_ref().is_none_or(|(name, _)| name != stage) {
            *s = Some((stage.to_string(), std::time::Instant::now()));
        }
        s.as_ref().map(|(_, t)| t.elapsed().as_secs_f64()).unwrap_or(0.0)
    };
    if total == 0 {
        return; // nothing measured yet
    }
    // A rate needs some time to mean anything.
    let rate = if elapsed >= 0.5 { done as f64 / elapsed } else { 0.0 };
    let speed = match (rate > 0.0, total > done) {
        (true, true) => {
            format!(", {}/s, {} s left", human_size(rate as u64), ((total - done) as f64 / rate).ceil() as u64)
        }
        (true, false) => format!(", {}/s", human_size(rate as u64)),
        _ => String::new(),
    };
    let mut err = std::io::stderr();
    let _ = write!(err, "\r\x1b[K{stage}: {} of {}{speed}", human_size(done.min(total)), human_size(total));
    OPEN_LINE.store(true, Ordering::Relaxed);
    let _ = err.flush();
}

/// Writes a progress report as one JSON line on standard error (standard output keeps the
/// result, one JSON document).
pub fn json_event(done: u64, total: u64, stage: &str) {
    let line = serde_json::json!({ "event": "progress", "stage": stage, "done": done, "total": total });
    let _ = writeln!(std::io::stderr(), "{line}");
}
