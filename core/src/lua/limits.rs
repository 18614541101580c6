//! Memory and time limits that a script cannot escape.
//!
//! The memory limit is Lua's allocator limit; the time limit is an instruction-count hook.
//! Both are sticky: once hit, the hook raises the limit error again and again, and the
//! sandbox's `pcall`, `xpcall`, `coroutine.resume`, `coroutine.close` and `load` hand a limit
//! error straight back up instead of returning it, so no `pcall` can swallow it (see
//! `sandbox.rs`). Long host calls (block job waits) watch the same deadline through a cancel
//! flag set by a watchdog thread.
//!
//! A script run is one timed run. A policy of `luavirt watch` lives on between hook runs: its
//! clock is stopped while it waits ([`LimitState::disarm`]) and started afresh for each hook
//! ([`LimitState::arm`]), so every hook run has the whole time limit.
//!
//! The hook never runs inside C functions (a catastrophic `string.find`), `__gc` finalizers,
//! or `__close` handlers that Lua runs with hooks off after an error. So the watchdog, outside
//! the Lua state, also ends the whole process when the interpreter still exists [`GRACE`]
//! after the deadline, with a message and exit status [`HARD_STOP_STATUS`]. Ending a process
//! at any instruction is safe: drivers make every multi-step change crash-safe.

use mlua::{HookTriggers, Lua, VmState};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a script may take past its deadline to unwind before the process is ended.
pub const GRACE: Duration = Duration::from_secs(1);

/// The exit status of a process the watchdog ended (the one `timeout(1)` uses).
pub const HARD_STOP_STATUS: i32 = 124;

/// Which limit a script hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// `--max-memory`.
    Memory,
    /// `--timeout`.
    Time,
}

/// The error a script gets when it hits a limit; it ends the script.
#[derive(Clone, Debug)]
pub struct LimitError {
    /// Which limit.
    pub kind: LimitKind,
    /// The limit, in words.
    pub limit: String,
    /// Where the script was when it was stopped (`file:line`), if known.
    pub at: Option<String>,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        match self.kind {
            LimitKind::Memory => write!(
                f,
                "the script used more than its memory limit ({}); it was stopped (raise it with --max-memory)",
                self.limit
            ),
            LimitKind::Time => write!(
                f,
                "the script ran longer than its time limit ({}); it was stopped (raise it with --timeout)",
                self.limit
            ),
        }
    }
}

impl std::error::Error for LimitError {}

/// The limits of one script run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes Lua may allocate.
    pub memory: usize,
    /// How long the script may run.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory: 256 << 20, time: Duration::from_secs(3600) }
    }
}

/// When the running time ends, shared with the watchdog.
#[derive(Default)]
struct Clock {
    /// `None` while nothing runs (a policy waiting for its next event).
    deadline: Option<Instant>,
    /// Bumped at every start and stop, so the watchdog sees that the run it timed is over.
    generation: u64,
    /// The interpreter is gone: the watchdog ends.
    closed: bool,
}

/// The clock and the bell the watchdog waits on.
#[derive(Default)]
struct Timer {
    clock: Mutex<Clock>,
    changed: Condvar,
}

impl Timer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, deadline: Option<Instant>) {
        let mut c = self.lock();
        c.deadline = deadline;
        c.generation += 1;
        self.changed.notify_all();
    }
}

/// What the limits share with the hook, the sandbox and the host calls.
pub struct LimitState {
    limits: Limits,
    timer: Arc<Timer>,
    /// Set when a limit was hit; from then on the script only unwinds.
    hit: Mutex<Option<LimitError>>,
    /// Set at the deadline, for host calls that wait (block jobs) to cancel.
    pub cancel: Arc<AtomicBool>,
    /// What a hard stop leaves behind, said in its message.
    leftover: Mutex<Option<String>>,
}

impl LimitState {
    /// Applies `limits` to `lua` from now on.
    pub fn install(lua: &Lua, limits: Limits) -> mlua::Result<Arc<LimitState>> {
        let timer = Arc::new(Timer::default());
        timer.set(Some(Instant::now() + limits.time));
        let state = Arc::new(LimitState {
            limits,
            timer: timer.clone(),
            hit: Mutex::new(None),
            cancel: Arc::new(AtomicBool::new(false)),
            leftover: Mutex::new(None),
        });
        lua.set_memory_limit(limits.memory)?;
        let hook_state = state.clone();
        // A global hook: coroutines the script creates inherit it (a thread hook they would not).
        lua.set_global_hook(HookTriggers::new().every_nth_instruction(1000), move |_, debug| {
            if let Some(mut e) = hook_state.check() {
                if e.at.is_none() {
                    let src = debug.source().short_src.map(|s| s.to_string()).unwrap_or_default();
                    e.at = debug.current_line().map(|l| format!("{src}:{l}"));
                    hook_state.locate(e.at.clone());
                }
                return Err(mlua::Error::external(e));
            }
            Ok(VmState::Continue)
        })?;
        // The watchdog holds the state weakly: once the interpreter is gone, the run is over.
        let watched = Arc::downgrade(&state);
        std::thread::spawn(move || watchdog(watched, timer));
        Ok(state)
    }

    /// Starts a new timed run: the whole time limit from now, no limit hit yet.
    pub fn arm(&self) {
        *self.hit.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.cancel.store(false, Ordering::Relaxed);
        self.timer.set(Some(Instant::now() + self.limits.time));
    }

    /// Stops the clock: nothing runs until the next [`LimitState::arm`].
    pub fn disarm(&self) {
        self.timer.set(None);
    }

    /// Says, if the watchdog has to end the process, what that leaves behind.
    pub fn leaves_behind(&self, what: String) {
        *self.leftover.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    }

    /// Ends the process: the script is stuck where the hook cannot stop it.
    fn hard_stop(&self) -> ! {
        let left = match self.leftover.try_lock().ok().and_then(|l| l.clone()) {
            Some(what) => format!("; {what}"),
            None => String::new(),
        };
        let message = format!(
            "error: the script ran longer than its time limit ({:?}) and did not stop within {GRACE:?} (it was inside a C function such as string.find, a __gc finalizer or a __close handler, where the limit cannot interrupt it); luavirt ended the process (exit status {HARD_STOP_STATUS}){left}\n",
            self.limits.time
        );
        // SAFETY: write(2) and _exit(2) take no lock another thread could hold (eprintln!
        // would wait for standard error's lock, which the stuck thread may own).
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(HARD_STOP_STATUS)
        }
    }

    /// The limit error, if a limit was hit (or the deadline has passed).
    pub fn check(&self) -> Option<LimitError> {
        let mut hit = self.hit.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = self.timer.lock().deadline;
        if hit.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            *hit = Some(LimitError { kind: LimitKind::Time, limit: format!("{:?}", self.limits.time), at: None });
        }
        hit.clone()
    }

    /// Records where the script was stopped, the first time it is known.
    fn locate(&self, at: Option<String>) {
        let mut hit = self.hit.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = hit.as_mut().filter(|h| h.at.is_none()) {
            h.at = at;
        }
    }

    /// Records that Lua ran out of its memory (at `at`, when known).
    pub fn memory_exceeded(&self, at: Option<String>) -> LimitError {
        let mut hit = self.hit.lock().unwrap_or_else(|p| p.into_inner());
        hit.get_or_insert_with(|| LimitError {
            kind: LimitKind::Memory,
            limit: format!("{} MiB", self.limits.memory >> 20),
            at,
        })
        .clone()
    }
}

impl Drop for LimitState {
    fn drop(&mut self) {
        let mut c = self.timer.lock();
        c.closed = true;
        self.timer.changed.notify_all();
    }
}

/// At each deadline, cancels waiting host calls; a grace period later, ends the process if the
/// same run is still going (the interpreter exists and its clock was neither stopped nor
/// restarted).
fn watchdog(state: Weak<LimitState>, timer: Arc<Timer>) {
    let mut c = timer.lock();
    loop {
        if c.closed {
            return;
        }
        let now = Instant::now();
        match c.deadline {
            None => c = timer.changed.wait(c).unwrap_or_else(|p| p.into_inner()),
            Some(d) if now < d => c = timer.changed.wait_timeout(c, d - now).unwrap_or_else(|p| p.into_inner()).0,
            Some(_) => {
                let generation = c.generation;
                drop(c);
                match state.upgrade() {
                    Some(s) => s.cancel.store(true, Ordering::Relaxed),
                    None => return,
                }
                c = timer.lock();
                let end = Instant::now() + GRACE;
                while !c.closed && c.generation == generation && Instant::now() < end {
                    let left = end.saturating_duration_since(Instant::now());
                    c = timer.changed.wait_timeout(c, left).unwrap_or_else(|p| p.into_inner()).0;
                }
                if !c.closed && c.generation == generation {
                    drop(c);
                    if let Some(s) = state.upgrade() {
                        s.hard_stop();
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_ended_is_left_alone_by_its_watchdog() {
        let lua = Lua::new();
        let state = LimitState::install(&lua, Limits { memory: 1 << 20, time: Duration::from_millis(50) }).unwrap();
        let cancel = state.cancel.clone();
        drop((state, lua));
        // Were the watchdog to act, this test process would end with status 124 here.
        std::thread::sleep(Duration::from_millis(50) + GRACE + Duration::from_millis(500));
        assert!(!cancel.load(Ordering::Relaxed), "a finished run was cancelled");
    }

    #[test]
    fn each_armed_run_gets_the_whole_limit_and_a_stopped_clock_never_ends() {
        let lua = Lua::new();
        let state = LimitState::install(&lua, Limits { memory: 1 << 20, time: Duration::from_millis(100) }).unwrap();
        state.disarm();
        // Stopped: no limit, however long it waits (past the deadline and the grace period).
        std::thread::sleep(Duration::from_millis(100) + GRACE + Duration::from_millis(300));
        assert!(state.check().is_none() && !state.cancel.load(Ordering::Relaxed));
        state.arm();
        assert!(state.check().is_none());
        let start = Instant::now();
        while state.check().is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "an armed clock never ran out");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Stopped before the grace period ends: the process goes on; a new run starts clean.
        state.disarm();
        state.arm();
        assert!(state.check().is_none(), "a new run starts with no limit hit");
        state.disarm();
        std::thread::sleep(GRACE + Duration::from_millis(300));
    }
}
