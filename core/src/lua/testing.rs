//! `luavirt test`: runs `*_test.lua` files, each in a fresh sandbox with a fresh temporary
//! state folder (its own `qemu:///session`), where `fixture` makes real disk images with
//! `qemu-img` and real domains. Tests register with `test(name, fn)` and check with a small
//! assertion library; each failure is printed with its file and line, and the run ends with
//! `N passed, N failed`. A file that registers no test fails. `luavirt.connect` reaches only
//! the file's temporary host: a test cannot touch real domains in another state folder.

use super::{RunOptions, errors, interpreter};
use luavirt_host::Host;
use mlua::{Function, Lua, ObjectLike, Table};
use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Assertions, in Lua so that `error(msg, 2)` points at the test's own line.
const ASSERTIONS: &str = r#"
local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. "=" .. show(x) end
    table.sort(parts)
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
local function fail(msg, extra) error((extra and (extra .. ": ") or "") .. msg, 3) end
function assert_eq(actual, expected, msg)
  if not same(actual, expected) then fail("expected " .. show(expected) .. ", got " .. show(actual), msg) end
end
function assert_ne(actual, unexpected, msg)
  if same(actual, unexpected) then fail("expected anything but " .. show(unexpected), msg) end
end
function assert_true(v, msg) if v ~= true then fail("expected true, got " .. show(v), msg) end end
function assert_false(v, msg) if v ~= false then fail("expected false, got " .. show(v), msg) end end
function assert_nil(v, msg) if v ~= nil then fail("expected nil, got " .. show(v), msg) end end
function assert_match(s, pattern, msg)
  if type(s) ~= "string" or not s:find(pattern) then fail("expected a string matching " .. show(pattern) .. ", got " .. show(s), msg) end
end
function assert_contains(list, value, msg)
  for _, v in ipairs(list) do if same(v, value) then return end end
  fail("expected " .. show(list) .. " to contain " .. show(value), msg)
end
-- Calls fn, expects an error; `want` matches the error's code, or a pattern in its message.
function assert_error(fn, want, msg)
  local ok, err = pcall(fn)
  if ok then fail("expected an error, got none", msg) end
  if want then
    local code = type(err) == "table" and err.code or nil
    local text = tostring(err)
    if code ~= want and not text:find(want) then fail("expected an error matching " .. show(want) .. ", got " .. show(text), msg) end
  end
  return err
end
"#;

/// Tests a file registered with `test(name, fn)`, in order.
type Registered = Rc<RefCell<Vec<(String, Function)>>>;

/// The result of a whole test run.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Each test's outcome, in the order run (a file that fails to load or registers no test
    /// counts as one failed test).
    pub tests: Vec<Outcome>,
}

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// The test file.
    pub file: String,
    /// The test's name, or `(loading the file)`, `(no tests)`.
    pub name: String,
    /// It passed.
    pub passed: bool,
    /// Why it failed, with the file and line.
    pub message: Option<String>,
}

impl Tally {
    fn pass(&mut self, file: &Path, name: &str) {
        self.passed += 1;
        self.tests.push(Outcome {
            file: file.display().to_string(),
            name: name.to_string(),
            passed: true,
            message: None,
        });
    }

    fn fail(&mut self, file: &Path, name: &str, why: &str) {
        self.failed += 1;
        self.tests.push(Outcome {
            file: file.display().to_string(),
            name: name.to_string(),
            passed: false,
            message: Some(why.to_string()),
        });
    }
}

/// Every `*_test.lua` under `paths` (files as given, folders searched), sorted.
pub fn find_tests(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.file_name().is_some_and(|n| n.to_string_lossy().ends_with("_test.lua")) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    out.sort();
    Ok(out)
}

/// A temporary folder removed (with the domains running in it) when dropped.
struct Scratch {
    dir: PathBuf,
    host: Rc<Host>,
    uri: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(conn) = self.host.connect(&self.uri) {
            for d in conn.list_domains().unwrap_or_default().into_iter().filter(|d| d.state.is_active()) {
                let _ = conn.destroy(&d.name);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a test's own `print` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prints {
    /// Standard output, among the report.
    Stdout,
    /// Standard error, so that standard output holds the report alone (`--json`).
    Stderr,
}

/// Runs every test file; prints as it goes; returns the tally.
pub fn run_tests(
    host: Rc<Host>,
    files: &[PathBuf],
    opts: &RunOptions,
    prints: Prints,
    out: &mut dyn std::io::Write,
) -> Tally {
    let mut tally = Tally::default();
    for (n, file) in files.iter().enumerate() {
        let dir = std::env::temp_dir().join(format!("luavirt-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(dir.join("state")) {
            let why = format!("cannot create {}: {e}", dir.display());
            let _ = writeln!(out, "{}\n  FAIL  {why}", file.display());
            tally.fail(file, "(creating its temporary host)", &why);
            continue;
        }
        let uri = format!("qemu:///session?state={}", dir.join("state").display());
        let scratch = Scratch { dir, host: host.clone(), uri: uri.clone() };
        let file_opts = RunOptions { default_uri: uri, confine: Some(scratch.dir.clone()), ..opts.clone() };
        run_file(host.clone(), file, &scratch.dir, &file_opts, prints, out, &mut tally);
        drop(scratch);
    }
    let _ = writeln!(out, "{} passed, {} failed", tally.passed, tally.failed);
    tally
}

fn run_file(
    host: Rc<Host>,
    file: &Path,
    scratch: &Path,
    opts: &RunOptions,
    prints: Prints,
    out: &mut dyn std::io::Write,
    tally: &mut Tally,
) {
    let _ = writeln!(out, "{}", file.display());
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fail = |out: &mut dyn std::io::Write, tally: &mut Tally, name: &str, why: &str| {
        let _ = writeln!(out, "  FAIL  {name}\n        {}", why.replace('\n', "\n        "));
        tally.fail(file, name, why);
    };
    let setup = || -> mlua::Result<(Lua, Registered)> {
        let (lua, ctx) = interpreter(host.clone(), dir, opts)?;
        ctx.limits.leaves_behind(format!(
            "the test's temporary host {} is left behind: stop any QEMU running there, then remove it",
            scratch.display()
        ));
        lua.load(ASSERTIONS).set_name("=luavirt assertions").exec()?;
        if prints == Prints::Stderr {
            lua.globals().set("print", print_to_stderr(&lua)?)?;
        }
        let tests = Rc::new(RefCell::new(Vec::new()));
        let registry = tests.clone();
        lua.globals().set(
            "test",
            lua.create_function(move |_, (name, f): (String, Function)| {
                registry.borrow_mut().push((name, f));
                Ok(())
            })?,
        )?;
        lua.globals().set("fixture", fixture(&lua, scratch)?)?;
        let source = super::read_script(file).map_err(mlua::Error::runtime)?;
        lua.load(source).set_name(format!("@{}", file.display())).set_mode(mlua::chunk::ChunkMode::Text).exec()?;
        Ok((lua, tests))
    };
    let (lua, tests) = match setup() {
        Ok(x) => x,
        Err(e) => {
            fail(out, tally, "(loading the file)", &errors::report(&e));
            return;
        }
    };
    let tests = tests.borrow().clone();
    if tests.is_empty() {
        fail(
            out,
            tally,
            "(no tests)",
            "the file registered no test; register each with test(name, function() ... end)",
        );
        return;
    }
    for (name, f) in tests {
        match f.call::<()>(()) {
            Ok(()) => {
                let _ = writeln!(out, "  ok    {name}");
                tally.pass(file, &name);
            }
            Err(e) => {
                fail(out, tally, &name, &errors::brief(&e));
                // A limit ends the whole file: its interpreter has no time or memory left.
                if errors::find::<super::limits::LimitError>(&e).is_some() {
                    break;
                }
            }
        }
    }
    drop(lua);
}

/// `print` as Lua's own, onto standard error.
fn print_to_stderr(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, args: mlua::MultiValue| {
        let tostring: Function = lua.globals().get("tostring")?;
        let parts = args.into_iter().map(|v| tostring.call::<String>(v)).collect::<mlua::Result<Vec<_>>>()?;
        let _ = writeln!(std::io::stderr(), "{}", parts.join("\t"));
        Ok(())
    })
}

/// `fixture`: the test's folder, real images, real domains on the test's own connection.
fn fixture(lua: &Lua, scratch: &Path) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("dir", scratch.display().to_string())?;
    let dir = scratch.to_path_buf();
    t.set(
        "image",
        lua.create_function(move |lua, opts: Table| {
            let mut o = super::options::Opts::new(lua, Some(opts), "fixture.image");
            let name = o.string("name")?.ok_or_else(|| o.bad("name", "is required"))?;
            let format = o.string("format")?.unwrap_or_else(|| "qcow2".into());
            let size = o.string("size")?.unwrap_or_else(|| "16M".into());
            o.finish()?;
            make_image(&dir, &name, &format, &size)
        })?,
    )?;
    let dir = scratch.to_path_buf();
    t.set(
        "domain",
        lua.create_function(move |lua, opts: Table| {
            let mut o = super::options::Opts::new(lua, Some(opts), "fixture.domain");
            let name = o.string("name")?.ok_or_else(|| o.bad("name", "is required"))?;
            let disks: Table = match o.value("disks")? {
                mlua::Value::Table(t) => t,
                mlua::Value::Nil => lua.create_table()?,
                other => return Err(o.bad("disks", &format!("must be a list of disk tables, not {}", other.type_name()))),
            };
            o.finish()?;
            let mut devices = String::new();
            for d in disks.sequence_values::<Table>() {
                let mut d = super::options::Opts::new(lua, Some(d?), "fixture.domain disk");
                let target = d.string("target")?.ok_or_else(|| d.bad("target", "is required"))?;
                let format = d.string("format")?.unwrap_or_else(|| "qcow2".into());
                let size = d.string("size")?.unwrap_or_else(|| "16M".into());
                let path = match d.string("path")? {
                    Some(p) => p,
                    None => make_image(&dir, &format!("{name}-{target}.{format}"), &format, &size)?,
                };
                let bus = d.string("bus")?.unwrap_or_else(|| "virtio".into());
                let mode = d.string("mode")?;
                d.finish()?;
                let (attr, extra) = match mode.as_deref() {
                    None | Some("persistent") => ("", ""),
                    Some("independent-persistent") => (" snapshot='no'", ""),
                    Some("independent-nonpersistent") => (" snapshot='no'", "\n      <transient/>"),
                    Some(other) => return Err(errors::invalid(lua, format!("fixture.domain: unknown disk mode {other:?}"))),
                };
                devices.push_str(&format!(
                    "    <disk type='file' device='disk'{attr}>\n      <driver name='qemu' type='{format}'/>\n      <source file='{path}'/>\n      <target dev='{target}' bus='{bus}'/>{extra}\n    </disk>\n"
                ));
            }
            let xml = format!(
                "<domain type='qemu'>\n  <name>{name}</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n  <devices>\n{devices}  </devices>\n</domain>\n"
            );
            let conn: mlua::AnyUserData = lua.load("return require('luavirt').connect()").eval()?;
            conn.call_method::<mlua::Value>("define", xml)
        })?,
    )?;
    Ok(t)
}

/// Creates an image with `qemu-img create`; returns its path.
fn make_image(dir: &Path, name: &str, format: &str, size: &str) -> mlua::Result<String> {
    if name.contains('/') || name.starts_with('.') {
        return Err(mlua::Error::runtime(format!("fixture.image: {name:?} must be a plain file name")));
    }
    let path = dir.join(name);
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", format])
        .arg(&path)
        .arg(size)
        .output()
        .map_err(|e| mlua::Error::runtime(format!("cannot run qemu-img: {e}; install qemu-utils")))?;
    if !out.status.success() {
        return Err(mlua::Error::runtime(format!(
            "qemu-img create {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(path.display().to_string())
}
