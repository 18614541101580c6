//! The `.vmsd` beside a `.vmx`: VMware's snapshot database, read and written losslessly.
//!
//! It has the `.vmx` syntax (kept by [`VmxFile`]: comments, key case, line endings, unknown
//! keys and the file's own encoding stay as they are) and holds:
//! - `snapshot.lastUID` (only ever grows), `snapshot.current`, `snapshot.numSnapshots`, and
//!   `snapshot.mruN.uid` (recently used);
//! - per snapshot, at a dense index K that is not its uid: `snapshotK.uid`, `.parent` (none
//!   for a root), `.filename` (the `.vmsn`), `.displayName`, `.description`, `.type`,
//!   `.createTimeHigh`/`.createTimeLow` ([`time`]), `.numDisks`, and per disk J
//!   `.diskJ.fileName` (the file current when the snapshot was taken, now its read-only
//!   point-in-time image) and `.diskJ.node` (`scsi0:0`).
//!
//! Reading checks what VMware's Snapshot Manager relies on (dense indexes, uids, parents,
//! current, counts, names unique since luavirt names snapshots by `displayName`); an error
//! names the file and line. Changes rewrite, add, remove or renumber only the lines they
//! concern; an unchanged file writes back byte-identical.

pub mod time;

use crate::vmx::{Encoding, Entry, VmxError, VmxFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One disk of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotDisk {
    /// `diskJ.fileName` as written: the point-in-time image.
    pub file: String,
    /// `diskJ.node`, like `scsi0:0`.
    pub node: String,
    /// The line of `diskJ.fileName`.
    pub line: u32,
}

/// One snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// `uid`.
    pub uid: u32,
    /// `parent`: the parent's uid.
    pub parent: Option<u32>,
    /// `displayName`: the name luavirt knows it by.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `filename`: the `.vmsn` beside the `.vmx`.
    pub vmsn: Option<String>,
    /// When it was taken, in microseconds since the epoch.
    pub created: Option<i64>,
    /// Its disks, in `diskJ` order.
    pub disks: Vec<SnapshotDisk>,
    /// The line of its `uid`.
    pub line: u32,
}

/// A snapshot to add.
#[derive(Clone, Debug)]
pub struct NewSnapshot {
    /// `displayName`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `filename` (the `.vmsn`).
    pub vmsn: String,
    /// Creation time in microseconds since the epoch.
    pub created: i64,
    /// `(fileName, node)` of each disk taken.
    pub disks: Vec<(String, String)>,
}

/// A `.vmsd`, on disk or not yet.
#[derive(Clone, Debug)]
pub struct Vmsd {
    path: PathBuf,
    original: Option<Vec<u8>>,
    file: VmxFile,
    last_uid: u32,
    current: Option<u32>,
    snapshots: Vec<Snapshot>,
}

/// Splits `snapshot12.displayname` (lower case) into `(12, "displayname")`.
fn split_snapshot_key(key: &str) -> Option<(u32, &str)> {
    let rest = key.strip_prefix("snapshot")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    if digits == 0 || rest.as_bytes()[digits] != b'.' {
        return None;
    }
    Some((rest[..digits].parse().ok()?, &rest[digits + 1..]))
}

/// Splits `disk3.filename` into `(3, "filename")`.
fn split_disk_key(rest: &str) -> Option<(u32, &str)> {
    let (disk, field) = rest.split_once('.')?;
    let n = disk.strip_prefix("disk")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((n.parse().ok()?, field))
}

/// Splits `snapshot.mru2.uid` (lower case) into `(2, "uid")`.
fn split_mru_key(key: &str) -> Option<(u32, &str)> {
    let rest = key.strip_prefix("snapshot.mru")?;
    let (n, field) = rest.split_once('.')?;
    Some((n.parse().ok()?, field))
}

/// The keys of one `snapshotK` block, by lower-case field, and of its disks.
#[derive(Default)]
struct Block<'a> {
    fields: BTreeMap<String, Entry<'a>>,
    disks: BTreeMap<u32, BTreeMap<String, Entry<'a>>>,
    first_line: u32,
}

/// What to say after a problem in a `.vmsd`.
const FIX: &str = "fix the .vmsd (VMware's Snapshot Manager keeps it) so that it matches the VM";

fn number(file: &VmxFile, e: &Entry) -> Result<i64, VmxError> {
    e.value
        .trim()
        .parse()
        .map_err(|_| file.error(e.line, format!("{} is \"{}\", not a whole number; {FIX}", e.key, e.value)))
}

fn uid_number(file: &VmxFile, e: &Entry) -> Result<u32, VmxError> {
    let n = number(file, e)?;
    u32::try_from(n).map_err(|_| file.error(e.line, format!("{} is \"{}\", not a snapshot uid; {FIX}", e.key, e.value)))
}

impl Vmsd {
    /// The `.vmsd` that belongs to the `.vmx` at `vmx_path`: same folder and name.
    pub fn path_for(vmx_path: &Path) -> PathBuf {
        let stem = crate::vm::stem_name(vmx_path);
        vmx_path.with_file_name(format!("{stem}.vmsd"))
    }

    /// A database with no snapshot, not on disk yet, in `encoding` with line ending `ending`
    /// (those of its `.vmx`).
    pub fn empty(path: &Path, encoding: Encoding, ending: &[u8]) -> Vmsd {
        let mut text = format!(".encoding = \"{}\"", encoding.name()).into_bytes();
        text.extend_from_slice(ending);
        let file = VmxFile::parse(&text, &path.display().to_string()).expect("one .encoding line parses");
        Vmsd { path: path.to_path_buf(), original: None, file, last_uid: 0, current: None, snapshots: Vec::new() }
    }

    /// Parses the bytes of the `.vmsd` at `path`.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Vmsd, VmxError> {
        let file = VmxFile::parse(bytes, &path.display().to_string())?;
        let mut v = Vmsd::read(file)?;
        v.path = path.to_path_buf();
        v.original = Some(bytes.to_vec());
        Ok(v)
    }

    fn read(file: VmxFile) -> Result<Vmsd, VmxError> {
        let mut last_uid = None;
        let mut current = None;
        let mut count = None;
        let mut blocks: BTreeMap<u32, Block> = BTreeMap::new();
        for e in file.entries() {
            let key = e.key.to_ascii_lowercase();
            match key.as_str() {
                "snapshot.lastuid" => last_uid = Some(uid_number(&file, &e)?),
                "snapshot.current" => current = Some(e),
                "snapshot.numsnapshots" => count = Some(e),
                _ => {}
            }
            let Some((k, rest)) = split_snapshot_key(&key) else {
                continue;
            };
            let b = blocks.entry(k).or_default();
            if b.first_line == 0 {
                b.first_line = e.line;
            }
            match split_disk_key(rest) {
                Some((j, field)) => {
                    b.disks.entry(j).or_default().insert(field.to_string(), e);
                }
                None => {
                    b.fields.insert(rest.to_string(), e);
                }
            }
        }
        let mut snapshots = Vec::new();
        for (i, (k, b)) in blocks.iter().enumerate() {
            if *k != i as u32 {
                return Err(file.error(
                    b.first_line,
                    format!(
                        "snapshot{k} follows snapshot{} but snapshot{i} is missing: the snapshots are numbered 0, 1, 2, ... without gaps; renumber them, or {FIX}",
                        i.saturating_sub(1)
                    ),
                ));
            }
            snapshots.push(Vmsd::snapshot(&file, *k, b)?);
        }
        let v = Vmsd {
            path: PathBuf::from(file.file()),
            original: None,
            last_uid: last_uid.unwrap_or(0),
            current: None,
            snapshots,
            file: file.clone(),
        };
        v.check(count, current)
    }

    /// Reads one block.
    fn snapshot(file: &VmxFile, k: u32, b: &Block) -> Result<Snapshot, VmxError> {
        let field = |name: &str| b.fields.get(name);
        let uid_entry = field("uid")
            .ok_or_else(|| file.error(b.first_line, format!("snapshot{k} has no snapshot{k}.uid; {FIX}")))?;
        let uid = uid_number(file, uid_entry)?;
        let parent = match field("parent") {
            Some(e) if e.value.trim().is_empty() => None,
            Some(e) => Some(uid_number(file, e)?),
            None => None,
        };
        let name = field("displayname").map(|e| e.value.to_string()).ok_or_else(|| {
            file.error(
                uid_entry.line,
                format!("snapshot{k} (uid {uid}) has no displayName, which luavirt names it by; name it in the VMware client, or add snapshot{k}.displayName"),
            )
        })?;
        let created = match (field("createtimehigh"), field("createtimelow")) {
            (Some(h), Some(l)) => Some(time::from_high_low(number(file, h)?, number(file, l)?)),
            (None, None) => None,
            (Some(e), None) | (None, Some(e)) => {
                return Err(
                    file.error(e.line, format!("snapshot{k} has only one of createTimeHigh and createTimeLow; {FIX}"))
                );
            }
        };
        let mut disks = Vec::new();
        for (i, (j, d)) in b.disks.iter().enumerate() {
            let any = d.values().next().map_or(b.first_line, |e| e.line);
            if *j != i as u32 {
                return Err(file
                    .error(any, format!("snapshot{k}.disk{j} follows a gap: snapshot{k}.disk{i} is missing; {FIX}")));
            }
            let (Some(f), Some(n)) = (d.get("filename"), d.get("node")) else {
                let missing = if d.contains_key("filename") { "node" } else { "fileName" };
                return Err(file.error(any, format!("snapshot{k}.disk{j} has no {missing}; {FIX}")));
            };
            disks.push(SnapshotDisk { file: f.value.to_string(), node: n.value.to_string(), line: f.line });
        }
        if let Some(e) = field("numdisks")
            && number(file, e)? != disks.len() as i64
        {
            return Err(file.error(
                e.line,
                format!("snapshot{k}.numDisks is \"{}\" but the snapshot lists {} disks; {FIX}", e.value, disks.len()),
            ));
        }
        Ok(Snapshot {
            uid,
            parent,
            name,
            description: field("description").map(|e| e.value.to_string()).unwrap_or_default(),
            vmsn: field("filename").map(|e| e.value.to_string()),
            created,
            disks,
            line: uid_entry.line,
        })
    }

    /// Checks what ties the snapshots together: unique uids and names, parents and the
    /// current snapshot that exist, no parent loop, the count.
    fn check(mut self, count: Option<Entry>, current: Option<Entry>) -> Result<Vmsd, VmxError> {
        let f = &self.file;
        for (i, s) in self.snapshots.iter().enumerate() {
            if let Some(o) = self.snapshots[..i].iter().find(|o| o.uid == s.uid) {
                return Err(
                    f.error(s.line, format!("uid {} is used twice (lines {} and {}); {FIX}", s.uid, o.line, s.line))
                );
            }
            if let Some(o) = self.snapshots[..i].iter().find(|o| o.name == s.name) {
                return Err(f.error(
                    s.line,
                    format!(
                        "two snapshots are named \"{}\" (uids {} and {}), and luavirt names snapshots by displayName; rename one in the VMware client",
                        s.name, o.uid, s.uid
                    ),
                ));
            }
        }
        for s in &self.snapshots {
            let mut seen = vec![s.uid];
            let mut at = s;
            while let Some(p) = at.parent {
                at = self.snapshots.iter().find(|o| o.uid == p).ok_or_else(|| {
                    f.error(
                        at.line,
                        format!(
                            "snapshot \"{}\" (uid {}) names parent uid {p}, which no snapshot has; {FIX}",
                            at.name, at.uid
                        ),
                    )
                })?;
                if seen.contains(&at.uid) {
                    return Err(f.error(s.line, format!("the parents of snapshot \"{}\" form a loop; {FIX}", s.name)));
                }
                seen.push(at.uid);
            }
        }
        if let Some(e) = count
            && number(f, &e)? != self.snapshots.len() as i64
        {
            return Err(f.error(
                e.line,
                format!(
                    "snapshot.numSnapshots is \"{}\" but the file holds {} snapshots; {FIX}",
                    e.value,
                    self.snapshots.len()
                ),
            ));
        }
        if let Some(e) = current {
            let uid = uid_number(f, &e)?;
            if !self.snapshots.iter().any(|s| s.uid == uid) {
                return Err(f.error(
                    e.line,
                    format!(
                        "snapshot.current names uid {uid}, which no snapshot has (uids: {}); set it to the snapshot the VM's disks descend from, or {FIX}",
                        self.snapshots.iter().map(|s| s.uid.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            self.current = Some(uid);
        }
        Ok(self)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes on disk when read; `None` when there was no file.
    pub fn original(&self) -> Option<&[u8]> {
        self.original.as_deref()
    }

    /// The bytes to write.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.file.to_bytes()
    }

    /// The snapshots, in file order.
    pub fn snapshots(&self) -> &[Snapshot] {
        &self.snapshots
    }

    /// The snapshot with uid `uid`.
    pub fn by_uid(&self, uid: u32) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.uid == uid)
    }

    /// The snapshot named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.name == name)
    }

    /// The current snapshot.
    pub fn current(&self) -> Option<&Snapshot> {
        self.current.and_then(|u| self.by_uid(u))
    }

    /// The line of `snapshot.current`, for messages.
    pub fn current_line(&self) -> u32 {
        self.file.entry("snapshot.current").map_or(0, |e| e.line)
    }

    fn index(&self, uid: u32) -> usize {
        self.snapshots.iter().position(|s| s.uid == uid).expect("a snapshot of this file")
    }

    /// Re-reads the model from the edited lines.
    fn reload(&mut self) -> Result<(), VmxError> {
        let file = VmxFile::parse(&self.file.to_bytes(), self.file.file())?;
        let fresh = Vmsd::read(file)?;
        self.file = fresh.file;
        self.last_uid = fresh.last_uid;
        self.current = fresh.current;
        self.snapshots = fresh.snapshots;
        Ok(())
    }

    /// Sets `key`, or adds it right after the entry `after` (at the end when that is absent).
    fn set_or_insert(&mut self, key: &str, value: &str, after: &str) -> Result<u32, VmxError> {
        if let Some(e) = self.file.entry(key) {
            let line = e.line;
            self.file.set(key, value)?;
            return Ok(line);
        }
        match self.file.entry(after).map(|e| e.line) {
            Some(line) => self.file.insert_after(line, key, value),
            None => self.file.append(key, value),
        }
    }

    /// The last line of any `snapshotK.` key.
    fn last_block_line(&self) -> Option<u32> {
        self.file.entries().filter(|e| split_snapshot_key(&e.key.to_ascii_lowercase()).is_some()).map(|e| e.line).max()
    }

    /// The uid the next snapshot gets: one above `lastUID` (and above every uid in use).
    pub fn next_uid(&self) -> Result<u32, VmxError> {
        let top = self.snapshots.iter().map(|s| s.uid).fold(self.last_uid, u32::max);
        top.checked_add(1).ok_or_else(|| {
            let line = self.file.entry("snapshot.lastUID").map_or(0, |e| e.line);
            self.file.error(
                line,
                format!("snapshot uids have reached {top}, the largest there is, so a new snapshot gets none; {FIX}"),
            )
        })
    }

    /// Adds a snapshot as a child of the current one and makes it current, as VMware does:
    /// `lastUID` grows by one and is the new uid. Returns the uid.
    pub fn add(&mut self, s: &NewSnapshot) -> Result<u32, VmxError> {
        let uid = self.next_uid()?;
        let k = self.snapshots.len();
        let parent = self.current;
        self.set_or_insert("snapshot.lastUID", &uid.to_string(), ".encoding")?;
        let current_line = self.set_or_insert("snapshot.current", &uid.to_string(), "snapshot.lastUID")?;
        let (high, low) = time::to_high_low(s.created);
        let p = format!("snapshot{k}");
        let mut lines = vec![(format!("{p}.uid"), uid.to_string()), (format!("{p}.filename"), s.vmsn.clone())];
        if let Some(parent) = parent {
            lines.push((format!("{p}.parent"), parent.to_string()));
        }
        lines.extend([
            (format!("{p}.displayName"), s.name.clone()),
            (format!("{p}.description"), s.description.clone()),
            (format!("{p}.type"), "1".to_string()),
            (format!("{p}.createTimeHigh"), high.to_string()),
            (format!("{p}.createTimeLow"), low.to_string()),
            (format!("{p}.numDisks"), s.disks.len().to_string()),
        ]);
        for (j, (file, node)) in s.disks.iter().enumerate() {
            lines.push((format!("{p}.disk{j}.fileName"), file.clone()));
            lines.push((format!("{p}.disk{j}.node"), node.clone()));
        }
        let mut at = self.last_block_line().unwrap_or(current_line);
        for (key, value) in lines {
            at = self.file.insert_after(at, &key, &value)?;
        }
        let count = (k + 1).to_string();
        if self.file.entry("snapshot.numSnapshots").is_some() {
            self.file.set("snapshot.numSnapshots", &count)?;
        } else {
            self.file.append("snapshot.numSnapshots", &count)?;
        }
        self.reload()?;
        Ok(uid)
    }

    /// Makes snapshot `uid` the current one.
    pub fn set_current(&mut self, uid: u32) -> Result<(), VmxError> {
        self.set_or_insert("snapshot.current", &uid.to_string(), "snapshot.lastUID")?;
        self.reload()
    }

    /// Sets `diskJ.fileName` of snapshot `uid`.
    pub fn set_disk_file(&mut self, uid: u32, j: usize, file: &str) -> Result<(), VmxError> {
        let k = self.index(uid);
        self.file.set(&format!("snapshot{k}.disk{j}.fileName"), file)?;
        self.reload()
    }

    /// The keys as written of every entry whose lower-case key `matches`.
    fn keys_where(&self, matches: impl Fn(&str) -> bool) -> Vec<String> {
        self.file.entries().filter(|e| matches(&e.key.to_ascii_lowercase())).map(|e| e.key.to_string()).collect()
    }

    /// Removes snapshot `uid`: its children take its parent; if it was current, its parent
    /// becomes current (no snapshot is current when it had none); the recently-used list
    /// forgets it; the snapshots after it move down one index, so the indexes stay dense.
    pub fn remove(&mut self, uid: u32) -> Result<(), VmxError> {
        let k = self.index(uid);
        let parent = self.snapshots[k].parent;
        let children: Vec<usize> =
            self.snapshots.iter().enumerate().filter(|(_, s)| s.parent == Some(uid)).map(|(i, _)| i).collect();
        for c in children {
            let key = format!("snapshot{c}.parent");
            match parent {
                Some(p) => {
                    self.file.set(&key, &p.to_string())?;
                }
                None => {
                    self.file.remove(&key);
                }
            }
        }
        if self.current == Some(uid) {
            match parent {
                Some(p) => {
                    self.file.set("snapshot.current", &p.to_string())?;
                }
                None => {
                    self.file.remove("snapshot.current");
                }
            }
        }
        self.forget_recent(uid)?;
        let prefix = format!("snapshot{k}.");
        for key in self.keys_where(|key| key.starts_with(&prefix)) {
            self.file.remove(&key);
        }
        for i in k + 1..self.snapshots.len() {
            let old = format!("snapshot{i}.");
            for key in self.keys_where(|key| key.starts_with(&old)) {
                let new = format!("snapshot{}.{}", i - 1, &key[old.len()..]);
                self.file.rename(&key, &new)?;
            }
        }
        let count = (self.snapshots.len() - 1).to_string();
        if self.file.entry("snapshot.numSnapshots").is_some() {
            self.file.set("snapshot.numSnapshots", &count)?;
        }
        self.reload()
    }

    /// Drops `snapshot.mruN.*` entries that name `uid` and renumbers the others densely.
    fn forget_recent(&mut self, uid: u32) -> Result<(), VmxError> {
        let mut slots: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let mut gone = Vec::new();
        for e in self.file.entries() {
            if let Some((n, field)) = split_mru_key(&e.key.to_ascii_lowercase()) {
                slots.entry(n).or_default().push(e.key.to_string());
                if field == "uid" && e.value.trim() == uid.to_string() {
                    gone.push(n);
                }
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let mut next = 0;
        for (n, keys) in slots {
            if gone.contains(&n) {
                for key in keys {
                    self.file.remove(&key);
                }
                continue;
            }
            if n != next {
                for key in keys {
                    // The key as written, past `snapshot.mruN`: `.uid`.
                    let after = &key["snapshot.mru".len()..];
                    let field = &after[after.find('.').unwrap_or(after.len())..];
                    self.file.rename(&key, &format!("snapshot.mru{next}{field}"))?;
                }
            }
            next += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
