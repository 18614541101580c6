//! The CLI and Lua are two doors to one host API: the same changes made through each, on two
//! hosts holding the same domain, leave the same definitions and snapshot records, byte for
//! byte (the hosts' folders and the snapshots' creation times aside).

use luavirt_tests::{Env, domain_xml, require, write_offline};
use std::path::Path;

/// A host with domain `d` (same UUID on every host): vda qcow2, vdb qcow2, in its own folder.
fn host(test: &str) -> Env {
    require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new(test);
    let a = env.image("a.qcow2", "qcow2", "16M");
    let b = env.image("b.qcow2", "qcow2", "16M");
    write_offline(&a, "qcow2", 0x11);
    let xml = domain_xml("d", &[("vda", &a, "qcow2"), ("vdb", &b, "qcow2")])
        .replace("<name>d</name>", "<name>d</name>\n  <uuid>4a0d6c1e-7b2f-4e8a-9c3d-5f6e7a8b9c0d</uuid>");
    let f = env.write("d.xml", &xml);
    env.ok(&["define", f.to_str().unwrap()]);
    env
}

/// What the host keeps of `d`, with the host's folder written as DIR and times masked.
fn kept(env: &Env) -> String {
    let mut all = env.ok(&["dumpxml", "d", "--inactive"]);
    for name in env.ok(&["snapshot-list", "d", "--name"]).lines() {
        all.push_str(&env.ok(&["snapshot-dumpxml", "d", name]));
    }
    all.push_str(&env.ok(&["snapshot-list", "d", "--tree"]));
    let dir = env.dir.display().to_string();
    let text = all.replace(&dir, "DIR");
    let mut out = String::new();
    for line in text.lines() {
        let masked = match (line.find("<creationTime>"), line.find("</creationTime>")) {
            (Some(a), Some(b)) => format!("{}<creationTime>T{}", &line[..a], &line[b..]),
            _ => line.to_string(),
        };
        out.push_str(&masked);
        out.push('\n');
    }
    out
}

fn lua(env: &Env, body: &str) {
    let script =
        env.write("step.lua", &format!("local lv = require('luavirt')\nlocal d = lv.connect():domain('d')\n{body}\n"));
    env.ok(&["run", script.to_str().unwrap()]);
}

#[test]
fn the_same_changes_through_the_cli_and_through_lua_leave_the_same_domain() {
    let (cli, script) = (host("doors-cli"), host("doors-lua"));
    let dest = |env: &Env| env.dir.join("copy.qcow2").display().to_string();
    let steps: Vec<(&str, Vec<Vec<String>>, String)> = vec![
        (
            "disk sets",
            vec![
                vec!["diskset".into(), "add".into(), "d".into(), "vda".into()],
                vec!["diskset".into(), "add".into(), "d".into(), "vdb".into(), "--set".into(), "migrate".into()],
                vec!["diskset".into(), "remove".into(), "d".into(), "vda".into()],
            ],
            "d:diskset():add('vda')\nd:diskset('migrate'):add('vdb')\nd:diskset():remove('vda')".into(),
        ),
        (
            "disk modes",
            vec![vec!["disk-mode".into(), "d".into(), "vdb".into(), "independent-persistent".into()]],
            "d:disk('vdb'):set_mode('independent-persistent')".into(),
        ),
        (
            "snapshot create",
            vec![
                vec![
                    "snapshot-create-as".into(),
                    "d".into(),
                    "s1".into(),
                    "first".into(),
                    "--diskspec".into(),
                    "vda,snapshot=external".into(),
                ],
                vec!["snapshot-create-as".into(), "d".into(), "s2".into()],
            ],
            "d:snapshot{ name = 's1', description = 'first', disks = { vda = 'external' } }\nd:snapshot{ name = 's2' }"
                .into(),
        ),
        (
            "snapshot revert",
            vec![vec!["snapshot-revert".into(), "d".into(), "s1".into()]],
            "d:find_snapshot('s1'):revert()".into(),
        ),
        (
            "snapshot delete",
            vec![vec!["snapshot-delete".into(), "d".into(), "s2".into()]],
            "d:find_snapshot('s2'):delete()".into(),
        ),
        (
            "block copy",
            vec![
                vec!["start".into(), "d".into()],
                vec!["blockcopy".into(), "d".into(), "vda".into(), dest(&cli), "--wait".into(), "--pivot".into()],
                vec!["destroy".into(), "d".into()],
            ],
            format!(
                "d:start()\nlocal job = d:block_copy{{ disk = 'vda', dest = '{}' }}\njob:wait{{ pivot = true }}\nd:destroy()",
                dest(&script)
            ),
        ),
    ];
    for (what, commands, body) in steps {
        for c in &commands {
            cli.ok(&c.iter().map(String::as_str).collect::<Vec<_>>());
        }
        lua(&script, &body);
        let (a, b) = (kept(&cli), kept(&script));
        assert_eq!(a, b, "after {what} the CLI and Lua left different domains");
    }
    assert!(Path::new(&dest(&cli)).is_file() && Path::new(&dest(&script)).is_file());
}

/// The error a script gets from `body` (run under pcall), as the script sees it.
fn lua_error(env: &Env, body: &str) -> String {
    let script = env.write(
        "err.lua",
        &format!(
            "local lv = require('luavirt')\nlocal d = lv.connect():domain('d')\nlocal ok, e = pcall(function() {body} end)\nassert(not ok, 'it should fail')\nprint(tostring(e))\n"
        ),
    );
    env.ok(&["run", script.to_str().unwrap()])
}

#[test]
fn each_door_names_options_in_its_own_words() {
    let env = host("doors-words");
    // From the host's snapshot planning.
    let cli = env.fails(&["snapshot-create-as", "d", "x", "--halt"], 1);
    assert!(cli.contains("--halt needs a running domain"), "{cli}");
    let lua = lua_error(&env, "d:snapshot{ name = 'x', halt = true }");
    assert!(lua.contains("halt = true needs a running domain"), "{lua}");
    let cli = env.fails(&["snapshot-create-as", "d", "x", "--memspec", "file=/tmp/m"], 1);
    assert!(cli.contains("drop --memspec"), "{cli}");
    let lua = lua_error(&env, "d:snapshot{ name = 'x', memory = '/tmp/m' }");
    assert!(lua.contains("no memory to save; drop memory"), "{lua}");
    // From the host's undefine.
    env.ok(&["snapshot-create-as", "d", "s1"]);
    let cli = env.fails(&["undefine", "d"], 1);
    assert!(cli.contains("delete them first, or add --snapshots-metadata to forget them"), "{cli}");
    let lua = lua_error(&env, "d:undefine()");
    assert!(lua.contains("delete them first, or add snapshots_metadata = true to forget them"), "{lua}");
    // Neither door shows another's words, nor the neutral tokens.
    for text in [&cli, &lua] {
        assert!(!text.contains('«') && !text.contains('»'), "{text}");
    }
    assert!(!lua.contains("--"), "{lua}");
}
