//! Progress of long jobs (block jobs, migration, memory saved by a snapshot) on standard
//! error: a bar, bytes done of all, the rate and the time left. On a terminal one line is
//! redrawn in place; asked for elsewhere (`--verbose` into a file), a plain line at most
//! every second and at the end; otherwise nothing. Ctrl-C asks the job to cancel.

use super::table::human_size;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// The stage being shown: when it began (for the rate) and when a plain line was last
/// written.
struct Shown {
    stage: String,
    began: Instant,
    last_line: Option<Instant>,
    /// The finished line was written (a mirror stays at 100 % until it ends).
    ended: bool,
    /// A terminal line is drawn and not yet ended.
    open: bool,
}

static SHOWN: Mutex<Option<Shown>> = Mutex::new(None);

/// Shows that `done` of `total` bytes of `stage` are done.
pub fn draw(done: u64, total: u64, stage: &str) {
    let terminal = std::io::stderr().is_terminal();
    let mut shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr();
    if shown.as_ref().is_none_or(|s| s.stage != stage) {
        if shown.as_ref().is_some_and(|s| s.open) {
            let _ = writeln!(err);
        }
        *shown =
            Some(Shown { stage: stage.to_string(), began: Instant::now(), last_line: None, ended: false, open: false });
    }
    let s = shown.as_mut().expect("set above");
    let finished = total > 0 && done >= total;
    if finished && s.ended {
        return;
    }
    s.ended = finished;
    let text = line(stage, done, total, s.began.elapsed());
    if terminal {
        let _ = write!(err, "\r\x1b[K{text}");
        s.open = !finished;
        if finished {
            let _ = writeln!(err);
        }
    } else if total > 0 && (finished || s.last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))) {
        let _ = writeln!(err, "{text}");
        s.last_line = Some(Instant::now());
    }
    let _ = err.flush();
}

/// Ends a progress line a job left open (it failed or was cancelled mid-way).
pub fn finish() {
    let mut shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
    if shown.take().is_some_and(|s| s.open) {
        let _ = writeln!(std::io::stderr());
    }
}

/// One progress line: `stage: [#####     ] 50 % 8 MiB of 16 MiB, 2 MiB/s, 4 s left`.
fn line(stage: &str, done: u64, total: u64, elapsed: Duration) -> String {
    if total == 0 {
        return format!("{stage}: starting");
    }
    let done = done.min(total);
    let pct = (done as u128 * 100 / total as u128) as usize;
    let filled = pct / 5;
    let mut text = format!(
        "{stage}: [{}{}] {pct:3} % {} of {}",
        "#".repeat(filled),
        " ".repeat(20 - filled),
        human_size(done),
        human_size(total)
    );
    // A rate needs some time to mean anything.
    let secs = elapsed.as_secs_f64();
    if secs >= 0.5 && done > 0 {
        let rate = done as f64 / secs;
        text.push_str(&format!(", {}/s", human_size(rate as u64)));
        if done < total {
            text.push_str(&format!(", {} left", duration(((total - done) as f64 / rate).ceil() as u64)));
        }
    }
    text
}

/// Seconds as people read a wait: `42 s`, `3 min 5 s`, `2 h 10 min`.
fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// Writes a progress report as one JSON line on standard error (standard output keeps the
/// result, one JSON document).
pub fn json_event(done: u64, total: u64, stage: &str) {
    let line = serde_json::json!({ "event": "progress", "stage": stage, "done": done, "total": total });
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_bar_bytes_rate_and_time_left() {
        let mib = 1 << 20;
        assert_eq!(
            line("copying vda", 8 * mib, 16 * mib, Duration::from_secs(4)),
            "copying vda: [##########          ]  50 % 8 MiB of 16 MiB, 2 MiB/s, 4 s left"
        );
        assert_eq!(
            line("copying vda", 16 * mib, 16 * mib, Duration::from_secs(8)),
            "copying vda: [####################] 100 % 16 MiB of 16 MiB, 2 MiB/s"
        );
        // Too early for a rate; nothing measured yet.
        assert_eq!(line("s", 0, mib, Duration::ZERO), "s: [                    ]   0 % 0 B of 1 MiB");
        assert_eq!(line("s", 0, 0, Duration::ZERO), "s: starting");
        assert_eq!(duration(185), "3 min 5 s");
        assert_eq!(duration(7800), "2 h 10 min");
    }
}
