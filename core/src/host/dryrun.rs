//! Dry runs: a connection in dry-run mode calls no driver function that changes anything. It
//! records what each change would be, and later reads on the same connection see those
//! changes (a domain's XML after a disk-set change, a domain defined earlier in the run), so
//! a script decides as it would for real. The host enforces this, not drivers or scripts.

use super::Connection;
use crate::error::{Error, Result};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One change a dry run would make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    /// The domain it changes.
    pub domain: String,
    /// What would change, in words.
    pub change: String,
}

/// What a dry run has recorded so far.
#[derive(Default)]
pub(crate) struct DryRun {
    changes: RefCell<Vec<PlannedChange>>,
    /// Definitions as they would be: `Some(xml)` written, `None` undefined.
    domains: RefCell<BTreeMap<String, Option<String>>>,
}

impl Connection {
    /// Puts the connection in dry-run mode (there is no way back).
    pub fn set_dry_run(&mut self) {
        self.dry_run.get_or_insert_with(DryRun::default);
    }

    /// Whether this connection only records changes.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run.is_some()
    }

    /// The changes recorded by a dry run, in order.
    pub fn planned_changes(&self) -> Vec<PlannedChange> {
        self.dry_run.as_ref().map(|d| d.changes.borrow().clone()).unwrap_or_default()
    }

    /// Runs `real`, which changes something, or in a dry run records `change` instead
    /// (`None`).
    pub(crate) fn mutate<T>(
        &self,
        domain: &str,
        change: impl FnOnce() -> String,
        real: impl FnOnce() -> Result<T>,
    ) -> Result<Option<T>> {
        match &self.dry_run {
            Some(d) => {
                d.changes.borrow_mut().push(PlannedChange { domain: domain.to_string(), change: change() });
                Ok(None)
            }
            None => real().map(Some),
        }
    }

    /// In a dry run, records the definition `domain` would have (`None`: undefined).
    pub(crate) fn plan_definition(&self, domain: &str, xml: Option<String>) {
        if let Some(d) = &self.dry_run {
            d.domains.borrow_mut().insert(domain.to_string(), xml);
        }
    }

    /// In a dry run, the definition of `domain` as it would be, if the run changed it.
    pub(crate) fn planned_definition(&self, domain: &str) -> Option<Result<String>> {
        let d = self.dry_run.as_ref()?;
        let planned = d.domains.borrow().get(domain).cloned()?;
        Some(planned.ok_or_else(|| Error::NoDomain {
            name: domain.to_string(),
            uri: self.uri.to_string(),
            close: Vec::new(),
        }))
    }

    /// In a dry run, the domains it defined or undefined: `(name, Some(xml) | None)`.
    pub(crate) fn planned_definitions(&self) -> Vec<(String, Option<String>)> {
        self.dry_run
            .as_ref()
            .map(|d| d.domains.borrow().iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}
