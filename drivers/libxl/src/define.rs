//! Redefining an xl domain from domain XML. The config stays the user's file: luavirt writes
//! back only its disks (a disk whose source, format, read-only flag, device kind or backend
//! changes gets its spec rewritten in place; a new disk is appended to the disk list; a disk
//! left out is removed), and keeps disk modes and disk sets in the sidecar. The config as it
//! would be is shown again and compared with the XML: any other difference is refused with
//! a message naming it, and nothing is written unless the whole request is acceptable.

use crate::diskspec::{Backend, Disk, DiskSpec, Format, vdev, write::canonical};
use crate::dom::{Dom, GuestType, cfg_error};
use crate::sidecar::{Mode, Sidecar, SidecarFile};
use crate::{LibxlDriver, records, view};
use luavirt_plugin_api::domain::{DISKSETS_NS, DiskSource, DomainXml};
use luavirt_plugin_api::fsutil::write_atomic;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::xml::diff::first_difference;
use luavirt_plugin_api::xml::{Element, Node};
use luavirt_plugin_api::{DriverError, ErrorCode};

/// What a redefinition writes.
pub struct Plan {
    /// The config's new bytes, when its disks change.
    pub cfg: Option<Vec<u8>>,
    /// The new sidecar (disk modes and sets; the snapshots as they were).
    pub sidecar: Sidecar,
    /// The disks' targets afterwards.
    pub targets: Vec<String>,
}

const NOTHING: &str = "(nothing was written)";

/// What may change, for refusals.
const WHAT_CHANGES: &str = "through luavirt an xl domain changes only its disks (source, format, read-only, CD-ROM, backend, adding and removing them), disk modes and disk sets; change the rest in the config file";

/// Child elements of a `<disk>` that an xl disk spec or luavirt's sidecar can hold.
const DISK_CHILDREN: &[&str] = &["driver", "source", "target", "readonly", "transient", "address"];

fn refuse(m: String) -> DriverError {
    DriverError::new(ErrorCode::InvalidArg, format!("{m} {NOTHING}"))
}

/// A copy of `dom` without what luavirt manages or derives (disk modes, seeds, disk sets, drive
/// addresses, buses), disks sorted by target, and (when the config has none) the UUID the
/// host adds.
fn normalized(dom: &DomainXml, drop_uuid: bool) -> Element {
    let mut d = dom.clone();
    d.set_metadata_element(DISKSETS_NS, None);
    let mut root = d.document().root.clone();
    if drop_uuid && let Some(i) = root.position(|e| e.name() == "uuid") {
        root.remove_element(i);
    }
    if let Some(devices) = root.child_mut("devices") {
        let mut disks = Vec::new();
        let mut others = Vec::new();
        for n in std::mem::take(&mut devices.children) {
            match n {
                Node::Element(mut e) if e.name() == "disk" => {
                    e.remove_attr("snapshot");
                    e.remove_attr("selected");
                    while let Some(i) = e.position(|c| c.name() == "transient" || c.name() == "address") {
                        e.remove_element(i);
                    }
                    if let Some(t) = e.child_mut("target") {
                        t.remove_attr("bus");
                    }
                    // libvirt's older Xen drivers wrote `file` for what libxl's calls `qemu`.
                    if let Some(d) = e.child_mut("driver").filter(|d| d.attr("name").as_deref() == Some("file")) {
                        d.set_attr("name", "qemu");
                    }
                    disks.push(e);
                }
                Node::Element(e) => others.push(Node::Element(e)),
                _ => {}
            }
        }
        let target = |e: &Element| e.child("target").and_then(|t| t.attr("dev")).unwrap_or_default();
        disks.sort_by_key(target);
        devices.children = others;
        devices.children.extend(disks.into_iter().map(Node::Element));
    }
    root
}

/// The disk `g` asks for, on the config's `old` disk of the same target (or a new one).
fn wanted(
    name: &str,
    g: &luavirt_plugin_api::domain::Disk,
    old: Option<&Disk>,
    guest: GuestType,
) -> Result<Disk, DriverError> {
    let disk = format!("Disk {} of domain '{name}'", g.target);
    vdev::parse(&g.target).map_err(|m| refuse(format!("{disk}: {m}")))?;
    if let Some(bus) = g.bus.as_deref()
        && bus != view::bus(&g.target, guest)
    {
        return Err(refuse(format!(
            "{disk}: its bus is '{bus}', but xl decides the bus by the name: xvd* are xen, sd* scsi and hd* ide on an HVM guest (every disk of a PV guest is xen); rename the disk or drop bus="
        )));
    }
    let mut d = old.cloned().unwrap_or(Disk { vdev: g.target.clone(), readwrite: true, ..Disk::default() });
    d.cdrom = match g.device.as_str() {
        "disk" => false,
        "cdrom" => true,
        other => {
            return Err(refuse(format!(
                "{disk} is a {other}; xl has disks and CD-ROM drives (device='disk' or 'cdrom')"
            )));
        }
    };
    d.readwrite = !g.readonly && !d.cdrom;
    d.target = match &g.source {
        DiskSource::File(p) | DiskSource::Block(p) => Some(p.clone()),
        // An empty drive: as the config writes it (no target, or an empty one).
        DiskSource::None if d.cdrom => d.target.clone().filter(|t| t.is_empty()),
        DiskSource::None => return Err(refuse(format!("{disk} has no <source>; name its image or block device"))),
        // A network source stays as the config writes it (only rbd: targets read as one).
        _ if old.is_some_and(|o| o.target.as_deref().is_some_and(|t| t.starts_with("rbd:"))) => d.target.clone(),
        other => {
            return Err(refuse(format!(
                "{disk}: luavirt writes file and block sources into xl configs, not {}",
                other.display()
            )));
        }
    };
    d.format = match (g.format.as_deref(), d.target.as_deref().filter(|t| !t.is_empty())) {
        (_, None) if d.cdrom => Format::Empty,
        (_, None) => return Err(refuse(format!("{disk} names no image; give its <source>"))),
        (Some(f), _) => Format::parse(f)
            .filter(|f| *f != Format::Empty)
            .ok_or_else(|| refuse(format!("{disk}: xl knows the formats raw, qcow, qcow2, vhd and qed, not {f}")))?,
        (None, _) if d.format == Format::Empty => Format::Raw,
        (None, _) => d.format,
    };
    let block = g.disk_type == "block";
    d.backendtype = match (g.driver_name.as_deref(), block) {
        (Some("phy") | None, true) => Some(Backend::Phy),
        (Some(n), true) => {
            return Err(refuse(format!(
                "{disk}: a block device (type='block') goes with driver name='phy' in xl, not '{n}'"
            )));
        }
        (Some("phy"), false) => {
            return Err(refuse(format!("{disk}: driver name='phy' goes with type='block' and <source dev=...>")));
        }
        (Some("tap"), _) => Some(Backend::Tap),
        (Some("standalone"), _) => Some(Backend::Standalone),
        (Some("qemu" | "file"), _) if d.backendtype == Some(Backend::Qdisk) => Some(Backend::Qdisk),
        (Some("qemu" | "file"), _) => None,
        (Some(n), _) => {
            return Err(refuse(format!("{disk}: xl knows the drivers qemu (or file), phy and tap, not '{n}'")));
        }
        (None, false) if d.backendtype == Some(Backend::Phy) => None,
        (None, false) => d.backendtype,
    };
    Ok(d)
}

/// Checks `given` against the domain as it is (`dom`, its `sidecar`, its `view`) and says
/// what to write.
pub fn plan(dom: &Dom, sidecar: &Sidecar, view: &DomainXml, given: &DomainXml) -> Result<Plan, DriverError> {
    let name = view.name();
    let guest = dom.guest_type()?;
    let given_disks = given.disks();
    let el_of = |target: &str| {
        given.document().root.child("devices").and_then(|d| {
            d.children_named("disk").find(|e| e.child("target").and_then(|t| t.attr("dev")).as_deref() == Some(target))
        })
    };
    // What the sidecar keeps of each disk, and what no xl disk spec can hold.
    let mut modes = std::collections::BTreeMap::new();
    for g in &given_disks {
        let disk = format!("Disk {} of domain '{name}'", g.target);
        if let Some(e) = el_of(&g.target) {
            if let Some(c) = e.elements().find(|c| !DISK_CHILDREN.contains(&c.name())) {
                return Err(refuse(format!("{disk}: an xl disk spec has no place for <{}>; drop it", c.name())));
            }
            if let Some(a) =
                e.attrs().iter().find(|a| !["type", "device", "snapshot", "selected"].contains(&a.name.as_str()))
            {
                return Err(refuse(format!("{disk}: an xl disk spec has no place for attribute {}; drop it", a.name)));
            }
        }
        if let Some(s) = g.snapshot.as_deref().filter(|s| !["no", "internal", "external", "manual"].contains(s)) {
            return Err(refuse(format!(
                "{disk}: snapshot='{s}' is not a snapshot mode; use no, internal, external or manual"
            )));
        }
        if g.transient && g.snapshot.as_deref() != Some("no") {
            return Err(refuse(format!(
                "{disk}: a disk whose changes are discarded cannot be kept in snapshots (<transient/> without snapshot='no'); use independent-nonpersistent (snapshot='no' with <transient/>) or remove <transient/>"
            )));
        }
        let mode = Mode { snapshot: g.snapshot.clone(), transient: g.transient };
        if g.device == "cdrom" && mode != sidecar.mode(&g.target) && mode != Mode::default() {
            return Err(refuse(format!("{disk} is a CD-ROM drive; disk modes apply to hard disks only")));
        }
        if mode != Mode::default() {
            modes.insert(g.target.clone(), mode);
        }
    }
    // The config's disks: rewritten in place, removed, or added.
    let mut cfg = dom.cfg.clone();
    for d in &dom.disks {
        let Some(g) = given_disks.iter().find(|g| g.target == d.target()) else { continue };
        let want = wanted(&name, g, Some(&d.spec.disk), guest)?;
        if want != d.spec.disk {
            let text = d.spec.rewrite(&want).map_err(refuse)?;
            cfg = cfg.replace_item(d.setting, d.index, &text).map_err(cfg_error)?;
        }
    }
    let mut gone: Vec<(usize, usize)> = dom
        .disks
        .iter()
        .filter(|d| !given_disks.iter().any(|g| g.target == d.target()))
        .map(|d| (d.setting, d.index))
        .collect();
    gone.sort_by(|a, b| b.cmp(a));
    for (setting, index) in gone {
        cfg = cfg.remove_item(setting, index).map_err(cfg_error)?;
    }
    for g in given_disks.iter().filter(|g| dom.disk(&g.target).is_none()) {
        let text = canonical(&wanted(&name, g, None, guest)?);
        debug_assert!(DiskSpec::parse(&text).is_ok(), "{text}");
        let last_list =
            cfg.settings().iter().rposition(|s| s.key == "disk" && matches!(s.value, crate::cfg::Value::List(_)));
        cfg = match last_list {
            Some(i) => cfg.append_item(i, &text),
            None => cfg.append_list_setting("disk", &[text]),
        }
        .map_err(cfg_error)?;
    }
    let changed = cfg.bytes() != dom.cfg.bytes();
    let after = Dom::from_bytes(&dom.path, cfg.bytes())?;
    let targets: Vec<String> = after.disks.iter().map(|d| d.target().to_string()).collect();
    let mut sets = given.disk_sets();
    sets.keep_only(&targets);
    let new_sidecar = Sidecar { sets, modes, snapshots: sidecar.snapshots.clone() };
    // The config as it would be, shown again, must be what the XML says.
    let shown = view::build(&after, &new_sidecar)?;
    let no_uuid = view.uuid().is_none();
    if let Some(diff) = first_difference(&normalized(&shown, no_uuid), &normalized(given, no_uuid), "the config") {
        return Err(DriverError::new(
            ErrorCode::Unsupported,
            format!("Domain '{name}' ({}): {diff}; {WHAT_CHANGES} {NOTHING}", dom.path.display()),
        ));
    }
    Ok(Plan { cfg: changed.then(|| cfg.bytes().to_vec()), sidecar: new_sidecar, targets })
}

impl LibxlDriver {
    /// `domain_define_xml`: a new definition of a domain whose config is in the folder.
    pub(crate) fn define_impl(&self, xml: &str, call: &mut Call) -> DriverResult {
        let given = DomainXml::parse(xml, None).map_err(|e| DriverError::new(ErrorCode::Xml, e.to_string()))?;
        let name = given.name();
        let found = match self.find(&name) {
            Err(e) if e.code == ErrorCode::NoDomain => {
                return Err(DriverError::new(
                    ErrorCode::Unsupported,
                    format!(
                        "Domain '{name}' is not in {}: luavirt does not write new xl configs from XML. Write {}/{name}.cfg (see xl.cfg(5)); it is then listed, and its disks, disk modes and disk sets can be changed",
                        self.root.display(),
                        self.root.display()
                    ),
                ));
            }
            other => other?,
        };
        let _lock = self.lock_for_change(&name, &found.path, call)?;
        // Read again under the lock: another luavirt may have changed it meanwhile.
        let dom = Dom::load(&found.path)?;
        let (sidecar, view) = self.view(&dom)?;
        let plan = plan(&dom, &sidecar, &view, &given)?;
        if let Some(bytes) = &plan.cfg {
            let after = Dom::from_bytes(&dom.path, bytes)?;
            for d in after.disks.iter().filter(|d| dom.disk(d.target()).is_none_or(|o| o.spec.disk != d.spec.disk)) {
                if let Some(path) = d.spec.disk.path().filter(|p| !std::path::Path::new(p).exists()) {
                    return Err(refuse(format!(
                        "Disk {} of domain '{name}': image {path} does not exist; create it first (qemu-img create -f {} {path} SIZE)",
                        d.target(),
                        d.spec.disk.format.qemu()
                    )));
                }
            }
            // xl takes no lock: refuse to write over an edit made since the config was read.
            let now = std::fs::read(&dom.path).map_err(|e| DriverError::io("read", &dom.path, e))?;
            if now != dom.cfg.bytes() {
                return Err(DriverError::new(
                    ErrorCode::Busy,
                    format!("{} changed while luavirt was about to write it; try again {NOTHING}", dom.path.display()),
                ));
            }
            write_atomic(&dom.path, bytes).map_err(|e| DriverError::io("write", &dom.path, e))?;
        }
        SidecarFile::of(&dom.sidecar_path(), &plan.sidecar, &plan.targets).write()?;
        let uuid = view.uuid().or(given.uuid()).unwrap_or_default();
        call.emit(&records::defined(&name, &uuid));
        Ok(())
    }
}
