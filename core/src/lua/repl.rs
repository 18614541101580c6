//! `luavirt repl`: Lua read line by line into one sandboxed interpreter, with the module as
//! the global `luavirt`. A line that is an expression prints its values; a statement left
//! open (`for ... do`) waits for the lines that close it. The time limit counts per entry,
//! not while the prompt waits.

use super::{RunOptions, errors, interpreter, report_with_limits, set_module_global};
use crate::Host;
use mlua::{Lua, MultiValue, Value};
use std::io::{BufRead, Write};
use std::path::Path;
use std::rc::Rc;

/// Where the session's text goes: values to `out`, errors (and prompts, when asked) to `err`.
pub struct Terminal<'a> {
    /// Lines typed or piped in.
    pub input: &'a mut dyn BufRead,
    /// Values of expressions, and what the entries print.
    pub out: &'a mut dyn Write,
    /// Errors and prompts.
    pub err: &'a mut dyn Write,
    /// Whether to prompt (a person types).
    pub prompt: bool,
}

/// Runs the session until the input ends; returns how many entries failed.
pub fn run(host: Rc<Host>, opts: &RunOptions, t: Terminal) -> Result<usize, String> {
    let (lua, ctx) = interpreter(host, Path::new("."), opts).map_err(|e| errors::report(&e))?;
    set_module_global(&lua).map_err(|e| errors::report(&e))?;
    ctx.limits.disarm();
    let (mut pending, mut first_line, mut line_no, mut failed) = (String::new(), 1, 0, 0);
    loop {
        if t.prompt {
            let _ = write!(t.err, "{}", if pending.is_empty() { "lua> " } else { "  >> " });
            let _ = t.err.flush();
        }
        let mut line = String::new();
        if t.input.read_line(&mut line).map_err(|e| format!("cannot read standard input: {e}"))? == 0 {
            break;
        }
        line_no += 1;
        if pending.is_empty() {
            first_line = line_no;
        }
        pending.push_str(&line);
        let chunk = match compile(&lua, &pending, first_line) {
            Compiled::Ready(f) => f,
            Compiled::Incomplete => continue,
            Compiled::Failed(e) => {
                failed += 1;
                let _ = writeln!(t.err, "error: {}", errors::report(&e));
                pending.clear();
                continue;
            }
        };
        pending.clear();
        ctx.limits.arm();
        let result = chunk.call::<MultiValue>(());
        ctx.limits.disarm();
        match result {
            Ok(values) if values.is_empty() => {}
            Ok(values) => {
                let shown: Vec<String> = values.iter().map(|v| show(&lua, v)).collect();
                let _ = writeln!(t.out, "{}", shown.join("\t"));
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(t.err, "error: {}", report_with_limits(&e, &ctx));
            }
        }
        let _ = t.out.flush();
    }
    if !pending.trim().is_empty() {
        failed += 1;
        let _ = writeln!(t.err, "error: stdin:{first_line}: the input ended inside an unfinished statement");
    }
    Ok(failed)
}

enum Compiled {
    Ready(mlua::Function),
    Incomplete,
    Failed(mlua::Error),
}

/// `text` as an expression whose values print, else as statements. Blank lines in front keep
/// the line numbers of messages those of the input (`stdin:LINE`).
fn compile(lua: &Lua, text: &str, first_line: usize) -> Compiled {
    let pad = "\n".repeat(first_line - 1);
    let load = |code: String| lua.load(code).set_name("@stdin").set_mode(mlua::chunk::ChunkMode::Text).into_function();
    if let Ok(f) = load(format!("{pad}return {text}")) {
        return Compiled::Ready(f);
    }
    match load(format!("{pad}{text}")) {
        Ok(f) => Compiled::Ready(f),
        Err(mlua::Error::SyntaxError { incomplete_input: true, .. }) => Compiled::Incomplete,
        Err(e) => Compiled::Failed(e),
    }
}

/// A value as the prompt shows it: plain data as JSON; a table holding handles as a list of
/// what `tostring` says of each (`{luavirt.domain(web1), ...}`); anything else as `tostring`.
fn show(lua: &Lua, v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Table(t) => match mlua::LuaSerdeExt::from_value::<serde_json::Value>(lua, v.clone()) {
            Ok(json) => json.to_string(),
            Err(_) => {
                let items: Vec<String> = t
                    .pairs::<Value, Value>()
                    .filter_map(Result::ok)
                    .map(|(k, v)| match k {
                        Value::Integer(_) => show_one(lua, &v),
                        k => format!("{} = {}", show_one(lua, &k), show_one(lua, &v)),
                    })
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
        },
        other => show_one(lua, other),
    }
}

/// What Lua's `tostring` says of `v`.
fn show_one(lua: &Lua, v: &Value) -> String {
    lua.globals()
        .get::<mlua::Function>("tostring")
        .and_then(|f| f.call::<String>(v.clone()))
        .unwrap_or_else(|_| format!("{v:?}"))
}
