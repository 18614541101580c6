//! The source's side of a migration: begin (every check, then the domain XML with the config
//! inside), perform (live: `xl migrate`), confirm (with «undefine_source», the config and
//! sidecar go), and settling a confirm a killed call left half-way.

use super::{Outgoing, Record, b64, live_refusal, unmovable};
use crate::LibxlDriver;
use crate::dom::Dom;
use crate::live::Run;
use crate::sidecar::{LIBXL_NS, SidecarFile};
use crate::xl::XlError;
use luavirt_plugin_api::abi::{
    LV_MIGRATE_FAILED, LV_MIGRATE_LIVE, LV_MIGRATE_OFFLINE, LV_MIGRATE_PERSIST_DEST, LV_MIGRATE_UNDEFINE_SOURCE,
};
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::fsutil::remove_durably;
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::records::{MigrateAction, MigrateParams, MigrateSent};
use luavirt_plugin_api::xml::Element;
use luavirt_plugin_api::{DriverError, ErrorCode};

/// The element of the sent domain XML's `<metadata>` that carries the config: its file name
/// and its bytes in base64.
pub(super) const CARRIER: &str = "xl:migration";

fn refuse(code: ErrorCode, message: String) -> DriverError {
    DriverError::new(code, format!("{message} (nothing was changed)"))
}

impl LibxlDriver {
    /// Checks that `name` can migrate as `params` plan it; emits its domain XML with the
    /// config inside.
    pub(crate) fn migrate_begin_impl(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let found = self.find(name)?;
        let _lock = self.lock_for_change(name, &found.path, call)?;
        let dom = Dom::load(&found.path)?;
        let (sidecar, view) = self.view(&dom)?;
        let offline = flags & LV_MIGRATE_OFFLINE != 0;
        match (self.run_state(name), offline) {
            (Run::Off(_), true) | (Run::Running(..), false) => {}
            (Run::Running(_, id), true) => {
                return Err(refuse(
                    ErrorCode::InvalidState,
                    format!(
                        "Domain '{name}' runs under Xen (domain id {id}); an offline migration moves a shut-off domain"
                    ),
                ));
            }
            (Run::Off(_), false) => {
                return Err(refuse(
                    ErrorCode::InvalidState,
                    format!("Domain '{name}' is shut off; it migrates offline (its config and disks only)"),
                ));
            }
            (Run::Unknown(e), _) => {
                return Err(refuse(
                    ErrorCode::Hypervisor,
                    format!("luavirt cannot tell whether Xen runs domain '{name}' ({e}), so it cannot migrate it"),
                ));
            }
        }
        if flags & LV_MIGRATE_UNDEFINE_SOURCE != 0 {
            let snapshots = sidecar.snapshots.all().len();
            if snapshots > 0 {
                return Err(refuse(
                    ErrorCode::InvalidState,
                    format!(
                        "Domain '{name}' has {snapshots} snapshot(s), whose records stay beside its config here (they do not migrate); delete them first (with «metadata» to keep their files), or migrate without «undefine_source»"
                    ),
                ));
            }
        }
        for d in &params.disks {
            if dom.disk(&d.target).is_none() {
                return Err(refuse(ErrorCode::NoDisk, format!("Domain '{name}' has no disk '{}'", d.target)));
            }
        }
        if let Some(missing) = dom.disks.iter().find(|x| !params.disks.iter().any(|d| d.target == x.target())) {
            return Err(refuse(
                ErrorCode::InvalidArg,
                format!("The migration plan of domain '{name}' leaves out disk {}; plan every disk", missing.target()),
            ));
        }
        for d in params.disks.iter().filter(|d| d.action != MigrateAction::Shared) {
            if !offline {
                return Err(live_refusal(name, d));
            }
            let dd = dom.disk(&d.target).expect("checked above");
            if let Some(why) = unmovable(name, &dom, dd, d.action) {
                return Err(refuse(ErrorCode::Unsupported, why));
            }
            self.check_image(name, &dom, dd)?;
            let here = dd.spec.disk.path();
            if d.action == MigrateAction::Copy && d.source != here {
                return Err(refuse(
                    ErrorCode::InvalidArg,
                    format!(
                        "The migration plan of domain '{name}' copies disk {} from {}, but its image is {}",
                        d.target,
                        d.source.as_deref().unwrap_or("nowhere"),
                        here.unwrap_or_default()
                    ),
                ));
            }
        }
        if offline {
            if params.timeout.is_some() {
                return Err(refuse(
                    ErrorCode::InvalidArg,
                    format!(
                        "Domain '{name}' is shut off: «timeout» limits how long a live migration's memory may take, and an offline one moves no memory"
                    ),
                ));
            }
        } else {
            let live_only =
                |m: String| Err(refuse(ErrorCode::Unsupported, format!("Domain '{name}' runs under Xen: {m}")));
            if flags & LV_MIGRATE_LIVE == 0 {
                return live_only(
                    "Xen moves a running domain only live (xl migrate); add «live», or shut it down to migrate it offline".into(),
                );
            }
            if flags & LV_MIGRATE_PERSIST_DEST == 0 {
                return live_only("an xl domain is its config file, so it arrives with one; add «persistent»".into());
            }
            if params.bandwidth.is_some() {
                return live_only("xl migrate has no speed limit; migrate without «bandwidth»".into());
            }
            if params.timeout.is_some() {
                return live_only("xl migrate has no time limit; migrate without «timeout»".into());
            }
        }
        let mut sent = view;
        let file = dom.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let mut carrier = Element::new(CARRIER)
            .with_attr("xmlns:xl", LIBXL_NS)
            .with_attr("file", &file)
            .with_attr("encoding", "base64");
        carrier.set_text(&b64::encode(dom.cfg.bytes()));
        sent.set_metadata_element(LIBXL_NS, Some(carrier));
        call.emit_text(&sent.to_xml());
        Ok(())
    }

    /// Moves the running domain `name` to the destination's `xl migrate-receive` with
    /// `xl migrate` (every disk shared).
    pub(crate) fn migrate_perform_impl(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        if flags & LV_MIGRATE_OFFLINE != 0 {
            return Err(DriverError::new(
                ErrorCode::InvalidArg,
                format!("Domain '{name}' migrates offline, which moves no memory: there is nothing to perform"),
            ));
        }
        if let Some(d) = params.disks.iter().find(|d| d.action != MigrateAction::Shared) {
            return Err(live_refusal(name, d));
        }
        let found = self.find(name)?;
        let _lock = self.lock_for_change(name, &found.path, call)?;
        let receiver =
            params.endpoints.memory_uri.as_deref().and_then(|u| u.strip_prefix("exec:")).ok_or_else(|| {
                DriverError::new(
                    ErrorCode::InvalidArg,
                    format!(
                        "The migration of domain '{name}' has no receiver at the destination (prepare names one as exec:COMMAND)"
                    ),
                )
            })?;
        if let Run::Off(_) | Run::Unknown(_) = self.run_state(name) {
            return Err(DriverError::new(
                ErrorCode::InvalidState,
                format!("Domain '{name}' no longer runs under Xen here; nothing was moved"),
            ));
        }
        failpoint::hit("libxl-migrate-out:sending");
        let cfg = found.path.display().to_string();
        // `-s ''`: xl runs the receiver itself (no ssh); `-C`: the config as it is now.
        self.xl.run(&["migrate", "-s", "", "-C", &cfg, name, receiver]).map_err(|e| {
            let code = if matches!(e, XlError::Missing(_)) { ErrorCode::Unsupported } else { ErrorCode::Hypervisor };
            DriverError::new(
                code,
                if e.nothing_runs() {
                    format!(
                        "Moving domain '{name}' live: xl migrate needs Xen running on both hosts, and {e} (nothing was moved)"
                    )
                } else {
                    format!("Moving domain '{name}' live: {e}")
                },
            )
        })?;
        call.emit(&MigrateSent { memory: 0 });
        Ok(())
    }

    /// Ends the migration of `name` at the source: with «undefine_source», once the
    /// destination has it, removes its config and sidecar; otherwise (and when the migration
    /// failed) leaves them: they are the user's files.
    pub(crate) fn migrate_confirm_impl(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        if flags & LV_MIGRATE_FAILED != 0 || flags & LV_MIGRATE_UNDEFINE_SOURCE == 0 {
            // Nothing changed here: begin only reads, and a failed `xl migrate` leaves the
            // domain running here.
            return Ok(());
        }
        let found = self.find(name)?;
        let _lock = self.lock_for_change(name, &found.path, call)?;
        let dom = Dom::load(&found.path)?;
        let (sidecar, view) = self.view(&dom)?;
        let keep = |why: String| {
            DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "Domain '{name}' keeps its config {} here although the destination has it: {why}; check it, then remove it by hand",
                    dom.path.display()
                ),
            )
        };
        if !sidecar.snapshots.is_empty() {
            return Err(keep("it has snapshots now".into()));
        }
        for d in &params.disks {
            let now = view.disk(&d.target).and_then(|x| x.source.path().map(str::to_string));
            if now != d.source {
                return Err(keep(format!(
                    "disk {} changed since the migration began (it is on {}, it was on {})",
                    d.target,
                    now.as_deref().unwrap_or("nothing"),
                    d.source.as_deref().unwrap_or("nothing")
                )));
            }
        }
        if let Run::Running(_, id) = self.run_state(name) {
            return Err(keep(format!("Xen still runs it here (domain id {id})")));
        }
        let out = Outgoing {
            id: params.id.clone(),
            name: name.to_string(),
            cfg: dom.path.clone(),
            cfg_bytes: dom.cfg.bytes().to_vec(),
            sidecar: SidecarFile::current(&dom.sidecar_path())?,
        };
        let pending = self.migration_file(&dom.path).begin(Record::Out(out.clone()))?;
        remove_source(&out)?;
        pending.done()
    }

    /// Finishes removing the source's config and sidecar that a killed confirm began to
    /// remove (confirm runs only once the destination has the domain).
    pub(crate) fn settle_outgoing(&self, out: &Outgoing, _call: &mut Call) -> DriverResult<String> {
        let kept = remove_source(out)?;
        Ok(match kept {
            None => "the destination had the domain, so its config and sidecar here were removed, as «undefine_source» asked".to_string(),
            Some(why) => format!("the destination had the domain, but {why}"),
        })
    }
}

/// Removes the config (then the sidecar) as they were recorded; safe to repeat. A config that
/// changed since is left, and the reason returned.
fn remove_source(out: &Outgoing) -> DriverResult<Option<String>> {
    let mut kept = None;
    match std::fs::read(&out.cfg) {
        Ok(b) if b == out.cfg_bytes => {
            remove_durably(&out.cfg).map_err(|e| DriverError::io("remove", &out.cfg, e))?;
        }
        Ok(_) => kept = Some(format!("{} was changed meanwhile, so it stays", out.cfg.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DriverError::io("read", &out.cfg, e)),
    }
    failpoint::hit("libxl-migrate-out:config-removed");
    if kept.is_none() && out.sidecar.bytes.is_some() && SidecarFile::current(&out.sidecar.path)? == out.sidecar {
        remove_durably(&out.sidecar.path).map_err(|e| DriverError::io("remove", &out.sidecar.path, e))?;
    }
    Ok(kept)
}
