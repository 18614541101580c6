//! Shared pieces of the end-to-end tests: a temporary host (its own state folder and driver
//! folder), running the real `luavirt` binary in it, real disk images from `qemu-img`, and
//! cleanup that stops any QEMU a failed test left running.
//!
//! The binary and the plugins must be built first (`cargo build --workspace`; `tools/test.sh`
//! does it).

pub mod crash;
pub mod migration;
pub mod ssh;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The folder holding the built `luavirt` and `libluavirt_*.so` (target/debug or release).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// The repository's top folder.
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// Path of a built artifact, with a clear failure when it is missing.
pub fn built(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (tools/test.sh does)",
        p.display()
    );
    p
}

/// Checks that an external program is installed, with a hint when it is not.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    assert!(found, "{program} is not installed; run tools/setup.sh (it installs {package})");
}

/// Compiles a C driver into a shared object against the generated header.
pub fn build_c_driver(source: &Path, out: &Path, defines: &[&str]) {
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", "-I"])
        .arg(repo_dir().join("plugin-api/include"))
        .args(defines)
        .arg(source)
        .arg("-o")
        .arg(out)
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc failed on {}", source.display());
    set_mode(out, 0o755);
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// What a run of `luavirt` did.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A temporary host: a folder with its own state folder, and optionally extra driver folders.
pub struct Env {
    /// The temporary folder.
    pub dir: PathBuf,
    /// `LUAVIRT_STATE_DIR`.
    pub state: PathBuf,
    /// `LUAVIRT_DRIVER_DIR`, if set.
    pub driver_dir: Option<PathBuf>,
}

impl Env {
    /// A fresh temporary host named after the test.
    pub fn new(test: &str) -> Env {
        static N: AtomicU32 = AtomicU32::new(0);
        // Short paths: QEMU's monitor socket lives under the state folder.
        let dir = std::env::temp_dir().join(format!(
            "lvt-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            &test[..test.len().min(12)]
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Env { state: dir.join("state"), dir, driver_dir: None }
    }

    /// Adds a folder searched for drivers (`LUAVIRT_DRIVER_DIR`), created empty. It and the
    /// temporary folder get mode 0755 whatever the umask: the host loads drivers only from
    /// folders no one else can write (the `/tmp` above is sticky, which it accepts).
    pub fn with_driver_dir(mut self) -> Env {
        let d = self.dir.join("drivers");
        std::fs::create_dir_all(&d).unwrap();
        set_mode(&self.dir, 0o755);
        set_mode(&d, 0o755);
        self.driver_dir = Some(d);
        self
    }

    /// The policy folder of this host (`LUAVIRT_POLICY_DIR`); it does not exist until a test
    /// makes it, so no policy of the machine's runs in a test.
    pub fn policy_dir(&self) -> PathBuf {
        self.dir.join("policies")
    }

    /// A `luavirt` command set up for this host.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(built("luavirt"));
        c.args(args)
            .env("LUAVIRT_STATE_DIR", &self.state)
            .env("LUAVIRT_POLICY_DIR", self.policy_dir())
            .env_remove("LUAVIRT_DEFAULT_URI")
            .env_remove("LUAVIRT_LOG")
            .env_remove("RUST_LOG")
            // Times print in the local zone: the same on every machine for the tests.
            .env("TZ", "UTC");
        match &self.driver_dir {
            Some(d) => c.env("LUAVIRT_DRIVER_DIR", d),
            None => c.env_remove("LUAVIRT_DRIVER_DIR"),
        };
        c
    }

    /// Runs `luavirt args`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("luavirt runs").into()
    }

    /// Runs `luavirt args`; a run still going after `hang` is killed and fails the test (a
    /// hang detector, not a measure of speed).
    pub fn run_or_hang(&self, args: &[&str], hang: std::time::Duration) -> Run {
        let child = self
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("luavirt runs");
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output()));
        match rx.recv_timeout(hang) {
            Ok(out) => out.expect("luavirt runs").into(),
            Err(_) => {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                panic!("luavirt {} still ran after {hang:?}; it was killed", args.join(" "));
            }
        }
    }

    /// Runs `luavirt args`, expects success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "luavirt {} failed:\n{}{}", args.join(" "), r.stdout, r.stderr);
        r.stdout
    }

    /// Runs `luavirt args`, expects exit status `code`, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            code,
            "luavirt {}: expected exit {code}, got {}:\n{}{}",
            args.join(" "),
            r.code,
            r.stdout,
            r.stderr
        );
        r.stderr
    }

    /// Writes a file in the temporary folder.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Creates a disk image with `qemu-img create`.
    pub fn image(&self, name: &str, format: &str, size: &str) -> PathBuf {
        let p = self.dir.join(name);
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", format])
            .arg(&p)
            .arg(size)
            .output()
            .expect("qemu-img runs");
        assert!(out.status.success(), "qemu-img create failed: {}", String::from_utf8_lossy(&out.stderr));
        p
    }

    /// Defines domain `name` with disks `(target, image path, format)` on virtio, QEMU (TCG).
    pub fn define_domain(&self, name: &str, disks: &[(&str, &Path, &str)]) {
        let file = self.write(&format!("{name}.xml"), &domain_xml(name, disks));
        self.ok(&["define", file.to_str().unwrap()]);
    }

    /// Every file under the state folder with its content (to prove nothing changed).
    pub fn state_snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(&self.state, &mut out);
        out
    }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_none_or(|x| x != "lock" && x != "sock") {
            out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Stop any QEMU a failed test left behind, then remove the folder.
        let run = self.state.join("qemu/run");
        for e in std::fs::read_dir(&run).into_iter().flatten().flatten() {
            if let Ok(text) = std::fs::read_to_string(e.path().join("state.json"))
                && let Some(pid) = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["pid"].as_i64())
            {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Domain XML for a TCG QEMU domain with the given disks.
pub fn domain_xml(name: &str, disks: &[(&str, &Path, &str)]) -> String {
    let mut devices = String::new();
    for (target, path, format) in disks {
        devices.push_str(&format!(
            "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{format}'/>\n      <source file='{}'/>\n      <target dev='{target}' bus='virtio'/>\n    </disk>\n",
            path.display()
        ));
    }
    format!(
        "<domain type='qemu'>\n  <name>{name}</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n  <devices>\n{devices}  </devices>\n</domain>\n"
    )
}

/// The domain XML corpus: `(file name, content)` of every file in tests/data/domains/`kind`.
pub fn corpus(kind: &str) -> Vec<(String, String)> {
    let dir = repo_dir().join("tests/data/domains").join(kind);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    files
}

/// The name a domain XML gives itself.
pub fn domain_name(xml: &str) -> String {
    luavirt_plugin_api::domain::DomainXml::parse(xml, None).expect("corpus file parses").name()
}

/// Runs the project's losslessness check (tests/tools/xml-same.py): `Ok` or its explanation.
pub fn xml_same(original: &Path, written: &Path) -> Result<(), String> {
    let out = Command::new("python3")
        .arg(repo_dir().join("tests/tools/xml-same.py"))
        .arg(original)
        .arg(written)
        .arg("--added-uuid")
        .output()
        .expect("python3 runs");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stdout).into_owned()) }
}

/// Runs `virt-xml-validate FILE domain`: `Ok` or its output.
pub fn validate_domain(file: &Path) -> Result<(), String> {
    let out = Command::new("virt-xml-validate").arg(file).arg("domain").output().expect("virt-xml-validate runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Runs QMP commands `(command, arguments)` on a running domain's monitor and returns each
/// reply (`return` or `error`).
pub fn qmp_session(env: &Env, domain: &str, commands: &[(&str, serde_json::Value)]) -> Vec<serde_json::Value> {
    use std::io::{BufRead, BufReader, Write};
    // Claim a monitor the way luavirt does (qmp-K.lock), so a luavirt call never waits on us.
    let run = env.state.join("qemu/run").join(domain);
    let (sock, _claim) = (0..4)
        .find_map(|k| {
            luavirt_plugin_api::fsutil::try_lock_exclusive(&run.join(format!("qmp-{k}.lock")))
                .unwrap()
                .map(|g| (run.join(format!("qmp-{k}.sock")), g))
        })
        .expect("a free monitor");
    let stream = std::os::unix::net::UnixStream::connect(&sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let read_reply = |reader: &mut BufReader<std::os::unix::net::UnixStream>| loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "QEMU closed the monitor");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v.get("return").is_some() || v.get("error").is_some() || v.get("QMP").is_some() {
            return v;
        }
    };
    read_reply(&mut reader);
    writeln!(writer, "{}", serde_json::json!({ "execute": "qmp_capabilities" })).unwrap();
    read_reply(&mut reader);
    commands
        .iter()
        .map(|(c, a)| {
            writeln!(writer, "{}", serde_json::json!({ "execute": c, "arguments": a })).unwrap();
            read_reply(&mut reader)
        })
        .collect()
}

/// Runs one QMP command on a running domain and returns its `return` value.
pub fn qmp(env: &Env, domain: &str, command: &str, arguments: serde_json::Value) -> serde_json::Value {
    let r = qmp_session(env, domain, &[(command, arguments)]).remove(0);
    r.get("return").cloned().unwrap_or_else(|| panic!("QMP {command}: {r}"))
}

/// Runs HMP command lines on a running domain's monitor (QMP `human-monitor-command`) and
/// returns what each printed. `qemu-io` output goes to QEMU's log, not here: check data with
/// [`image_holds`] after the domain stops.
pub fn hmp(env: &Env, domain: &str, lines: &[&str]) -> Vec<String> {
    let commands: Vec<(&str, serde_json::Value)> =
        lines.iter().map(|l| ("human-monitor-command", serde_json::json!({ "command-line": l }))).collect();
    qmp_session(env, domain, &commands)
        .into_iter()
        .zip(lines)
        .map(|(r, l)| r["return"].as_str().unwrap_or_else(|| panic!("HMP {l}: {r}")).to_string())
        .collect()
}

/// [`hmp`], for the crash checks.
pub fn hmp_on(env: &Env, domain: &str, lines: &[&str]) -> Vec<String> {
    hmp(env, domain, lines)
}

/// Writes `pattern` over the first MiB of disk `target` of a running domain, through its
/// guest device (`qemu-io` on the device's backend).
pub fn write_live(env: &Env, domain: &str, target: &str, pattern: u8) {
    let out = hmp(
        env,
        domain,
        &[&format!("qemu-io -d /machine/peripheral/{target}/virtio-backend \"write -P {pattern:#x} 0 1M\"")],
    );
    assert_eq!(out[0], "", "qemu-io on {domain}/{target} said: {}", out[0]);
}

/// Writes `pattern` over the first MiB of an image that no QEMU has open.
pub fn write_offline(image: &Path, format: &str, pattern: u8) {
    let out = Command::new("qemu-io")
        .args(["-f", format, "-c", &format!("write -P {pattern:#x} 0 1M")])
        .arg(image)
        .output()
        .expect("qemu-io runs");
    assert!(out.status.success(), "qemu-io write on {}: {}", image.display(), String::from_utf8_lossy(&out.stderr));
}

/// Whether the first MiB of `image` (read through its backing chain) holds `pattern`.
pub fn image_holds(image: &Path, format: &str, pattern: u8) -> bool {
    image_holds_at(image, format, pattern, 0)
}

/// Whether the MiB at `offset_mib` of `image` (read through its backing chain) holds `pattern`.
pub fn image_holds_at(image: &Path, format: &str, pattern: u8, offset_mib: u32) -> bool {
    Command::new("qemu-io")
        .args(["-r", "-U", "-f", format, "-c", &format!("read -P {pattern:#x} {offset_mib}M 1M")])
        .arg(image)
        .output()
        .expect("qemu-io runs")
        .status
        .success()
}

/// The format of `image`, as `qemu-img info` detects it.
pub fn format_of(image: &Path) -> String {
    let out = Command::new("qemu-img").args(["info", "--output=json", "-U"]).arg(image).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["format"].as_str().unwrap_or("raw").to_string()
}

/// The backing file of `image`, if it has one.
pub fn backing_of(image: &Path) -> Option<String> {
    let out = Command::new("qemu-img").args(["info", "--output=json", "-U"]).arg(image).output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["full-backing-filename"].as_str().or(v["backing-filename"].as_str()).map(str::to_string)
}

/// The image disk `target` of `domain` uses now, and its format, from `domblklist --details`.
pub fn disk_image(env: &Env, domain: &str, target: &str) -> (PathBuf, String) {
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["domblklist", domain, "--details", "--json"])).unwrap();
    let d = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["target"] == target)
        .unwrap_or_else(|| panic!("no disk {target}: {list}"));
    (PathBuf::from(d["source"].as_str().unwrap()), d["format"].as_str().unwrap().to_string())
}

/// Whether disk `target` of `domain` (through its current image and chain) holds `pattern`.
pub fn disk_holds(env: &Env, domain: &str, target: &str, pattern: u8) -> bool {
    let (image, format) = disk_image(env, domain, target);
    image_holds(&image, &format, pattern)
}

/// A raw disk image whose boot sector is a tiny guest that does what an OS does with the
/// ACPI power button: it enables the button's event, marks itself ready (byte 0x42 at guest
/// address 0x500), sleeps until the button is pressed, then powers the machine off through
/// ACPI (SLP_EN, S5). QEMU's `pc` machine with SeaBIOS puts the PM registers at 0x600.
pub fn acpi_guest_image(env: &Env, name: &str) -> PathBuf {
    #[rustfmt::skip]
    let code: &[u8] = &[
        0x31, 0xC0,                   // xor ax, ax
        0x8E, 0xD8,                   // mov ds, ax
        0xBA, 0x02, 0x06,             // mov dx, 0x602     PM1 enable
        0xB8, 0x00, 0x01,             // mov ax, 0x100     power button
        0xEF,                         // out dx, ax
        0xC6, 0x06, 0x00, 0x05, 0x42, // mov byte [0x500], 0x42: ready
        0xFB,                         // wait: sti
        0xF4,                         //       hlt (until the timer ticks)
        0xBA, 0x00, 0x06,             // mov dx, 0x600     PM1 status
        0xED,                         // in ax, dx
        0xA9, 0x00, 0x01,             // test ax, 0x100    pressed?
        0x74, 0xF5,                   // jz wait
        0xBA, 0x04, 0x06,             // mov dx, 0x604     PM1 control
        0xB8, 0x00, 0x20,             // mov ax, 0x2000    SLP_EN, S5
        0xEF,                         // out dx, ax
        0xF4,                         // hlt
        0xEB, 0xFD,                   // jmp hlt
    ];
    let mut image = code.to_vec();
    image.resize(510, 0);
    image.extend([0x55, 0xAA]);
    image.resize(1 << 20, 0);
    let p = env.dir.join(name);
    std::fs::write(&p, image).unwrap();
    p
}

/// Defines domain `name` booting [`acpi_guest_image`] from disk vda (raw, virtio).
pub fn define_acpi_guest(env: &Env, name: &str) -> PathBuf {
    let image = acpi_guest_image(env, &format!("{name}-boot.raw"));
    let xml = domain_xml(name, &[("vda", &image, "raw")])
        .replace("<target dev='vda' bus='virtio'/>", "<target dev='vda' bus='virtio'/>\n      <boot order='1'/>");
    let file = env.write(&format!("{name}.xml"), &xml);
    env.ok(&["define", file.to_str().unwrap()]);
    image
}

/// Waits until the guest of [`define_acpi_guest`] listens for the power button (its BIOS
/// has booted it); panics after 60 s.
pub fn wait_acpi_guest_ready(env: &Env, domain: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = hmp(env, domain, &["xp /1bx 0x500"]);
        if out[0].contains("0x42") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the guest of {domain} never got ready: {}", out[0]);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A QMP connection that only listens: it collects the events QEMU sends every monitor
/// (`POWERDOWN`, `RESET`, `STOP`, ...). It holds one of the domain's monitors while it lives.
pub struct QmpListener {
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
    _claim: luavirt_plugin_api::fsutil::LockGuard,
}

impl QmpListener {
    /// Connects to a free monitor of running `domain`.
    pub fn new(env: &Env, domain: &str) -> QmpListener {
        use std::io::{BufRead, Write};
        let run = env.state.join("qemu/run").join(domain);
        let (sock, claim) = (0..4)
            .find_map(|k| {
                luavirt_plugin_api::fsutil::try_lock_exclusive(&run.join(format!("qmp-{k}.lock")))
                    .unwrap()
                    .map(|g| (run.join(format!("qmp-{k}.sock")), g))
            })
            .expect("a free monitor");
        let mut stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap(); // greeting
        writeln!(stream, "{}", serde_json::json!({ "execute": "qmp_capabilities" })).unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        QmpListener { reader, _claim: claim }
    }

    /// Waits up to `timeout` for event `name`; whether it came.
    pub fn saw(&mut self, name: &str, timeout: std::time::Duration) -> bool {
        use std::io::BufRead;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    if v["event"] == name {
                        return true;
                    }
                }
            }
        }
    }
}
