//! What luavirt prints when its reader goes away early (`luavirt list | head -1`): every verb
//! ends quietly with its own exit status, never with a panic about a broken pipe.

use luavirt_tests::{Env, Run, write_offline};
use std::process::{Command, Stdio};

/// Runs `luavirt args` with standard output (and with `stderr_too`, standard error) on a pipe
/// whose reading end is already closed.
fn run_into_closed_pipe(env: &Env, args: &[&str], stderr_too: bool) -> Run {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut c = env.command(args);
    c.stdin(Stdio::null()).stdout(writer.try_clone().unwrap());
    if stderr_too {
        c.stderr(writer);
    } else {
        c.stderr(Stdio::piped());
    }
    let out = c.spawn().unwrap().wait_with_output().unwrap();
    out.into()
}

fn env_with_domain(test: &str) -> Env {
    let env = Env::new(test);
    let a = env.image("o-a.qcow2", "qcow2", "16M");
    write_offline(&a, "qcow2", 0x11);
    env.define_domain("o", &[("vda", &a, "qcow2")]);
    env.ok(&["snapshot-create-as", "o", "s1"]);
    env
}

#[test]
fn every_verb_ends_quietly_when_its_reader_has_gone() {
    let env = env_with_domain("pipes");
    let script = env.write(
        "many.lua",
        "for i = 1, 1000 do print(i) end\nrequire('luavirt').connect():domain('o'):diskset():add('vda')\n",
    );
    let t = env.write("one_test.lua", "test('t', function() assert_eq(1, 1) end)\n");
    let cases: [&[&str]; 10] = [
        &["list", "--all"],
        &["--json", "list", "--all"],
        &["dumpxml", "o"],
        &["domblklist", "o", "--details"],
        &["snapshot-list", "o", "--tree"],
        &["snapshot-info", "o", "s1"],
        &["drivers"],
        &["--help"],
        &["run", "--dry-run", script.to_str().unwrap()],
        &["test", t.to_str().unwrap()],
    ];
    for args in cases {
        let r = run_into_closed_pipe(&env, args, false);
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "luavirt {}", args.join(" "));
    }
    // A failing verb keeps its status with standard error gone too.
    for args in [&["dumpxml", "nosuch"][..], &["--json", "dumpxml", "nosuch"]] {
        assert_eq!(run_into_closed_pipe(&env, args, true).code, 1, "luavirt {}", args.join(" "));
    }
    assert_eq!(env.ok(&["diskset", "list", "o"]), "", "a dry run changed the domain");
    // Output that cannot be written for another reason is not lost unseen.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let r: Run = env.command(&["dumpxml", "o"]).stdout(full).output().unwrap().into();
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("error: cannot write the output: No space left on device"), "{}", r.stderr);
}

#[test]
fn a_dry_run_piped_into_head_ends_quietly() {
    let env = env_with_domain("head");
    // More output than a pipe holds, so luavirt still writes after head has gone.
    let script = env.write("big.lua", "for i = 1, 200000 do print(('x'):rep(20), i) end\nrequire('luavirt').connect():domain('o'):diskset():add('vda')\n");
    let line =
        format!("'{}' run --dry-run '{}' | head -n 1", luavirt_tests::built("luavirt").display(), script.display());
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", &line])
        .env("LUAVIRT_STATE_DIR", &env.state)
        .env_remove("LUAVIRT_DEFAULT_URI")
        .env_remove("LUAVIRT_DRIVER_DIR")
        .output()
        .unwrap();
    let r: Run = out.into();
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "xxxxxxxxxxxxxxxxxxxx\t1\n", ""));
}
