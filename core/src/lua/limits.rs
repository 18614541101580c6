//! Memory and time limits that a script cannot escape.
//!
//! The memory limit is Lua's allocator limit; the time limit is an instruction-count hook.
//! Both are sticky: once hit, the hook raises the limit error again and again, and the
//! sandbox's `pcall`, `xpcall` and `coroutine.resume` hand a limit error straight back up
//! instead of returning it, so no `pcall` can swallow it (see `sandbox.rs`). Long host calls
//! (block job waits) watch the same deadline through a cancel flag set by a watchdog thread.

use mlua::{HookTriggers, Lua, VmState};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
    hit: std::sync::Mutex<Option<LimitError>>,
    /// Set at the deadline, for host calls that wait (block jobs) to cancel.
    pub cancel: Arc<AtomicBool>,
}

impl LimitState {
    /// Applies `limits` to `lua` from now on.
    pub fn install(lua: &Lua, limits: Limits) -> mlua::Result<Arc<LimitState>> {
        let state = Arc::new(LimitState {
            limits,
            deadline: Instant::now() + limits.time,
            hit: std::sync::Mutex::new(None),
            cancel: Arc::new(AtomicBool::new(false)),
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
        // The watchdog: host calls that wait see the deadline through the cancel flag.
        let cancel = state.cancel.clone();
        let deadline = state.deadline;
        std::thread::spawn(move || {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            cancel.store(true, Ordering::Relaxed);
        });
        Ok(state)
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
