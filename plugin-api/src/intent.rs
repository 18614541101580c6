//! Intent records: how a multi-step change survives luavirt being killed half-way.
//!
//! Before the first step that deleting a new file cannot undo, a driver records what it is
//! about to do (its own serde type: the operation, each step's before and after) in one file
//! per domain, written atomically and fsync'd. It moves the record's `phase` on as steps
//! complete, and removes the record when the change is complete or undone. Whoever next takes
//! the domain's lock and finds a record finishes or undoes the change from the truth (the
//! hypervisor, the files), then removes it, unless the process that began it still runs (a
//! long wait for a block job holds no lock; it is in progress, not interrupted). Reads only
//! look: [`IntentFile::read`] writes nothing.

use crate::DriverError;
use crate::fsutil::{create_private_dir, remove_durably, write_atomic};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io;
use std::path::{Path, PathBuf};

/// A change in progress, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Intent<T> {
    /// The process that began it (0: none; it gave the change up).
    pub pid: u32,
    /// That process's start time (field 22 of /proc/PID/stat), to tell it from a later
    /// process with the same pid.
    #[serde(default)]
    pub pid_start: u64,
    /// When it began, seconds since the epoch.
    pub started_at: i64,
    /// How far it got: the last step known to be complete.
    pub phase: String,
    /// What it changes (the driver's own description).
    pub change: T,
}

impl<T> Intent<T> {
    /// A change about to begin, in phase `begun`.
    pub fn new(change: T) -> Intent<T> {
        let pid = std::process::id();
        Intent {
            pid,
            pid_start: process_start(pid).unwrap_or(0),
            started_at: crate::time::now_secs(),
            phase: "begun".to_string(),
            change,
        }
    }

    /// Whether the process that began the change still runs (then it is in progress, not
    /// interrupted).
    pub fn owner_alive(&self) -> bool {
        self.pid != 0 && process_start(self.pid).is_some_and(|s| s == self.pid_start)
    }

    /// Whether it got to `phase` or past it, given the order of an operation's phases.
    pub fn reached(&self, phase: &str, order: &[&str]) -> bool {
        let at = |p: &str| order.iter().position(|o| *o == p);
        matches!((at(&self.phase), at(phase)), (Some(a), Some(b)) if a >= b)
    }
}

/// Start time of process `pid` (field 22 of /proc/PID/stat), if it runs.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None; // a zombie has exited
    }
    fields.get(19)?.parse().ok()
}

/// The record file of one domain (at most one change per domain runs at a time: changes hold
/// the domain's lock).
#[derive(Clone, Debug)]
pub struct IntentFile {
    path: PathBuf,
}

impl IntentFile {
    /// The record kept at `path` (its folder is created, 0700, when a record is written).
    pub fn new(path: PathBuf) -> IntentFile {
        IntentFile { path }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The change recorded, if one is pending. A record that does not parse is an error that
    /// names the file (it is left as it is).
    pub fn read<T: DeserializeOwned>(&self) -> io::Result<Option<Intent<T>>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the intent record {} is corrupt ({e})", self.path.display()),
            )
        })
    }

    /// Records `intent` durably, replacing the previous record.
    pub fn write<T: Serialize>(&self, intent: &Intent<T>) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir)?;
        }
        let json = serde_json::to_vec_pretty(intent).map_err(io::Error::other)?;
        write_atomic(&self.path, &json)
    }

    /// Removes the record (the change is complete or undone), durably.
    pub fn clear(&self) -> io::Result<()> {
        remove_durably(&self.path)
    }

    /// Records that `change` begins, and returns it as a change under way.
    pub fn begin<T: Serialize>(&self, change: T) -> Result<Pending<T>, DriverError> {
        let pending = Pending { file: self.clone(), intent: Intent::new(change), finished: false };
        pending.save()?;
        Ok(pending)
    }

    /// A recorded change, as a change under way (to move on or finish).
    pub fn resume<T: Serialize>(&self, intent: Intent<T>) -> Pending<T> {
        Pending { file: self.clone(), intent, finished: false }
    }
}

/// A change under way: its record, kept up to date as steps complete. Dropped without
/// [`Pending::done`] (an error returned half-way), the record is marked as given up (pid 0),
/// so the next call settles it, even in this same process.
pub struct Pending<T: Serialize> {
    file: IntentFile,
    intent: Intent<T>,
    finished: bool,
}

impl<T: Serialize> Pending<T> {
    /// The change as recorded.
    pub fn intent(&self) -> &Intent<T> {
        &self.intent
    }

    fn save(&self) -> Result<(), DriverError> {
        self.file.write(&self.intent).map_err(|e| DriverError::io("write the intent record", &self.file.path, e))
    }

    /// Records that the change got to `phase`.
    pub fn phase(&mut self, phase: &str) -> Result<(), DriverError> {
        self.intent.phase = phase.to_string();
        self.save()
    }

    /// Records a change to what the change does (a step that found out more).
    pub fn update(&mut self, f: impl FnOnce(&mut T)) -> Result<(), DriverError> {
        f(&mut self.intent.change);
        self.save()
    }

    /// The change goes on in a later call of this same process (a migration's next phase):
    /// the record stays as it is, owned by this process, so other processes see the change
    /// in progress; if this process dies first, the next call settles it.
    pub fn hand_on(mut self) {
        self.finished = true;
    }

    /// The change is complete, or fully undone: forget it.
    pub fn done(mut self) -> Result<(), DriverError> {
        self.file.clear().map_err(|e| DriverError::io("remove the intent record", &self.file.path, e))?;
        self.finished = true;
        Ok(())
    }
}

impl<T: Serialize> Drop for Pending<T> {
    fn drop(&mut self) {
        if !self.finished {
            self.intent.pid = 0;
            let _ = self.file.write(&self.intent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    struct Change {
        overlay: String,
    }

    #[test]
    fn a_record_is_written_read_moved_on_and_cleared() {
        let dir = std::env::temp_dir().join(format!("lv-intent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = IntentFile::new(dir.join("intents/dom.json"));
        assert_eq!(file.read::<Change>().unwrap(), None);
        let mut i = Intent::new(Change { overlay: "/i/a.s1".into() });
        file.write(&i).unwrap();
        i.phase = "switched".into();
        file.write(&i).unwrap();
        let back: Intent<Change> = file.read().unwrap().unwrap();
        assert_eq!(back, i);
        assert!(back.reached("begun", &["begun", "switched", "done"]));
        assert!(back.reached("switched", &["begun", "switched", "done"]));
        assert!(!back.reached("done", &["begun", "switched", "done"]));
        assert!(back.owner_alive(), "this process began it");
        let given_up = Intent { pid: 0, ..back.clone() };
        assert!(!given_up.owner_alive());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);
        file.clear().unwrap();
        file.clear().unwrap();
        assert_eq!(file.read::<Change>().unwrap(), None);
        // A change given up half-way (dropped without done) is left for the next call.
        let mut p = file.begin(Change { overlay: "/i/b".into() }).unwrap();
        p.phase("switched").unwrap();
        drop(p);
        let left: Intent<Change> = file.read().unwrap().unwrap();
        assert_eq!((left.pid, left.phase.as_str()), (0, "switched"));
        file.begin(Change { overlay: "/i/c".into() }).unwrap().done().unwrap();
        assert_eq!(file.read::<Change>().unwrap(), None);
        std::fs::write(file.path(), b"{").unwrap();
        let err = file.read::<Change>().unwrap_err();
        assert!(err.to_string().contains("dom.json is corrupt"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
