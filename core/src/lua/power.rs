//! `dom:shutdown{}`: the graceful shutdown, waited for as the options say.

use super::options::Opts;
use super::{Context, errors};
use luavirt_host::{Connection, ShutdownOptions, ShutdownOutcome};
use mlua::{Lua, Table};
use std::time::Duration;

/// `dom:shutdown{ wait = bool, timeout = seconds, destroy = bool }`: asks the guest (ACPI);
/// returns "requested", "shut off" or "destroyed".
pub fn shutdown(lua: &Lua, conn: &Connection, name: &str, opts: Option<Table>) -> mlua::Result<&'static str> {
    let mut o = Opts::new(lua, opts, "dom:shutdown");
    let wait = o.boolean("wait")?;
    let timeout = o.count("timeout")?;
    let destroy = o.boolean("destroy")?;
    o.finish()?;
    let ctx = Context::get(lua)?;
    let wait = match (wait, timeout) {
        (_, Some(t)) => Some(Some(Duration::from_secs(t))),
        (true, None) => Some(None),
        (false, None) => None,
    };
    let opts = ShutdownOptions { wait, destroy_after: destroy, cancel: Some(&ctx.limits.cancel) };
    let result = conn.shutdown(name, opts);
    // A wait that ended at the script's deadline reports the limit, not the cancellation.
    if let Some(limit) = ctx.limits.check() {
        return Err(mlua::Error::external(limit));
    }
    Ok(match result.map_err(errors::host)? {
        ShutdownOutcome::Requested => "requested",
        ShutdownOutcome::ShutOff => "shut off",
        ShutdownOutcome::Destroyed => "destroyed",
    })
}
