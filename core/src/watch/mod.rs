//! `luavirt watch`: the long-running process that runs the policies' hooks.
//!
//! At start it loads the policy folder and applies every policy to the current state (each
//! watched file and each domain arrive as `present`); with `--once` it stops there. Then it
//! follows the folders the hooks name ([`fswatch`]), debounced, and runs hooks one at a time
//! on one thread, so a hook may change a domain while the others wait (a slow hook holds them
//! up at most for its time limit). Between two hook runs it takes new events, SIGHUP (reload
//! every policy) and SIGTERM or SIGINT (stop; the running hook ends first).
//!
//! Storms and loops:
//! - Events for one file coalesce while it waits: it runs once, on what the file holds when
//!   its turn comes (the last state wins); a file that changed is never dropped.
//! - A file whose content is what its hooks saw last runs nothing ([`files`]); after a hook
//!   changed something, the file as the change left it counts as seen, and the domains it
//!   changed as seen too ([`domains::DomainWatch::accept`]): a hook's own change does not
//!   run it again.
//! - A lost-events notice (the kernel's queue overflowed) reads everything again.
//! - A hook error is logged and the watcher goes on.

mod domains;
mod files;
mod fswatch;
pub mod log;
mod signals;

use crate::lua::hooks::{Hook, Trigger, WatchSpec};
use crate::policy::{self, Level, Policy, PolicySet, is_policy_file};
use domains::{Changes, DomainWatch};
use files::Seen;
use fswatch::{Change, FsWatcher};
use log::Logger;
use luavirt_host::Host;
use mlua::{LuaSerdeExt, Value};
use notify_debouncer_full::DebounceEventResult;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// How `luavirt watch` runs.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// The policies: folder, default URI, dry run, limits.
    pub policy: policy::Options,
    /// Apply every policy to the current state and stop.
    pub once: bool,
    /// The debounce window.
    pub window: Duration,
    /// How log lines look.
    pub log: log::Format,
}

/// What reaches the loop.
enum Msg {
    Fs(DebounceEventResult),
    Signal(i32),
}

/// Runs the watcher; returns the exit status (0: stopped cleanly, or `--once` with no failure).
pub fn run(host: Rc<Host>, opts: WatchOptions) -> i32 {
    let logger = Logger::new(opts.log);
    // Before any thread starts, so that only the signal thread takes them.
    signals::block();
    let (tx, rx) = channel();
    signals::forward(tx.clone(), Msg::Signal);
    let sink = Rc::new(move |r: policy::Record| logger.write(&r));
    let set = PolicySet::new(host.clone(), opts.policy.clone(), sink);
    let mut w = Watcher {
        set: set.clone(),
        host: host.clone(),
        log: logger,
        seen: Seen::default(),
        domains: BTreeMap::new(),
        pending: BTreeSet::new(),
        first_look: BTreeSet::new(),
        dirty: BTreeSet::new(),
        present: BTreeSet::new(),
        reload: BTreeSet::new(),
        reload_all: false,
        rescan: false,
        stop: false,
        failures: 0,
    };
    match set.load_all() {
        Ok(failed) => {
            for (file, e) in failed {
                w.failures += 1;
                logger.say(Level::Error, "policy-error", Some(file.display().to_string()), format!("not loaded: {e}"));
            }
        }
        Err(e) => {
            logger.say(Level::Error, "policy-error", None, format!("{e}; no policy runs"));
            return 1;
        }
    }
    for p in set.policies() {
        logger.say(Level::Info, "loaded", Some(p.file.display().to_string()), format!("{} hook(s)", p.hooks().len()));
    }
    // Operations the hooks start run the policies' operation hooks too.
    host.hooks().add(set.clone());
    w.sync_domain_watches();
    w.queue_everything(true);

    let mut fs = None;
    if !opts.once {
        let to = tx.clone();
        match FsWatcher::new(opts.window, move |r| {
            let _ = to.send(Msg::Fs(r));
        }) {
            Ok(f) => fs = Some(f),
            Err(e) => {
                logger.say(Level::Error, "watch-error", None, e);
                return 1;
            }
        }
        w.want_folders(fs.as_mut());
    }
    w.work(&rx, fs.as_mut());
    if opts.once {
        if w.stop {
            logger.say(Level::Info, "stopped", None, "stopped before every policy was applied");
        }
        return i32::from(w.failures > 0 || w.stop);
    }
    logger.say(Level::Info, "ready", None, format!("watching; policies in {}", opts.policy.dir.display()));
    while !w.stop {
        match rx.recv() {
            Ok(m) => w.take(m),
            Err(_) => break,
        }
        w.work(&rx, fs.as_mut());
    }
    logger.say(Level::Info, "stopped", None, "stopped");
    0
}

/// The loop's state.
struct Watcher {
    set: Rc<PolicySet>,
    host: Rc<Host>,
    log: Logger,
    /// What the watch hooks saw of each file.
    seen: Seen,
    /// The connections `domain:changed` hooks follow, by URI.
    domains: BTreeMap<String, DomainWatch>,
    /// Files to look at.
    pending: BTreeSet<PathBuf>,
    /// Files seen for the first time in this run (they arrive as `present`).
    first_look: BTreeSet<PathBuf>,
    /// Connections whose domains to read again.
    dirty: BTreeSet<String>,
    /// Connections whose domains all arrive as `present`.
    present: BTreeSet<String>,
    /// Policy files to load again.
    reload: BTreeSet<PathBuf>,
    reload_all: bool,
    rescan: bool,
    stop: bool,
    /// Hook runs and policy loads that failed.
    failures: usize,
}

impl Watcher {
    /// Every `luavirt.watch` hook with its policy.
    fn watch_hooks(&self) -> Vec<(Rc<Policy>, Rc<Hook>, WatchSpec)> {
        let mut out = Vec::new();
        for p in self.set.policies() {
            for h in p.hooks() {
                if let Trigger::Watch(spec) = &h.trigger {
                    out.push((p.clone(), h.clone(), spec.clone()));
                }
            }
        }
        out
    }

    /// Every `domain:changed` hook on `uri`, with its policy.
    fn domain_hooks(&self, uri: &str) -> Vec<(Rc<Policy>, Rc<Hook>)> {
        let mut out = Vec::new();
        for p in self.set.policies() {
            for h in p.hooks() {
                if matches!(&h.trigger, Trigger::DomainChanged { uri: u } if u == uri) {
                    out.push((p.clone(), h.clone()));
                }
            }
        }
        out
    }

    /// Opens a watch on each connection `domain:changed` hooks name; drops the others. A
    /// connection first followed after a reload starts from its domains as they are: its
    /// hooks act on what changes next, as a reloaded policy's watch hooks do.
    fn sync_domain_watches(&mut self) {
        let mut uris = BTreeSet::new();
        for p in self.set.policies() {
            for h in p.hooks() {
                if let Trigger::DomainChanged { uri } = &h.trigger {
                    uris.insert(uri.clone());
                }
            }
        }
        self.domains.retain(|u, _| uris.contains(u));
        for uri in uris {
            if self.domains.contains_key(&uri) {
                continue;
            }
            match DomainWatch::open(&self.host, &uri) {
                Ok(d) => {
                    self.domains.insert(uri, d);
                }
                Err(e) => {
                    self.failures += 1;
                    self.log.say(Level::Error, "watch-error", None, format!("domain:changed on {uri}: {e}"))
                }
            }
        }
    }

    /// Queues every watched file and every domain (`first`: as the first look).
    fn queue_everything(&mut self, first: bool) {
        for (_, _, spec) in self.watch_hooks() {
            self.queue_folder(&spec.folder, first);
        }
        if first {
            self.present.extend(self.domains.keys().cloned());
        } else {
            self.dirty.extend(self.domains.keys().cloned());
        }
    }

    /// Queues the files under `folder` that watch hooks cover, and those seen there before.
    fn queue_folder(&mut self, folder: &Path, first: bool) {
        for (_, _, spec) in self.watch_hooks() {
            if !spec.folder.starts_with(folder) && !folder.starts_with(&spec.folder) {
                continue;
            }
            for f in files::list(&spec.folder, spec.recursive).into_iter().filter(|f| spec.covers(f)) {
                if first {
                    self.first_look.insert(f.clone());
                }
                self.pending.insert(f);
            }
        }
        self.pending.extend(self.seen.under(folder));
    }

    /// The folders to follow: the policy folder, each watch's folder, each connection's.
    fn want_folders(&mut self, fs: Option<&mut FsWatcher>) {
        let Some(fs) = fs else { return };
        let mut wanted = BTreeMap::new();
        wanted.insert(self.set.options().dir.clone(), false);
        for (_, _, spec) in self.watch_hooks() {
            let r = wanted.entry(spec.folder.clone()).or_insert(false);
            *r |= spec.recursive;
        }
        for d in self.domains.values() {
            for f in d.folders() {
                wanted.insert(f, true);
            }
        }
        fs.want(wanted);
    }

    /// Takes one message in: events become work, signals become reloads or the stop.
    fn take(&mut self, m: Msg) {
        match m {
            Msg::Signal(libc::SIGHUP) => {
                self.log.say(Level::Info, "reload", None, "SIGHUP: loading every policy again");
                self.reload_all = true;
            }
            Msg::Signal(s) => {
                let name = if s == libc::SIGTERM { "SIGTERM" } else { "SIGINT" };
                self.log.say(Level::Info, "stopping", None, format!("{name}: stopping after the running hook"));
                self.stop = true;
            }
            Msg::Fs(Err(errors)) => {
                for e in errors {
                    self.log.say(Level::Error, "watch-error", None, fswatch::explain(None, &e));
                }
            }
            Msg::Fs(Ok(events)) => {
                let policy_dir = self.set.options().dir.clone();
                let specs: Vec<WatchSpec> = self.watch_hooks().into_iter().map(|(_, _, s)| s).collect();
                for ev in events {
                    if ev.need_rescan() {
                        self.rescan = true;
                    }
                    if matches!(ev.kind, notify::EventKind::Access(_)) {
                        continue;
                    }
                    for path in &ev.paths {
                        if path.parent() == Some(policy_dir.as_path()) && is_policy_file(path) {
                            self.reload.insert(path.clone());
                        }
                        if specs.iter().any(|s| s.covers(path)) {
                            self.pending.insert(path.clone());
                        }
                        for d in self.domains.values() {
                            if d.folders().iter().any(|f| path.starts_with(f)) {
                                self.dirty.insert(d.uri.clone());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Takes in every message waiting, without blocking.
    fn drain(&mut self, rx: &Receiver<Msg>) {
        while let Ok(m) = rx.try_recv() {
            self.take(m);
        }
    }

    /// Does the work queued: reloads, folder changes, then hooks one by one, taking new
    /// messages between them; stops early when told to stop.
    fn work(&mut self, rx: &Receiver<Msg>, mut fs: Option<&mut FsWatcher>) {
        self.drain(rx);
        if self.stop {
            return;
        }
        if self.reload_all || !self.reload.is_empty() {
            self.reload_policies();
            self.want_folders(fs.as_deref_mut());
        }
        if let Some(fs) = fs.as_deref_mut() {
            for change in fs.reconcile() {
                match change {
                    Change::Missing(f) => self.log.say(
                        Level::Warning,
                        "folder-missing",
                        None,
                        format!("folder {} does not exist or was removed; watching for it to come back", f.display()),
                    ),
                    Change::Back(f) => {
                        self.log.say(Level::Info, "folder-back", None, format!("folder {} is back", f.display()));
                        self.queue_folder(&f, false);
                        for d in self.domains.values() {
                            if d.folders().iter().any(|x| x.starts_with(&f) || f.starts_with(x)) {
                                self.dirty.insert(d.uri.clone());
                            }
                        }
                    }
                    Change::Failed(_, message) => {
                        self.failures += 1;
                        self.log.say(Level::Error, "watch-error", None, message)
                    }
                }
            }
        }
        if std::mem::take(&mut self.rescan) {
            self.log.say(
                Level::Warning,
                "rescan",
                None,
                "file events were lost (the kernel's queue overflowed): reading every watched file and domain again",
            );
            self.queue_everything(false);
        }
        loop {
            self.drain(rx);
            if self.stop {
                return;
            }
            if self.reload_all || !self.reload.is_empty() {
                self.reload_policies();
                self.want_folders(fs.as_deref_mut());
            }
            if let Some(uri) = self.present.pop_first() {
                self.domain_changes(&uri, true);
            } else if let Some(uri) = self.dirty.pop_first() {
                self.domain_changes(&uri, false);
            } else if let Some(path) = self.pending.pop_first() {
                self.file_changed(&path);
            } else {
                return;
            }
        }
    }

    /// Loads again the policy files asked for (all of them after SIGHUP). A file that fails
    /// keeps its previous version.
    fn reload_policies(&mut self) {
        let mut files = std::mem::take(&mut self.reload);
        if std::mem::take(&mut self.reload_all) {
            match self.set.files() {
                Ok(list) => files.extend(list),
                Err(e) => {
                    self.failures += 1;
                    self.log.say(Level::Error, "policy-error", None, format!("{e}; the loaded policies stay"));
                    return;
                }
            }
            files.extend(self.set.policies().iter().map(|p| p.file.clone()));
        }
        for file in files {
            let at = Some(file.display().to_string());
            let had = self.set.policies().iter().any(|p| p.file == file);
            match self.set.reload(&file) {
                Ok(true) => {
                    let n = self.set.policies().iter().find(|p| p.file == file).map_or(0, |p| p.hooks().len());
                    self.log.say(Level::Info, "loaded", at, format!("{n} hook(s)"));
                }
                Ok(false) if had => self.log.say(Level::Info, "unloaded", at, "the file is gone: its hooks stopped"),
                Ok(false) => {}
                Err(e) => {
                    self.failures += 1;
                    let what = if had { "kept the previous version" } else { "not loaded" };
                    self.log.say(Level::Error, "policy-error", at, format!("{what}: {e}"));
                }
            }
        }
        self.sync_domain_watches();
    }

    /// Runs the watch hooks that cover `path`, if it holds something they have not seen.
    fn file_changed(&mut self, path: &Path) {
        let hooks: Vec<_> = self.watch_hooks().into_iter().filter(|(_, _, s)| s.covers(path)).collect();
        let first = self.first_look.remove(path);
        if hooks.is_empty() {
            return;
        }
        let now = files::read(path);
        if !self.seen.is_new(path, &now.fingerprint) {
            return;
        }
        let kind = match (&now.fingerprint, first) {
            (files::Fingerprint::Gone, _) => "removed",
            (_, true) => "present",
            _ => "changed",
        };
        self.seen.record(path, now.fingerprint.clone());
        for (policy, hook, _) in hooks {
            self.log.say(Level::Info, "hook", Some(hook.at.clone()), format!("{}: {kind}", path.display()));
            let ran = policy.run(&hook, |lua| {
                let ev = lua.create_table()?;
                ev.set("event", "watch")?;
                ev.set("path", path.display().to_string())?;
                ev.set("kind", kind)?;
                match &now.content {
                    Some(bytes) => ev.set("content", lua.create_string(bytes)?)?,
                    None => ev.set("content", Value::Nil)?,
                }
                Ok(Value::Table(ev))
            });
            self.after_hook(&hook, ran, Some(path));
        }
    }

    /// Reads the domains of `uri` again and runs its `domain:changed` hooks for each domain
    /// that changed (`present`: for every domain, as the first look).
    fn domain_changes(&mut self, uri: &str, present: bool) {
        let Some(watch) = self.domains.get_mut(uri) else { return };
        let changes: Vec<(String, Changes)> = if present { watch.present() } else { watch.refresh() };
        for (name, change) in changes {
            for (policy, hook) in self.domain_hooks(uri) {
                self.log.say(
                    Level::Info,
                    "hook",
                    Some(hook.at.clone()),
                    format!("domain '{name}' on {uri}: {}", change.kind),
                );
                let dry = self.set.options().dry_run;
                let ran = policy.run(&hook, |lua| {
                    let ev = lua.create_table()?;
                    ev.set("event", "domain:changed")?;
                    ev.set("uri", uri)?;
                    ev.set("name", name.as_str())?;
                    ev.set("kind", change.kind)?;
                    let conn = policy.connection(uri, dry).map_err(crate::lua::errors::host)?;
                    ev.set("domain", crate::lua::domain::LuaDomain::new(&conn, &name))?;
                    ev.set("changes", lua.to_value(&change)?)?;
                    Ok(Value::Table(ev))
                });
                self.after_hook(&hook, ran, None);
            }
        }
    }

    /// After a hook ran: logs its failure, logs what a dry run would have changed, and takes
    /// what it changed as seen (the file that triggered it, the domains it changed).
    fn after_hook(&mut self, hook: &Hook, ran: Option<Result<Value, String>>, path: Option<&Path>) {
        if let Some(Err(report)) = ran {
            self.failures += 1;
            self.log.say(Level::Error, "hook-error", Some(hook.at.clone()), report);
        }
        let effects = self.set.take_effects();
        for (uri, p) in &effects.planned {
            self.log.say(Level::Info, "would", Some(hook.at.clone()), format!("{uri} {}: {}", p.domain, p.change));
        }
        if effects.changed.is_empty() || self.set.options().dry_run {
            return;
        }
        if let Some(path) = path {
            self.seen.record(path, files::read(path).fingerprint);
        }
        for (uri, domain) in effects.changed {
            for w in self.domains.values_mut().filter(|w| w.serves(&uri)) {
                w.accept(&domain);
            }
        }
    }
}
