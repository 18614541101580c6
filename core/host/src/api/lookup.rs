//! A domain named the ways virsh accepts: by name, by UUID, or by Id while it runs.

use super::Connection;
use crate::error::{Error, Result};
use luavirt_plugin_api::domain::normalize_uuid;

impl Connection {
    /// The name of the domain `reference` names. A name is taken as it is (the operation
    /// reports one that names nothing, with close names); a reference that is no domain's name
    /// but reads as a UUID or an Id is looked up among the domains (virsh's order: Id, then
    /// UUID), and one that matches none is not found (close names of a number mean nothing).
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
        found.map(|d| d.name.clone()).ok_or_else(|| Error::NoDomain {
            name: reference.to_string(),
            uri: self.uri.to_string(),
            close: Vec::new(),
        })
    }
}
