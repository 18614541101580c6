//! Signals as messages: SIGHUP (reload), SIGTERM and SIGINT (stop) are blocked in every
//! thread and taken by one thread with `sigwait`, which hands them to the watcher's loop.
//! So a signal never interrupts a hook: the loop sees it between two hook runs.

use std::sync::mpsc::Sender;

/// The signals the watcher acts on.
pub const SIGNALS: [i32; 3] = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset fill the set we own; the numbers are valid signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the signals in this thread and in every thread it starts from now on. Call it
/// before any other thread exists.
pub fn block() {
    let set = set();
    // SAFETY: set is a valid signal set; a null old set is allowed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Starts the thread that sends each signal that arrives to `to`, made by `wrap`.
pub fn forward<M: Send + 'static>(to: Sender<M>, wrap: fn(i32) -> M) {
    std::thread::spawn(move || {
        let set = set();
        loop {
            let mut sig = 0;
            // SAFETY: set is valid and blocked in every thread; sig is ours to write.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            if to.send(wrap(sig)).is_err() {
                return;
            }
        }
    });
}
