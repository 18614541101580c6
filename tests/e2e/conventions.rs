//! The conventions a command line user expects: help with examples, shell completions and man
//! pages from the same definition, log levels that show what the drivers run, times in the
//! local zone, tables that fit the terminal.

use luavirt_tests::Env;
use std::process::Command;

#[test]
fn help_verb_and_verb_help_show_options_and_examples() {
    let env = Env::new("help");
    let by_help = env.ok(&["help", "snapshot-create-as"]);
    let by_flag = env.ok(&["snapshot-create-as", "--help"]);
    assert_eq!(by_help, by_flag);
    for expect in ["--diskspec <DISKSPEC>", "Examples:", "luavirt snapshot-create-as web1 s1 --print-plan"] {
        assert!(by_help.contains(expect), "{expect} missing in:\n{by_help}");
    }
    // The top-level help lists the verbs and says where the examples are.
    let top = env.ok(&["--help"]);
    assert!(top.contains("attach-disk") && top.contains("luavirt help VERB"), "{top}");
    // An unknown verb is a usage error naming it.
    let err = env.fails(&["help", "no-such-verb"], 2);
    assert!(err.contains("no-such-verb"), "{err}");
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_verb() {
    let env = Env::new("complete");
    for shell in ["bash", "zsh", "fish"] {
        let script = env.ok(&["completions", shell]);
        for verb in ["snapshot-create-as", "domblklist", "attach-disk", "completions"] {
            assert!(script.contains(verb), "{shell} completions lack {verb}");
        }
        // The script parses in its shell where the shell is installed (bash always is).
        let (program, check) = match shell {
            "bash" => ("bash", vec!["-n"]),
            "zsh" => ("zsh", vec!["-n"]),
            _ => ("fish", vec!["--no-execute"]),
        };
        let file = env.write(&format!("luavirt.{shell}"), &script);
        match Command::new(program).args(&check).arg(&file).output() {
            Ok(o) => assert!(o.status.success(), "{shell} -n: {}", String::from_utf8_lossy(&o.stderr)),
            Err(_) => assert_ne!(shell, "bash", "bash is missing"),
        }
    }
    // In bash, completing `luavirt snapshot-c` offers the snapshot verbs.
    let file = env.write("complete.sh", &env.ok(&["completions", "bash"]));
    let probe = format!(
        "source {}; COMP_WORDS=(luavirt snapshot-c); COMP_CWORD=1; COMP_LINE='luavirt snapshot-c'; COMP_POINT=${{#COMP_LINE}}; _luavirt luavirt snapshot-c luavirt; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let o = Command::new("bash").arg("-c").arg(probe).output().unwrap();
    let offered = String::from_utf8_lossy(&o.stdout);
    assert!(offered.contains("snapshot-create-as") && offered.contains("snapshot-current"), "{offered}");
    assert!(!offered.contains("domblklist"), "{offered}");
}

#[test]
fn man_pages_are_written_for_the_command_and_each_verb() {
    let env = Env::new("man");
    let dir = env.dir.join("man1");
    let said = env.ok(&["man", dir.to_str().unwrap()]);
    assert!(said.starts_with("Wrote ") && said.contains(dir.to_str().unwrap()), "{said}");
    let page = std::fs::read_to_string(dir.join("luavirt-snapshot-create-as.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH luavirt-snapshot-create-as 1"), "{page}");
    for expect in ["diskspec", "Examples:", "connect"] {
        assert!(page.contains(expect), "{expect} missing in the page");
    }
    assert!(dir.join("luavirt.1").is_file() && dir.join("luavirt-drivers.1").is_file());
    assert!(!dir.join("luavirt-help.1").exists(), "a page for clap's help verb");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.join("luavirt.1")).unwrap().permissions().mode() & 0o777, 0o644);
    // man renders it, where man is installed.
    if let Ok(o) = Command::new("man").arg("-l").arg(dir.join("luavirt-start.1")).env("MANWIDTH", "80").output() {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(!o.status.success() || text.contains("luavirt start"), "{text}");
    }
}

/// A domain with a qcow2 disk, on a host of its own.
fn env_with_domain(test: &str) -> Env {
    let env = Env::new(test);
    let img = env.image("a.qcow2", "qcow2", "16M");
    env.define_domain("web", &[("vda", &img, "qcow2")]);
    env
}

#[test]
fn vv_shows_qmp_messages_and_tool_calls_and_the_default_shows_none() {
    luavirt_tests::require("qemu-system-x86_64", "qemu-system-x86");
    let env = env_with_domain("logvv");
    let start = env.run(&["-vv", "start", "web"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    // Each QMP command and reply, attributed to the driver that sent it.
    assert!(
        start.stderr.contains(r#"luavirt: debug (qemu): QMP web send: {"execute":"qmp_capabilities"}"#),
        "{}",
        start.stderr
    );
    assert!(start.stderr.contains(r#"luavirt: debug (qemu): QMP web recv: {"return":{}}"#), "{}", start.stderr);
    let info = env.run(&["-vv", "domblklist", "web", "--details"]);
    assert!(info.stderr.contains("luavirt: debug (qemu): running qemu-img info"), "{}", info.stderr);
    assert!(info.stderr.contains("a.qcow2: exit 0"), "{}", info.stderr);
    // Without -v: nothing of that; the output alone.
    for args in [&["domblklist", "web", "--details"][..], &["destroy", "web"]] {
        let r = env.run(args);
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{args:?}");
    }
    // The environment chooses when -v does not: LUAVIRT_LOG, else RUST_LOG, per driver too.
    for (var, value) in [("LUAVIRT_LOG", "debug"), ("RUST_LOG", "qemu=debug")] {
        let r = env.command(&["domblklist", "web", "--details"]).env(var, value).output().unwrap();
        assert!(String::from_utf8_lossy(&r.stderr).contains("running qemu-img info"), "{var}={value}");
    }
    let r = env.command(&["domblklist", "web", "--details"]).env("RUST_LOG", "vmx=debug").output().unwrap();
    assert!(r.stderr.is_empty(), "{}", String::from_utf8_lossy(&r.stderr));
    // -v is info: QMP traffic stays hidden.
    let r = env.run(&["-v", "domblklist", "web", "--details"]);
    assert!(!r.stderr.contains("qemu-img"), "{}", r.stderr);
}

#[test]
fn times_print_in_the_local_zone_with_its_offset_as_tz_says() {
    let env = env_with_domain("tz");
    env.ok(&["snapshot-create-as", "web", "s1"]);
    let listed: serde_json::Value = serde_json::from_str(&env.ok(&["snapshot-list", "web", "--json"])).unwrap();
    let secs = listed[0]["creation_time"].as_i64().unwrap();
    // A zone name, a POSIX rule, and UTC; coreutils' date says what each should read.
    for tz in ["Asia/Kolkata", "XYZ+3", "UTC"] {
        let o = Command::new("date")
            .arg("-d")
            .arg(format!("@{secs}"))
            .arg("+%Y-%m-%d %H:%M:%S %z")
            .env("TZ", tz)
            .output()
            .unwrap();
        let expect = String::from_utf8(o.stdout).unwrap().trim().to_string();
        let list = env.command(&["snapshot-list", "web"]).env("TZ", tz).output().unwrap();
        let list = String::from_utf8(list.stdout).unwrap();
        assert!(list.contains(&format!(" s1     {expect}   shutoff")), "TZ={tz}: {expect} not in\n{list}");
    }
    assert!(Command::new("date").env("TZ", "Asia/Kolkata").arg("+%z").output().unwrap().stdout.starts_with(b"+0530"));
}

/// Runs `luavirt args` on a terminal `cols` wide (script(1) gives it one); returns what the
/// terminal showed.
fn on_terminal(env: &Env, cols: u32, args: &str) -> String {
    let cmd = format!("stty cols {cols}; {} {args}", luavirt_tests::built("luavirt").display());
    // The environment env.command would give luavirt (its state folder, TZ, no log level).
    let host = env.command(&[]);
    let mut script = Command::new("script");
    script.args(["-qec", &cmd, "/dev/null"]).env_remove("COLUMNS");
    for (key, value) in host.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    let o = script.output().unwrap();
    String::from_utf8_lossy(&o.stdout).replace('\r', "")
}

#[test]
fn tables_fit_the_terminal_cutting_long_paths_in_the_middle_unless_full() {
    let env = Env::new("width");
    let deep = env.dir.join("a-rather-long-folder-name/with/more/levels");
    std::fs::create_dir_all(&deep).unwrap();
    let img = env.image("a-rather-long-folder-name/with/more/levels/system-disk.qcow2", "qcow2", "16M");
    env.define_domain("web", &[("vda", &img, "qcow2")]);
    let path = img.to_str().unwrap();
    let shown = on_terminal(&env, 60, "domblklist web");
    let row = shown.lines().find(|l| l.starts_with(" vda")).unwrap_or_else(|| panic!("{shown}"));
    assert!(row.chars().count() <= 60 && row.contains('…') && row.ends_with("/system-disk.qcow2"), "{shown}");
    // --full, or output that is not a terminal: the whole path.
    assert!(on_terminal(&env, 60, "domblklist web --full").contains(path));
    assert!(env.ok(&["domblklist", "web"]).contains(path));
    // A wide terminal needs no cut.
    assert!(on_terminal(&env, 300, "domblklist web").contains(path));
}

#[test]
fn long_jobs_show_bytes_rate_and_time_left_and_stay_quiet_off_a_terminal() {
    luavirt_tests::require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("progress");
    let a = env.image("a.qcow2", "qcow2", "64M");
    // 40 MiB of data: QEMU copies a first part at once, the rest at 8 MiB/s.
    let o = Command::new("qemu-io").args(["-f", "qcow2", "-c", "write -P 0x11 0 40M"]).arg(&a).output().unwrap();
    assert!(o.status.success());
    env.define_domain("web", &[("vda", &a, "qcow2")]);
    env.ok(&["start", "web"]);
    let copy = env.dir.join("copy.qcow2");
    let r = env.run(&[
        "blockcopy",
        "web",
        "vda",
        copy.to_str().unwrap(),
        "--wait",
        "--finish",
        "--bandwidth",
        "8",
        "--verbose",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Plain lines (standard error is a pipe): the bar, bytes of all, the rate, time left.
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" % ") && l.contains(" MiB of ") && l.contains("MiB/s, ") && l.ends_with(" s left")),
        "{}",
        r.stderr
    );
    let ends: Vec<&&str> =
        lines.iter().filter(|l| l.starts_with("copying: [####################] 100 % 40 MiB of 40 MiB")).collect();
    assert_eq!(ends.len(), 1, "one line at the end of a stage: {}", r.stderr);
    assert!(!r.stderr.contains('\r') && !r.stderr.contains('\x1b'), "terminal controls in a pipe: {:?}", r.stderr);
    // A snapshot that saves memory shows how much is saved.
    let mem = env.dir.join("s1.mem");
    let overlay = env.dir.join("s1.qcow2");
    let memspec = format!("file={}", mem.display());
    let diskspec = format!("vda,snapshot=external,file={}", overlay.display());
    let r = env.run(&["snapshot-create-as", "web", "s1", "--memspec", &memspec, "--diskspec", &diskspec, "--verbose"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("saving memory: [####################] 100 % ") && l.contains(" MiB of ")),
        "{}",
        r.stderr
    );
    // Without --verbose, off a terminal: nothing but the result.
    let (mem2, overlay2) = (env.dir.join("s2.mem"), env.dir.join("s2.qcow2"));
    let r = env.run(&[
        "snapshot-create-as",
        "web",
        "s2",
        "--memspec",
        &format!("file={}", mem2.display()),
        "--diskspec",
        &format!("vda,snapshot=external,file={}", overlay2.display()),
    ]);
    assert_eq!((r.code, r.stderr.as_str(), r.stdout.as_str()), (0, "", "Domain snapshot s2 created\n"));
    let r = env.run(&["blockpull", "web", "vda", "--wait"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    // A save shows the memory it writes, as a snapshot does.
    let save = env.dir.join("web.save");
    let r = env.run(&["save", "web", save.to_str().unwrap(), "--verbose"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.lines().any(|l| l.starts_with("saving memory: [####################] 100 % ")), "{}", r.stderr);
}
