//! Pieces the migration tests share: domain `d` with three disks on the source host, and
//! what each side then holds.

use crate::{Env, write_offline};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Images of the source's domain `d`.
pub struct Disks {
    pub a: PathBuf,
    pub b: PathBuf,
    pub c: PathBuf,
}

/// Defines domain `d` on `src`: vda qcow2 32M holding 0x11 (first MiB) and 0x12 (at 1 MiB),
/// vdb raw 16M holding 0x22, vdc qcow2 16M holding 0x33.
pub fn define_source_domain(src: &Env) -> Disks {
    let a = src.image("a.qcow2", "qcow2", "32M");
    let b = src.image("b.raw", "raw", "16M");
    let c = src.image("c.qcow2", "qcow2", "16M");
    write_offline(&a, "qcow2", 0x11);
    qemu_io(&a, "qcow2", "write -P 0x12 1M 1M");
    write_offline(&b, "raw", 0x22);
    write_offline(&c, "qcow2", 0x33);
    src.define_domain("d", &[("vda", &a, "qcow2"), ("vdb", &b, "raw"), ("vdc", &c, "qcow2")]);
    Disks { a, b, c }
}

/// Runs one `qemu-io` command on `image`, which must succeed.
pub fn qemu_io(image: &Path, format: &str, command: &str) {
    let out = Command::new("qemu-io").args(["-f", format, "-c", command]).arg(image).output().unwrap();
    assert!(out.status.success(), "qemu-io {command}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Domain `d`'s disk sources on `env`, by target.
pub fn sources(env: &Env) -> Vec<(String, PathBuf)> {
    let xml = env.ok(&["dumpxml", "d", "--inactive"]);
    let dom = luavirt_plugin_api::domain::DomainXml::parse(&xml, None).unwrap();
    dom.disks().into_iter().map(|d| (d.target.clone(), PathBuf::from(d.source.path().unwrap_or("")))).collect()
}

/// The source of disk `target` of domain `d` on `env`.
pub fn source_of(env: &Env, target: &str) -> PathBuf {
    sources(env).into_iter().find(|(t, _)| t == target).unwrap().1
}

/// Domain `d`'s state on `env`.
pub fn state(env: &Env) -> String {
    env.ok(&["domstate", "d"]).trim().to_string()
}

/// The domains `env` lists.
pub fn names(env: &Env) -> Vec<String> {
    env.ok(&["list", "--all", "--name"]).lines().map(str::to_string).collect()
}

/// Whether `image` holds no data at all (a blank disk).
pub fn holds_no_data(image: &Path) -> bool {
    let out = Command::new("qemu-img").args(["map", "--output=json", "-U"]).arg(image).output().unwrap();
    let map: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    map.as_array().unwrap().iter().all(|e| e["data"] == false)
}

/// Whether two images hold the same content (`qemu-img compare`).
pub fn same_content(a: &Path, b: &Path) -> bool {
    Command::new("qemu-img").args(["compare", "-U"]).arg(a).arg(b).output().unwrap().status.success()
}

/// `qemu-img info` of `image`.
pub fn info(image: &Path) -> serde_json::Value {
    let out = Command::new("qemu-img").args(["info", "--output=json", "-U"]).arg(image).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}
