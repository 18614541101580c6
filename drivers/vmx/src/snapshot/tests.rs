//! What ESX accepts of a snapshot request, on the disks of tests/data/vmx/esx7-web.vmx: sda
//! and sdh persistent, sdb independent-persistent, sdc independent-nonpersistent, sdd a
//! CD-ROM.

use super::request::disks_taken;
use crate::devices::Device;
use crate::vmx::VmxFile;
use luavirt_plugin_api::ErrorCode;
use luavirt_plugin_api::abi::{LV_SNAPSHOT_CREATE_NO_METADATA, LV_SNAPSHOT_CREATE_REUSE_EXT};
use luavirt_plugin_api::snapshot::{SnapshotDisk, SnapshotMemory, SnapshotXml};

const VMX: &str = "/ds/web01/web01.vmx";

fn devices() -> Vec<Device> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vmx/esx7-web.vmx");
    crate::devices::read(&VmxFile::parse(&std::fs::read(path).unwrap(), "web01.vmx").unwrap()).unwrap()
}

/// A request as the host resolves it: each target with its mode.
fn request(modes: &[(&str, &str)]) -> SnapshotXml {
    SnapshotXml {
        name: Some("s1".into()),
        memory: Some(SnapshotMemory { snapshot: "no".into(), file: None }),
        disks: modes
            .iter()
            .map(|(t, m)| SnapshotDisk {
                name: t.to_string(),
                snapshot: Some(m.to_string()),
                ..SnapshotDisk::default()
            })
            .collect(),
        ..SnapshotXml::default()
    }
}

const AS_ESX: &[(&str, &str)] =
    &[("sda", "external"), ("sdb", "no"), ("sdc", "no"), ("sdh", "external"), ("sdd", "no")];

fn refusal(req: &SnapshotXml, flags: u32) -> String {
    disks_taken("web01", req, flags, &devices(), VMX.as_ref()).unwrap_err().message
}

#[test]
fn the_persistent_disks_are_taken_and_nothing_else() {
    let d = devices();
    let taken = disks_taken("web01", &request(AS_ESX), 0, &d, VMX.as_ref()).unwrap();
    assert_eq!(taken.iter().map(|i| d[*i].target.as_str()).collect::<Vec<_>>(), ["sda", "sdh"]);
    let mut vmdk = request(AS_ESX);
    vmdk.disks[0].driver_type = Some("vmdk".into());
    assert!(disks_taken("web01", &vmdk, 0, &d, VMX.as_ref()).is_ok(), "driver=vmdk is what ESX makes anyway");
}

#[test]
fn an_override_that_differs_from_the_disk_mode_is_refused_saying_what_to_do() {
    let mut req = request(AS_ESX);
    req.disks[2].snapshot = Some("external".into());
    assert_eq!(
        refusal(&req, 0),
        "Disk sdc of domain 'web01' is independent-nonpersistent, and ESX never takes independent disks in snapshots; leave it out («diskspec sdc,snapshot=no»), or make it persistent first with «do:disk-mode web01 sdc persistent» (nothing was changed)"
    );
    let mut req = request(AS_ESX);
    req.disks[3].snapshot = Some("no".into());
    assert!(refusal(&req, 0).starts_with("Disk sdh of domain 'web01' is persistent, and ESX takes every persistent disk in a snapshot (the request has it as snapshot='no')"));
    let mut req = request(AS_ESX);
    req.disks.remove(3);
    assert!(
        refusal(&req, 0).contains("«do:disk-mode web01 sdh independent-persistent»"),
        "a disk left out of the request"
    );
    let mut req = request(AS_ESX);
    req.disks[4].snapshot = Some("external".into());
    assert!(refusal(&req, 0).contains("Disk sdd of domain 'web01' is a CD-ROM drive"));
}

#[test]
fn memory_and_what_esx_does_not_have_are_refused() {
    let mut req = request(AS_ESX);
    req.memory = Some(SnapshotMemory { snapshot: "external".into(), file: Some("/m/web01.mem".into()) });
    let e = disks_taken("web01", &req, 0, &devices(), VMX.as_ref()).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unsupported);
    assert_eq!(
        e.message,
        "Saving the memory of domain 'web01' in snapshot 's1' needs an ESX or Workstation host, which luavirt does not drive here: the vmx driver works on the VM's files only; take a disk-only snapshot («disk_only»), or take this one in the VMware client"
    );
    assert!(refusal(&request(AS_ESX), LV_SNAPSHOT_CREATE_NO_METADATA).contains("drop «no_metadata»"));
    assert!(refusal(&request(AS_ESX), LV_SNAPSHOT_CREATE_REUSE_EXT).contains("drop «reuse_external»"));
    let mut req = request(AS_ESX);
    req.disks[0].source_file = Some("/elsewhere/a.vmdk".into());
    assert!(refusal(&req, 0).contains("ESX names its delta disks itself"));
    let mut req = request(AS_ESX);
    req.disks[0].driver_type = Some("qcow2".into());
    assert!(refusal(&req, 0).contains("ESX deltas are VMDKs, not qcow2"));
    let mut req = request(AS_ESX);
    req.disks.push(SnapshotDisk { name: "vdz".into(), snapshot: Some("no".into()), ..SnapshotDisk::default() });
    assert_eq!(disks_taken("web01", &req, 0, &devices(), VMX.as_ref()).unwrap_err().code, ErrorCode::NoDisk);
}

#[test]
fn a_disk_of_unknown_mode_is_never_taken_and_asking_for_it_names_its_line() {
    // sdb's mode made unknown: `append`, from ESX 2.
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vmx/esx7-web.vmx");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("scsi0:1.mode = \"independent-persistent\"", "scsi0:1.mode = \"append\"");
    let d = crate::devices::read(&VmxFile::parse(text.as_bytes(), "web01.vmx").unwrap()).unwrap();
    let taken = disks_taken("web01", &request(AS_ESX), 0, &d, VMX.as_ref()).unwrap();
    assert_eq!(taken.iter().map(|i| d[*i].target.as_str()).collect::<Vec<_>>(), ["sda", "sdh"]);
    let mut req = request(AS_ESX);
    req.disks[1].snapshot = Some("external".into());
    let e = disks_taken("web01", &req, 0, &d, VMX.as_ref()).unwrap_err().message;
    assert_eq!(
        e,
        "Disk sdb of domain 'web01' has mode \"append\" (/ds/web01/web01.vmx:21), which luavirt does not know, so it leaves that disk as it is: it changes no such mode and takes no such disk in snapshots (ESX knows persistent, independent-persistent and independent-nonpersistent); leave it out («diskspec sdb,snapshot=no»), or change its mode in the VMware client or on that line (nothing was changed)"
    );
}
