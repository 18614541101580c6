//! Policy hooks as a policy script registers them: `luavirt.on(event, fn [, opts])` for
//! operations and domain changes, `luavirt.watch{...}` for files in a folder, and
//! `luavirt.log(message)`. Registering records the function and the line that registered it;
//! running hooks is the policy host's job (`crate::policy`). A script run by `luavirt run`
//! is no policy: `on` and `watch` tell it where hooks belong.

use super::Context;
use super::errors::invalid;
use super::options::Opts;
use luavirt_host::hooks::Operation;
use mlua::{Function, Lua, Table, Value};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// When a hook runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Before an operation: `snapshot:before`, ...
    Before(Operation),
    /// After an operation succeeded: `snapshot:after`, ...
    After(Operation),
    /// A domain of connection `uri` changed.
    DomainChanged {
        /// The connection whose domains are followed.
        uri: String,
    },
    /// A file in a folder changed.
    Watch(WatchSpec),
}

/// What `luavirt.watch{}` follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSpec {
    /// The folder (absolute).
    pub folder: PathBuf,
    /// File names that count (`*` and `?` wildcards).
    pub pattern: String,
    /// Also files in folders below.
    pub recursive: bool,
}

impl WatchSpec {
    /// Whether `path` (a file somewhere) is one this watch follows.
    pub fn covers(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else { return false };
        let inside = match path.parent() {
            Some(parent) if self.recursive => parent.starts_with(&self.folder),
            Some(parent) => parent == self.folder,
            None => false,
        };
        inside && glob_match(&self.pattern, &name)
    }
}

impl Trigger {
    /// How `luavirt hooks list` shows it.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Before(op) => format!("{}:before", op.name()),
            Trigger::After(op) => format!("{}:after", op.name()),
            Trigger::DomainChanged { uri } => format!("domain:changed {uri}"),
            Trigger::Watch(w) => {
                format!("watch {}{} {}", w.folder.display(), if w.recursive { " (recursive)" } else { "" }, w.pattern)
            }
        }
    }
}

/// One registered hook.
pub struct Hook {
    /// When it runs.
    pub trigger: Trigger,
    /// The function.
    pub function: Function,
    /// `file:line` of the registration.
    pub at: String,
    /// Set while it runs: a hook is never entered again from inside itself.
    pub running: Cell<bool>,
}

/// Takes a policy's `luavirt.log` lines: (`file:line`, message).
pub type LogLine = Box<dyn Fn(&str, &str)>;

/// Where a policy's hooks and log lines go.
pub struct PolicyParts {
    /// The hooks registered so far.
    pub hooks: RefCell<Vec<Rc<Hook>>>,
    /// Takes `luavirt.log` lines.
    pub log: LogLine,
}

/// `*` any run of characters, `?` one character, anything else itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// `file:line` of the Lua code calling the current host function, with the whole path (Lua's
/// short form cuts long ones).
fn caller(lua: &Lua) -> String {
    lua.inspect_stack(1, |d| {
        let source = d.source();
        let src = match source.source.as_deref().and_then(|s| s.strip_prefix('@')) {
            Some(path) => path.to_string(),
            None => source.short_src.map(|s| s.to_string()).unwrap_or_default(),
        };
        d.current_line().map(|l| format!("{src}:{l}")).unwrap_or(src)
    })
    .unwrap_or_default()
}

/// The policy parts of the running interpreter, or the error a plain script gets.
fn policy<'a>(lua: &Lua, ctx: &'a Context, call: &str) -> mlua::Result<&'a PolicyParts> {
    ctx.policy.as_ref().ok_or_else(|| {
        invalid(
            lua,
            format!(
                "{call} registers a policy hook, and this is a script: hooks run from the policy folder (`luavirt watch --policy-dir DIR`, default /etc/luavirt/policies), where luavirt loads them for watch and for every operation"
            ),
        )
    })
}

fn parse_event(lua: &Lua, name: &str) -> mlua::Result<Trigger> {
    if name == "domain:changed" {
        return Ok(Trigger::DomainChanged { uri: String::new() });
    }
    let known = || {
        let mut names: Vec<String> = Operation::ALL
            .iter()
            .flat_map(|o| [format!("{}:before", o.name()), format!("{}:after", o.name())])
            .collect();
        names.push("domain:changed".to_string());
        names.join(", ")
    };
    let Some((op, phase)) = name.split_once(':') else {
        return Err(invalid(lua, format!("luavirt.on: unknown event {name:?}; events are {}", known())));
    };
    let op = Operation::ALL.iter().find(|o| o.name() == op);
    match (op, phase) {
        (Some(op), "before") => Ok(Trigger::Before(*op)),
        (Some(op), "after") => Ok(Trigger::After(*op)),
        _ => Err(invalid(lua, format!("luavirt.on: unknown event {name:?}; events are {}", known()))),
    }
}

/// `luavirt.on(event, fn [, { uri = ... }])`.
pub fn on(lua: &Lua, (event, function, opts): (String, Function, Option<Table>)) -> mlua::Result<()> {
    let ctx = Context::get(lua)?;
    let parts = policy(lua, &ctx, "luavirt.on")?;
    let mut trigger = parse_event(lua, &event)?;
    let mut o = Opts::new(lua, opts, "luavirt.on");
    if let Trigger::DomainChanged { uri } = &mut trigger {
        *uri = o.string("uri")?.unwrap_or_else(|| ctx.default_uri.clone());
    }
    o.finish()?;
    parts.hooks.borrow_mut().push(Rc::new(Hook { trigger, function, at: caller(lua), running: Cell::new(false) }));
    Ok(())
}

/// `luavirt.watch{ path = "/folder", pattern = "*.vmx", recursive = false, on_change = fn }`.
pub fn watch(lua: &Lua, opts: Table) -> mlua::Result<()> {
    let ctx = Context::get(lua)?;
    let parts = policy(lua, &ctx, "luavirt.watch")?;
    let mut o = Opts::new(lua, Some(opts), "luavirt.watch");
    let path = o.string("path")?.ok_or_else(|| o.bad("path", "is required: the folder to watch"))?;
    let pattern = o.string("pattern")?;
    let recursive = o.boolean("recursive")?;
    let function = o.function("on_change")?.ok_or_else(|| o.bad("on_change", "is required: function(ev) ... end"))?;
    o.finish()?;
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(invalid(lua, format!("luavirt.watch: path {} must be absolute", path.display())));
    }
    // Editors save by renaming a new file over the old one: a file is followed through its
    // folder, never on its own.
    let (folder, pattern) = match (path.is_file(), pattern) {
        (true, None) => (
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        ),
        (true, Some(_)) => {
            return Err(invalid(
                lua,
                format!(
                    "luavirt.watch: path {} is a file, and a pattern is given too; give the folder and the pattern, or the file alone",
                    path.display()
                ),
            ));
        }
        (false, pattern) => (path, pattern.unwrap_or_else(|| "*".to_string())),
    };
    let trigger = Trigger::Watch(WatchSpec { folder, pattern, recursive });
    parts.hooks.borrow_mut().push(Rc::new(Hook { trigger, function, at: caller(lua), running: Cell::new(false) }));
    Ok(())
}

/// `luavirt.log(message)`: a line in the watcher's log (policies), or on standard error
/// (scripts), with the calling line.
pub fn log(lua: &Lua, message: Value) -> mlua::Result<()> {
    let ctx = Context::get(lua)?;
    let text = match &message {
        Value::String(s) => s.to_string_lossy(),
        other => lua.globals().get::<Function>("tostring")?.call::<String>(other.clone())?,
    };
    let at = caller(lua);
    match &ctx.policy {
        Some(p) => (p.log)(&at, &text),
        None => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{at}: {text}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_as_shells_do() {
        assert!(glob_match("*.vmx", "web01.vmx"));
        assert!(!glob_match("*.vmx", "web01.vmx~"));
        assert!(!glob_match("*.vmx", ".web01.vmx.tmp"));
        assert!(glob_match("f??.txt", "f01.txt"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn a_watch_covers_its_folder_and_below_only_when_recursive() {
        let w = WatchSpec { folder: "/ds".into(), pattern: "*.vmx".into(), recursive: false };
        assert!(w.covers(Path::new("/ds/a.vmx")));
        assert!(!w.covers(Path::new("/ds/vm/a.vmx")));
        let r = WatchSpec { recursive: true, ..w };
        assert!(r.covers(Path::new("/ds/vm/a.vmx")));
        assert!(!r.covers(Path::new("/other/a.vmx")));
    }
}
