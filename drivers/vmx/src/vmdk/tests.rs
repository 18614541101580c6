//! VMDK images made by `qemu-img create -f vmdk`: embedded and separate descriptors, a delta
//! with its parent, and a descriptor rewritten in place that qemu-img still reads.

use super::*;
use std::process::Command;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("lv-vmdk-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn qemu_img(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("qemu-img")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("qemu-img runs (apt-get install qemu-utils)");
    assert!(out.status.success(), "qemu-img {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn embedded_descriptors_and_deltas_from_qemu_img() {
    let t = TempDir::new("delta");
    qemu_img(&t.0, &["create", "-q", "-f", "vmdk", "base.vmdk", "64M"]);
    qemu_img(&t.0, &["create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "base-000001.vmdk"]);
    let base = Image::open(&t.0.join("base.vmdk")).unwrap();
    let delta = Image::open(&t.0.join("base-000001.vmdk")).unwrap();
    assert!(base.embedded.is_some());
    assert_eq!(base.descriptor.create_type(), Some("monolithicSparse"));
    assert_eq!(base.descriptor.capacity(), 64 << 20);
    assert_eq!(base.descriptor.parent_cid(), None);
    assert_eq!(delta.descriptor.parent_hint(), Some("base.vmdk"));
    assert_eq!(delta.descriptor.parent_cid(), base.descriptor.cid());
    assert_eq!(delta.extent_files(), [t.0.join("base-000001.vmdk")]);
}

#[test]
fn separate_descriptors_name_their_extents() {
    let t = TempDir::new("flat");
    qemu_img(&t.0, &["create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "8M"]);
    qemu_img(&t.0, &["create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "split.vmdk", "8M"]);
    let flat = Image::open(&t.0.join("flat.vmdk")).unwrap();
    assert!(flat.embedded.is_none());
    assert_eq!(flat.extent_files(), [t.0.join("flat-flat.vmdk")]);
    assert_eq!(flat.descriptor.capacity(), 8 << 20);
    let split = Image::open(&t.0.join("split.vmdk")).unwrap();
    assert_eq!(split.extent_files(), [t.0.join("split-s001.vmdk")]);
    // The extents themselves are not descriptors, and say so.
    match Image::open(&t.0.join("flat-flat.vmdk")) {
        Err(OpenError::Bad(m)) => assert!(m.contains("not a VMDK descriptor"), "{m}"),
        other => panic!("{other:?}"),
    }
    match Image::open(&t.0.join("split-s001.vmdk")) {
        Err(OpenError::Bad(m)) => assert!(m.contains("sparse extent without a descriptor"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(Image::open(&t.0.join("none.vmdk")), Err(OpenError::Missing)));
}

#[test]
fn a_descriptor_saved_in_place_stays_readable_by_qemu_img() {
    let t = TempDir::new("save");
    qemu_img(&t.0, &["create", "-q", "-f", "vmdk", "a.vmdk", "16M"]);
    qemu_img(&t.0, &["create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "b.vmdk", "16M"]);
    qemu_img(&t.0, &["create", "-q", "-f", "vmdk", "-b", "b.vmdk", "-F", "vmdk", "c.vmdk"]);
    // Re-parent c from b to a (same size): the hint and parentCID change, nothing else.
    let a = Image::open(&t.0.join("a.vmdk")).unwrap();
    let mut c = Image::open(&t.0.join("c.vmdk")).unwrap();
    c.descriptor.set_parent_hint(Some("a.vmdk"));
    c.descriptor.set_parent_cid(a.descriptor.cid());
    c.save().unwrap();
    let info = qemu_img(&t.0, &["info", "--output=json", "--backing-chain", "c.vmdk"]);
    assert!(info.contains("\"backing-filename\": \"a.vmdk\""), "{info}");
    let again = Image::open(&t.0.join("c.vmdk")).unwrap();
    assert_eq!(again.descriptor.parent_cid(), a.descriptor.cid());
    // A text descriptor is replaced atomically.
    let mut b = Image::open(&t.0.join("b.vmdk")).unwrap();
    b.descriptor.set_cid(0x1234);
    b.save().unwrap();
    assert!(std::fs::read_to_string(t.0.join("b.vmdk")).unwrap().contains("CID=00001234\n"));
}
