//! Messages in the words of the door that shows them. The host and the drivers name request
//! options neutrally, between guillemets: `«disk_only»`, `«diskspec vda,snapshot=no»`,
//! `«memspec file=/m/s1»`, and operations as `«do:list --all»`. The CLI shows them as its flags
//! and verbs (`--disk-only`, `` `luavirt list --all` ``), Lua as its table keys and calls
//! (`disk_only = true`, `disks = { vda = "no" }`, `` `conn:domains()` ``), so a Lua user is
//! never told to pass a command-line flag. The door says which it is once, at start.

use std::sync::atomic::{AtomicU8, Ordering};

/// Who shows messages to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// The `luavirt` command.
    Cli,
    /// A Lua script.
    Lua,
}

static DOOR: AtomicU8 = AtomicU8::new(0);

/// Sets the door messages are shown through from now on (the CLI at start, the Lua host when
/// a script runs).
pub fn set_door(door: Door) {
    DOOR.store(door as u8, Ordering::Relaxed);
}

/// The door messages are shown through now.
pub fn current_door() -> Door {
    door()
}

fn door() -> Door {
    if DOOR.load(Ordering::Relaxed) == Door::Lua as u8 { Door::Lua } else { Door::Cli }
}

/// `message` with each «option» in the current door's words.
pub fn render(message: &str) -> String {
    render_for(message, door())
}

/// `message` with each «option» in `door`'s words.
pub fn render_for(message: &str, door: Door) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('«') {
        let Some(len) = rest[start..].find('»') else { break };
        out.push_str(&rest[..start]);
        let token = &rest[start + '«'.len_utf8()..start + len];
        out.push_str(&match door {
            Door::Cli => cli(token),
            Door::Lua => lua(token),
        });
        rest = &rest[start + len + '»'.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// What an operation named in a message (`«do:disk-mode app sdb persistent»`) is in Lua, for
/// the operations messages name.
fn operation_in_lua(op: &str) -> Option<String> {
    let words: Vec<&str> = op.split_whitespace().map(|w| w.trim_matches('\'')).collect();
    Some(match words.as_slice() {
        ["list", "--all"] => "conn:domains()".to_string(),
        ["start", _] => "dom:start()".to_string(),
        ["destroy", _] => "dom:destroy()".to_string(),
        ["resume", _] => "dom:resume()".to_string(),
        ["diskset", "add", _, disk, "--set", set] => format!("dom:diskset(\"{set}\"):add(\"{disk}\")"),
        ["disk-mode", _, disk, mode] => format!("dom:disk(\"{disk}\"):set_mode(\"{mode}\")"),
        ["snapshot-delete", _, snap, "--metadata"] => {
            format!("dom:find_snapshot(\"{snap}\"):delete{{ metadata = true }}")
        }
        _ => return None,
    })
}

fn cli(token: &str) -> String {
    if let Some(op) = token.strip_prefix("do:") {
        return format!("`luavirt {op}`");
    }
    match token.split_once(' ') {
        Some((name, value)) => format!("--{} {value}", name.replace('_', "-")),
        None => format!("--{}", token.replace('_', "-")),
    }
}

fn lua(token: &str) -> String {
    if let Some(op) = token.strip_prefix("do:") {
        return match operation_in_lua(op) {
            Some(call) => format!("`{call}`"),
            None => format!("the {} operation", op.split(' ').next().unwrap_or(op)),
        };
    }
    let (name, value) = match token.split_once(' ') {
        Some((n, v)) => (n, Some(v)),
        None => (token, None),
    };
    // Options that take a value, named bare: the key alone; the others are switches.
    let Some(value) = value else {
        return match name {
            "diskspec" | "disk_set" => "disks".to_string(),
            "memspec" => "memory".to_string(),
            _ => format!("{name} = true"),
        };
    };
    match name {
        "diskspec" => {
            let mut fields = value.split(',');
            let disk = fields.next().unwrap_or_default();
            let kv: Vec<(&str, &str)> = fields.filter_map(|f| f.split_once('=')).collect();
            match kv.as_slice() {
                [] => format!("disks = {{ \"{disk}\" }}"),
                [("snapshot", mode)] => format!("disks = {{ {disk} = \"{mode}\" }}"),
                many => {
                    let inner: Vec<String> = many.iter().map(|(k, v)| format!("{k} = \"{v}\"")).collect();
                    format!("disks = {{ {disk} = {{ {} }} }}", inner.join(", "))
                }
            }
        }
        "memspec" => format!("memory = \"{}\"", value.strip_prefix("file=").unwrap_or(value)),
        "disk_set" => format!("disks = dom:diskset(\"{value}\")"),
        "set" => format!("dom:diskset(\"{value}\")"),
        "shared_disks" => format!("shared = {{ \"{value}\" }}"),
        "storage" => format!("storage = {{ \"{value}\" }}"),
        "disk_target" => match value.split_once('=') {
            Some((disk, path)) => format!("targets = {{ {disk} = \"{path}\" }}"),
            None => format!("targets = {{ {value} }}"),
        },
        _ => format!("{name} = \"{value}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_as_flags_in_the_cli_and_as_table_keys_in_lua() {
        let m = "take it externally («diskspec vda,snapshot=external») or drop «live»; add «memspec file=/m/x»";
        assert_eq!(
            render_for(m, Door::Cli),
            "take it externally (--diskspec vda,snapshot=external) or drop --live; add --memspec file=/m/x"
        );
        assert_eq!(
            render_for(m, Door::Lua),
            "take it externally (disks = { vda = \"external\" }) or drop live = true; add memory = \"/m/x\""
        );
        assert_eq!(render_for("pass «mirror_pivot»", Door::Cli), "pass --mirror-pivot");
        assert_eq!(render_for("«diskspec vda,file=/o/a»", Door::Lua), "disks = { vda = { file = \"/o/a\" } }");
        assert_eq!(render_for("«disk_set nightly»", Door::Lua), "disks = dom:diskset(\"nightly\")");
        assert_eq!(render_for("«disk_target vda=PATH»", Door::Cli), "--disk-target vda=PATH");
        assert_eq!(render_for("«disk_target vda=PATH»", Door::Lua), "targets = { vda = \"PATH\" }");
        assert_eq!(render_for("«shared_disks vdc»", Door::Lua), "shared = { \"vdc\" }");
        assert_eq!(render_for("«storage hdc»", Door::Lua), "storage = { \"hdc\" }");
        assert_eq!(render_for("«storage hdc»", Door::Cli), "--storage hdc");
        assert_eq!(render_for("no tokens «here", Door::Lua), "no tokens «here");
        assert_eq!(render_for("«do:list --all» shows them", Door::Cli), "`luavirt list --all` shows them");
        assert_eq!(render_for("«do:list --all» shows them", Door::Lua), "`conn:domains()` shows them");
        let m = "first «do:disk-mode app sdb persistent», or «do:snapshot-delete 'app' 's1' --metadata»";
        assert_eq!(
            render_for(m, Door::Cli),
            "first `luavirt disk-mode app sdb persistent`, or `luavirt snapshot-delete 'app' 's1' --metadata`"
        );
        assert_eq!(
            render_for(m, Door::Lua),
            "first `dom:disk(\"sdb\"):set_mode(\"persistent\")`, or `dom:find_snapshot(\"s1\"):delete{ metadata = true }`"
        );
    }
}
