//! Memory and time limits that a script cannot escape.
//!
//! The memory limit is Lua's allocator limit; the time limit is an instruction-count hook.
//! Both are sticky: once hit, the hook raises the limit error again and again, and the
//! sandbox's `pcall`, `xpcall`, `coroutine.resume`, `coroutine.close` and `load` hand a limit
//! error straight back up instead of returning it, so no `pcall` can swallow it (see
//! `sandbox.rs`). Long host calls (block job waits) watch the same deadline through a cancel
//! flag set by a watchdog thread.
//!
//! The hook never runs inside C functions (a catastrophic `string.find`), `__gc` finalizers,
//! or `__close` handlers that Lua runs with hooks off after an error. So the watchdog, outside
//! the Lua state, also ends the whole process when the interpreter still exists [`GRACE`]
//! after the deadline, with a message and exit status [`HARD_STOP_STATUS`]. Ending a process
//! at any instruction is safe: drivers make every multi-step change crash-safe.

use mlua::{HookTriggers, Lua, VmState};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
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

/// What the limits share with the hook, the sandbox and the host calls.
pub struct LimitState {
    limits: Limits,
    deadline: Instant,
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
        let state = Arc::new(LimitState {
            limits,
            deadline: Instant::now() + limits.time,
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
        let deadline = state.deadline;
        std::thread::spawn(move || watchdog(watched, deadline));
        Ok(state)
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
        if hit.is_none() && Instant::now() >= self.deadline {
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

/// At the deadline, cancels waiting host calls; a grace period later, ends the process if the
/// interpreter still exists.
fn watchdog(state: Weak<LimitState>, deadline: Instant) {
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    match state.upgrade() {
        Some(s) => s.cancel.store(true, Ordering::Relaxed),
        None => return,
    }
    std::thread::sleep(GRACE);
    if let Some(s) = state.upgrade() {
        s.hard_stop();
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
}
