//! The system's OpenSSH, run for a remote connection: `ssh ... HOST 'luavirt' serve --stdio`
//! with the connection's stdin and stdout as the protocol's pipe. It runs as a connection
//! master (`-M -S SOCKET`), so that a tunnelled migration adds Unix socket forwards to the
//! same connection (`ssh -S SOCKET -O forward -L LOCAL:REMOTE`). `LUAVIRT_SSH` replaces the
//! `ssh` command (words split at spaces, like `ssh -F /etc/luavirt/ssh_config`).
//!
//! ssh's standard error is read by a thread: lines of the remote luavirt (`luavirt: ...`) are
//! shown as they come; the last lines are kept to say why a connection failed or was lost.

use super::fresh_private_dir;
use super::target::SshTarget;
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The environment variable that replaces the `ssh` command.
pub const SSH_ENV: &str = "LUAVIRT_SSH";

/// How many of ssh's last lines are kept for messages.
const TAIL_LINES: usize = 12;

/// The `ssh` command and its leading words.
pub fn ssh_command() -> Vec<String> {
    let words: Vec<String> =
        std::env::var(SSH_ENV).unwrap_or_default().split_whitespace().map(str::to_string).collect();
    if words.is_empty() { vec!["ssh".to_string()] } else { words }
}

/// What ssh wrote on its standard error, last lines first to go.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
    ended: bool,
}

/// A running ssh connection master.
pub struct SshProcess {
    child: Child,
    /// Private folder: the control socket, and the local ends of tunnels.
    dir: PathBuf,
    target: SshTarget,
    tail: Arc<(Mutex<Tail>, Condvar)>,
}

/// Quotes `word` for the remote user's shell.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl SshProcess {
    /// Starts ssh to `target`, running the remote luavirt's server; returns its pipes.
    pub fn spawn(target: &SshTarget) -> Result<(SshProcess, ChildStdin, ChildStdout)> {
        let dir = fresh_private_dir(&std::env::temp_dir(), "luavirt-ssh").map_err(|source| Error::Io {
            doing: "create a folder in",
            path: std::env::temp_dir(),
            source,
        })?;
        let words = ssh_command();
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]);
        cmd.args(["-T", "-x", "-e", "none", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]);
        cmd.args(["-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-S"]).arg(dir.join("ctl"));
        add_target_options(&mut cmd, target);
        let mut remote = String::new();
        if let Ok(level) = std::env::var("LUAVIRT_LOG")
            && !level.is_empty()
        {
            remote.push_str(&format!("env LUAVIRT_LOG={} ", quote(&level)));
        }
        remote.push_str(&format!("{} serve --stdio", quote(&target.command)));
        cmd.arg("--").arg(&target.host).arg(remote);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: signal() is async-signal-safe and touches no memory of this process. Ctrl-C
        // at the terminal is this luavirt's to handle (it cancels the running call over the
        // protocol); ssh keeps an ignored SIGINT ignored, and still prompts on the terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            Error::InvalidArg(format!(
                "{}: cannot run '{}': {e}; install OpenSSH's client, or set {SSH_ENV} to the ssh command",
                target.uri, words[0]
            ))
        })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let tail: Arc<(Mutex<Tail>, Condvar)> = Arc::default();
        let t = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("luavirt: ") {
                    // The remote luavirt's log lines, as its own would show here.
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
                let mut tail = t.0.lock().unwrap_or_else(|p| p.into_inner());
                if tail.lines.len() == TAIL_LINES {
                    tail.lines.pop_front();
                }
                tail.lines.push_back(line);
            }
            t.0.lock().unwrap_or_else(|p| p.into_inner()).ended = true;
            t.1.notify_all();
        });
        Ok((SshProcess { child, dir, target: target.clone(), tail }, stdin, stdout))
    }

    /// ssh's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The private folder for the local ends of tunnels.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What ssh said last (it waits a moment for ssh to finish saying it, when ssh is ending).
    pub fn said(&self) -> String {
        let (lock, ended) = &*self.tail;
        let tail = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (tail, _) =
            ended.wait_timeout_while(tail, Duration::from_secs(2), |t| !t.ended).unwrap_or_else(|p| p.into_inner());
        let lines: Vec<&str> =
            tail.lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty() && !l.starts_with("luavirt: ")).collect();
        lines.join("; ")
    }

    /// Asks the master to forward a socket: `-L LISTEN:TO` (a socket here forwarded to one
    /// on the remote host) or `-R LISTEN:TO` (one there forwarded to one here).
    pub fn forward(&self, kind: &str, listen: &Path, to: &Path) -> Result<()> {
        self.control(&["-O", "forward", kind, &format!("{}:{}", listen.display(), to.display())])
    }

    /// Ends a forward made by [`SshProcess::forward`].
    pub fn cancel_forward(&self, kind: &str, listen: &Path, to: &Path) -> Result<()> {
        self.control(&["-O", "cancel", kind, &format!("{}:{}", listen.display(), to.display())])
    }

    fn control(&self, args: &[&str]) -> Result<()> {
        let words = ssh_command();
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]).arg("-S").arg(self.dir.join("ctl")).args(args);
        add_target_options(&mut cmd, &self.target);
        let out = cmd
            .arg("--")
            .arg(&self.target.host)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::InvalidArg(format!("{}: cannot run '{}': {e}", self.target.uri, words[0])))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Driver {
            code: luavirt_plugin_api::ErrorCode::Io,
            message: format!(
                "ssh to {} refused `{}`: {}",
                self.target.place(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }

    /// Waits for ssh to end (its standard input is closed, so the remote server ends), at
    /// most a few seconds; then ends it.
    pub fn stop(&mut self) {
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SshProcess {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The options every ssh run to `target` takes: port, user, key, host keys, prompts.
fn add_target_options(cmd: &mut Command, target: &SshTarget) {
    if let Some(p) = target.port {
        cmd.arg("-p").arg(p.to_string());
    }
    if let Some(u) = &target.user {
        cmd.arg("-l").arg(u);
    }
    if let Some(k) = &target.keyfile {
        cmd.arg("-i").arg(k);
    }
    if let Some(k) = &target.known_hosts {
        cmd.arg("-o").arg(format!("UserKnownHostsFile={k}"));
    }
    if target.no_verify {
        cmd.args(["-o", "StrictHostKeyChecking=no"]);
    }
    if target.no_tty {
        cmd.args(["-o", "BatchMode=yes"]);
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn words_reach_the_remote_shell_as_written() {
        assert_eq!(quote("/opt/lv/luavirt"), "'/opt/lv/luavirt'");
        assert_eq!(quote("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
    }
}
