//! `tools/install.sh` into a temporary PREFIX, then the installed binary alone: it finds its
//! drivers, runs a domain, and ships completions, man pages and scripts. A binary without
//! drivers says where it looked and fails.

use luavirt_tests::{Env, bin_dir, built, domain_xml, repo_dir, set_mode};
use std::path::Path;
use std::process::Command;

/// The installed (or copied) `luavirt` at `bin`, with this host's state folder and nothing
/// from the environment that would point it at other drivers.
fn installed(env: &Env, bin: &Path, args: &[&str]) -> luavirt_tests::Run {
    Command::new(bin)
        .args(args)
        .env("LUAVIRT_STATE_DIR", &env.state)
        .env("LUAVIRT_POLICY_DIR", env.policy_dir())
        .env_remove("LUAVIRT_DRIVER_DIR")
        .env_remove("LUAVIRT_DEFAULT_URI")
        .env_remove("LUAVIRT_LOG")
        .env_remove("RUST_LOG")
        .output()
        .expect("the installed luavirt runs")
        .into()
}

#[test]
fn an_install_into_a_prefix_runs_a_domain_with_only_the_installed_files() {
    luavirt_tests::require("qemu-system-x86_64", "qemu-system-x86");
    let env = Env::new("install");
    set_mode(&env.dir, 0o755);
    let prefix = env.dir.join("prefix");
    built("luavirt");
    let o = Command::new(repo_dir().join("tools/install.sh"))
        .arg("--from")
        .arg(bin_dir())
        .env("PREFIX", &prefix)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "install.sh: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let lv = prefix.join("bin/luavirt");

    // The drivers load from PREFIX/lib/luavirt/drivers, found from the binary's own place.
    let r = installed(&env, &lv, &["drivers", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let drivers = listed["drivers"].as_array().unwrap();
    let names: Vec<&str> = drivers.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["libxl", "qemu", "vmx"]);
    for d in drivers {
        assert!(d["path"].as_str().unwrap().starts_with(prefix.join("lib/luavirt/drivers").to_str().unwrap()), "{d}");
    }

    // define, start, destroy with the installed binary only.
    let img = env.image("a.qcow2", "qcow2", "16M");
    let xml = env.write("web.xml", &domain_xml("web", &[("vda", &img, "qcow2")]));
    for (args, expect) in [
        (vec!["define", xml.to_str().unwrap()], "Domain 'web' defined"),
        (vec!["start", "web"], "Domain 'web' started"),
        (vec!["domstate", "web"], "running"),
        (vec!["destroy", "web"], "Domain 'web' destroyed"),
        (vec!["domstate", "web"], "shut off"),
    ] {
        let r = installed(&env, &lv, &args);
        assert!(r.code == 0 && r.stdout.starts_with(expect), "{args:?}: {}{}", r.stdout, r.stderr);
    }

    // Completions, man pages and the shipped scripts are where shells, man and users look.
    for file in [
        "share/bash-completion/completions/luavirt",
        "share/zsh/site-functions/_luavirt",
        "share/fish/vendor_completions.d/luavirt.fish",
        "share/man/man1/luavirt.1",
        "share/man/man1/luavirt-snapshot-create-as.1",
        "share/luavirt/scripts/nightly.lua",
        "share/luavirt/scripts/types/luavirt.lua",
    ] {
        let meta = std::fs::metadata(prefix.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(meta.len() > 0, "{file} is empty");
    }
    let completion = std::fs::read_to_string(prefix.join("share/bash-completion/completions/luavirt")).unwrap();
    assert!(completion.contains("snapshot-create-as"));
}

#[test]
fn a_binary_without_drivers_says_where_it_looked_and_fails() {
    let env = Env::new("nodrivers");
    set_mode(&env.dir, 0o755);
    let lonely = env.dir.join("bin");
    std::fs::create_dir_all(&lonely).unwrap();
    let lv = lonely.join("luavirt");
    std::fs::copy(built("luavirt"), &lv).unwrap();
    let r = installed(&env, &lv, &["drivers"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let looked = format!(
        "error: No driver loaded: luavirt looked in {}, {} (missing); install the drivers in PREFIX/lib/luavirt/drivers",
        lonely.display(),
        env.dir.join("lib/luavirt/drivers").display()
    );
    assert!(r.stderr.starts_with(&looked), "{}", r.stderr);
    // Every verb says it too, not only `drivers`.
    let r = installed(&env, &lv, &["list", "--all"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(loaded: none; looked in "), "{}", r.stderr);
    // The JSON form carries a code.
    let r = installed(&env, &lv, &["drivers", "--json"]);
    let e: serde_json::Value = serde_json::from_str(&r.stderr).unwrap();
    assert_eq!(e["error"]["code"], "unsupported");
}

#[test]
fn qemu_system_is_roots_host_in_var_lib_luavirt() {
    let env = Env::new("system");
    // As root (the tests' user) it opens; reading writes nothing into /var/lib/luavirt.
    let existed = Path::new("/var/lib/luavirt").exists();
    let r = env.run(&["-c", "qemu:///system", "list", "--all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(Path::new("/var/lib/luavirt").exists(), existed, "a read created the state folder");
    // It keeps its state there whatever LUAVIRT_STATE_DIR says: an unknown domain there.
    let err = env.fails(&["-c", "qemu:///system", "dumpxml", "no-such-domain-lvtest"], 1);
    assert!(err.contains("Domain 'no-such-domain-lvtest' not found on qemu:///system"), "{err}");
    // Another user is told whose host it is (setpriv is in util-linux). The binary and its
    // driver are copied where that user may run them (the build folder may be root's alone).
    set_mode(&env.dir, 0o755);
    let copy = env.dir.join("bin");
    std::fs::create_dir_all(&copy).unwrap();
    set_mode(&copy, 0o755);
    for file in ["luavirt", "libluavirt_qemu.so"] {
        std::fs::copy(built(file), copy.join(file)).unwrap();
        set_mode(&copy.join(file), 0o755);
    }
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(copy.join("luavirt"))
        .args(["-c", "qemu:///system", "list"])
        .env("HOME", &env.dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("qemu:///system: the system host keeps its state in /var/lib/luavirt and is root's"), "{err}");
    // Any other path is refused with the two the driver serves.
    let err = env.fails(&["-c", "qemu:///elsewhere", "list"], 1);
    assert!(err.contains("serves qemu:///session") && err.contains("qemu:///system"), "{err}");
}
