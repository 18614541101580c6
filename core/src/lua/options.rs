//! Option tables, read strictly: every key must be known and of the right type, and a
//! mistake is an error that names the option, the function and the script line.

use super::errors::invalid;
use mlua::{Function, Lua, Table, Value};

/// The options of one call, taken key by key; `finish` refuses the keys nobody took.
pub struct Opts<'a> {
    lua: &'a Lua,
    table: Option<Table>,
    what: &'static str,
    known: Vec<&'static str>,
}

fn type_name(v: &Value) -> &'static str {
    v.type_name()
}

impl<'a> Opts<'a> {
    /// Options of function `what` (like `dom:snapshot`), from an optional table.
    pub fn new(lua: &'a Lua, table: Option<Table>, what: &'static str) -> Opts<'a> {
        Opts { lua, table, what, known: Vec::new() }
    }

    /// The raw value of `key` (nil when absent).
    pub fn value(&mut self, key: &'static str) -> mlua::Result<Value> {
        self.known.push(key);
        match &self.table {
            Some(t) => t.raw_get(key),
            None => Ok(Value::Nil),
        }
    }

    fn wrong(&self, key: &str, want: &str, got: &Value) -> mlua::Error {
        invalid(self.lua, format!("{}: option '{key}' must be {want}, not {}", self.what, type_name(got)))
    }

    /// A string option.
    pub fn string(&mut self, key: &'static str) -> mlua::Result<Option<String>> {
        match self.value(key)? {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(s.to_str()?.to_string())),
            other => Err(self.wrong(key, "a string", &other)),
        }
    }

    /// A boolean option (absent is false).
    pub fn boolean(&mut self, key: &'static str) -> mlua::Result<bool> {
        match self.value(key)? {
            Value::Nil => Ok(false),
            Value::Boolean(b) => Ok(b),
            other => Err(self.wrong(key, "a boolean", &other)),
        }
    }

    /// A boolean option that may be absent.
    pub fn optional_boolean(&mut self, key: &'static str) -> mlua::Result<Option<bool>> {
        match self.value(key)? {
            Value::Nil => Ok(None),
            Value::Boolean(b) => Ok(Some(b)),
            other => Err(self.wrong(key, "a boolean", &other)),
        }
    }

    /// A non-negative integer option.
    pub fn count(&mut self, key: &'static str) -> mlua::Result<Option<u64>> {
        match self.value(key)? {
            Value::Nil => Ok(None),
            Value::Integer(n) if n >= 0 => Ok(Some(n as u64)),
            Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => Ok(Some(n as u64)),
            other => Err(self.wrong(key, "a whole number of 0 or more", &other)),
        }
    }

    /// A function option.
    pub fn function(&mut self, key: &'static str) -> mlua::Result<Option<Function>> {
        match self.value(key)? {
            Value::Nil => Ok(None),
            Value::Function(f) => Ok(Some(f)),
            other => Err(self.wrong(key, "a function", &other)),
        }
    }

    /// A list of disk names (`{ "vda", "vdb" }`; absent: none).
    pub fn disk_names(&mut self, key: &'static str) -> mlua::Result<Vec<String>> {
        match self.value(key)? {
            Value::Nil => Ok(Vec::new()),
            Value::Table(t) => t
                .sequence_values::<String>()
                .collect::<mlua::Result<Vec<_>>>()
                .map_err(|_| self.bad(key, "must be a list of disk names")),
            other => Err(self.bad(key, &format!("must be a list of disk names, not {}", other.type_name()))),
        }
    }

    /// A map of disk names to paths (`{ vda = "/p" }`; absent: none), sorted by disk.
    pub fn disk_paths(&mut self, key: &'static str) -> mlua::Result<Vec<(String, String)>> {
        match self.value(key)? {
            Value::Nil => Ok(Vec::new()),
            Value::Table(t) => {
                let mut v: Vec<(String, String)> = t
                    .pairs::<String, String>()
                    .collect::<mlua::Result<_>>()
                    .map_err(|_| self.bad(key, "must map disk names to paths"))?;
                v.sort();
                Ok(v)
            }
            other => Err(self.bad(key, &format!("must map disk names to paths, not {}", other.type_name()))),
        }
    }

    /// An error about option `key`'s value.
    pub fn bad(&self, key: &str, why: &str) -> mlua::Error {
        invalid(self.lua, format!("{}: option '{key}' {why}", self.what))
    }

    /// Refuses any key that was not taken.
    pub fn finish(self) -> mlua::Result<()> {
        let Some(t) = &self.table else { return Ok(()) };
        for pair in t.pairs::<Value, Value>() {
            let (k, _) = pair?;
            let name = match &k {
                Value::String(s) => s.to_str()?.to_string(),
                other => format!("[{}]", other.type_name()),
            };
            if !self.known.contains(&name.as_str()) {
                let mut known = self.known.clone();
                known.sort();
                return Err(invalid(
                    self.lua,
                    format!("{}: unknown option '{name}' (it takes: {})", self.what, known.join(", ")),
                ));
            }
        }
        Ok(())
    }
}
