//! Migration from this host to host B on "another machine" (a private sshd whose mount
//! namespace has its own machine id; see `luavirt_tests::ssh`): a running domain with a
//! copied, a blank and a shared disk, over TCP and through ssh (`--tunnelled`, from Lua, and
//! from one other machine to another);
//! the connection lost at each phase (ssh killed, the remote server killed) leaves the
//! source running on its own disks and the destination cleaned up by its next call, or, when
//! the destination had committed, the domain there; and the requests that cannot work across
//! machines are refused.

use luavirt_tests::migration::{
    Disks, define_source_domain, holds_no_data, info, names, qemu_io, same_content, source_of, sources, state,
};
use luavirt_tests::ssh::Sshd;
use luavirt_tests::{Env, built, hmp, image_holds_at, require, set_mode, write_offline};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// This host (`src`) and host B (`dst`, reached over ssh as `to`; its state folder is also
/// read here directly, as the host itself sees it).
struct Hosts {
    sshd: Sshd,
    src: Env,
    dst: Env,
    to: String,
}

fn hosts(test: &str) -> (Hosts, Disks) {
    require("qemu-system-x86_64", "qemu-system-x86");
    let sshd = Sshd::start();
    let src = Env::new(test);
    let dst = Env::new(&format!("{test}-b"));
    let to = sshd.uri("qemu", &format!("/session?state={}", dst.state.display()));
    let disks = define_source_domain(&src);
    (Hosts { sshd, src, dst, to }, disks)
}

impl Hosts {
    /// B over ssh, its server run by a wrapper that arms failpoint `fp` there.
    fn to_with_failpoint(&self, fp: &str) -> String {
        let wrapper = self.src.write(
            &format!("lv-{}.sh", fp.replace(':', "-")),
            &format!("#!/bin/sh\nexport LUAVIRT_FAILPOINT={fp}\nexec {} \"$@\"\n", built("luavirt").display()),
        );
        set_mode(&wrapper, 0o755);
        self.sshd.uri_with("qemu", &format!("/session?state={}", self.dst.state.display()), &wrapper)
    }
}

/// QEMU processes of either host that neither lists.
fn stray_qemus(h: &Hosts) -> Vec<i32> {
    let mut ids = Vec::new();
    for env in [&h.src, &h.dst] {
        let listed: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--all", "--json"])).unwrap();
        ids.extend(listed.as_array().unwrap().iter().filter_map(|d| d["id"].as_i64()));
    }
    let marks = [h.src.dir.display().to_string(), h.dst.dir.display().to_string()];
    let mut stray = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .replace('\0', " ");
        let zombie = stat(pid).is_some_and(|(s, _, _)| s == 'Z');
        if cmdline.contains("qemu-system")
            && marks.iter().any(|m| cmdline.contains(m.as_str()))
            && !zombie
            && !ids.contains(&(pid as i64))
        {
            stray.push(pid);
        }
    }
    stray
}

/// Image files host B holds in its image folder.
fn dest_images(h: &Hosts) -> Vec<PathBuf> {
    std::fs::read_dir(h.dst.state.join("images/d")).map(|e| e.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// State letter, parent pid and command name of process `pid`.
fn stat(pid: i32) -> Option<(char, i32, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let comm = text[open + 1..close].to_string();
    let mut rest = text[close + 2..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid, comm))
}

fn signal(pid: i32, sig: i32) {
    assert!(Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap().success());
}

/// Runs `luavirt args` on the source until it stops itself at failpoint `fp`, kills its ssh
/// connection, lets it go on, and returns how it ended.
fn ssh_killed_at(h: &Hosts, fp: &str, args: &[&str]) -> (i32, String, String) {
    let mut child: Child = h
        .src
        .command(args)
        .env(luavirt_plugin_api::failpoint::ENV, fp)
        .env(luavirt_plugin_api::failpoint::ACTION_ENV, "stop")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // A hang detector, not a measure of speed.
    let deadline = Instant::now() + Duration::from_secs(120);
    while stat(pid).is_none_or(|(s, _, _)| s != 'T') {
        assert!(child.try_wait().unwrap().is_none(), "luavirt ended before failpoint {fp}");
        assert!(Instant::now() < deadline, "luavirt did not reach failpoint {fp}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ssh: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| stat(*p).is_some_and(|(_, ppid, comm)| ppid == pid && comm == "ssh"))
        .collect();
    assert_eq!(ssh.len(), 1, "{fp}: luavirt should run one ssh connection, it runs {ssh:?}");
    signal(ssh[0], 9);
    signal(pid, 18); // SIGCONT
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// After a migration that did not happen: host B's next call cleans up what it had made;
/// then the source runs on its own disks with its data, and B has no domain, image or QEMU.
fn source_intact_and_b_cleaned(h: &Hosts, d: &Disks, what: &str) {
    let r = h.src.run(&["-c", &h.to, "recover", "d"]);
    assert!(r.code == 0 || r.stderr.contains("not found"), "{what}: recover on B: {}", r.stderr);
    assert_eq!(state(&h.src), "running", "{what}");
    let expect: Vec<PathBuf> = vec![d.a.clone(), d.b.clone(), d.c.clone()];
    assert_eq!(sources(&h.src).into_iter().map(|(_, s)| s).collect::<Vec<_>>(), expect, "{what}");
    assert_eq!(names(&h.dst), Vec::<String>::new(), "{what}: B still has the domain");
    assert_eq!(dest_images(h), Vec::<PathBuf>::new(), "{what}: images left on B");
    assert_eq!(stray_qemus(h), Vec::<i32>::new(), "{what}: QEMU processes neither host lists");
    hmp(&h.src, "d", &["qemu-io -d /machine/peripheral/vda/virtio-backend \"write -P 0x55 4M 1M\""]);
    h.src.ok(&["destroy", "d"]);
    for (image, format, pattern, at) in [
        (&d.a, "qcow2", 0x11, 0),
        (&d.a, "qcow2", 0x12, 1),
        (&d.a, "qcow2", 0x55, 4),
        (&d.b, "raw", 0x22, 0),
        (&d.c, "qcow2", 0x33, 0),
    ] {
        assert!(
            image_holds_at(image, format, pattern, at),
            "{what}: {} lost {pattern:#x} at {at} MiB",
            image.display()
        );
    }
}

/// After a migration that happened: the domain runs on B on a copy of vda, a blank vdc and
/// the shared vdb; the source has it shut off.
fn arrived_on_b(h: &Hosts, d: &Disks, what: &str) {
    assert_eq!(state(&h.dst), "running", "{what}");
    assert_eq!(state(&h.src), "shut off", "{what}");
    let (dst_a, dst_b, dst_c) = (source_of(&h.dst, "vda"), source_of(&h.dst, "vdb"), source_of(&h.dst, "vdc"));
    assert!(dst_a.starts_with(&h.dst.state) && dst_c.starts_with(&h.dst.state), "{what}: {dst_a:?} {dst_c:?}");
    assert_eq!(dst_b, d.b, "{what}: the shared disk is the same file");
    assert_eq!(stray_qemus(h), Vec::<i32>::new(), "{what}");
    h.src.ok(&["-c", &h.to, "destroy", "d"]);
    assert!(same_content(&d.a, &dst_a), "{what}: the copy on B differs from the source");
    assert_eq!(info(&dst_c)["virtual-size"], info(&d.c)["virtual-size"]);
    assert!(holds_no_data(&dst_c), "{what}: the blank disk holds data");
    assert!(image_holds_at(&d.c, "qcow2", 0x33, 0) && image_holds_at(&d.b, "raw", 0x22, 0), "{what}");
}

#[test]
fn a_live_migration_to_another_machine_over_tcp_copies_blanks_and_shares() {
    let (h, d) = hosts("rmig-tcp");
    h.src.ok(&["start", "d"]);
    let args = ["migrate", "d", &h.to, "--live", "--migrate-disks", "vda", "--blank-disks", "vdc"];
    let plan = h.src.ok(&[&args[..], &["--print-plan"]].concat());
    assert!(plan.contains("Data travels: TCP to 127.0.0.1"), "{plan}");
    let out = h.src.ok(&[&args[..], &["--json", "--port-range", "49300-49400"]].concat());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["plan"]["transport"]["kind"], "tcp", "{report}");
    assert_eq!(report["plan"]["transport"]["ports"], serde_json::json!([49300, 49400]));
    assert_eq!(report["disk_bytes"][0]["disk"], "vda");
    assert!(report["disk_bytes"][0]["bytes"].as_u64().unwrap() >= 2 << 20, "{report}");
    arrived_on_b(&h, &d, "tcp");
}

#[test]
fn a_tunnelled_migration_from_lua_goes_through_ssh() {
    let (h, d) = hosts("rmig-tun");
    h.src.ok(&["start", "d"]);
    let script = h.src.write(
        "move.lua",
        &format!(
            r#"local lv = require('luavirt')
local d = lv.connect():domain('d')
local to = lv.connect('{}')
local plan = d:migration_plan{{ to = to, disks = {{ 'vda' }}, blank = {{ 'vdc' }}, live = true, tunnelled = true }}
local calls = 0
local r = d:migrate{{ to = to, disks = {{ 'vda' }}, blank = {{ 'vdc' }}, live = true, tunnelled = true,
                     on_progress = function() calls = calls + 1 end }}
print(plan.transport.kind, r.plan.transport.kind, r.disk_bytes[1].disk, calls > 0, to:domain('d'):state())
"#,
            h.to
        ),
    );
    let out = h.src.ok(&["run", script.to_str().unwrap()]);
    assert_eq!(out, "tunnelled\ttunnelled\tvda\ttrue\trunning\n");
    arrived_on_b(&h, &d, "tunnelled");
    // No forwarded socket is left behind.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("luavirt-ssh-{}-", std::process::id())))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_tunnelled_migration_between_two_other_machines_goes_through_both_connections() {
    require("qemu-system-x86_64", "qemu-system-x86");
    // Hosts B and C, each reached over ssh from here and each its own machine.
    let (sshd_b, sshd_c) = (Sshd::start(), Sshd::start());
    let (here, b, c) = (Env::new("rmig-bc"), Env::new("rmig-bc-b"), Env::new("rmig-bc-c"));
    let to_b = sshd_b.uri("qemu", &format!("/session?state={}", b.state.display()));
    let to_c = sshd_c.uri("qemu", &format!("/session?state={}", c.state.display()));
    let a = here.image("a.qcow2", "qcow2", "32M");
    write_offline(&a, "qcow2", 0x11);
    qemu_io(&a, "qcow2", "write -P 0x12 1M 1M");
    let xml = here.write("d.xml", &luavirt_tests::domain_xml("d", &[("vda", &a, "qcow2")]));
    here.ok(&["-c", &to_b, "define", xml.to_str().unwrap()]);
    here.ok(&["-c", &to_b, "start", "d"]);
    // Forwarded from C to here (-L), and from here to B (-R).
    let out =
        here.ok(&["-c", &to_b, "migrate", "d", &to_c, "--live", "--migrate-disks", "vda", "--tunnelled", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["plan"]["transport"]["kind"], "tunnelled", "{report}");
    assert_eq!((state(&c), state(&b)), ("running".to_string(), "shut off".to_string()));
    let copy = source_of(&c, "vda");
    assert!(copy.starts_with(&c.state), "{copy:?}");
    here.ok(&["-c", &to_c, "destroy", "d"]);
    assert!(same_content(&a, &copy), "the copy on C differs from B's image");
}

#[test]
fn a_connection_lost_at_each_phase_leaves_the_source_running_or_the_domain_on_b() {
    let (h, d) = hosts("rmig-lost");
    let migrate = |to: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["migrate", "d", to, "--live", "--migrate-disks", "vda", "--blank-disks", "vdc"].map(String::from).to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let refs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join("\u{0}");
    // The ssh connection killed here, at a phase of this luavirt (or of the source's driver).
    for (fp, extra) in
        [("migrate:prepared", &[][..]), ("migrate-out:memory", &["--tunnelled"][..]), ("migrate:performed", &[][..])]
    {
        h.src.ok(&["start", "d"]);
        let args = migrate(&h.to, extra);
        let joined = refs(&args);
        let (code, _, stderr) = ssh_killed_at(&h, fp, &joined.split('\u{0}').collect::<Vec<_>>());
        assert_eq!(code, 1, "{fp}: {stderr}");
        if extra.is_empty() {
            // Over TCP the data does not need ssh: B's part was lost, and the source put back.
            assert!(stderr.contains("was lost") && stderr.contains("runs on here as before"), "{fp}: {stderr}");
        } else {
            // Tunnelled, the data went through ssh: the memory stopped moving with it.
            assert!(stderr.contains("Moving the memory of domain 'd' failed"), "{fp}: {stderr}");
        }
        source_intact_and_b_cleaned(&h, &d, fp);
    }
    // The server on B killed, at a phase of B's driver, before it committed.
    for fp in ["migrate-in:listening", "migrate-in:finishing"] {
        h.src.ok(&["start", "d"]);
        let to = h.to_with_failpoint(fp);
        let args = migrate(&to, &[]);
        let r = h.src.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code, 1, "{fp}: {}", r.stderr);
        assert!(r.stderr.contains("was lost") && r.stderr.contains("runs on here as before"), "{fp}: {}", r.stderr);
        source_intact_and_b_cleaned(&h, &d, fp);
    }
    // Killed once B had committed: asked again over a new connection, B says the domain
    // arrived, and the source stops: the guest runs once, on B.
    h.src.ok(&["start", "d"]);
    let to = h.to_with_failpoint("migrate-in:committed");
    let r = h.src.run(&migrate(&to, &[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("asked again over a new connection: the domain had arrived there"), "{}", r.stderr);
    arrived_on_b(&h, &d, "migrate-in:committed");
}

#[test]
fn what_cannot_work_across_machines_is_refused() {
    let (h, _d) = hosts("rmig-bad");
    // Offline, a copied disk would be read by qemu-img on B, where the image is not.
    let err = h.src.fails(&["migrate", "d", &h.to, "--migrate-disks", "vda"], 1);
    assert!(err.contains("cannot read") && err.contains("on another machine"), "{err}");
    let err = h.src.fails(&["migrate", "d", &h.to, "--tunnelled"], 1);
    assert!(err.contains("An offline migration moves no memory"), "{err}");
    h.src.ok(&["start", "d"]);
    // One machine: nothing to tunnel.
    let here = format!("qemu:///session?state={}", h.dst.state.display());
    let err = h.src.fails(&["migrate", "d", &here, "--live", "--tunnelled"], 1);
    assert!(err.contains("on the same machine: there is nothing to tunnel"), "{err}");
    // From B to this machine, TCP needs an address of this machine.
    let back = h.sshd.uri("qemu", &format!("/session?state={}", h.src.state.display()));
    let other = h.src.dir.join("other");
    let err =
        h.src.fails(&["-c", &back, "migrate", "d", &format!("qemu:///session?state={}", other.display()), "--live"], 1);
    assert!(err.contains("give --listen-address") && err.contains("or --tunnelled"), "{err}");
    let err = h.src.fails(&["migrate", "d", &h.to, "--live", "--port-range", "9-1"], 1);
    assert!(err.contains("write MIN-MAX"), "{err}");
    assert_eq!(state(&h.src), "running");
    assert_eq!(names(&h.dst), Vec::<String>::new());
    h.src.ok(&["destroy", "d"]);
}
