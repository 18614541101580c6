//! The policies' operation hooks, as the host calls them (`luavirt_host::hooks::Hooks`).
//!
//! A `before` hook gets `ev` with `event`, `uri`, `domain` (a handle), `dry_run`, `depth`,
//! `request` (a table it may change) and, for revert and delete, `snapshot`. It refuses the
//! operation with `ev:veto(reason)`; that is the one way: a hook that returns a value instead,
//! or fails, refuses it too, with what went wrong (a policy that cannot answer does not say
//! yes). The first refusal stops the operation and the hooks after it. An `after` hook gets the
//! same fields without `request`, plus what the operation did (`snapshot`, `deleted`,
//! `created`, `to`); its failures are logged. A migration's events name the destination (`to`).

use super::request;
use super::{Level, Policy, PolicySet};
use crate::lua::domain::LuaDomain;
use crate::lua::errors;
use crate::lua::hooks::{Hook, Trigger};
use luavirt_host::hooks::{After, Before, Done, Hooks, Request, Veto};
use mlua::{Lua, Table, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// The fields every operation event has.
fn base_event(
    lua: &Lua,
    policy: &Policy,
    name: String,
    uri: &str,
    domain: &str,
    dry_run: bool,
    depth: usize,
) -> mlua::Result<Table> {
    let ev = lua.create_table()?;
    ev.set("event", name)?;
    ev.set("uri", uri)?;
    let conn = policy.connection(uri, dry_run).map_err(errors::host)?;
    ev.set("domain", LuaDomain::new(&conn, domain))?;
    ev.set("dry_run", dry_run)?;
    ev.set("depth", depth)?;
    Ok(ev)
}

/// `ev:veto(reason)`: records the refusal and where it was said.
fn add_veto(lua: &Lua, ev: &Table, verdict: Rc<RefCell<Option<(String, String)>>>) -> mlua::Result<()> {
    let methods = lua.create_table()?;
    methods.set(
        "veto",
        lua.create_function(move |lua, (_, reason): (Table, Value)| {
            let reason = match reason {
                Value::String(s) if !s.to_string_lossy().trim().is_empty() => s.to_string_lossy(),
                _ => {
                    return Err(errors::invalid(
                        lua,
                        "ev:veto(reason): give the reason as a non-empty string; it is what the user is told".into(),
                    ));
                }
            };
            let at = errors::at_line(lua);
            let at = at.trim().trim_start_matches("(at ").trim_end_matches(')').to_string();
            *verdict.borrow_mut() = Some((at, reason));
            Ok(())
        })?,
    )?;
    let meta = lua.create_table()?;
    meta.set("__index", methods)?;
    ev.set_metatable(Some(meta))?;
    Ok(())
}

impl PolicySet {
    /// The policies' hooks for `trigger`, with their policy, in file then registration order.
    fn hooks_for(&self, trigger: &Trigger) -> Vec<(Rc<Policy>, Rc<Hook>)> {
        self.policies()
            .into_iter()
            .flat_map(|p| p.hooks().into_iter().filter(|h| h.trigger == *trigger).map(move |h| (p.clone(), h)))
            .collect()
    }
}

impl Hooks for PolicySet {
    fn before(&self, event: &mut Before<'_>) -> Result<(), Veto> {
        let op = event.request.operation();
        let name = format!("{}:before", op.name());
        for (policy, hook) in self.hooks_for(&Trigger::Before(op)) {
            let verdict = Rc::new(RefCell::new(None));
            let mut asked = None;
            let ran = policy.run(&hook, |lua| {
                let ev = base_event(lua, &policy, name.clone(), event.uri, event.domain, event.dry_run, event.depth)?;
                let req = request::to_table(lua, &event.request)?;
                ev.set("request", req.clone())?;
                match &event.request {
                    Request::Revert { snapshot, .. } | Request::Delete { snapshot, .. } => {
                        ev.set("snapshot", *snapshot)?
                    }
                    Request::Migrate { to, .. } => ev.set("to", *to)?,
                    Request::Snapshot(_) | Request::Define { .. } => {}
                }
                add_veto(lua, &ev, verdict.clone())?;
                asked = Some(req);
                Ok(Value::Table(ev))
            });
            let failed = |reason: String| Veto { by: hook.at.clone(), reason, failed: true };
            match ran {
                None => continue,
                Some(Err(report)) => return Err(failed(report)),
                Some(Ok(v)) if !v.is_nil() => {
                    return Err(failed(format!(
                        "it returned {}, and a hook's return value is not read: refuse with ev:veto(reason), or return nothing",
                        v.type_name()
                    )));
                }
                Some(Ok(_)) => {}
            }
            if let Some((at, reason)) = verdict.take() {
                self.log(
                    Level::Info,
                    "veto",
                    Some(at.clone()),
                    format!("refused the {} of domain '{}': {reason}", op.noun(), event.domain),
                );
                return Err(Veto { by: at, reason, failed: false });
            }
            if let Some(t) = asked {
                request::from_table(policy.lua(), t, &mut event.request).map_err(|e| failed(errors::report(&e)))?;
            }
        }
        Ok(())
    }

    fn after(&self, event: &After<'_>) {
        let op = event.done.operation();
        let name = format!("{}:after", op.name());
        for (policy, hook) in self.hooks_for(&Trigger::After(op)) {
            let ran = policy.run(&hook, |lua| {
                let ev = base_event(lua, &policy, name.clone(), event.uri, event.domain, event.dry_run, event.depth)?;
                match &event.done {
                    Done::Snapshot { name } => ev.set("snapshot", *name)?,
                    Done::Revert { snapshot } => ev.set("snapshot", *snapshot)?,
                    Done::Delete { deleted } => ev.set("deleted", deleted.to_vec())?,
                    Done::Define { created } => ev.set("created", *created)?,
                    Done::Migrate { to } => ev.set("to", *to)?,
                }
                Ok(Value::Table(ev))
            });
            match ran {
                Some(Err(report)) => self.log(Level::Error, "hook-error", Some(hook.at.clone()), report),
                Some(Ok(v)) if !v.is_nil() => self.log(
                    Level::Warning,
                    "hook-error",
                    Some(hook.at.clone()),
                    format!("{name} hook returned {}, which is not read: after hooks cannot refuse", v.type_name()),
                ),
                _ => {}
            }
        }
    }
}
