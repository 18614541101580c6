//! A domain named the ways virsh accepts: by name, by UUID, or by Id while it runs.

use super::Connection;
use crate::error::Result;
use luavirt_plugin_api::domain::normalize_uuid;

impl Connection {
    /// The name of the domain `reference` names. A name is taken as it is; a reference that is
    /// no domain's name but reads as a UUID or an Id is looked up among the domains (virsh's
    /// order: Id, then UUID). A reference that names nothing comes back unchanged, so the
    /// operation reports it as not found.
    pub fn lookup(&self, reference: &str) -> Result<String> {
        let uuid = normalize_uuid(reference);
        let id = reference.parse::<i64>().ok().filter(|i| *i >= 0);
        if uuid.is_none() && id.is_none() {
            return Ok(reference.to_string());
        }
        let list = self.list_domains()?;
        if list.iter().any(|d| d.name == reference) {
            return Ok(reference.to_string());
        }
        let found = list
            .iter()
            .find(|d| id.is_some() && d.id == id)
            .or_else(|| list.iter().find(|d| uuid.is_some() && normalize_uuid(&d.uuid) == uuid));
        Ok(found.map_or_else(|| reference.to_string(), |d| d.name.clone()))
    }
}
