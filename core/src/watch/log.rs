//! The watcher's log: one line per record on standard error, as text for people or as JSON
//! objects (`--log-format json`) for journald and log shippers.

use crate::policy::{Level, Record};
use serde_json::json;
use std::io::Write;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `TIME LEVEL KIND [AT:] MESSAGE`.
    Text,
    /// `{"time": ..., "level": ..., "kind": ..., "at": ..., "message": ...}`.
    Json,
}

/// Writes log lines in one format.
#[derive(Clone, Copy, Debug)]
pub struct Logger {
    format: Format,
}

impl Logger {
    /// A logger writing `format`.
    pub fn new(format: Format) -> Logger {
        Logger { format }
    }

    /// Writes one record.
    pub fn write(&self, r: &Record) {
        let time = luavirt_plugin_api::time::format_local(luavirt_plugin_api::time::now_secs());
        let line = match self.format {
            Format::Json => json!({
                "time": time, "level": r.level.name(), "kind": r.kind, "at": r.at, "message": r.message,
            })
            .to_string(),
            Format::Text => match &r.at {
                Some(at) => format!("{time} {} {}: {at}: {}", r.level.name(), r.kind, r.message),
                None => format!("{time} {} {}: {}", r.level.name(), r.kind, r.message),
            },
        };
        // A closed standard error is no reason to stop watching.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// Writes a record made of its parts.
    pub fn say(&self, level: Level, kind: &'static str, at: Option<String>, message: impl Into<String>) {
        self.write(&Record { level, kind, at, message: message.into() });
    }
}
