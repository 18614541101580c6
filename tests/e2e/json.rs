//! `--json` shapes against their documentation: every read verb in docs/json.md is run on a
//! real domain, and the fields it prints must be the fields the page lists, whatever the
//! flags. `luavirt test --json` prints only its JSON report, failures included (a test's own
//! `print` goes to standard error).

use luavirt_tests::{Env, repo_dir, write_offline};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Each `### \`verb\`` section of docs/json.md with the field paths of its table.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(repo_dir().join("docs/json.md")).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut verb = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### `").and_then(|h| h.strip_suffix('`')) {
            verb = Some(h.to_string());
            out.insert(h.to_string(), BTreeSet::new());
        } else if line.starts_with("## ") {
            verb = None;
        } else if let (Some(v), Some(field)) =
            (&verb, line.strip_prefix("| `").and_then(|l| l.split_once('`')).map(|(f, _)| f))
        {
            out.get_mut(v).unwrap().insert(field.to_string());
        }
    }
    out
}

/// The field paths of a JSON document, written as docs/json.md writes them. A list of objects
/// adds `[]`; a list of anything else, an empty list or null ends a path.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let join = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| paths(x, &join(k), out)),
        Value::Array(a) if a.iter().any(Value::is_object) => {
            a.iter().for_each(|x| paths(x, &format!("{prefix}[]"), out))
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// Checks that `doc` has exactly the fields `listed`: a path printed must be listed (or be a
/// list or object, empty or null here, whose fields are listed); a path listed must be printed
/// (or lie below one printed empty or null, or be a list or object whose fields are listed).
fn check(verb: &str, doc: &Value, listed: &BTreeSet<String>) -> BTreeSet<String> {
    let mut got = BTreeSet::new();
    paths(doc, "", &mut got);
    let below = |child: &str, parent: &str| {
        child.starts_with(&format!("{parent}.")) || child.starts_with(&format!("{parent}[]"))
    };
    for p in &got {
        assert!(
            listed.contains(p) || listed.iter().any(|l| below(l, p)),
            "{verb}: prints {p}, which docs/json.md does not list\n{doc:#}"
        );
    }
    for l in listed {
        assert!(
            got.contains(l) || got.iter().any(|p| below(l, p)) || listed.iter().any(|x| below(x, l)),
            "{verb}: docs/json.md lists {l}, which it does not print\n{doc:#}"
        );
    }
    got
}

#[test]
fn every_read_verb_prints_the_fields_docs_json_lists_whatever_the_flags() {
    let env = Env::new("json");
    let base = env.image("j-base.qcow2", "qcow2", "16M");
    write_offline(&base, "qcow2", 0x11);
    let b = env.image("j-b.raw", "raw", "8M");
    env.define_domain("j", &[("vda", &base, "qcow2"), ("vdb", &b, "raw")]);
    env.ok(&["diskset", "add", "j", "vda", "--set", "nightly"]);
    env.ok(&[
        "snapshot-create-as",
        "j",
        "s1",
        "--disk-only",
        "--diskspec",
        "vda,snapshot=external",
        "--diskspec",
        "vdb,snapshot=no",
    ]);
    env.ok(&["snapshot-create-as", "j", "s2", "--description", "second"]);
    let t = env.write("one_test.lua", "test('t', function() assert_eq(1, 1) end)\n");
    let t = t.to_str().unwrap();
    let qemu_driver = luavirt_tests::built("libluavirt_qemu.so").display().to_string();
    // One policy that loads and one that does not, so both lists have entries.
    let policies = env.dir.join("policies");
    std::fs::create_dir(&policies).unwrap();
    luavirt_tests::set_mode(&policies, 0o700);
    std::fs::write(policies.join("ok.lua"), "require('luavirt').on('define:before', function() end)\n").unwrap();
    std::fs::write(policies.join("broken.lua"), "this is not lua\n").unwrap();
    let policies = policies.display().to_string();

    let cases: Vec<(&str, Vec<Vec<&str>>)> = vec![
        ("list", vec![vec!["list", "--all"], vec!["list", "--inactive"], vec!["list", "--all", "--name"]]),
        ("dominfo", vec![vec!["dominfo", "j"]]),
        ("domstate", vec![vec!["domstate", "j"]]),
        ("dumpxml", vec![vec!["dumpxml", "j"], vec!["dumpxml", "j", "--inactive"]]),
        (
            "domblklist",
            vec![vec!["domblklist", "j"], vec!["domblklist", "j", "--details"], vec!["domblkinfo", "j", "--all"]],
        ),
        ("domblkinfo", vec![vec!["domblkinfo", "j", "vda"], vec!["domblkinfo", "j", "vdb", "--human"]]),
        ("disk-mode", vec![vec!["disk-mode", "j", "vda"]]),
        ("diskset names", vec![vec!["diskset", "names", "j"]]),
        ("diskset list", vec![vec!["diskset", "list", "j", "--set", "nightly"]]),
        ("diskset size", vec![vec!["diskset", "size", "j", "--set", "nightly"]]),
        ("diskset contains", vec![vec!["diskset", "contains", "j", "vda", "--set", "nightly"]]),
        ("blockjob", vec![vec!["blockjob", "j", "vda"]]),
        (
            "snapshot-list",
            vec![
                vec!["snapshot-list", "j"],
                vec!["snapshot-list", "j", "--tree"],
                vec!["snapshot-list", "j", "--name"],
                vec!["snapshot-list", "j", "--leaves"],
            ],
        ),
        ("snapshot-info", vec![vec!["snapshot-info", "j", "s1"], vec!["snapshot-info", "j", "--current"]]),
        ("snapshot-current", vec![vec!["snapshot-current", "j"]]),
        ("snapshot-parent", vec![vec!["snapshot-parent", "j", "s2"], vec!["snapshot-parent", "j", "--current"]]),
        ("snapshot-dumpxml", vec![vec!["snapshot-dumpxml", "j", "s1"]]),
        ("drivers", vec![vec!["drivers"]]),
        ("driver-check", vec![vec!["driver-check", &qemu_driver]]),
        ("hooks list", vec![vec!["hooks", "list", "--policy-dir", &policies]]),
        ("test", vec![vec!["test", t]]),
    ];
    let docs = documented();
    let tested: BTreeSet<&str> = cases.iter().map(|(v, _)| *v).collect();
    let untested: Vec<&String> = docs.keys().filter(|k| !tested.contains(k.as_str())).collect();
    assert!(untested.is_empty(), "docs/json.md documents verbs this test does not run: {untested:?}");
    for (verb, runs) in &cases {
        let listed = docs.get(*verb).unwrap_or_else(|| panic!("docs/json.md has no section for {verb}"));
        let mut shapes = Vec::new();
        for args in runs {
            let mut all = vec!["--json"];
            all.extend_from_slice(args);
            // hooks list exits 1 for the broken policy, with its report all the same.
            let r = env.run(&all);
            assert!(r.code == 0 || *verb == "hooks list", "luavirt {}: {}{}", all.join(" "), r.stdout, r.stderr);
            let doc: Value = serde_json::from_str(&r.stdout).unwrap();
            shapes.push((args.join(" "), check(verb, &doc, listed)));
        }
        for (args, shape) in &shapes[1..] {
            assert_eq!(shape, &shapes[0].1, "{args} prints other fields than {}", shapes[0].0);
        }
    }
    // The version the page states is the one luavirt reports.
    let v: Value = serde_json::from_str(&env.ok(&["drivers", "--json"])).unwrap();
    let page = std::fs::read_to_string(repo_dir().join("docs/json.md")).unwrap();
    assert!(page.contains(&format!("These are **shapes version {}**", v["json_version"])), "{}", v["json_version"]);
}

#[test]
fn luavirt_test_json_prints_only_json_and_failures_as_failures() {
    let env = Env::new("testjson");
    let f = env.write(
        "mixed_test.lua",
        "test('passes', function() print('noise') assert_eq(1, 1) end)\ntest('fails', function()\n  assert_eq(1, 2)\nend)\n",
    );
    let r = env.run(&["--json", "test", f.to_str().unwrap()]);
    // The test's own print goes to standard error.
    assert_eq!((r.code, r.stderr.as_str()), (1, "noise\n"), "{}", r.stdout);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not only JSON ({e}):\n{}", r.stdout));
    assert_eq!((v["passed"].as_u64(), v["failed"].as_u64()), (Some(1), Some(1)));
    assert_eq!(v["tests"][0]["passed"], true);
    assert_eq!(v["tests"][1]["name"], "fails");
    let why = v["tests"][1]["message"].as_str().unwrap();
    assert!(why.starts_with(&format!("{}:3: expected 2, got 1", f.display())), "{why}");
    // All passing: status 0; an argument error stays an error with its own code.
    let ok = env.write("ok_test.lua", "test('t', function() end)\n");
    let v: Value = serde_json::from_str(&env.ok(&["--json", "test", ok.to_str().unwrap()])).unwrap();
    assert_eq!((v["passed"].as_u64(), v["failed"].as_u64()), (Some(1), Some(0)));
    let err = env.fails(&["--json", "test", "/nonexistent"], 1);
    let e: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(e["error"]["code"], "invalid-argument");
    // A script that fails under `run` is a script's failure, not luavirt's own.
    let bad = env.write("bad.lua", "error('no')\n");
    let err = env.fails(&["--json", "run", bad.to_str().unwrap()], 1);
    let e: Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert_eq!(e["error"]["code"], "script");
}

#[test]
fn a_missing_image_leaves_its_fields_unknown_in_domblklist_json_and_fails_with_details() {
    let env = Env::new("jsonmiss");
    let a = env.image("m-a.qcow2", "qcow2", "16M");
    let b = env.image("m-b.qcow2", "qcow2", "16M");
    env.define_domain("m", &[("vda", &a, "qcow2"), ("vdb", &b, "qcow2")]);
    std::fs::remove_file(&b).unwrap();
    let v: Value = serde_json::from_str(&env.ok(&["domblklist", "m", "--json"])).unwrap();
    assert_eq!(v[0]["capacity"].as_u64(), Some(16 << 20));
    assert_eq!((v[1]["capacity"].clone(), v[1]["format"].as_str()), (Value::Null, Some("qcow2")));
    let err = env.fails(&["domblklist", "m", "--details", "--json"], 1);
    assert!(err.contains(b.to_str().unwrap()), "{err}");
}
