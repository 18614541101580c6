//! Domain operations: list, define, undefine, XML, state, start, destroy, block devices.

use super::hooks::{Done, Request};
use super::{Connection, suggest};
use crate::error::{Error, Result};
use luavirt_plugin_api::ErrorCode;
use luavirt_plugin_api::domain::{DomainXml, generate_uuid};
use luavirt_plugin_api::records::DomainSummary;
pub use luavirt_plugin_api::records::{BackingImage, DomainState};
use serde::Serialize;
use std::rc::Rc;

/// One line of `list`.
#[derive(Clone, Debug, Serialize)]
pub struct DomainInfo {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// Run state.
    pub state: DomainState,
    /// Hypervisor id while running.
    pub id: Option<i64>,
    /// Has a persistent definition.
    pub persistent: bool,
}

impl DomainInfo {
    fn from_summary(d: DomainSummary) -> DomainInfo {
        DomainInfo {
            name: d.name,
            uuid: d.uuid,
            state: d.state,
            id: Some(d.id).filter(|i| *i >= 0),
            persistent: d.persistent,
        }
    }
}

/// What `define` did.
#[derive(Clone, Debug, Serialize)]
pub struct DefineOutcome {
    /// Domain name.
    pub name: String,
    /// Its UUID (given, kept from the existing definition, or generated).
    pub uuid: String,
    /// A new domain, as opposed to a new definition of an existing one.
    pub created: bool,
    /// `(set, disk)` memberships dropped because the disk is no longer in the domain.
    pub left_sets: Vec<(String, String)>,
    /// `(set, disk)` memberships kept from the previous definition (the XML had no sets).
    pub kept_sets: Vec<(String, String)>,
}

/// One disk as `domblklist` and `domblkinfo` show it. Every field is always there (in
/// JSON too); what needs the driver's look at the image (sizes, backing chain) is `None` or
/// empty unless details were asked for, or the driver cannot say.
#[derive(Clone, Debug, Serialize)]
pub struct BlockDevice {
    /// `file`, `block`, `network`, ...
    #[serde(rename = "type")]
    pub disk_type: String,
    /// `disk`, `cdrom`, ...
    pub device: String,
    /// Target name (vda).
    pub target: String,
    /// The bus (virtio, scsi, ...), when the definition names one.
    pub bus: Option<String>,
    /// Source path or URL, `-` when empty.
    pub source: String,
    /// Image format: the image's own, with details; else the definition's (raw if none).
    pub format: String,
    /// The disk mode (persistent, independent-persistent, independent-nonpersistent, ...).
    pub mode: String,
    /// The guest may only read it.
    pub readonly: bool,
    /// Virtual size in bytes.
    pub capacity: Option<u64>,
    /// Bytes used on the host.
    pub allocation: Option<u64>,
    /// Bytes the image file takes as a file (its length).
    pub physical: Option<u64>,
    /// Backing chain below the image, nearest first: (path, format).
    pub backing: Vec<BackingImage>,
}

/// A definition read for a change, and the text it was read from.
pub(crate) struct ToChange {
    text: Rc<str>,
    /// The definition, to change.
    pub dom: DomainXml,
}

/// How much of its images a disk record reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageDetails {
    /// None: the definition only.
    None,
    /// The images' own format, sizes and chain; an image that cannot be read is an error.
    Required,
    /// The same, leaving them unknown for an image that cannot be read.
    IfReadable,
}

impl Connection {
    /// Every domain: running ones first by id, then the others by name.
    pub fn list_domains(&self) -> Result<Vec<DomainInfo>> {
        let mut list: Vec<DomainInfo> = self.client.list_domains()?.into_iter().map(DomainInfo::from_summary).collect();
        // A dry run sees the domains it defined, and not those it undefined.
        for (name, planned) in self.planned_definitions() {
            list.retain(|d| d.name != name || planned.is_some());
            if let (Some(xml), false) = (planned, list.iter().any(|d| d.name == name)) {
                let uuid = DomainXml::parse(&xml, None).ok().and_then(|d| d.uuid()).unwrap_or_default();
                list.push(DomainInfo { name, uuid, state: DomainState::ShutOff, id: None, persistent: true });
            }
        }
        self.apply_planned_states(&mut list);
        list.sort_by(|a, b| (a.id.is_none(), a.id, &a.name).cmp(&(b.id.is_none(), b.id, &b.name)));
        Ok(list)
    }

    /// Turns a driver's "no such domain" into an error that suggests close names.
    pub(crate) fn explain_missing(&self, name: &str, err: Error) -> Error {
        if err.code() != ErrorCode::NoDomain {
            return err;
        }
        let known: Vec<String> = self
            .list_domains()
            .map(|l| l.into_iter().map(|d| d.name).filter(|n| n != name).collect())
            .unwrap_or_default();
        Error::NoDomain { name: name.to_string(), uri: self.uri.to_string(), close: suggest::close_names(name, &known) }
    }

    /// The domain's XML; with `inactive`, its persistent definition even while it runs.
    pub fn domain_xml(&self, name: &str, inactive: bool) -> Result<String> {
        Ok(self.definition_text(name, inactive)?.to_string())
    }

    /// [`Connection::domain_xml`], sharing a dry run's record rather than copying it.
    fn definition_text(&self, name: &str, inactive: bool) -> Result<Rc<str>> {
        if let Some(planned) = self.planned_definition(name) {
            return planned;
        }
        self.client.domain_xml(name, inactive).map(Rc::from).map_err(|e| self.explain_missing(name, e))
    }

    /// The domain's persistent definition, parsed. The text is read afresh each time (in a
    /// dry run, as the run left it); a text the last read already parsed is not parsed again.
    pub fn read_domain(&self, name: &str) -> Result<DomainXml> {
        let text = self.definition_text(name, true)?;
        self.parse_definition(name, &text)
    }

    /// `f` of the domain's persistent definition, read as [`Connection::read_domain`] reads it,
    /// without a copy of the parse: for a caller that only looks.
    pub fn with_domain<R>(&self, name: &str, f: impl FnOnce(&DomainXml) -> R) -> Result<R> {
        let text = self.definition_text(name, true)?;
        self.parsed.with(&text, Some(&format!("definition of domain '{name}'")), f).map_err(Error::from)
    }

    /// The domain's persistent definition, read as [`Connection::read_domain`] reads it, for a
    /// change: the caller hands it back with [`Connection::redefine`], or with
    /// [`Connection::unchanged`] when it changes nothing, so the next read need not parse it.
    pub(crate) fn read_domain_to_change(&self, name: &str) -> Result<ToChange> {
        let text = self.definition_text(name, true)?;
        let dom = self.parsed.take(&text, Some(&format!("definition of domain '{name}'")))?;
        Ok(ToChange { text, dom })
    }

    /// Hands back a definition read for a change that made none.
    pub(crate) fn unchanged(&self, read: ToChange) {
        self.parsed.keep(read.text.to_string(), read.dom);
    }

    fn parse_definition(&self, name: &str, text: &str) -> Result<DomainXml> {
        self.parsed.parse(text, Some(&format!("definition of domain '{name}'"))).map_err(Error::from)
    }

    /// How many definition texts this connection has parsed rather than copied.
    pub fn definitions_parsed(&self) -> u64 {
        self.parsed.parses()
    }

    /// The domain's persistent definition, or `None` when there is none: for a caller that
    /// expects that (a define), so no close names are looked up for an error it drops.
    fn domain_if_defined(&self, name: &str) -> Result<Option<DomainXml>> {
        let text = match self.planned_definition(name) {
            Some(planned) => planned,
            None => self.client.domain_xml(name, true).map(Rc::from),
        };
        match text {
            Ok(t) => self.parse_definition(name, &t).map(Some),
            Err(e) if e.code() == ErrorCode::NoDomain => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One disk of the domain, named by its target (`vda`) or its source path.
    pub fn disk(&self, domain: &str, name: &str) -> Result<luavirt_plugin_api::domain::Disk> {
        let dom = self.read_domain(domain)?;
        let disks = dom.disks();
        let target = super::diskset::resolve(domain, &disks, name)?;
        Ok(disks.into_iter().find(|d| d.target == target).expect("resolved"))
    }

    /// The domain's state and, while running, its id.
    pub fn domain_state(&self, name: &str) -> Result<(DomainState, Option<i64>)> {
        if let Some(planned) = self.planned_state(name) {
            return planned;
        }
        let s = self.client.domain_status(name).map_err(|e| self.explain_missing(name, e))?;
        Ok((s.state, Some(s.id).filter(|i| *i >= 0)))
    }

    /// Why the domain is in its state, when the driver says: a change in progress, or one a
    /// killed luavirt left unfinished.
    pub fn domain_state_reason(&self, name: &str) -> Result<Option<String>> {
        Ok(self.client.domain_status(name).map_err(|e| self.explain_missing(name, e))?.reason)
    }

    /// Finishes or undoes a change that a killed luavirt left unfinished on domain `name`.
    /// Every change does this first; this does only that. Whether there was one to settle.
    pub fn recover(&self, name: &str) -> Result<bool> {
        // The state, not the definition: a domain arriving by migration has none yet.
        let before = self.domain_state_reason(name)?;
        self.mutate(name, || "finish or undo an unfinished change".to_string(), || self.lock_domain(name).map(drop))?;
        let after = match self.domain_state_reason(name) {
            Ok(r) => r,
            Err(e) if e.code() == ErrorCode::NoDomain => None, // an arrival undone
            Err(e) => return Err(e),
        };
        Ok(before.is_some() && after.is_none())
    }

    /// Defines a domain from XML (`source_name`, a file name, goes into errors). A missing
    /// `<uuid>` is added (the existing domain's, or a new one); disk set memberships of disks
    /// that are no longer in the domain are dropped. Everything else is kept as written. The
    /// `define:before` hooks see the XML first and may refuse or change it (keeping the name).
    pub fn define(&self, xml: &str, source_name: Option<&str>) -> Result<DefineOutcome> {
        let name = DomainXml::parse(xml, source_name)?.name();
        let mut xml = xml.to_string();
        self.hooks_before(&name, Request::Define { xml: &mut xml })?;
        let dom = DomainXml::parse(&xml, source_name)?;
        if dom.name() != name {
            return Err(Error::InvalidArg(format!(
                "A define:before hook renamed domain '{name}' to '{}'; hooks may change a definition but not its name",
                dom.name()
            )));
        }
        let outcome = self.define_locked(dom, &name, source_name)?;
        self.hooks_after(&name, Done::Define { created: outcome.created });
        Ok(outcome)
    }

    fn define_locked(&self, mut dom: DomainXml, name: &str, source_name: Option<&str>) -> Result<DefineOutcome> {
        let name = name.to_string();
        let _lock = self.lock_domain(&name)?;
        let existing = self.domain_if_defined(&name)?;
        let uuid = match (dom.uuid(), existing.as_ref().and_then(|e| e.uuid())) {
            (Some(new), Some(old)) if new != old => {
                return Err(Error::InvalidArg(format!(
                    "Domain '{name}' already exists with UUID {old}, and the XML gives {new}; keep the UUID, or choose another name for a new domain"
                )));
            }
            (Some(new), _) => new,
            (None, Some(old)) => old,
            (None, None) => generate_uuid().map_err(|source| Error::Io {
                doing: "read random bytes from",
                path: "/dev/urandom".into(),
                source,
            })?,
        };
        // The driver refuses a UUID another domain has (it keeps an index: one lookup).
        if dom.uuid().is_none() {
            dom.set_uuid(&uuid);
        }
        let mut left_sets = dom.prune_disk_sets();
        // XML without disk sets (edited from an older dumpxml, written by hand) keeps the
        // sets of the disks that are still there.
        let mut kept_sets = Vec::new();
        if let Some(old) = existing.as_ref().filter(|_| !dom.has_disk_sets_metadata()) {
            let mut sets = old.disk_sets();
            let targets: Vec<String> = dom.disks().into_iter().map(|d| d.target).collect();
            left_sets.extend(sets.keep_only(&targets));
            for set in sets.names() {
                kept_sets.extend(sets.members(set).iter().map(|d| (set.to_string(), d.clone())));
            }
            if !kept_sets.is_empty() {
                dom.set_disk_sets(&sets);
            }
        }
        let what = if existing.is_some() { "redefine" } else { "define" };
        let change = || format!("{what} from {}", source_name.unwrap_or("XML"));
        self.write_definition(&name, dom, change)?;
        Ok(DefineOutcome { name, uuid, created: existing.is_none(), left_sets, kept_sets })
    }

    /// Writes a changed definition of an existing domain, `change` saying what changed; the
    /// caller holds its lock.
    pub(crate) fn redefine(&self, dom: DomainXml, change: impl FnOnce() -> String) -> Result<()> {
        self.write_definition(&dom.name(), dom, change)
    }

    /// Hands a definition to the driver, or in a dry run records it.
    fn write_definition(&self, name: &str, dom: DomainXml, change: impl FnOnce() -> String) -> Result<()> {
        let text = dom.to_xml();
        let ran = self.mutate(name, change, || {
            luavirt_plugin_api::failpoint::hit("definition:before-write");
            self.client.define_xml(&text)
        })?;
        // The next read of this text (a dry run's record, or a driver's that stores it as
        // given) need not parse it; a text that differs is parsed as usual.
        self.parsed.keep(text.clone(), dom);
        if ran.is_none() {
            self.plan_definition(name, Some(text));
        }
        Ok(())
    }

    /// Removes a domain's definition.
    pub fn undefine(&self, name: &str) -> Result<()> {
        let _lock = self.lock_domain(name)?;
        self.read_domain(name)?;
        let ran = self.mutate(
            name,
            || "undefine".to_string(),
            || self.client.undefine(name).map_err(|e| self.explain_missing(name, e)),
        )?;
        if ran.is_none() {
            self.plan_definition(name, None);
        }
        Ok(())
    }

    /// Starts a domain.
    pub fn start(&self, name: &str) -> Result<()> {
        let _lock = self.lock_domain(name)?;
        self.read_domain(name)?;
        let ran = self.mutate(
            name,
            || "start".to_string(),
            || self.client.start(name).map_err(|e| self.explain_missing(name, e)),
        )?;
        if ran.is_none() {
            self.plan_state(name, DomainState::Running);
        }
        Ok(())
    }

    /// Stops a domain at once.
    pub fn destroy(&self, name: &str) -> Result<()> {
        let _lock = self.lock_domain(name)?;
        self.read_domain(name)?;
        let ran = self.mutate(
            name,
            || "destroy".to_string(),
            || self.client.destroy(name).map_err(|e| self.explain_missing(name, e)),
        )?;
        if ran.is_none() {
            self.plan_state(name, DomainState::ShutOff);
        }
        Ok(())
    }

    /// The domain's disks; with `details` other than `None`, each image's format, sizes and
    /// backing chain as the driver reads them.
    pub fn block_devices(&self, name: &str, details: ImageDetails) -> Result<Vec<BlockDevice>> {
        let dom = self.read_domain(name)?;
        dom.disks().iter().map(|d| self.block_device_of(name, &dom, d, details)).collect()
    }

    /// One disk (target or source path), with its image's details.
    pub fn block_device(&self, name: &str, disk: &str) -> Result<BlockDevice> {
        let dom = self.read_domain(name)?;
        let disks = dom.disks();
        let target = super::diskset::resolve(name, &disks, disk)?;
        let d = disks.iter().find(|d| d.target == target).expect("resolved");
        self.block_device_of(name, &dom, d, ImageDetails::Required)
    }

    fn block_device_of(
        &self,
        name: &str,
        dom: &DomainXml,
        d: &luavirt_plugin_api::domain::Disk,
        details: ImageDetails,
    ) -> Result<BlockDevice> {
        let mut dev = BlockDevice {
            disk_type: d.disk_type.clone(),
            device: d.device.clone(),
            target: d.target.clone(),
            bus: d.bus.clone(),
            source: d.source.display(),
            format: d.format_or_raw().to_string(),
            mode: dom.disk_mode(&d.target).map(|m| m.name().to_string()).unwrap_or_default(),
            readonly: d.readonly,
            capacity: None,
            allocation: None,
            physical: None,
            backing: Vec::new(),
        };
        if details != ImageDetails::None && self.client.has_block_info() && d.source.path().is_some() {
            let info = match self.client.block_info(name, &d.target) {
                Ok(info) => info,
                // Unreadable (a missing image): the fields stay unknown, as documented.
                Err(_) if details == ImageDetails::IfReadable => return Ok(dev),
                Err(e) => return Err(e),
            };
            if !info.format.is_empty() {
                dev.format = info.format;
            }
            dev.capacity = Some(info.capacity);
            dev.allocation = info.allocation;
            dev.physical = info.physical;
            dev.backing = info.backing;
        }
        Ok(dev)
    }
}
