//! Drivers through the ABI: the Rust QEMU driver and the C example driver load and serve,
//! misfit drivers and drivers answering with garbage are refused with the reason, files others
//! could have changed are never opened, and a panicking driver call is an error the host
//! survives.

use luavirt_core::Host;
use luavirt_plugin_api::ErrorCode;
use luavirt_tests::{Env, Run, build_c_driver, built, corpus, domain_name, repo_dir, set_mode};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn copy_built(lib: &str, dir: &Path) {
    std::fs::copy(built(lib), dir.join(lib)).unwrap();
    set_mode(&dir.join(lib), 0o755);
}

#[test]
fn drivers_lists_the_qemu_driver_with_its_capabilities() {
    let env = Env::new("drivers");
    let out: serde_json::Value = serde_json::from_str(&env.ok(&["drivers", "--json"])).unwrap();
    let qemu = out["drivers"].as_array().unwrap().iter().find(|d| d["name"] == "qemu").expect("qemu driver loaded");
    assert_eq!(qemu["abi"], format!("1.{}", luavirt_plugin_api::abi::LV_ABI_MINOR));
    assert_eq!(qemu["schemes"], serde_json::json!(["qemu"]));
    assert_eq!(
        qemu["capabilities"],
        serde_json::json!(["define", "lifecycle", "block-info", "snapshot", "block-jobs", "migration"])
    );
    assert!(env.ok(&["drivers"]).contains(" qemu "));
}

/// Builds the C example driver into the environment's driver folder and fills a folder of
/// domain XML files for it to serve.
fn c_driver_env() -> (Env, std::path::PathBuf) {
    let env = Env::new("cdriver").with_driver_dir();
    let so = env.driver_dir.as_ref().unwrap().join("libluavirt_folder.so");
    build_c_driver(&repo_dir().join("examples/c-driver/folder_driver.c"), &so, &[]);
    let folder = env.dir.join("domains");
    std::fs::create_dir_all(&folder).unwrap();
    for (file, xml) in corpus("valid").into_iter().take(5) {
        std::fs::write(folder.join(file), xml).unwrap();
    }
    (env, folder)
}

#[test]
fn c_example_driver_serves_a_folder_of_domains() {
    let (env, folder) = c_driver_env();
    let uri = format!("folder://{}", folder.display());
    let drivers = env.ok(&["drivers"]);
    assert!(drivers.contains(" folder ") && drivers.contains("read-only"), "{drivers}");
    let names = env.ok(&["-c", &uri, "list", "--all", "--name"]);
    let expected: Vec<String> = {
        let mut v: Vec<String> = corpus("valid").into_iter().take(5).map(|(_, x)| domain_name(&x)).collect();
        v.sort();
        v
    };
    assert_eq!(names.lines().collect::<Vec<_>>(), expected);
    // dumpxml gives the file back byte for byte; domblklist reads the disks from it.
    let (file, xml) = corpus("valid").into_iter().next().unwrap();
    let dumped = env.ok(&["-c", &uri, "dumpxml", &domain_name(&xml)]);
    assert_eq!(dumped.trim_end(), xml.trim_end(), "{file}");
    assert_eq!(env.ok(&["-c", &uri, "domstate", &domain_name(&xml)]), "shut off\n");
    // Operations it leaves NULL are reported as unsupported, naming the driver.
    let err = env.fails(&["-c", &uri, "start", &domain_name(&xml)], 1);
    assert!(err.contains("Driver 'folder' does not support starting domains"), "{err}");
    let err = env.fails(&["-c", &uri, "dumpxml", "no-such-domain"], 1);
    assert!(err.contains("Domain 'no-such-domain' not found"), "{err}");
}

#[test]
fn both_drivers_load_in_process_through_the_abi() {
    let (env, folder) = c_driver_env();
    let host = Host::load_from(&[(luavirt_tests::bin_dir(), true), (env.driver_dir.clone().unwrap(), false)]);
    let names: Vec<&str> = host.drivers().iter().map(|d| d.name.as_str()).collect();
    assert!(names.contains(&"qemu") && names.contains(&"folder"), "{names:?}");
    let c = host.connect(&format!("folder://{}", folder.display())).unwrap();
    assert_eq!(c.list_domains().unwrap().len(), 5);
    let q = host.connect(&format!("qemu:///session?state={}", env.state.display())).unwrap();
    assert!(q.list_domains().unwrap().is_empty());
}

#[test]
fn misfit_drivers_are_refused_with_the_reason() {
    let env = Env::new("misfits").with_driver_dir();
    let dir = env.driver_dir.clone().unwrap();
    let src = repo_dir().join("tests/drivers/c/misfit.c");
    for (flag, file) in [("MAJOR", "major"), ("POINTERS", "pointers"), ("SIZE", "size"), ("NO_ENTRY", "noentry")] {
        build_c_driver(&src, &dir.join(format!("misfit_{file}.so")), &[&format!("-DMISFIT_{flag}")]);
    }
    std::fs::write(dir.join("not_a_library.so"), "just text").unwrap();
    let out = env.ok(&["drivers"]);
    let reason = |file: &str| {
        out.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("{file} not reported:\n{out}")).to_string()
    };
    assert!(
        reason("misfit_major.so").contains(&format!(
            "built for driver ABI 2.0, this host speaks ABI 1.{}",
            luavirt_plugin_api::abi::LV_ABI_MINOR
        )),
        "{out}"
    );
    assert!(
        reason("misfit_pointers.so").contains("built for 32-bit pointers, this host uses 64-bit pointers"),
        "{out}"
    );
    assert!(reason("misfit_size.so").contains("its LvDriverInfo is 8 bytes"), "{out}");
    assert!(reason("misfit_noentry.so").contains("no entry point luavirt_driver_entry_v1"), "{out}");
    assert!(reason("not_a_library.so").contains("cannot load"), "{out}");
    assert!(out.lines().all(|l| !l.starts_with(" misfit")), "a misfit was loaded:\n{out}");
    // The host still works with the good drivers.
    env.ok(&["list", "--all"]);
}

#[test]
fn a_driver_built_for_an_older_minor_loads_and_lacks_only_the_newer_functions() {
    let env = Env::new("oldminor").with_driver_dir();
    let dir = env.driver_dir.clone().unwrap();
    build_c_driver(&repo_dir().join("tests/drivers/c/misfit.c"), &dir.join("old_minor.so"), &["-DMISFIT_OLD_MINOR"]);
    let out = env.ok(&["drivers"]);
    assert!(out.lines().any(|l| l.starts_with(" misfit ") && l.contains(" 1.0 ")), "{out}");
    assert!(
        out.contains("note: misfit: built for ABI 1.0: the functions added in 1.1 and later are unsupported"),
        "{out}"
    );
    let err = env.fails(&["-c", "misfit:///", "snapshot-list", "x"], 1);
    assert!(err.contains("Driver 'misfit' does not support snapshots"), "{err}");
}

#[test]
fn a_driver_built_for_a_newer_minor_loads_with_the_functions_this_host_knows() {
    let env = Env::new("newminor").with_driver_dir();
    let dir = env.driver_dir.clone().unwrap();
    build_c_driver(&repo_dir().join("tests/drivers/c/misfit.c"), &dir.join("new_minor.so"), &["-DMISFIT_NEW_MINOR"]);
    let out = env.ok(&["drivers"]);
    let (host, newer) = (luavirt_plugin_api::abi::LV_ABI_MINOR, luavirt_plugin_api::abi::LV_ABI_MINOR + 1);
    assert!(out.lines().any(|l| l.starts_with(" misfit ") && l.contains(&format!(" 1.{newer} "))), "{out}");
    assert!(
        out.contains(&format!(
            "note: misfit: built for ABI 1.{newer}, newer than this host's 1.{host}: loaded with the functions of 1.{host}"
        )),
        "{out}"
    );
    let err = env.fails(&["-c", "misfit:///", "list"], 1);
    assert!(err.contains("Driver 'misfit' does not support listing domains"), "{err}");
}

#[test]
fn a_panicking_driver_call_becomes_an_error_and_the_host_goes_on() {
    let env = Env::new("panicky").with_driver_dir();
    copy_built("liblvtest_panicky.so", env.driver_dir.as_ref().unwrap());
    let err = env.fails(&["-c", "panicky:///", "list", "--all"], 1);
    assert!(err.contains("Driver 'panicky' panicked in connect_list_domains: listing is broken on purpose"), "{err}");

    let host = Host::load_from(&[(env.driver_dir.clone().unwrap(), false)]);
    let conn = host.connect("panicky:///").unwrap();
    let e = conn.list_domains().unwrap_err();
    assert_eq!(e.code(), ErrorCode::DriverPanic);
    // The same connection keeps working after the panic.
    assert_eq!(conn.domain_state("any").unwrap().0.as_str(), "shut off");
    assert_eq!(conn.domain_xml("any", false).unwrap_err().code(), ErrorCode::NoDomain);
}

/// The line of `luavirt drivers` output that reports `file`.
fn reported<'a>(out: &'a str, file: &str) -> &'a str {
    out.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("{file} not reported:\n{out}"))
}

#[test]
fn drivers_answering_with_garbage_are_refused_and_the_others_still_work() {
    let env = Env::new("garbage").with_driver_dir();
    let dir = env.driver_dir.clone().unwrap();
    let src = repo_dir().join("tests/drivers/c/misfit.c");
    // Before the loader checked these pointers, a wild one crashed every command, `drivers` too.
    let cases = [
        ("NULL_INFO", "luavirt_driver_entry_v1 returned NULL"),
        (
            "WILD_INFO",
            "luavirt_driver_entry_v1 returned 0x10, which is not an LvDriverInfo in the driver's static data",
        ),
        ("HEAP_INFO", "which is not an LvDriverInfo in the driver's static data"),
        ("TINY_INFO", "its LvDriverInfo is 4 bytes, too small to hold even its ABI version"),
        ("NULL_VTABLE", "its LvDriverInfo has no vtable"),
        ("WILD_VTABLE", "its vtable pointer 0x10 does not point at an LvDriverVtable"),
        ("TINY_VTABLE", "its LvDriverVtable is 4 bytes; ABI 1 needs at least 24"),
        ("NO_OPEN", "its vtable lacks connect_open or connect_close"),
        ("NO_CLOSE", "its vtable lacks connect_open or connect_close"),
        ("WILD_FUNCTION", "its vtable's connect_list_domains is 0x10, which is not code of any loaded object"),
        ("WILD_NAME", "its LvDriverInfo.name (0x10, 6 bytes) is not a string in the driver's static data"),
    ];
    for (flag, _) in cases {
        build_c_driver(&src, &dir.join(format!("{}.so", flag.to_lowercase())), &[&format!("-DMISFIT_{flag}")]);
    }
    let out = env.ok(&["drivers"]);
    for (flag, reason) in cases {
        let line = reported(&out, &format!("{}.so", flag.to_lowercase()));
        assert!(line.starts_with("refused: ") && line.contains(reason), "{flag}: {line}");
    }
    assert!(out.lines().any(|l| l.starts_with(" qemu ")), "{out}");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["drivers", "--json"])).unwrap();
    assert_eq!(json["refused"].as_array().unwrap().len(), cases.len());
    env.ok(&["list", "--all"]);
    let err = env.fails(&["-c", "misfit:///", "list"], 1);
    assert!(err.contains("No driver serves misfit:///"), "{err}");
}

/// Runs `luavirt args` with `MISFIT_MARKER` set to `marker`.
fn run_marked(env: &Env, marker: &Path, args: &[&str]) -> Run {
    env.command(args).env("MISFIT_MARKER", marker).output().unwrap().into()
}

#[test]
fn a_driver_file_others_could_change_is_never_opened() {
    let env = Env::new("trust").with_driver_dir();
    let dir = env.driver_dir.clone().unwrap();
    let so = dir.join("libtrusted.so");
    // A driver that fits, whose constructor leaves a mark when its code runs.
    build_c_driver(&repo_dir().join("tests/drivers/c/misfit.c"), &so, &["-DMISFIT_CONSTRUCTOR"]);
    let marker = env.dir.join("constructor-ran");
    let me = std::fs::metadata(&env.dir).unwrap().uid();

    // As reported: another user's file, mode 0666, in a folder of mode 0777. Its constructor
    // ran on a plain `luavirt list`, before it was refused.
    if me == 0 {
        std::os::unix::fs::chown(&so, Some(65534), None).unwrap();
    }
    set_mode(&so, 0o666);
    set_mode(&dir, 0o777);
    let r = run_marked(&env, &marker, &["list", "--all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!marker.exists(), "the driver's constructor ran");
    // Each fault alone is enough, and the reason says what to do.
    let drivers = || run_marked(&env, &marker, &["drivers"]).stdout;
    if me == 0 {
        let out = drivers();
        let line = reported(&out, "libtrusted.so");
        assert!(line.contains(&format!("not loaded: file {} is owned by uid 65534", so.display())), "{line}");
        std::os::unix::fs::chown(&so, Some(0), None).unwrap();
    }
    let out = drivers();
    let line = reported(&out, "libtrusted.so");
    assert!(line.contains(&format!("not loaded: file {} is writable by anyone (mode 0666)", so.display())), "{line}");
    set_mode(&so, 0o644);
    let out = drivers();
    let line = reported(&out, "libtrusted.so");
    assert!(
        line.contains(&format!("not loaded: folder {} is writable by anyone (mode 0777)", dir.display())),
        "{line}"
    );
    assert!(line.contains(&format!("chmod go-w {}", dir.display())), "{line}");
    set_mode(&dir, 0o770);
    assert!(reported(&drivers(), "libtrusted.so").contains("is writable by its group (mode 0770)"));
    set_mode(&dir, 0o755);
    assert!(!marker.exists(), "the driver's constructor ran");

    // Owned by root or this user and writable by no one else: it loads (and its code runs).
    let out = run_marked(&env, &marker, &["drivers"]).stdout;
    assert!(out.lines().any(|l| l.starts_with(" misfit ")), "{out}");
    assert!(marker.exists(), "the loaded driver's constructor should have run");
}

/// `luavirt driver-check` on `so` (copied into a folder only its owner can write).
fn driver_check(env: &Env, so: &Path, args: &[&str]) -> Run {
    let dir = env.dir.join("checked");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(so.file_name().unwrap());
    std::fs::copy(so, &copy).unwrap();
    let mut a = vec!["driver-check", copy.to_str().unwrap()];
    a.extend_from_slice(args);
    env.run(&a)
}

#[test]
fn the_c_example_driver_passes_driver_check() {
    let env = Env::new("checkc");
    let so = env.dir.join("libluavirt_folder.so");
    build_c_driver(&repo_dir().join("examples/c-driver/folder_driver.c"), &so, &[]);
    let domains = env.dir.join("domains");
    std::fs::create_dir_all(&domains).unwrap();
    std::fs::copy(repo_dir().join("examples/demo/demo.xml"), domains.join("demo.xml")).unwrap();
    let r = driver_check(&env, &so, &["--uri", &format!("folder://{}", domains.display())]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("PASS     reads domain 'demo'") && r.stdout.contains("0 failed"), "{}", r.stdout);
}

#[test]
fn a_rust_driver_built_out_of_tree_passes_driver_check() {
    let env = Env::new("checkrust");
    let target = luavirt_tests::repo_dir().join("target/examples");
    let out = std::process::Command::new("cargo")
        .args(["build", "--locked", "--manifest-path"])
        .arg(repo_dir().join("examples/rust-driver/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "the example does not build: {}", String::from_utf8_lossy(&out.stderr));
    let so = target.join("debug/libluavirt_shelf.so");
    let shelf = env.dir.join("shelf");
    let r = driver_check(&env, &so, &["--uri", &format!("shelf://{}", shelf.display()), "--writable"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("PASS     defines, keeps and undefines a domain"), "{}", r.stdout);
}

#[test]
fn driver_check_names_what_a_driver_gets_wrong() {
    let env = Env::new("checklax");
    let so = env.dir.join("misfit_lax.so");
    build_c_driver(&repo_dir().join("tests/drivers/c/misfit.c"), &so, &["-DMISFIT_LAX_FLAGS"]);
    let r = driver_check(&env, &so, &["--uri", "misfit:///"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("connect_list_domains took flag bit 0x80000000"), "{}", r.stdout);
    assert!(r.stdout.contains("domain_get_xml (every driver"), "{}", r.stdout);
    let r = env.run(&["driver-check", env.dir.join("missing.so").to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("FAIL     loads"), "{}", r.stdout);
}
