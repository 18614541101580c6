//! A small QMP client: JSON lines over the monitor's Unix socket.
//!
//! Replies and asynchronous events share the stream, so `execute` keeps the events it reads
//! past (a `SHUTDOWN` can arrive before the reply to `quit`) for callers that wait on them.

use serde_json::{Value, json};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A QMP failure.
#[derive(Debug)]
pub enum QmpError {
    /// The socket failed or closed.
    Io(io::Error),
    /// QEMU answered with an error.
    Command {
        /// `class` of the error (GenericError, DeviceNotFound, ...).
        class: String,
        /// QEMU's description.
        desc: String,
    },
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpError::Io(e) => write!(f, "QMP connection failed: {e}"),
            QmpError::Command { class, desc } => write!(f, "{desc} ({class})"),
        }
    }
}

impl From<io::Error> for QmpError {
    fn from(e: io::Error) -> QmpError {
        QmpError::Io(e)
    }
}

/// A negotiated QMP session.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Events read while waiting for replies, oldest first.
    pub events: Vec<Value>,
}

impl Qmp {
    /// Connects to the monitor at `path`, reads the greeting and negotiates capabilities.
    /// `timeout` bounds each wait for QEMU.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            events: Vec::new(),
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a QMP greeting: {greeting}"),
            )));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(QmpError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "QEMU closed the monitor",
            )));
        }
        serde_json::from_str(&line).map_err(|e| {
            QmpError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad QMP message {line:?}: {e}"),
            ))
        })
    }

    /// Runs `command` with `arguments` and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer.write_all(text.as_bytes())?;
        loop {
            let reply = self.read_message()?;
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                return Err(QmpError::Command {
                    class: s("class"),
                    desc: s("desc"),
                });
            }
            if reply.get("event").is_some() {
                self.events.push(reply);
            }
        }
    }

    /// Reads until the monitor closes (QEMU exiting after `quit`), keeping events.
    pub fn wait_closed(&mut self) {
        while let Ok(msg) = self.read_message() {
            self.events.push(msg);
        }
    }
}
