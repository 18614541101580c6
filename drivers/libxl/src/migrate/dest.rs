//! The destination's side of a migration: prepare (every refusal first, then the copied and
//! blank disks' images), finish (the commit: the sidecar, then the config), and settling an
//! arrival a killed call left.

use super::source::CARRIER;
use super::{Incoming, Record, b64, live_refusal, unmovable};
use crate::LibxlDriver;
use crate::diskspec::Format;
use crate::dom::{Dom, cfg_error};
use crate::inventory;
use crate::live::Run;
use crate::sidecar::{LIBXL_NS, Mode, Sidecar, SidecarFile};
use luavirt_plugin_api::abi::{LV_MIGRATE_FAILED, LV_MIGRATE_OFFLINE, LV_MIGRATE_PAUSED};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::failpoint;
use luavirt_plugin_api::fsutil::{create_private_dir, create_private_file, remove_durably, write_atomic};
use luavirt_plugin_api::kit::{Call, DriverResult};
use luavirt_plugin_api::records::{MigrateAction, MigrateArrived, MigrateDisk, MigrateEndpoints, MigrateParams};
use luavirt_plugin_api::{DriverError, ErrorCode};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn exists(name: &str, what: String) -> DriverError {
    DriverError::new(ErrorCode::Exists, format!("Cannot migrate domain '{name}' here: {what} (nothing was changed)"))
}

fn invalid(name: &str, what: String) -> DriverError {
    DriverError::new(ErrorCode::InvalidArg, format!("Migration of domain '{name}': {what} (nothing was changed)"))
}

/// The config file name and bytes the sent domain XML carries.
fn carried(name: &str, doc: &DomainXml) -> DriverResult<(String, Vec<u8>)> {
    let e = doc.metadata_element(LIBXL_NS).filter(|e| e.name() == CARRIER).ok_or_else(|| {
        invalid(
            name,
            "the domain XML sent holds no xl config (<xl:migration> in <metadata>); migrate from a libxl connection"
                .into(),
        )
    })?;
    let file = e.attr("file").unwrap_or_default();
    let plain = !file.is_empty()
        && !file.starts_with('.')
        && !file.contains(['/', '\0'])
        && !file.ends_with('~')
        && file != "xl.conf"
        && (file.ends_with(".cfg") || !file.contains('.'));
    if !plain {
        return Err(invalid(name, format!("the config's file name '{file}' is not one a config folder lists")));
    }
    if e.attr("encoding").as_deref() != Some("base64") {
        return Err(invalid(name, "the config sent is not in base64".into()));
    }
    let bytes = b64::decode(&e.text()).ok_or_else(|| invalid(name, "the config sent is not valid base64".into()))?;
    Ok((file, bytes))
}

/// `text` quoted for sh.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl LibxlDriver {
    /// Readies domain `xml` (sent by begin) to arrive here as `name`: refuses what is taken,
    /// then makes the copied and blank disks' images; live, checks that Xen can receive it.
    pub(crate) fn migrate_prepare_impl(
        &self,
        name: &str,
        xml: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let live = flags & LV_MIGRATE_OFFLINE == 0;
        let doc = DomainXml::parse(xml, Some("the migrated domain's XML"))
            .map_err(|e| DriverError::new(ErrorCode::Xml, e.to_string()))?;
        if doc.name() != name {
            return Err(invalid(name, format!("the domain XML sent names '{}'", doc.name())));
        }
        let (file, bytes) = carried(name, &doc)?;
        let cfg_path = self.root.join(&file);
        let arriving = Dom::from_bytes(&cfg_path, &bytes)?;
        if arriving.name().as_deref() != Some(name) {
            return Err(invalid(name, format!("the config sent has no name = \"{name}\"")));
        }
        let _lock = self.lock_config(&cfg_path)?;
        luavirt_plugin_api::fsutil::remove_stale_temporaries(&self.root);
        self.settle_migration_at(&cfg_path, call)?;
        // What is taken here: refused before anything is made.
        if let Some(i) = self.migration_at(&cfg_path)?.or_else(|| self.migrations_of(name).pop()) {
            return Err(exists(
                name,
                format!("{} of '{}' is under way here (pid {})", i.change.describe(), i.change.name(), i.pid),
            ));
        }
        match inventory::find(&self.root, name) {
            Err(e) if e.code == ErrorCode::NoDomain => {}
            Ok(d) => {
                return Err(exists(
                    name,
                    format!(
                        "{} has name = \"{name}\" already; rename or remove it, or migrate to another folder",
                        d.path.display()
                    ),
                ));
            }
            Err(e) => return Err(exists(name, e.message)),
        }
        for p in [&cfg_path, &arriving.sidecar_path()] {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(exists(
                    name,
                    format!("{} exists already; move it away, or migrate to another folder", p.display()),
                ));
            }
        }
        if let Some(uuid) = arriving.uuid()? {
            for l in inventory::list(&self.root)? {
                if l.dom.as_ref().ok().and_then(|d| d.uuid().ok().flatten()).as_deref() == Some(uuid.as_str()) {
                    return Err(exists(
                        name,
                        format!("its UUID {uuid} belongs to domain '{}' here ({})", l.name, l.path.display()),
                    ));
                }
            }
        }
        // The config it gets here: the source's, with only the moved disks' targets rewritten.
        let mut cfg = arriving.cfg.clone();
        let mut files: Vec<String> = Vec::new();
        for d in &params.disks {
            let Some(dd) = arriving.disk(&d.target) else {
                return Err(invalid(name, format!("the config sent has no disk '{}'", d.target)));
            };
            if d.action == MigrateAction::Shared {
                continue;
            }
            if live {
                return Err(live_refusal(name, d));
            }
            if let Some(why) = unmovable(name, &arriving, dd, d.action) {
                return Err(invalid(name, why));
            }
            let path = d.dest_path(name)?;
            if std::fs::symlink_metadata(path).is_ok() || files.iter().any(|f| f == path) {
                return Err(exists(
                    name,
                    format!(
                        "the image {path} for disk {} exists already; remove it, or choose another with «disk_target {}=PATH»",
                        d.target, d.target
                    ),
                ));
            }
            let format = Format::parse(&d.format).filter(|f| *f != Format::Empty).ok_or_else(|| {
                invalid(name, format!("disk {} is {}, a format xl does not know", d.target, d.format))
            })?;
            let want = crate::diskspec::Disk { target: Some(path.to_string()), format, ..dd.spec.disk.clone() };
            let text = dd.spec.rewrite(&want).map_err(|m| invalid(name, m))?;
            cfg = cfg.replace_item(dd.setting, dd.index, &text).map_err(cfg_error)?;
            files.push(path.to_string());
        }
        if let Some(left) = arriving.disks.iter().find(|x| !params.disks.iter().any(|d| d.target == x.target())) {
            return Err(invalid(name, format!("the plan leaves out disk {}", left.target())));
        }
        let after = Dom::from_bytes(&cfg_path, cfg.bytes())?;
        let targets: Vec<String> = after.disks.iter().map(|d| d.target().to_string()).collect();
        // Disk sets and modes come along (in the XML sent); snapshot records do not.
        let mut sidecar = Sidecar { sets: doc.disk_sets(), ..Sidecar::default() };
        for d in doc.disks() {
            let mode = Mode { snapshot: d.snapshot.clone(), transient: d.transient };
            if mode != Mode::default() {
                sidecar.modes.insert(d.target.clone(), mode);
            }
        }
        let mut endpoints =
            MigrateEndpoints { commit_marker: Some(cfg_path.display().to_string()), ..MigrateEndpoints::default() };
        if live {
            // The boundary: the source's `xl migrate` hands the guest to `xl migrate-receive`
            // here, which needs a running Xen.
            self.xl.list().map_err(|e| {
                DriverError::new(
                    ErrorCode::Unsupported,
                    format!(
                        "Domain '{name}' cannot arrive here live: the source's xl migrate hands it to xl migrate-receive on this host, which needs Xen running here, and {e} (nothing was changed)"
                    ),
                )
            })?;
            let pause = if flags & LV_MIGRATE_PAUSED != 0 { " -p" } else { "" };
            endpoints.memory_uri = Some(format!("exec:{} migrate-receive{pause}", shell_quote(self.xl.program())));
        }
        let incoming = Incoming {
            id: params.id.clone(),
            name: name.to_string(),
            cfg: cfg_path.clone(),
            cfg_bytes: cfg.bytes().to_vec(),
            sidecar: SidecarFile::of(&after.sidecar_path(), &sidecar, &targets),
            files,
            live,
        };
        let mut pending = self.migration_file(&cfg_path).begin(Record::In(incoming.clone()))?;
        failpoint::hit("libxl-migrate-in:begun");
        let mut made = Vec::new();
        if let Err(e) = self.make_images(name, params, &mut made, call) {
            // Only what this call made goes (a file someone else put there meanwhile stays).
            undo_incoming(&Incoming { files: made, ..incoming })?;
            pending.done()?;
            return Err(DriverError::new(
                e.code,
                format!("{}; the migration was undone: what it had made here was removed", e.message),
            ));
        }
        pending.phase("prepared")?;
        failpoint::hit("libxl-migrate-in:prepared");
        pending.hand_on();
        call.emit(&endpoints);
        Ok(())
    }

    /// Makes each copied disk's image (a sparse copy of its source) and each blank one's;
    /// `made` gets each file this call created.
    fn make_images(&self, name: &str, params: &MigrateParams, made: &mut Vec<String>, call: &mut Call) -> DriverResult {
        for d in params.disks.iter().filter(|d| d.action != MigrateAction::Shared) {
            let path = d.dest_path(name)?;
            make_image(name, d, path, params.bandwidth, made, call)?;
            failpoint::hit("libxl-migrate-in:image");
        }
        Ok(())
    }

    /// Commits (or with `LV_MIGRATE_FAILED` undoes) the arrival of `name`.
    pub(crate) fn migrate_finish_impl(
        &self,
        name: &str,
        params: &MigrateParams,
        flags: u32,
        call: &mut Call,
    ) -> DriverResult {
        let none = || {
            DriverError::new(
                ErrorCode::InvalidState,
                format!(
                    "Domain '{name}' has no migration {} arriving here; it was undone (see the log) or never began",
                    params.id
                ),
            )
        };
        let ours = |r: &Record| matches!(r, Record::In(i) if i.id == params.id);
        let path =
            self.migrations_of(name).into_iter().find(|i| ours(&i.change)).ok_or_else(none)?.change.cfg().to_path_buf();
        let _lock = self.lock_config(&path)?;
        let intent = self.migration_at(&path)?.filter(|i| ours(&i.change)).ok_or_else(none)?;
        let Record::In(incoming) = intent.change.clone() else { return Err(none()) };
        let pending = self.migration_file(&path).resume(intent);
        if flags & LV_MIGRATE_FAILED != 0 {
            undo_incoming(&incoming)?;
            return pending.done();
        }
        if incoming.live && !matches!(self.run_state(name), Run::Running(..)) {
            undo_incoming(&incoming)?;
            pending.done()?;
            return Err(DriverError::new(
                ErrorCode::Hypervisor,
                format!(
                    "Domain '{name}' has not arrived here: Xen here does not run it; the migration was undone here"
                ),
            ));
        }
        commit(&incoming)?;
        failpoint::hit("libxl-migrate-in:committed");
        let arrived = MigrateArrived::measure(params);
        pending.done()?;
        call.emit(&arrived);
        Ok(())
    }

    /// Settles the arrival a killed call left: committed (its config is here), it is
    /// completed; live, a guest Xen runs here is committed; otherwise it is undone.
    pub(crate) fn settle_incoming(&self, incoming: &Incoming) -> DriverResult<String> {
        match std::fs::read(&incoming.cfg) {
            Ok(b) if b == incoming.cfg_bytes => {
                commit(incoming)?;
                return Ok("it had committed, and the domain is here now".to_string());
            }
            Ok(_) => {
                return Err(DriverError::new(
                    ErrorCode::Busy,
                    format!(
                        "{} is not the config the migration was writing (written by someone else meanwhile?); luavirt leaves it and the images {} as they are",
                        incoming.cfg.display(),
                        incoming.files.join(", ")
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DriverError::io("read", &incoming.cfg, e)),
        }
        if incoming.live && matches!(self.run_state(&incoming.name), Run::Running(..)) {
            commit(incoming)?;
            return Ok("Xen runs the domain here, so its arrival was committed".to_string());
        }
        undo_incoming(incoming)?;
        Ok(if incoming.files.is_empty() {
            "it had not committed, so it was undone: nothing of it is here".to_string()
        } else {
            "it had not committed, so it was undone: the images it made here were removed".to_string()
        })
    }
}

/// The commit: the sidecar, then the config (which makes the domain exist here). Safe to
/// repeat; refuses to write over a config someone else wrote meanwhile.
fn commit(incoming: &Incoming) -> DriverResult {
    match std::fs::read(&incoming.cfg) {
        Ok(b) if b == incoming.cfg_bytes => return incoming.sidecar.write(),
        Ok(_) => {
            return Err(DriverError::new(
                ErrorCode::Busy,
                format!("{} appeared while the migration committed; it is left as it is", incoming.cfg.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DriverError::io("read", &incoming.cfg, e)),
    }
    incoming.sidecar.write()?;
    failpoint::hit("libxl-migrate-in:sidecar-written");
    write_atomic(&incoming.cfg, &incoming.cfg_bytes).map_err(|e| DriverError::io("write", &incoming.cfg, e))
}

/// Removes what the arrival made: its images, and the sidecar if it is the one it wrote.
fn undo_incoming(incoming: &Incoming) -> DriverResult {
    for f in &incoming.files {
        remove_durably(Path::new(f)).map_err(|e| DriverError::io("remove", Path::new(f), e))?;
    }
    let s = &incoming.sidecar;
    if s.bytes.is_some() && SidecarFile::current(&s.path)? == *s {
        remove_durably(&s.path).map_err(|e| DriverError::io("remove", &s.path, e))?;
    }
    Ok(())
}

/// Makes the image of a copied or blank disk at `path`: a sparse copy of its source
/// (`qemu-img convert`, at most `bandwidth` bytes a second), or an empty image of its format,
/// size and cluster size. The file is made 0600 before qemu-img writes it.
fn make_image(
    name: &str,
    d: &MigrateDisk,
    path: &str,
    bandwidth: Option<u64>,
    made: &mut Vec<String>,
    call: &mut Call,
) -> DriverResult {
    let fail = |e: DriverError| {
        DriverError::new(e.code, format!("Migration of domain '{name}', disk {}: {}", d.target, e.message))
    };
    let format = Format::parse(&d.format).map(Format::qemu).unwrap_or("raw");
    let p = Path::new(path);
    if let Some(dir) = p.parent() {
        create_private_dir(dir).map_err(|e| fail(DriverError::io("create", dir, e)))?;
    }
    create_private_file(p).map_err(|e| fail(DriverError::io("create", p, e)))?;
    made.push(path.to_string());
    let mut args: Vec<String> = Vec::new();
    let cluster = d.cluster_size.filter(|_| format == "qcow2").map(|c| format!("cluster_size={c}"));
    match (d.action, &d.source) {
        (MigrateAction::Copy, Some(source)) => {
            args.extend(["convert", "-p", "-f", format, "-O", format].map(String::from));
            if let Some(c) = cluster {
                args.extend(["-o".to_string(), c]);
            }
            if let Some(b) = bandwidth {
                args.extend(["-r".to_string(), b.to_string()]);
            }
            args.extend([source.clone(), path.to_string()]);
            run_watched(&args, d.capacity, &format!("copying disk {}", d.target), call).map_err(fail)?;
        }
        (MigrateAction::Copy, None) => {
            return Err(fail(DriverError::new(ErrorCode::InvalidArg, "its source image is not named".to_string())));
        }
        _ => {
            args.extend(["create", "-q", "-f", format].map(String::from));
            if let Some(c) = cluster {
                args.extend(["-o".to_string(), c]);
            }
            args.extend([path.to_string(), d.capacity.to_string()]);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::images::run(&refs).map_err(fail)?;
        }
    }
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(DriverError::io("set the mode of", p, e)))
}

/// Runs `qemu-img ARGS` (a `convert -p`), reporting its progress over `total` bytes as
/// `stage`, and stopping it when the call is cancelled.
fn run_watched(args: &[String], total: u64, stage: &str, call: &mut Call) -> DriverResult {
    luavirt_plugin_api::kit::log(
        luavirt_plugin_api::kit::Level::Debug,
        &format!("running qemu-img {}", args.join(" ")),
    );
    let mut child = luavirt_plugin_api::child::tool("qemu-img")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| DriverError::new(ErrorCode::Hypervisor, format!("qemu-img cannot be run: {e}")))?;
    // Hundredths of a percent, as qemu-img prints "    (12.34/100%)\r".
    let done = Arc::new(AtomicU64::new(0));
    let mut stdout = child.stdout.take().expect("piped");
    let seen = done.clone();
    let progress = std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).is_ok_and(|n| n == 1) {
            if byte[0] != b'\r' && byte[0] != b'\n' {
                line.push(byte[0]);
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(pct) = text.trim().strip_prefix('(').and_then(|t| t.split('/').next())
                && let Ok(v) = pct.parse::<f64>()
            {
                seen.store((v * 100.0) as u64, Ordering::Relaxed);
            }
            line.clear();
        }
    });
    let mut stderr = child.stderr.take().expect("piped");
    let said = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(DriverError::new(ErrorCode::Hypervisor, format!("qemu-img: {e}"))),
        }
        if call.is_cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DriverError::new(
                ErrorCode::Cancelled,
                "the migration was cancelled while it copied".to_string(),
            ));
        }
        let part = done.load(Ordering::Relaxed).min(10_000);
        call.progress((total as u128 * part as u128 / 10_000) as u64, total, stage);
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = progress.join();
    let said = said.join().unwrap_or_default();
    if !status.success() {
        return Err(DriverError::new(
            ErrorCode::Hypervisor,
            format!("qemu-img {} failed: {}", args.join(" "), said.trim()),
        ));
    }
    call.progress(total, total, stage);
    Ok(())
}
