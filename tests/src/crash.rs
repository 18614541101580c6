//! What the crash tests share: running an operation that is killed with SIGKILL at a named
//! failpoint (or at a random moment), and the checks that everything is consistent after.
//!
//! After a kill, [`verify`] makes the checks issue 8 asks for: the next call succeeds; a
//! guest write made after the kill reaches the disk; `recover` settles the change; QEMU's
//! block graph and the definition agree; every image the definition and the snapshots name
//! passes `qemu-img check` and every snapshot's files exist; no file is left that nothing
//! names; the domain starts again with the data expected; no QEMU runs that luavirt does not
//! list.

use crate::{Env, hmp_on, image_holds_at, qmp};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `luavirt args` with failpoint `fp` armed and checks that it was killed there.
pub fn killed_at(env: &Env, fp: &str, args: &[&str]) {
    let out = env.command(args).env(luavirt_plugin_api::failpoint::ENV, fp).output().expect("luavirt runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc_sigkill()),
        "luavirt {} was not killed at failpoint {fp} (status {:?}):\n{}{stderr}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains(&format!("failpoint {fp}: killed")), "{stderr}");
}

/// Runs `luavirt args` and SIGKILLs it after `delay` (if it is still running then).
/// Returns whether it was killed.
pub fn killed_after(env: &Env, delay: std::time::Duration, args: &[&str]) -> bool {
    let mut child =
        env.command(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        let _ = child.kill();
    }
    let _ = child.wait();
    killed
}

fn libc_sigkill() -> i32 {
    9
}

/// A byte pattern expected in the first MiB at `offset_mib` of a disk, through its chain.
#[derive(Clone, Copy, Debug)]
pub struct Holds {
    /// The disk's target.
    pub disk: &'static str,
    /// Offset in MiB.
    pub offset_mib: u32,
    /// One of these patterns (a change finished or undone leaves different data).
    pub pattern: &'static [u8],
}

/// The pattern [`verify`] writes into vda at 1 MiB after the kill, while QEMU still runs.
pub const AFTER_KILL: u8 = 0x77;

/// The checks after a kill. `holds` is the data expected once settled; `allowed_unnamed`
/// are files the operation may leave on purpose (a copy kept by --finish).
pub fn verify(env: &Env, dom: &str, holds: &[Holds], allowed_unnamed: &[PathBuf]) {
    // The next call succeeds, and says what is unfinished.
    env.ok(&["domstate", dom, "--reason"]);
    // A guest write after the kill, while QEMU (left by the killed call) still runs.
    let wrote = qemu_pid(env, dom).is_some_and(|_| {
        let out = hmp_on(
            env,
            dom,
            &[&format!("qemu-io -d /machine/peripheral/vda/virtio-backend \"write -P {AFTER_KILL:#x} 1M 1M\"")],
        );
        out[0].is_empty()
    });
    env.ok(&["recover", dom]);
    let reason: serde_json::Value = serde_json::from_str(&env.ok(&["domstate", dom, "--reason", "--json"])).unwrap();
    assert!(reason["reason"].is_null(), "still unfinished after recover: {reason}");
    let running = qemu_pid(env, dom).is_some();
    if running {
        agree_with_qemu(env, dom);
        env.ok(&["destroy", dom]);
    }
    check_images(env, dom);
    check_no_orphans(env, dom, allowed_unnamed);
    // The domain starts again, and its data is there.
    env.ok(&["start", dom]);
    env.ok(&["destroy", dom]);
    for h in holds {
        let (image, format) = crate::disk_image(env, dom, h.disk);
        assert!(
            h.pattern.iter().any(|p| image_holds_at(&image, &format, *p, h.offset_mib)),
            "disk {} at {} MiB holds none of {:x?}",
            h.disk,
            h.offset_mib,
            h.pattern
        );
    }
    if wrote {
        let (image, format) = crate::disk_image(env, dom, "vda");
        assert!(image_holds_at(&image, &format, AFTER_KILL, 1), "the guest write made after the kill was lost");
    }
    assert_eq!(stray_qemus(env), Vec::<i32>::new(), "QEMU processes luavirt does not list");
}

/// The pid of the domain's QEMU, if one runs.
pub fn qemu_pid(env: &Env, dom: &str) -> Option<i32> {
    let text = std::fs::read_to_string(env.state.join("qemu/run").join(dom).join("state.json")).ok()?;
    let pid = serde_json::from_str::<serde_json::Value>(&text).ok()?["pid"].as_i64()? as i32;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    (!stat.contains(") Z ")).then_some(pid)
}

/// Each disk's image in the definition is the one QEMU writes to (transient ones aside).
fn agree_with_qemu(env: &Env, dom: &str) {
    let xml = env.ok(&["dumpxml", dom, "--inactive"]);
    let def = luavirt_plugin_api::domain::DomainXml::parse(&xml, None).unwrap();
    let blocks = qmp(env, dom, "query-block", serde_json::json!({}));
    for d in def.disks().into_iter().filter(|d| !d.transient) {
        let Some(path) = d.source.path() else { continue };
        let entry = blocks
            .as_array()
            .unwrap()
            .iter()
            .find(|b| {
                b["qdev"]
                    .as_str()
                    .is_some_and(|q| q.contains(&format!("/{}/", d.target)) || q.ends_with(&format!("/{}", d.target)))
            })
            .unwrap_or_else(|| panic!("QEMU has no disk {}: {blocks}", d.target));
        let file = entry["inserted"]["file"].as_str().unwrap_or("");
        assert!(
            file == path || file.starts_with("json:") && file.contains(&format!("\"{path}\"")),
            "disk {}: the definition names {path}, QEMU writes to {file}",
            d.target
        );
    }
}

/// Every image of the definition and of the snapshots (with their chains) passes `qemu-img
/// check`; every snapshot's files exist; internal snapshots are in their images.
fn check_images(env: &Env, dom: &str) {
    for image in named_files(env, dom) {
        if !Path::new(&image).is_file() {
            panic!("{image} is named but missing");
        }
        let format = crate::format_of(Path::new(&image));
        if format == "qcow2" {
            let out = Command::new("qemu-img").args(["check", "-q", "-U", &image]).output().unwrap();
            assert!(out.status.success(), "qemu-img check {image}: {}", String::from_utf8_lossy(&out.stdout));
        }
    }
    let list: serde_json::Value = serde_json::from_str(&env.ok(&["snapshot-list", dom, "--json"])).unwrap();
    for s in list.as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let xml = env.ok(&["snapshot-dumpxml", dom, name]);
        let snap = luavirt_plugin_api::snapshot::SnapshotXml::parse(&xml).unwrap();
        let then =
            snap.domain.as_ref().map(|e| luavirt_plugin_api::domain::DomainXml::parse(&e.to_xml(), None).unwrap());
        for d in snap.disks.iter().filter(|d| d.snapshot.as_deref() == Some("internal")) {
            let image =
                then.as_ref().and_then(|t| t.disk(&d.name)).and_then(|x| x.source.path().map(str::to_string)).unwrap();
            let tags = Command::new("qemu-img").args(["snapshot", "-l", "-U", &image]).output().unwrap();
            assert!(
                String::from_utf8_lossy(&tags.stdout).split_whitespace().any(|w| w == name),
                "snapshot '{name}' is recorded but {image} has no internal snapshot of it"
            );
        }
    }
}

/// Every file the definition or a snapshot names, with the backing chains below them.
pub fn named_files(env: &Env, dom: &str) -> BTreeSet<String> {
    let mut images = Vec::new();
    let xml = env.ok(&["dumpxml", dom, "--inactive"]);
    let def = luavirt_plugin_api::domain::DomainXml::parse(&xml, None).unwrap();
    images.extend(def.disks().into_iter().filter_map(|d| d.source.path().map(str::to_string)));
    let mut other = Vec::new();
    let list: serde_json::Value = serde_json::from_str(&env.ok(&["snapshot-list", dom, "--json"])).unwrap();
    for s in list.as_array().unwrap() {
        let xml = env.ok(&["snapshot-dumpxml", dom, s["name"].as_str().unwrap()]);
        let snap = luavirt_plugin_api::snapshot::SnapshotXml::parse(&xml).unwrap();
        if let Some(e) = &snap.domain {
            let then = luavirt_plugin_api::domain::DomainXml::parse(&e.to_xml(), None).unwrap();
            images.extend(then.disks().into_iter().filter_map(|d| d.source.path().map(str::to_string)));
        }
        other.extend(snap.memory.and_then(|m| m.file));
        other.extend(snap.disks.iter().filter_map(|d| d.mirror_file.clone()));
    }
    let mut all = BTreeSet::new();
    for image in images {
        let mut cur = Some(image);
        while let Some(c) = cur {
            if !all.insert(c.clone()) || !Path::new(&c).is_file() {
                break;
            }
            cur = crate::backing_of(Path::new(&c));
        }
    }
    all.extend(other);
    all
}

/// No image, overlay, copy or memory file in the test's folder is left that nothing names.
fn check_no_orphans(env: &Env, dom: &str, allowed: &[PathBuf]) {
    let named = named_files(env, dom);
    let mut orphans = Vec::new();
    for e in std::fs::read_dir(&env.dir).unwrap().flatten() {
        let p = e.path();
        let keep = p.is_dir()
            || p.extension().is_some_and(|x| x == "xml")
            || allowed.contains(&p)
            || named.contains(&p.display().to_string());
        if !keep {
            orphans.push(p.display().to_string());
        }
    }
    assert_eq!(orphans, Vec::<String>::new(), "files nothing names were left behind");
}

/// QEMU processes (or gated starts) of this test host that no domain of it lists as its id.
pub fn stray_qemus(env: &Env) -> Vec<i32> {
    let listed: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--all", "--json"])).unwrap();
    let ids: Vec<i64> = listed.as_array().unwrap().iter().filter_map(|d| d["id"].as_i64()).collect();
    let marker = env.dir.display().to_string();
    let mut stray = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ");
        if cmdline.contains("qemu-system") && cmdline.contains(&marker) && !zombie && !ids.contains(&(pid as i64)) {
            stray.push(pid);
        }
    }
    stray
}
