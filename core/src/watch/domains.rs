//! `domain:changed`: the domains of one connection as last seen, read again after their
//! folders change, and what changed between the two: disks added or removed, modes, disk
//! sets, the rest of the definition.

use luavirt_host::{Connection, Host};
use luavirt_plugin_api::domain::DomainXml;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the hooks are told about one domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// Disk target → (mode name, source).
    disks: BTreeMap<String, (String, String)>,
    /// Set → members.
    sets: BTreeMap<String, Vec<String>>,
    /// The definition as the driver gives it.
    xml: String,
}

impl View {
    fn read(conn: &Connection, name: &str) -> Option<View> {
        let xml = conn.domain_xml(name, true).ok()?;
        let dom = DomainXml::parse(&xml, None).ok()?;
        let disks = dom
            .disks()
            .into_iter()
            .map(|d| {
                let mode = dom.disk_mode(&d.target).map(|m| m.name().to_string()).unwrap_or_default();
                (d.target.clone(), (mode, d.source.display()))
            })
            .collect();
        let sets = dom.disk_sets();
        let sets = sets.names().map(|s| (s.to_string(), sets.members(s).to_vec())).collect();
        Some(View { disks, sets, xml })
    }
}

/// One disk's mode change.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ModeChange {
    /// Disk target.
    pub disk: String,
    /// Mode before.
    pub was: String,
    /// Mode now.
    pub now: String,
}

/// One disk set's change.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SetChange {
    /// The set.
    pub set: String,
    /// Members before.
    pub was: Vec<String>,
    /// Members now.
    pub now: Vec<String>,
}

/// What changed in a domain.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct Changes {
    /// `defined` (new), `changed`, `undefined` (gone), or `present` (the first look, at
    /// start and with `--once`: everything it has counts as added).
    pub kind: &'static str,
    /// Disks added.
    pub added: Vec<String>,
    /// Disks removed.
    pub removed: Vec<String>,
    /// Disks whose mode changed.
    pub modes: Vec<ModeChange>,
    /// Disk sets whose members changed.
    pub sets: Vec<SetChange>,
    /// Whether anything else in the definition changed (a disk's source included).
    pub definition: bool,
}

/// What changed from `old` to `new` (`None`: no such domain); `None` when nothing did.
pub fn diff(old: Option<&View>, new: Option<&View>, kind_if_new: &'static str) -> Option<Changes> {
    let empty = View { disks: BTreeMap::new(), sets: BTreeMap::new(), xml: String::new() };
    let kind = match (old, new) {
        (None, None) => return None,
        (None, Some(_)) => kind_if_new,
        (Some(_), None) => "undefined",
        (Some(a), Some(b)) if a == b => return None,
        (Some(_), Some(_)) => "changed",
    };
    let (a, b) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    let mut c = Changes { kind, ..Changes::default() };
    c.added = b.disks.keys().filter(|d| !a.disks.contains_key(*d)).cloned().collect();
    c.removed = a.disks.keys().filter(|d| !b.disks.contains_key(*d)).cloned().collect();
    for (disk, (mode, _)) in &b.disks {
        if let Some((was, _)) = a.disks.get(disk).filter(|(was, _)| was != mode) {
            c.modes.push(ModeChange { disk: disk.clone(), was: was.clone(), now: mode.clone() });
        }
    }
    let names: std::collections::BTreeSet<&String> = a.sets.keys().chain(b.sets.keys()).collect();
    for set in names {
        let (was, now) = (a.sets.get(set).cloned().unwrap_or_default(), b.sets.get(set).cloned().unwrap_or_default());
        if was != now {
            c.sets.push(SetChange { set: set.clone(), was, now });
        }
    }
    c.definition = a.xml != b.xml;
    Some(c)
}

/// The domains of one connection, as last seen.
pub struct DomainWatch {
    /// The connection's URI.
    pub uri: String,
    conn: Connection,
    seen: BTreeMap<String, View>,
}

impl DomainWatch {
    /// Opens a reading connection to `uri` and reads every domain.
    pub fn open(host: &Host, uri: &str) -> luavirt_host::Result<DomainWatch> {
        let conn = host.connect(uri)?;
        if conn.is_remote() {
            return Err(luavirt_host::Error::InvalidArg(format!(
                "{uri}: luavirt watch follows domains through the files of their host, and this connection reaches another host; run luavirt watch there, with a local URI"
            )));
        }
        let mut w = DomainWatch { uri: uri.to_string(), conn, seen: BTreeMap::new() };
        w.seen = w.read_all();
        Ok(w)
    }

    /// Whether this watches the connection `uri` (as a connection writes it).
    pub fn serves(&self, uri: &str) -> bool {
        self.conn.uri().to_string() == uri || self.uri == uri
    }

    /// The folders to follow for it.
    pub fn folders(&self) -> Vec<PathBuf> {
        self.conn.folders()
    }

    fn read_all(&self) -> BTreeMap<String, View> {
        let names = self.conn.list_domains().map(|l| l.into_iter().map(|d| d.name).collect()).unwrap_or_else(|_| {
            // A connection that cannot list now (its datastore is gone) has no domains now.
            Vec::<String>::new()
        });
        names.into_iter().filter_map(|n| View::read(&self.conn, &n).map(|v| (n, v))).collect()
    }

    /// Every domain as it is, each as `present` (the first look).
    pub fn present(&self) -> Vec<(String, Changes)> {
        self.seen.iter().filter_map(|(n, v)| diff(None, Some(v), "present").map(|c| (n.clone(), c))).collect()
    }

    /// Reads every domain again; returns what changed since the last look, which becomes
    /// the new one.
    pub fn refresh(&mut self) -> Vec<(String, Changes)> {
        let now = self.read_all();
        let names: std::collections::BTreeSet<String> = self.seen.keys().chain(now.keys()).cloned().collect();
        let changes =
            names.into_iter().filter_map(|n| diff(self.seen.get(&n), now.get(&n), "defined").map(|c| (n, c))).collect();
        self.seen = now;
        changes
    }

    /// Takes domain `name` as it is now as the last look, without telling anyone: what the
    /// watcher's own hooks changed is no news to them.
    pub fn accept(&mut self, name: &str) {
        match View::read(&self.conn, name) {
            Some(v) => {
                self.seen.insert(name.to_string(), v);
            }
            None => {
                self.seen.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(disks: &[(&str, &str)], sets: &[(&str, &[&str])], xml: &str) -> View {
        View {
            disks: disks.iter().map(|(d, m)| (d.to_string(), (m.to_string(), format!("/i/{d}")))).collect(),
            sets: sets.iter().map(|(s, m)| (s.to_string(), m.iter().map(|x| x.to_string()).collect())).collect(),
            xml: xml.to_string(),
        }
    }

    #[test]
    fn changes_name_disks_modes_and_sets() {
        let a = view(&[("sda", "persistent"), ("sdb", "independent-nonpersistent")], &[("migrate", &["sda"])], "a");
        let b = view(&[("sda", "persistent"), ("sdb", "persistent"), ("sdc", "persistent")], &[], "b");
        let c = diff(Some(&a), Some(&b), "defined").unwrap();
        assert_eq!(c.kind, "changed");
        assert_eq!(c.added, ["sdc"]);
        assert!(c.removed.is_empty());
        assert_eq!(
            c.modes,
            [ModeChange { disk: "sdb".into(), was: "independent-nonpersistent".into(), now: "persistent".into() }]
        );
        assert_eq!(c.sets, [SetChange { set: "migrate".into(), was: vec!["sda".into()], now: vec![] }]);
        assert!(diff(Some(&a), Some(&a), "defined").is_none());
        assert_eq!(diff(None, Some(&a), "present").unwrap().added, ["sda", "sdb"]);
        assert_eq!(diff(Some(&a), None, "defined").unwrap().kind, "undefined");
    }
}
