//! Remote connections over SSH, against a private sshd on 127.0.0.1 (see `luavirt_tests::ssh`):
//! every kind of verb and Lua through `qemu+ssh://` gives what the host itself gives (its
//! state folder opened locally is the same host); errors keep their codes; `luavirt serve`
//! refuses a terminal; the transport's parameters act; another protocol version and oversized
//! frames are refused with clear errors, by either side; files a command looks at or removes
//! are the remote host's (a folder only it sees proves it); `drivers` lists its drivers.

use luavirt_tests::ssh::Sshd;
use luavirt_tests::{Env, Run, built, domain_xml, require, write_offline};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// The test's own luavirt (`env`), and host B (`b`): one state folder reached two ways.
struct Two {
    sshd: Sshd,
    env: Env,
    b: Env,
    /// B over ssh.
    remote: String,
    /// B opened here.
    local: String,
}

fn two(test: &str) -> Two {
    let sshd = Sshd::start();
    let env = Env::new(test);
    let b = Env::new(&format!("{test}-b"));
    let remote = sshd.uri("qemu", &format!("/session?state={}", b.state.display()));
    let local = format!("qemu:///session?state={}", b.state.display());
    Two { sshd, env, b, remote, local }
}

impl Two {
    fn at(&self, uri: &str, args: &[&str]) -> Run {
        let mut all = vec!["-c", uri];
        all.extend_from_slice(args);
        self.env.run(&all)
    }

    /// Runs `args` over ssh and expects success.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.at(&self.remote, args);
        assert_eq!(r.code, 0, "over ssh: luavirt {}:\n{}{}", args.join(" "), r.stdout, r.stderr);
        r.stdout
    }

    /// Runs `args` over ssh and here on B's state folder: the same status and output (the
    /// URI, where a message names it, aside).
    fn same(&self, args: &[&str]) -> Run {
        let there = self.at(&self.remote, args);
        let here = self.at(&self.local, args);
        let unname = |s: &str| s.replace(&self.remote, "URI").replace(&self.local, "URI");
        assert_eq!(
            (there.code, unname(&there.stdout), unname(&there.stderr)),
            (here.code, unname(&here.stdout), unname(&here.stderr)),
            "luavirt {} differs over ssh",
            args.join(" ")
        );
        there
    }

    /// Defines domain `d` on B over ssh: vda qcow2 holding 0x11, vdb raw holding 0x22.
    fn define_d(&self) {
        let a = self.b.image("a.qcow2", "qcow2", "16M");
        let r = self.b.image("r.raw", "raw", "16M");
        write_offline(&a, "qcow2", 0x11);
        write_offline(&r, "raw", 0x22);
        let xml = self.env.write("d.xml", &domain_xml("d", &[("vda", &a, "qcow2"), ("vdb", &r, "raw")]));
        let out = self.ok(&["define", xml.to_str().unwrap()]);
        assert_eq!(out, format!("Domain 'd' defined from {}\n", xml.display()));
    }
}

#[test]
fn every_kind_of_verb_over_ssh_gives_what_the_host_itself_gives() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let t = two("rverbs");
    t.define_d();
    // Reads, and errors with their codes.
    for args in [
        &["list", "--all"][..],
        &["list", "--all", "--json"],
        &["dumpxml", "d"],
        &["domblklist", "d", "--details", "--json"],
        &["domstate", "d", "--reason"],
        &["dumpxml", "nosuch", "--json"],
        &["diskset", "add", "d", "vdz", "--json"],
        &["snapshot-info", "d", "nosuch", "--json"],
        &["snapshot-create-as", "d", "s1", "--print-plan"],
        &["drivers"],
        &["dominfo", "d", "--json"],
        &["domblkinfo", "d", "--all", "--json"],
        &["domblkinfo", "d", "vdb"],
    ] {
        t.same(args);
    }
    let err = t.same(&["dumpxml", "nosuch", "--json"]).stderr;
    assert!(err.contains("\"code\":\"no-domain\""), "{err}");
    assert!(t.same(&["diskset", "add", "d", "vdz", "--json"]).stderr.contains("\"code\":\"no-disk\""));
    // Changes over ssh, seen by the host itself.
    t.ok(&["diskset", "add", "d", "vdb", "--set", "m"]);
    t.ok(&["disk-mode", "d", "vdb", "independent-persistent"]);
    for args in [&["diskset", "list", "d", "--set", "m"][..], &["diskset", "names", "d"], &["disk-mode", "d", "vdb"]] {
        t.same(args);
    }
    // A snapshot names its overlays from the files of B (over ssh: asked there).
    std::fs::write(t.b.dir.join("a.s1"), b"taken").unwrap();
    t.ok(&["snapshot-create-as", "d", "s1", "--diskspec", "vda,snapshot=external"]);
    assert!(t.b.dir.join("a.qcow2.s1").exists(), "the overlay did not avoid the file a.s1 of host B");
    for args in [
        &["snapshot-list", "d"][..],
        &["snapshot-info", "d", "s1"],
        &["snapshot-current", "d", "--name"],
        &["snapshot-parent", "d", "s1"],
    ] {
        t.same(args);
    }
    // Running: start, a block copy with progress, destroy.
    t.ok(&["start", "d"]);
    t.same(&["domstate", "d"]);
    let copy = t.b.dir.join("copy.raw");
    let r = t.at(&t.remote, &["blockcopy", "d", "vdb", copy.to_str().unwrap(), "--wait", "--pivot", "--verbose"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("100 %"), "no progress came back over ssh: {}", r.stderr);
    t.same(&["domblklist", "d"]);
    assert!(t.at(&t.local, &["domblklist", "d"]).stdout.contains(copy.to_str().unwrap()));
    t.ok(&["destroy", "d"]);
    assert!(luavirt_tests::image_holds(&copy, "raw", 0x22), "the copy made over ssh lost the disk's data");
    // edit: the editor runs here on the XML of B's domain, and B defines the result.
    let editor =
        t.env.write("editor.sh", "#!/bin/sh\nsed -i \"s/<memory unit='MiB'>64</<memory unit='MiB'>128</\" \"$1\"\n");
    luavirt_tests::set_mode(&editor, 0o755);
    let mut edit = t.env.command(&["-c", &t.remote, "edit", "d"]);
    let r: luavirt_tests::Run = edit.env("EDITOR", &editor).env_remove("VISUAL").output().unwrap().into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.same(&["dumpxml", "d"]).stdout.contains("<memory unit='MiB'>128</memory>"));
    t.ok(&["snapshot-delete", "d", "s1"]);
    t.ok(&["undefine", "d"]);
    t.same(&["list", "--all", "--name"]);
    assert_eq!(t.at(&t.local, &["list", "--all", "--name"]).stdout, "");
}

#[test]
fn lua_scripts_and_dry_runs_work_on_a_remote_connection() {
    let t = two("rlua");
    t.define_d();
    let script = t.env.write(
        "remote.lua",
        r#"
local lv = require("luavirt")
local conn = lv.connect()
local dom = conn:domain("d")
print(#conn:domains(), dom:disks()[1].target, dom:disks()[2].format)
print(dom:diskset("migrate"):add("vda"), dom:diskset("migrate"):add("vda"))
local ok, err = pcall(function() return conn:domain("nosuch") end)
print(ok, err.code)
local snap = dom:snapshot{ name = "lua1", disk_only = true }
print(snap:name(), #dom:snapshots())
"#,
    );
    let r = t.at(&t.remote, &["run", script.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1\tvda\traw\ntrue\tfalse\nfalse\tno-domain\nlua1\t1\n");
    assert_eq!(t.at(&t.local, &["diskset", "list", "d", "--set", "migrate"]).stdout, "vda\n");
    // A dry run over ssh changes nothing on B (and says what it would change).
    let before = t.b.state_snapshot();
    let dry = t.env.write("dry.lua", "local d = require('luavirt').connect():domain('d')\nd:diskset('other'):add('vdb')\nd:snapshot{ name = 'lua2', disk_only = true }\n");
    let r = t.at(&t.remote, &["run", "--dry-run", dry.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("would make 2 change(s)"), "{}", r.stdout);
    assert_eq!(t.b.state_snapshot(), before, "a dry run over ssh wrote on host B");
}

#[test]
fn serve_refuses_a_terminal_and_has_no_listening_mode() {
    require("script", "bsdutils");
    let lv = built("luavirt");
    // `script` gives the command a terminal.
    let out = Command::new("script")
        .args(["-qec", &format!("{} serve --stdio", lv.display()), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("they are a terminal here") && text.contains("not a command to run by hand"), "{text}");
    let out = Command::new(&lv).args(["serve"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no listening mode"));
}

/// Sends one frame.
fn frame(to: &mut impl Write, msg: &serde_json::Value) {
    let body = serde_json::to_vec(msg).unwrap();
    to.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    to.write_all(&body).unwrap();
    to.flush().unwrap();
}

/// Reads one frame.
fn read(from: &mut impl Read) -> serde_json::Value {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    from.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// `luavirt serve --stdio` on pipes, after its hello: what it answers `send`, and its exit.
fn serve_answers(send: impl FnOnce(&mut std::process::ChildStdin)) -> (serde_json::Value, i32) {
    let mut child = Command::new(built("luavirt"))
        .args(["serve", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut from = child.stdout.take().unwrap();
    let hello = read(&mut from);
    assert_eq!(hello["hello"]["protocol"], 1, "{hello}");
    let mut to = child.stdin.take().unwrap();
    send(&mut to);
    let answer = read(&mut from);
    drop(to);
    (answer, child.wait().unwrap().code().unwrap_or(-1))
}

/// A stand-in for the remote luavirt, run by ssh: it sends `frames` (raw bytes) and waits.
fn fake_server(env: &Env, name: &str, frames: &str) -> std::path::PathBuf {
    require("python3", "python3");
    let path = env.write(
        name,
        &format!(
            "#!/usr/bin/env python3\nimport json, struct, sys\ndef send(m):\n    b = json.dumps(m).encode()\n    sys.stdout.buffer.write(struct.pack('>I', len(b)) + b)\n    sys.stdout.flush()\n{frames}\nsys.stdin.buffer.read()\n"
        ),
    );
    luavirt_tests::set_mode(&path, 0o755);
    path
}

#[test]
fn another_protocol_version_is_refused_by_either_side() {
    // The server answers a client of another version with a refusal that says what to do.
    let (answer, code) = serve_answers(|to| {
        frame(to, &serde_json::json!({ "open": { "protocol": 99, "luavirt": "9.9.9", "uri": "qemu:///session" } }))
    });
    let message = answer["refused"]["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("speaks remote protocol 1, and the client (luavirt 9.9.9) speaks 99")
            && message.contains("install the same luavirt release on both hosts"),
        "{answer}"
    );
    assert_eq!(code, 1);
    // The client refuses a server of another version, over ssh.
    let t = two("rversion");
    let fake =
        fake_server(&t.env, "lv99.py", "send({'hello': {'protocol': 99, 'luavirt': '9.9.9', 'pid': 1, 'start': 0}})");
    let uri = t.sshd.uri_with("qemu", &format!("/session?state={}", t.b.state.display()), &fake);
    let r = t.at(&uri, &["list", "--json"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("luavirt 9.9.9 on ") && r.stderr.contains("speaks remote protocol 99, and this luavirt"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("install the same luavirt release on both hosts"), "{}", r.stderr);
}

#[test]
fn oversized_frames_are_refused_by_either_side() {
    // A client announcing a 2 GiB frame: the server refuses it unread, says why, and ends.
    let (answer, code) = serve_answers(|to| to.write_all(&0x8000_0000u32.to_be_bytes()).unwrap());
    let message = answer["refused"]["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("a frame of 2147483648 bytes, over the limit of 64 MiB"), "{answer}");
    assert_eq!(code, 1);
    // A server sending one: the client refuses it and closes the connection.
    let t = two("rframe");
    let fake = fake_server(
        &t.env,
        "big.py",
        "send({'hello': {'protocol': 1, 'luavirt': '0.1.0', 'pid': 1, 'start': 0}})\nsys.stdout.buffer.write(struct.pack('>I', 0xffffffff)); sys.stdout.flush()",
    );
    let uri = t.sshd.uri_with("qemu", &format!("/session?state={}", t.b.state.display()), &fake);
    let r = t.at(&uri, &["list"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("a frame of 4294967295 bytes, over the limit of 64 MiB"), "{}", r.stderr);
}

#[test]
fn the_transport_parameters_act() {
    let t = two("rparams");
    let state = format!("/session?state={}", t.b.state.display());
    // LUAVIRT_SSH replaces the ssh command: a wrapper that notes its arguments.
    let log = t.env.dir.join("ssh-args");
    let wrapper = t.env.write("myssh", &format!("#!/bin/sh\necho \"$@\" >> {}\nexec ssh \"$@\"\n", log.display()));
    luavirt_tests::set_mode(&wrapper, 0o755);
    let mut c = t.env.command(&["-c", &t.remote, "list", "--all"]);
    let out = c.env("LUAVIRT_SSH", format!("{} -o ConnectTimeout=30", wrapper.display())).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let args = std::fs::read_to_string(&log).unwrap();
    for word in [
        "-o ConnectTimeout=30",
        &format!("-p {}", t.sshd.port),
        &format!("-l {}", t.sshd.user),
        &format!("-i {}", t.sshd.key.display()),
        &format!("UserKnownHostsFile={}", t.sshd.known_hosts.display()),
        "serve --stdio",
    ] {
        assert!(args.contains(word), "ssh was not given {word}: {args}");
    }
    // Without a known host key ssh refuses, and says so; no_verify=1 accepts it.
    let empty = t.env.write("empty_known_hosts", "");
    let unknown = t.remote.replace(&t.sshd.known_hosts.display().to_string(), &empty.display().to_string());
    let r = t.at(&unknown, &["list"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("Host key verification failed"), "{}", r.stderr);
    let r = t.at(&format!("{unknown}&no_verify=1"), &["list", "--all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Another key is refused by the server, and no_tty=1 keeps ssh from asking for anything.
    let other = t.env.dir.join("other_key");
    Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).status().unwrap();
    let wrong = t.remote.replace(&t.sshd.key.display().to_string(), &other.display().to_string());
    let r = t.at(&format!("{wrong}&no_tty=1"), &["list"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    // command= names the remote binary: a wrong one is named in the error.
    let r = t.at(&t.sshd.uri_with("qemu", &state, std::path::Path::new("/nonexistent/luavirt")), &["list"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("'/nonexistent/luavirt' did not start there"), "{}", r.stderr);
    // A parameter of libvirt's that luavirt has no use for is refused, not ignored.
    let r = t.at(&format!("{}&socket=/run/x.sock", t.remote), &["list"]);
    assert!(r.code == 1 && r.stderr.contains("libvirt's socket= has no meaning here"), "{}", r.stderr);
}

/// The block job of disk vda of domain `dom` on B, as the host itself reports it.
fn job(t: &Two, dom: &str) -> serde_json::Value {
    let out = t.at(&t.local, &["blockjob", dom, "vda", "--json"]).stdout;
    serde_json::from_str::<serde_json::Value>(&out).unwrap_or_default()["job"].clone()
}

#[test]
fn ctrl_c_cancels_a_remote_block_job_through_the_connection() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let t = two("rcancel");
    let a = t.b.image("big.qcow2", "qcow2", "64M");
    let out = Command::new("qemu-io").args(["-f", "qcow2", "-c", "write -P 0x61 0 48M"]).arg(&a).output().unwrap();
    assert!(out.status.success());
    let xml = t.env.write("x.xml", &domain_xml("x", &[("vda", &a, "qcow2")]));
    t.ok(&["define", xml.to_str().unwrap()]);
    t.ok(&["start", "x"]);
    let copy = t.b.dir.join("slow-copy.qcow2");
    // 1 MiB/s over 48 MiB: long enough to interrupt. Its own process group, as a command
    // at a terminal is: Ctrl-C reaches luavirt and ssh alike.
    let child = {
        use std::os::unix::process::CommandExt;
        t.env
            .command(&["-c", &t.remote, "blockcopy", "x", "vda", copy.to_str().unwrap(), "--wait", "--bandwidth", "1"])
            .process_group(0)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A hang detector, not a measure of speed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while job(&t, "x") == serde_json::Value::Null {
        assert!(std::time::Instant::now() < deadline, "the block copy did not start on B");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(Command::new("kill").args(["-INT", "--", &format!("-{}", child.id())]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The driver's own answer came back over the connection, which Ctrl-C did not end.
    assert!(err.contains("was cancelled; the job was stopped") && !err.contains("was lost"), "{err}");
    assert_eq!(job(&t, "x"), serde_json::Value::Null, "the job still runs on B");
    t.ok(&["destroy", "x"]);
}

#[test]
fn suspend_resume_save_restore_revert_pull_and_commit_work_over_ssh() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let t = two("rmore");
    t.define_d();
    // A disk-only snapshot, then back to it, shut off.
    t.ok(&["snapshot-create-as", "d", "s1", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    t.ok(&["snapshot-revert", "d", "s1"]);
    t.same(&["snapshot-current", "d", "--name"]);
    // Running: suspend and resume; pull and commit the overlays that snapshots made.
    t.ok(&["start", "d"]);
    t.ok(&["suspend", "d"]);
    assert_eq!(t.same(&["domstate", "d"]).stdout, "paused\n");
    t.ok(&["resume", "d"]);
    assert_eq!(t.same(&["domstate", "d"]).stdout, "running\n");
    t.ok(&["snapshot-create-as", "d", "s2", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    assert_eq!(t.ok(&["blockpull", "d", "vda", "--wait"]), "Pull complete\n");
    t.ok(&["snapshot-create-as", "d", "s3", "--disk-only", "--diskspec", "vda,snapshot=external"]);
    t.ok(&["blockcommit", "d", "vda", "--wait", "--pivot"]);
    t.same(&["domblklist", "d", "--details"]);
    // Save and restore: the files are B's, named by absolute path.
    let r = t.at(&t.remote, &["save", "d", "rel.save"]);
    assert!(r.code == 1 && r.stderr.contains("rel.save: name a file of the remote host"), "{}", r.stderr);
    let file = t.b.dir.join("d.save");
    t.ok(&["save", "d", file.to_str().unwrap(), "--diskspec", "vda"]);
    assert!(file.exists());
    t.same(&["domstate", "d"]);
    t.ok(&["restore", file.to_str().unwrap()]);
    assert_eq!(t.at(&t.local, &["domstate", "d"]).stdout, "running\n");
    t.ok(&["destroy", "d"]);
    let (image, format) = luavirt_tests::disk_image(&t.b, "d", "vda");
    assert!(luavirt_tests::image_holds(&image, &format, 0x11), "vda lost its data over ssh");
}

#[test]
fn drivers_over_ssh_are_the_remote_hosts() {
    let t = two("rdrivers");
    // B's luavirt also searches a folder holding a file that is no driver: it refuses it.
    let folder = t.b.dir.join("drivers");
    std::fs::create_dir_all(&folder).unwrap();
    luavirt_tests::set_mode(&t.b.dir, 0o755);
    luavirt_tests::set_mode(&folder, 0o755);
    std::fs::write(folder.join("libnot_a_driver.so"), b"not an ELF file").unwrap();
    let wrapper = t.env.write(
        "lv-drivers.sh",
        &format!(
            "#!/bin/sh\nexport LUAVIRT_DRIVER_DIR={}\nexec {} \"$@\"\n",
            folder.display(),
            built("luavirt").display()
        ),
    );
    luavirt_tests::set_mode(&wrapper, 0o755);
    let there = t.sshd.uri_with("qemu", &format!("/session?state={}", t.b.state.display()), &wrapper);
    let r = t.at(&there, &["drivers", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(listed["refused"][0]["path"], folder.join("libnot_a_driver.so").display().to_string(), "{listed}");
    assert!(listed["drivers"].as_array().unwrap().iter().any(|d| d["name"] == "qemu"), "{listed}");
    // This host does not search that folder.
    let here: serde_json::Value = serde_json::from_str(&t.env.ok(&["drivers", "--json"])).unwrap();
    assert_eq!(here["refused"], serde_json::json!([]), "{here}");
}

#[test]
fn attach_disk_and_undefine_storage_use_the_files_of_the_remote_host() {
    let t = two("rfiles");
    t.define_d();
    // An image only host B has.
    let image = t.sshd.there().join("only-there.qcow2");
    let made = t.sshd.command_there("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&image).arg("16M").status();
    assert!(made.unwrap().success());
    assert!(!image.exists(), "the image should not be seen here");
    let exists_there = || t.sshd.command_there("test").arg("-e").arg(&image).status().unwrap().success();
    // A file of B is named by its absolute path; attach-disk reads its format from it there.
    let r = t.at(&t.remote, &["attach-disk", "d", "rel.qcow2", "vdd", "--config"]);
    assert!(r.code == 1 && r.stderr.contains("rel.qcow2: name a file of the remote host"), "{}", r.stderr);
    t.ok(&["attach-disk", "d", image.to_str().unwrap(), "vdc", "--config"]);
    let xml = t.ok(&["dumpxml", "d"]);
    assert!(xml.contains(&format!("type='qcow2'/>\n      <source file='{}'/>", image.display())), "{xml}");
    // undefine --remove-all-storage removes it there.
    let r = t.at(&t.remote, &["undefine", "d", "--remove-all-storage", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("only-there.qcow2"), "{}", r.stdout);
    assert!(!exists_there(), "the image is still on host B");
}
