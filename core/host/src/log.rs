//! Log lines from the host and its drivers, through the `log` facade. The line's target is
//! its source (a driver's name, `policy` or `luavirt`), so a filter can pick one driver
//! (`RUST_LOG=qemu=debug`). Whoever runs the host chooses where lines go and which pass: the
//! `luavirt` command writes them to standard error (`-v`, `-vv`, `LUAVIRT_LOG`, `RUST_LOG`).

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

    fn to_log(self) -> ::log::Level {
        match self {
            Level::Error => ::log::Level::Error,
            Level::Warning => ::log::Level::Warn,
            Level::Info => ::log::Level::Info,
            Level::Debug => ::log::Level::Debug,
        }
    }
}

/// Writes one line from `source` (a driver name, or `luavirt`), if the filter lets it pass.
pub fn write(level: Level, source: &str, message: &str) {
    let level = level.to_log();
    // A driver's debug lines are many (every QMP message): render only those that show.
    if ::log::log_enabled!(target: source, level) {
        ::log::log!(target: source, level, "{}", crate::words::render(message));
    }
}
