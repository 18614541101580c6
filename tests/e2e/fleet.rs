//! One policy over several hosts: `luavirt run -c URI -c URI ...` and `luavirt.connect_all`
//! against this host, host B over ssh (a private sshd, see `luavirt_tests::ssh`), a host that
//! cannot be reached and a host where the script fails: per-host results, a summary, the
//! failing hosts do not stop the others, and each good host is changed (read back directly).

use luavirt_tests::ssh::Sshd;
use luavirt_tests::{Env, write_offline};

/// This host (`here`, reached as `qemu:///session`), host B over ssh, host C (a local state
/// folder without domain `d`) and a host that cannot be reached (ssh to a closed port).
struct Fleet {
    _sshd: Sshd,
    here: Env,
    b: Env,
    to_b: String,
    to_c: String,
    unreachable: String,
}

fn fleet(test: &str) -> Fleet {
    let sshd = Sshd::start();
    let here = Env::new(test);
    let b = Env::new(&format!("{test}-b"));
    for env in [&here, &b] {
        let a = env.image("a.qcow2", "qcow2", "16M");
        let r = env.image("r.raw", "raw", "16M");
        write_offline(&a, "qcow2", 0x11);
        env.define_domain("d", &[("vda", &a, "qcow2"), ("vdb", &r, "raw")]);
    }
    let to_b = sshd.uri("qemu", &format!("/session?state={}", b.state.display()));
    let to_c = format!("qemu:///session?state={}", here.dir.join("c").display());
    // A port nothing listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = format!(
        "qemu+ssh://{}@127.0.0.1:{closed}/session?keyfile={}&known_hosts={}",
        sshd.user,
        sshd.key.display(),
        sshd.known_hosts.display()
    );
    Fleet { _sshd: sshd, here, b, to_b, to_c, unreachable }
}

impl Fleet {
    /// The members of disk set `set` of domain `d` on `env`, read by the host itself.
    fn set_of(&self, env: &Env, set: &str) -> String {
        env.ok(&["diskset", "list", "d", "--set", set])
    }
}

#[test]
fn run_with_several_connections_applies_one_script_to_each_host_and_sums_up() {
    let f = fleet("fleet-cli");
    let script = f.here.write(
        "policy.lua",
        "local conn = require('luavirt').connect()\nconn:domain('d'):diskset('backup'):add('vda')\nprint('policy ran')\n",
    );
    // The unreachable host and the failing one come first: the hosts after them still run.
    let args = ["run", "-c", &f.unreachable, "-c", &f.to_c, "-c", "qemu:///session", "-c", &f.to_b];
    let r = f.here.run(&[&args[..], &[script.to_str().unwrap()]].concat());
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[..2], ["policy ran", "policy ran"], "{}", r.stdout);
    assert!(lines[2].starts_with(&format!("{}: failed: ", f.unreachable)), "{}", r.stdout);
    assert!(lines[2].contains("no luavirt answered") && lines[2].contains("Connection refused"), "{}", r.stdout);
    let c = lines.iter().position(|l| l.starts_with(&format!("{}: failed: ", f.to_c))).expect("C's line");
    assert!(lines[c].contains("policy.lua:2:") && lines[c].contains("'d'"), "{}", lines[c]);
    assert!(lines.contains(&"qemu:///session: done") && lines.contains(&format!("{}: done", f.to_b).as_str()));
    let summary = format!("{} ran on 4 hosts: 2 succeeded, 2 failed", script.display());
    assert_eq!(lines.last(), Some(&summary.as_str()), "{}", r.stdout);
    assert_eq!(f.set_of(&f.here, "backup"), "vda\n");
    assert_eq!(f.set_of(&f.b, "backup"), "vda\n");

    // A dry run over the fleet changes nothing anywhere and says, per host, what it would do.
    let (here_before, b_before) = (f.here.state_snapshot(), f.b.state_snapshot());
    let dry = f.here.write("dry.lua", "require('luavirt').connect():domain('d'):diskset('other'):add('vdb')\n");
    let r = f.here.run(&[&args[..], &["--dry-run", "--json", dry.to_str().unwrap()]].concat());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((report["succeeded"].as_u64(), report["failed"].as_u64()), (Some(2), Some(2)), "{report}");
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.iter().map(|h| h["ok"].as_bool().unwrap()).collect::<Vec<_>>(), [false, false, true, true]);
    assert!(hosts[0]["error"].as_str().unwrap().contains("no luavirt answered"), "{report}");
    for h in &hosts[2..] {
        assert_eq!(h["planned"].as_array().unwrap().len(), 1, "{report}");
        assert_eq!(h["planned"][0]["domain"], "d");
    }
    assert_eq!(f.here.state_snapshot(), here_before, "a dry run changed this host");
    assert_eq!(f.b.state_snapshot(), b_before, "a dry run changed host B");

    // -e code and a script on standard input (read once) run on each host too.
    let code = "print(#luavirt.connect():domains())";
    let r = f.here.run(&["run", "-c", "qemu:///session", "-c", &f.to_b, "-e", code]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("1\n1\n") && r.stdout.ends_with("(-e) ran on 2 hosts: 2 succeeded, 0 failed\n"),
        "{}",
        r.stdout
    );
    let mut child = f
        .here
        .command(&["run", "-c", "qemu:///session", "-c", &f.to_b, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"print(require('luavirt').connect():domain('d'):state())\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("shut off\nshut off\n") && text.contains("stdin ran on 2 hosts: 2 succeeded"), "{text}");

    // Only run takes several hosts; a host given twice is refused.
    let err = f.here.fails(&["-c", "qemu:///session", "-c", &f.to_b, "list"], 1);
    assert!(err.contains("-c was given 2 times; only `luavirt run` takes several"), "{err}");
    let err = f.here.fails(&["run", "-c", &f.to_b, "-c", &f.to_b, script.to_str().unwrap()], 1);
    assert!(err.contains("is given twice"), "{err}");
}

#[test]
fn connect_all_in_lua_applies_a_function_to_each_host_with_per_host_results() {
    let f = fleet("fleet-lua");
    let script = f.here.write(
        "fleet.lua",
        &format!(
            r#"local lv = require('luavirt')
local fleet = lv.connect_all{{ '{}', 'qemu:///session', '{}', '{}' }}
local r = fleet:apply(function(conn)
  local set = conn:domain('d'):diskset('lua')
  set:add('vdb')
  return set:size()
end)
for _, h in ipairs(r.hosts) do print(h.ok, h.result, h.error and h.error.code) end
print(r.summary, r.succeeded, r.failed, #fleet:connections(), #fleet:uris(), tostring(fleet))
print(r.hosts[1].error.message:find('Connection refused', 1, true) ~= nil)
local ok, err = pcall(lv.connect_all, {{ 'qemu:///session', x = 1 }})
print(ok, err.code)
"#,
            f.unreachable, f.to_c, f.to_b
        ),
    );
    let out = f.here.ok(&["run", script.to_str().unwrap()]);
    assert_eq!(
        out,
        "false\tnil\tio\ntrue\t1\tnil\nfalse\tnil\tno-domain\ntrue\t1\tnil\n\
         4 hosts: 2 succeeded, 2 failed\t2\t2\t3\t4\tluavirt.fleet(4 hosts, 3 reached)\ntrue\nfalse\tinvalid-argument\n"
    );
    assert_eq!(f.set_of(&f.here, "lua"), "vdb\n");
    assert_eq!(f.set_of(&f.b, "lua"), "vdb\n");
    // A time limit is not one host's failure: it ends the script.
    let spin = f.here.write(
        "spin.lua",
        "require('luavirt').connect_all{ 'qemu:///session' }:apply(function() while true do end end)\nprint('after')\n",
    );
    let r = f.here.run(&["run", "--timeout", "1", spin.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("longer than its time limit") && r.stdout.is_empty(), "{}{}", r.stdout, r.stderr);
}
