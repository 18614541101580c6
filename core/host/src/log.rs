//! Log lines from the host and its drivers, on standard error, filtered by `LUAVIRT_LOG`
//! (error, warning, info, debug; default warning).

use std::io::Write;
use std::sync::OnceLock;

/// How important a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something the user should know.
    Warning = 2,
    /// Progress worth a line.
    Info = 3,
    /// Details.
    Debug = 4,
}

impl Level {
    /// Reads an ABI level number; unknown numbers count as debug.
    pub fn from_i32(n: i32) -> Level {
        match n {
            1 => Level::Error,
            2 => Level::Warning,
            3 => Level::Info,
            _ => Level::Debug,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

fn threshold() -> Level {
    static T: OnceLock<Level> = OnceLock::new();
    *T.get_or_init(|| match std::env::var("LUAVIRT_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "error" => Level::Error,
        "info" => Level::Info,
        "debug" => Level::Debug,
        _ => Level::Warning,
    })
}

/// Writes one line from `source` (a driver name, or `luavirt`).
pub fn write(level: Level, source: &str, message: &str) {
    let message = &crate::words::render(message);
    if level <= threshold() {
        // A closed standard error is no reason to stop (eprintln! would panic).
        let _ = writeln!(std::io::stderr(), "luavirt: {} ({source}): {message}", level.name());
    }
}
