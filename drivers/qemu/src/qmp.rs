//! A small QMP client: JSON lines over the monitor's Unix socket.
//!
//! Replies and asynchronous events share the stream, so `execute` queues the events it reads
//! past (a `SHUTDOWN` can arrive before the reply to `quit`), and `next_event` hands them out
//! before it reads more. Waiting for an event blocks on the socket with a timeout: it is
//! woken by QEMU, never by a fixed sleep.

use luavirt_plugin_api::kit::{Level, log};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A QMP failure.
#[derive(Debug)]
pub enum QmpError {
    /// The socket failed or closed.
    Io(io::Error),
    /// QEMU answered with an error; its description.
    Command(String),
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpError::Io(e) => write!(f, "QMP connection failed: {e}"),
            QmpError::Command(desc) => f.write_str(desc),
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
    stream: UnixStream,
    /// Bytes read but not yet a whole line.
    pending: Vec<u8>,
    /// Events read while waiting for replies, oldest first.
    events: VecDeque<Value>,
    timeout: Duration,
    /// Whose monitor this is (the run folder's name: the domain), for log lines.
    label: String,
}

impl Qmp {
    /// Connects to the monitor at `path`, reads the greeting (waiting at most `greeting`: a
    /// running QEMU greets at once) and negotiates capabilities. `timeout` bounds each wait
    /// for a reply.
    pub fn connect(path: &Path, greeting: Duration, timeout: Duration) -> Result<Qmp, QmpError> {
        let stream = UnixStream::connect(path)?;
        let label = path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let label = label.unwrap_or_else(|| path.display().to_string());
        let mut qmp = Qmp { stream, pending: Vec::new(), events: VecDeque::new(), timeout, label };
        let greeting = qmp.read_message(greeting)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("QEMU sent no greeting on its monitor in {greeting:?} (is it stopped or hung?)"),
            )
        })?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a QMP greeting: {greeting}"),
            )));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// Reads one message, waiting at most `timeout`; `None` when none came in time.
    fn read_message(&mut self, timeout: Duration) -> Result<Option<Value>, QmpError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return serde_json::from_str(&text).map(Some).map_err(|e| {
                    QmpError::Io(io::Error::new(io::ErrorKind::InvalidData, format!("bad QMP message {text:?}: {e}")))
                });
            }
            self.stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
            let mut buf = [0u8; 8192];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(QmpError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "QEMU closed the monitor")));
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs `command` with `arguments` and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        log(Level::Debug, &format!("QMP {} send: {text}", self.label));
        text.push('\n');
        self.stream.write_all(text.as_bytes())?;
        loop {
            let reply = self.read_message(self.timeout)?.ok_or_else(|| {
                io::Error::new(io::ErrorKind::TimedOut, format!("QEMU did not answer {command} in {:?}", self.timeout))
            })?;
            log(Level::Debug, &format!("QMP {} recv: {reply}", self.label));
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                return Err(QmpError::Command(
                    e.get("desc").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
                ));
            }
            if reply.get("event").is_some() {
                self.events.push_back(reply);
            }
        }
    }

    /// The next event: a queued one, or one QEMU sends within `timeout` (`None` if not).
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Value>, QmpError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let message = self.read_message(timeout)?;
        if let Some(m) = &message {
            log(Level::Debug, &format!("QMP {} recv: {m}", self.label));
        }
        Ok(message.filter(|m| m.get("event").is_some()))
    }

    /// Reads until the monitor closes (QEMU exiting after `quit`).
    pub fn wait_closed(&mut self) {
        while self.read_message(self.timeout).is_ok_and(|m| m.is_some()) {}
    }
}
