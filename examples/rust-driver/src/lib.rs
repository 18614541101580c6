//! `shelf:///PATH`: an example luavirt driver in Rust, built outside luavirt's workspace.
//!
//! Every `NAME.xml` in the folder is a domain, always shut off: `define` writes the XML as
//! given (atomically, so a crash never leaves half a file), `dumpxml` returns it unchanged
//! (luavirt's own metadata included, as the contract asks), `undefine` removes it. It shows
//! what every driver does: a connection per URI, typed records, clear errors that name the
//! object and say what to do, and an entry point made by `export_driver!`. The host refuses
//! flag bits these functions do not take before they run, and turns a panic into an error.

use luavirt_plugin_api::abi::LV_CAP_DEFINE;
use luavirt_plugin_api::domain::{DomainXml, check_domain_name, generate_uuid};
use luavirt_plugin_api::fsutil::{create_private_dir, write_atomic};
use luavirt_plugin_api::kit::{Call, Driver, DriverResult};
use luavirt_plugin_api::records::{Defined, DomainState, DomainStatus, DomainSummary};
use luavirt_plugin_api::{DriverError, ErrorCode, Uri};
use std::path::PathBuf;

/// One open `shelf:///PATH`.
pub struct Shelf {
    folder: PathBuf,
}

impl Shelf {
    fn file(&self, name: &str) -> DriverResult<PathBuf> {
        check_domain_name(name).map_err(|m| DriverError::new(ErrorCode::InvalidArg, m))?;
        Ok(self.folder.join(format!("{name}.xml")))
    }

    fn read(&self, name: &str) -> DriverResult<(String, DomainXml)> {
        let path = self.file(name)?;
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                DriverError::new(ErrorCode::NoDomain, format!("Domain '{name}' is not on shelf {}", self.folder.display()))
            }
            _ => DriverError::io("read", &path, e),
        })?;
        let dom = DomainXml::parse(&text, Some(&path.display().to_string()))
            .map_err(|e| DriverError::new(ErrorCode::CorruptState, format!("{e}; fix the file or move it away")))?;
        Ok((text, dom))
    }

    fn names(&self) -> DriverResult<Vec<String>> {
        let entries = std::fs::read_dir(&self.folder).map_err(|e| DriverError::io("read", &self.folder, e))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".xml").map(str::to_string))
            .filter(|n| check_domain_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }
}

impl Driver for Shelf {
    const NAME: &'static str = "shelf";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Example driver: domains kept as XML files on a shelf folder (never run)";
    const URI_SCHEMES: &'static str = "shelf";
    const CAPABILITIES: u64 = LV_CAP_DEFINE;

    fn open(uri: &Uri, _flags: u32, _call: &mut Call) -> DriverResult<Self> {
        if !uri.host.is_empty() || uri.path.is_empty() || uri.path == "/" {
            return Err(DriverError::new(
                ErrorCode::InvalidUri,
                format!("{uri}: name a folder on this machine, like shelf:///srv/shelf"),
            ));
        }
        let folder = PathBuf::from(&uri.path);
        create_private_dir(&folder).map_err(|e| DriverError::io("create", &folder, e))?;
        Ok(Shelf { folder })
    }

    fn list_domains(&self, _flags: u32, call: &mut Call) -> DriverResult {
        for name in self.names()? {
            let (_, dom) = self.read(&name)?;
            let uuid = dom.uuid().unwrap_or_default();
            call.emit(&DomainSummary { name, uuid, state: DomainState::ShutOff, id: -1, persistent: true });
        }
        Ok(())
    }

    fn define_xml(&self, xml: &str, _flags: u32, call: &mut Call) -> DriverResult {
        let mut dom = DomainXml::parse(xml, None).map_err(|e| DriverError::new(ErrorCode::Xml, e.to_string()))?;
        let name = dom.name();
        if dom.uuid().is_none() {
            let uuid = generate_uuid().map_err(|e| DriverError::new(ErrorCode::Io, format!("Cannot make a UUID: {e}")))?;
            dom.set_uuid(&uuid);
        }
        let path = self.file(&name)?;
        write_atomic(&path, dom.to_xml().as_bytes()).map_err(|e| DriverError::io("write", &path, e))?;
        call.emit(&Defined { name, uuid: dom.uuid().unwrap_or_default() });
        Ok(())
    }

    fn undefine(&self, name: &str, _flags: u32, _call: &mut Call) -> DriverResult {
        self.read(name)?;
        let path = self.file(name)?;
        std::fs::remove_file(&path).map_err(|e| DriverError::io("remove", &path, e))
    }

    fn get_xml(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        call.emit_text(&self.read(name)?.0);
        Ok(())
    }

    fn get_state(&self, name: &str, _flags: u32, call: &mut Call) -> DriverResult {
        self.read(name)?;
        call.emit(&DomainStatus { state: DomainState::ShutOff, id: -1, reason: None });
        Ok(())
    }
}

luavirt_plugin_api::export_driver!(
    Shelf,
    ops: [connect_list_domains, domain_define_xml, domain_undefine, domain_get_xml, domain_get_state]
);
