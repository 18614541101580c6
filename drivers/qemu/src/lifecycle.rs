//! Starting, stopping and observing QEMU processes of domains.

use crate::monitor::sh_quote;
use crate::process;
use crate::qmp::Qmp;
use crate::state::{MONITORS, RunState, ensure_parent};
use crate::{QemuDriver, cmdline, images};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::fsutil::{PRIVATE_FILE, create_private_dir};
use luavirt_plugin_api::kit::{Call, DriverResult, Level};
use luavirt_plugin_api::records::DomainState;
use luavirt_plugin_api::{DriverError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a call waits for an answer from a QEMU monitor.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `start` waits for a new QEMU to open its monitor.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

fn hypervisor(message: String) -> DriverError {
    DriverError::new(ErrorCode::Hypervisor, message)
}

impl QemuDriver {
    /// The domain's QEMU, if one is running (a dead one reads as none; its leftovers are
    /// cleared by the next change, never by a read).
    pub(crate) fn running(&self, name: &str) -> DriverResult<Option<RunState>> {
        let Some(rs) = self.state.read_run_state(name)? else { return Ok(None) };
        Ok(process::is_alive(rs.pid, rs.start_time).then_some(rs))
    }

    /// The state and id of a domain. The id is QEMU's pid while it runs, else -1.
    pub(crate) fn state_of(&self, name: &str, call: &mut Call) -> DriverResult<(DomainState, i64)> {
        let Some(rs) = self.running(name)? else {
            return Ok((DomainState::ShutOff, -1));
        };
        let (sock, _claim) = self.state.claim_monitor(name)?;
        let status =
            Qmp::connect(&sock, MONITOR_TIMEOUT, MONITOR_TIMEOUT).and_then(|mut q| q.execute("query-status", None));
        let state = match status {
            Ok(s) => match s.get("status").and_then(|v| v.as_str()).unwrap_or("running") {
                "running" | "debug" => DomainState::Running,
                "shutdown" => DomainState::InShutdown,
                "internal-error" | "io-error" | "guest-panicked" => DomainState::Crashed,
                "suspended" => DomainState::PmSuspended,
                _ => DomainState::Paused,
            },
            Err(e) => {
                call.log(
                    Level::Warning,
                    &format!("domain '{name}': QEMU (pid {}) runs but its monitor did not answer: {e}", rs.pid),
                );
                DomainState::Running
            }
        };
        Ok((state, rs.pid as i64))
    }

    /// Starts `dom`'s QEMU; the caller holds the domain's lock and has recorded the change.
    pub(crate) fn start(&self, dom: &DomainXml, opts: &StartOptions, call: &mut Call) -> DriverResult {
        let name = dom.name();
        if self.running(&name)?.is_some() {
            return Err(DriverError::new(ErrorCode::InvalidState, format!("Domain '{name}' is already running")));
        }
        // Leftovers of a QEMU that died (transient overlays included) go first.
        self.state.clear_run(&name)?;
        for d in dom.disks() {
            if let Some(path) = d.source.path() {
                images::check_readable(&name, &d, path)?;
            }
        }
        let run_dir = self.state.run_dir(&name)?;
        create_private_dir(&run_dir).map_err(|e| DriverError::io("create", &run_dir, e))?;
        let live = with_transient_overlays(dom, &run_dir)?;
        let mut plan = cmdline::build(&live)?;
        if opts.incoming.is_some() || opts.migrate_in {
            plan.argv.extend(["-incoming".to_string(), "defer".to_string()]);
        }
        for w in &plan.warnings {
            call.log(Level::Warning, &format!("domain '{name}': {w}"));
        }
        let sock = self.state.monitor_socket(&name, MONITORS - 1)?;
        if sock.as_os_str().len() > 100 {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!(
                    "The monitor socket path {} is too long for a Unix socket; use a shorter state folder (LUAVIRT_STATE_DIR or ?state=DIR)",
                    sock.display()
                ),
            ));
        }
        let listeners = (0..MONITORS)
            .map(|k| {
                let path = self.state.monitor_socket(&name, k)?;
                let l =
                    UnixListener::bind(&path).map_err(|e| DriverError::io("create the monitor socket", &path, e))?;
                // Whoever connects runs commands as QEMU's user: owner only, whatever the umask.
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| DriverError::io("set the mode of", &path, e))?;
                Ok(l)
            })
            .collect::<DriverResult<Vec<_>>>()?;
        let log_path = self.state.log_file(&name)?;
        ensure_parent(&log_path)?;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(PRIVATE_FILE)
            .open(&log_path)
            .map_err(|e| DriverError::io("open", &log_path, e))?;
        let log_start = log.seek(SeekFrom::End(0)).unwrap_or(0);
        let _ = writeln!(
            log,
            "{} starting domain '{name}': {}",
            luavirt_plugin_api::time::format_local(luavirt_plugin_api::time::now_secs()),
            plan.argv.join(" ")
        );

        call.log(Level::Debug, &format!("domain '{name}': running {}", plan.argv.join(" ")));
        // QEMU waits at its gate until its pid is recorded: it never holds image locks unseen.
        let mut gated = process::spawn(&plan.argv, &listeners, &log)
            .map_err(|e| hypervisor(format!("Cannot run {}: {e}", plan.argv[0])))?;
        drop(listeners); // QEMU holds them now; if QEMU dies, connecting fails at once.
        failpoint::hit("start:spawned");
        let pid = gated.child.id() as i32;
        let fail = |child: &mut std::process::Child, why: String| -> DriverError {
            let _ = child.kill();
            let _ = child.wait();
            let _ = self.state.clear_run(&name);
            let output = read_from(&log_path, log_start);
            hypervisor(format!("QEMU failed to start domain '{name}': {why}\n{}", output.trim_end()))
        };
        let Some(start_time) = process::start_time(pid) else {
            return Err(fail(&mut gated.child, "it exited at once".to_string()));
        };
        let started_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if let Err(e) = self.state.write_run_state(&name, &RunState { pid, start_time, started_at }) {
            return Err(fail(&mut gated.child, e.message));
        }
        failpoint::hit("start:recorded");
        if let Err(e) = gated.open() {
            return Err(fail(&mut gated.child, format!("it did not pass its start gate ({e})")));
        }
        let qmp = match Qmp::connect(&self.state.monitor_socket(&name, 0)?, STARTUP_TIMEOUT, STARTUP_TIMEOUT) {
            Ok(q) => q,
            Err(e) => {
                return Err(fail(
                    &mut gated.child,
                    format!("its monitor did not answer ({e}); see {}", log_path.display()),
                ));
            }
        };
        drop(qmp);
        failpoint::hit("start:monitor");
        if opts.migrate_in {
            // The migration's prepare takes it from here; reap QEMU as below.
            let mut child = gated.child;
            std::thread::spawn(move || child.wait());
            return Ok(());
        }
        if let Err(e) = self.resume_started(&name, opts, call) {
            return Err(fail(&mut gated.child, e.message));
        }
        // Reap QEMU when it exits if this process still runs then (a long Lua script).
        let mut child = gated.child;
        std::thread::spawn(move || child.wait());
        Ok(())
    }

    /// Settles a start that a killed call left unfinished (`finished`: it had got to its
    /// last step): a QEMU whose guest ran is kept, one that never ran the guest is stopped,
    /// so the domain is either running as asked or shut off. Says what it did.
    pub(crate) fn settle_start(&self, name: &str, finished: bool, call: &mut Call) -> DriverResult<String> {
        if self.running(name)?.is_none() {
            self.state.clear_run(name)?;
            return Ok("no QEMU of it runs; the domain is shut off".to_string());
        }
        let status = self.monitor(name).and_then(|mut m| m.status()).unwrap_or_default();
        if finished || status == "running" {
            return Ok(format!("its QEMU is up ({status}) and stays"));
        }
        self.stop(name, call)?;
        Ok(format!("its QEMU had not run the guest yet ({status}); it was stopped and the domain is shut off"))
    }

    /// Brings a QEMU started with `-S` to where `opts` asks: memory loaded, running or paused.
    fn resume_started(&self, name: &str, opts: &StartOptions, call: &mut Call) -> DriverResult {
        let mut mon = self.monitor(name)?;
        if let Some(file) = &opts.incoming {
            let _ = mon.exec(
                "migrate-set-capabilities",
                json!({ "capabilities": [{ "capability": "events", "state": true }] }),
            );
            // A save file has a header before the memory stream.
            let from = match luavirt_plugin_api::savefile::read(std::path::Path::new(file)) {
                Ok(Some((_, offset))) => format!("exec:tail -c +{} {}", offset + 1, sh_quote(file)),
                Ok(None) => format!("exec:cat {}", sh_quote(file)),
                Err(e) => {
                    return Err(DriverError::new(ErrorCode::CorruptState, format!("Domain '{name}': memory file {e}")));
                }
            };
            mon.exec("migrate-incoming", json!({ "uri": from }))?;
            mon.wait_migration(call, "loading memory")?;
        }
        if let Some(l) = &opts.load_internal {
            let vm = mon.top_node(&l.vmstate)?;
            let nodes = l.disks.iter().map(|t| mon.top_node(t)).collect::<DriverResult<Vec<_>>>()?;
            mon.run_job("snapshot-load", json!({ "tag": l.tag, "vmstate": vm, "devices": nodes }), "lv-load")?;
        }
        if !opts.paused {
            mon.exec("cont", Value::Null)?;
        }
        Ok(())
    }

    /// Stops the domain's QEMU at once; the caller holds the domain's lock.
    pub(crate) fn stop(&self, name: &str, _call: &mut Call) -> DriverResult {
        let rs = self.state.read_run_state(name)?;
        let Some(rs) = rs.filter(|rs| process::is_alive(rs.pid, rs.start_time)) else {
            self.state.clear_run(name)?;
            return Err(DriverError::new(ErrorCode::InvalidState, format!("Domain '{name}' is not running")));
        };
        let (sock, _claim) = self.state.claim_monitor(name)?;
        let quit = Qmp::connect(&sock, MONITOR_TIMEOUT, MONITOR_TIMEOUT).and_then(|mut q| {
            q.execute("quit", None)?;
            q.wait_closed();
            Ok(())
        });
        let stopped = quit.is_ok() && process::wait_exit(rs.pid, Duration::from_secs(10))
            || process::terminate(rs.pid, Duration::from_secs(5));
        if !stopped {
            return Err(hypervisor(format!(
                "QEMU of domain '{name}' (pid {}) did not stop, even after SIGKILL",
                rs.pid
            )));
        }
        self.state.clear_run(name)
    }
}

/// How `start` brings a domain up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct StartOptions {
    /// Stay paused.
    pub paused: bool,
    /// Load memory saved in this file (`migrate` to `exec:`) before running.
    pub incoming: Option<String>,
    /// Load memory from an internal snapshot.
    pub load_internal: Option<LoadInternal>,
    /// Wait, paused, for a migration to bring the memory in (`-incoming defer`).
    #[serde(default)]
    pub migrate_in: bool,
}

/// Memory kept in an internal snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LoadInternal {
    /// The snapshot's tag.
    pub tag: String,
    /// The disk whose image holds the memory.
    pub vmstate: String,
    /// Every disk taken internally.
    pub disks: Vec<String>,
}

/// The domain as QEMU runs it: each `<transient/>` disk replaced by a fresh qcow2 overlay in
/// the run folder, so its changes are thrown away with the run folder at stop, or at the
/// next start after a crash.
fn with_transient_overlays(dom: &DomainXml, run_dir: &Path) -> DriverResult<DomainXml> {
    let mut live = dom.clone();
    for d in dom.disks().into_iter().filter(|d| d.transient) {
        let Some(path) = d.source.path() else {
            continue;
        };
        let overlay = transient_overlay(run_dir, &d.target).display().to_string();
        images::create_overlay(&overlay, path, d.format_or_raw())?;
        live.set_disk_source(&d.target, &overlay, "qcow2").map_err(|m| DriverError::new(ErrorCode::Internal, m))?;
    }
    Ok(live)
}

/// The throw-away overlay a `<transient/>` disk runs on, in the domain's run folder.
pub(crate) fn transient_overlay(run_dir: &Path, target: &str) -> std::path::PathBuf {
    run_dir.join(format!("transient-{target}.qcow2"))
}

/// What `path` holds after byte `offset` (QEMU's output since it was started).
fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut s);
    }
    s
}
