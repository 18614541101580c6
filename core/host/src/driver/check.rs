//! `luavirt driver-check`: what a driver author runs against their `.so` before shipping it.
//! It loads the file as the host would, then checks what the contract asks: the descriptor,
//! that every declared capability has its functions, and, with a connection, that each
//! function answers as the header says (records that read back, "no such domain" for an
//! unknown name, unknown flag bits refused, definitions kept losslessly, luavirt's metadata
//! included).

use super::client::DriverConn;
use super::{CallOptions, LoadedDriver, loader};
use crate::error::Error;
use luavirt_plugin_api::abi::{self, LvCall, LvStr};
use luavirt_plugin_api::domain::DomainXml;
use luavirt_plugin_api::{ErrorCode, Uri};
use serde::Serialize;
use std::ffi::c_void;
use std::path::Path;
use std::sync::Arc;

/// What to check beyond the file itself.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// A connection to open and exercise.
    pub uri: Option<String>,
    /// Also define, redefine and undefine (on a connection that may be changed).
    pub writable: bool,
}

/// One check and how it went.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// What was checked.
    pub check: String,
    /// `pass`, `fail` or `skip`.
    pub outcome: &'static str,
    /// Why, in words.
    pub detail: String,
}

#[derive(Default)]
struct Report(Vec<Finding>);

impl Report {
    fn add(&mut self, check: &str, result: Result<String, String>) {
        let (outcome, detail) = match result {
            Ok(d) => ("pass", d),
            Err(d) => ("fail", d),
        };
        self.0.push(Finding { check: check.to_string(), outcome, detail });
    }

    fn skip(&mut self, check: &str, why: &str) {
        self.0.push(Finding { check: check.to_string(), outcome: "skip", detail: why.to_string() });
    }
}

/// The functions each capability needs.
const NEEDS: &[(u64, &str, &[&str])] = &[
    (abi::LV_CAP_DEFINE, "define", &["domain_define_xml", "domain_undefine"]),
    (abi::LV_CAP_LIFECYCLE, "lifecycle", &["domain_create", "domain_destroy"]),
    (abi::LV_CAP_BLOCK_INFO, "block-info", &["domain_get_block_info"]),
    (
        abi::LV_CAP_SNAPSHOT,
        "snapshot",
        &["domain_snapshot_create", "domain_snapshot_list", "domain_snapshot_revert", "domain_snapshot_delete"],
    ),
    (
        abi::LV_CAP_BLOCK_JOBS,
        "block-jobs",
        &[
            "domain_block_copy",
            "domain_block_pull",
            "domain_block_commit",
            "domain_block_job_info",
            "domain_block_job_abort",
            "domain_block_job_wait",
        ],
    ),
    (
        abi::LV_CAP_MIGRATION,
        "migration",
        &[
            "domain_migrate_begin",
            "domain_migrate_prepare",
            "domain_migrate_perform",
            "domain_migrate_finish",
            "domain_migrate_confirm",
        ],
    ),
];

/// Functions that change something, which a read-only driver must not have.
const CHANGES: &[&str] = &[
    "domain_define_xml",
    "domain_undefine",
    "domain_create",
    "domain_destroy",
    "domain_snapshot_create",
    "domain_snapshot_revert",
    "domain_snapshot_delete",
    "domain_block_copy",
    "domain_block_pull",
    "domain_block_commit",
    "domain_block_job_abort",
    "domain_migrate_prepare",
    "domain_migrate_perform",
    "domain_migrate_finish",
    "domain_migrate_confirm",
    "domain_abort_job",
    "domain_shutdown",
    "domain_reset",
    "domain_suspend",
    "domain_resume",
    "domain_attach_disk",
    "domain_detach_disk",
    "domain_snapshot_redefine",
];

/// Checks the driver in `path`.
pub fn check_driver(path: &Path, opts: &CheckOptions) -> Vec<Finding> {
    let mut r = Report::default();
    let driver = match loader::load_one(path) {
        Ok(d) => Arc::new(d),
        Err(why) => {
            r.add("loads", Err(why));
            return r.0;
        }
    };
    r.add("loads", Ok(format!("{} {} (ABI {}.{})", driver.name, driver.version, driver.abi.0, driver.abi.1)));
    r.add("describes itself", describes(&driver));
    r.add("has the functions of its capabilities", capabilities(&driver));
    let Some(uri) = &opts.uri else {
        r.skip("answers on a connection", "give --uri to open a connection and exercise it");
        return r.0;
    };
    let conn = match Uri::parse(uri).map_err(|e| Error::InvalidArg(e.to_string())).and_then(|u| {
        if driver.serves(&u.scheme) {
            DriverConn::open(driver.clone(), &u)
        } else {
            Err(Error::InvalidArg(format!("{uri}: the driver serves {}", driver.schemes.join(", "))))
        }
    }) {
        Ok(c) => c,
        Err(e) => {
            r.add("opens a connection", Err(e.to_string()));
            return r.0;
        }
    };
    r.add("opens a connection", Ok(uri.clone()));
    exercise(&mut r, &conn, opts.writable);
    r.0
}

fn describes(d: &LoadedDriver) -> Result<String, String> {
    if d.schemes.is_empty() {
        return Err("it claims no URI scheme".to_string());
    }
    if d.version.is_empty() || d.description.is_empty() {
        return Err("its version or description is empty".to_string());
    }
    Ok(format!("schemes {}; {}", d.schemes.join(", "), d.description))
}

fn capabilities(d: &LoadedDriver) -> Result<String, String> {
    let present = |f: &str| d.has_function(f);
    let mut missing = Vec::new();
    for f in ["connect_list_domains", "domain_get_xml", "domain_get_state"] {
        if !present(f) {
            missing.push(format!("{f} (every driver: the host reads domains with it)"));
        }
    }
    for (bit, cap, needs) in NEEDS {
        if d.capabilities & bit != 0 {
            missing.extend(needs.iter().filter(|f| !present(f)).map(|f| format!("{f} (for {cap})")));
        }
    }
    if d.capabilities & abi::LV_CAP_READ_ONLY != 0 {
        missing.extend(CHANGES.iter().filter(|f| present(f)).map(|f| format!("no {f} (it declares read-only)")));
    }
    if missing.is_empty() {
        Ok(format!("declares {}", d.capability_names().join(", ")))
    } else {
        Err(format!("it needs: {}", missing.join("; ")))
    }
}

/// Calls a vtable function with flag bits no function takes, expecting LV_ERR_UNSUPPORTED.
fn refuses_unknown_flags(conn: &DriverConn, domain: &str) -> Result<String, String> {
    let bit = 1u32 << 31;
    let local = conn.local().expect("driver-check loads the driver here");
    let v = local.driver().vtable();
    let mut refused = Vec::new();
    let mut took = Vec::new();
    let call = |name: &str, f: &dyn Fn(*mut c_void, *mut LvCall) -> i32| {
        local.driver().invoke(name, &CallOptions::default(), |c| f(local.handle(), c))
    };
    if let Some(f) = v.connect_list_domains {
        // SAFETY: the vtable function with its ABI arguments; the handle is this connection's.
        let out = call("connect_list_domains", &|h, c| unsafe { f(h, bit, c) });
        sort(out, "connect_list_domains", &mut refused, &mut took);
    }
    for (name, f) in [("domain_get_xml", v.domain_get_xml), ("domain_get_state", v.domain_get_state)] {
        if let Some(f) = f {
            // SAFETY: as above; the domain name is borrowed for the call.
            let out = call(name, &|h, c| unsafe { f(h, LvStr::from_str(domain), bit, c) });
            sort(out, name, &mut refused, &mut took);
        }
    }
    if took.is_empty() {
        Ok(format!("{} refuse flag bit 0x80000000", refused.join(", ")))
    } else {
        Err(format!(
            "{} took flag bit 0x80000000 that no function accepts; refuse bits outside each function's LV_*_FLAGS mask with LV_ERR_UNSUPPORTED",
            took.join(", ")
        ))
    }
}

fn sort(out: crate::Result<super::CallOutput>, name: &str, refused: &mut Vec<String>, took: &mut Vec<String>) {
    match out {
        Err(e) if e.code() == ErrorCode::Unsupported => refused.push(name.to_string()),
        _ => took.push(name.to_string()),
    }
}

fn exercise(r: &mut Report, conn: &DriverConn, writable: bool) {
    let list = conn.list_domains();
    let domains = match &list {
        Ok(l) => l.clone(),
        Err(e) => {
            r.add("lists domains", Err(e.to_string()));
            return;
        }
    };
    let mut names: Vec<&str> = domains.iter().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    let unique = names.windows(2).all(|w| w[0] != w[1]) && names.iter().all(|n| !n.is_empty());
    r.add(
        "lists domains",
        if unique { Ok(format!("{} domain(s)", domains.len())) } else { Err("a name is empty or listed twice".into()) },
    );
    for d in &domains {
        r.add(&format!("reads domain '{}'", d.name), reads(conn, &d.name));
    }
    r.add(
        "says when a domain does not exist",
        match conn.domain_xml("luavirt-check-no-such-domain", false) {
            Err(e) if e.code() == ErrorCode::NoDomain => Ok("LV_ERR_NO_DOMAIN".to_string()),
            Err(e) => Err(format!("answered {} ({e}); a missing domain is LV_ERR_NO_DOMAIN", e.code().name())),
            Ok(_) => Err("returned XML for a domain that does not exist".to_string()),
        },
    );
    r.add("refuses flag bits it does not know", refuses_unknown_flags(conn, domains.first().map_or("x", |d| &d.name)));
    if !conn.facts().has_function("domain_define_xml") {
        r.skip("keeps definitions losslessly", "the driver does not define domains");
        return;
    }
    if !writable {
        r.skip("keeps definitions losslessly", "give --writable to define, redefine and undefine on this connection");
        return;
    }
    r.add("defines, keeps and undefines a domain", defines(conn));
}

fn reads(conn: &DriverConn, name: &str) -> Result<String, String> {
    let xml = conn.domain_xml(name, false).map_err(|e| format!("dumpxml: {e}"))?;
    let dom = DomainXml::parse(&xml, None).map_err(|e| format!("its XML does not parse: {e}"))?;
    if dom.name() != name {
        return Err(format!("its XML names it '{}'", dom.name()));
    }
    conn.domain_status(name).map_err(|e| format!("domstate: {e}"))?;
    if conn.has_block_info() {
        for disk in dom.disks().into_iter().filter(|d| d.source.path().is_some()) {
            let info = conn.block_info(name, &disk.target).map_err(|e| format!("disk {}: {e}", disk.target))?;
            if info.format.is_empty() {
                return Err(format!("disk {}: the block info names no format", disk.target));
            }
        }
    }
    Ok(format!("{} disk(s)", dom.disks().len()))
}

/// Defines a domain with luavirt's metadata, reads it back, redefines it, undefines it.
fn defines(conn: &DriverConn) -> Result<String, String> {
    let name = format!("luavirt-check-{}", std::process::id());
    let xml = format!(
        "<domain type='test'>\n  <name>{name}</name>\n  <uuid>5b1e2f3a-4c5d-4e6f-8a9b-0c1d2e3f4a5b</uuid>\n  <!-- kept as written -->\n  <metadata>\n    <luavirt:disksets xmlns:luavirt=\"{}\">\n      <luavirt:set name=\"selected\">\n        <luavirt:disk target=\"vda\"/>\n      </luavirt:set>\n    </luavirt:disksets>\n  </metadata>\n  <memory unit='MiB'>64</memory>\n  <devices>\n    <disk type='file' device='disk'>\n      <source file='/nonexistent/luavirt-check.qcow2'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>\n",
        luavirt_plugin_api::domain::DISKSETS_NS
    );
    let defined = conn.define_xml(&xml).map_err(|e| format!("define: {e}"))?;
    let result = (|| {
        if defined.name != name {
            return Err(format!("define answered the name '{}'", defined.name));
        }
        let back = conn.domain_xml(&name, true).map_err(|e| format!("dumpxml: {e}"))?;
        if back != xml {
            return Err(
                "dumpxml does not return the XML defined (comments, order and luavirt's metadata must be kept)"
                    .to_string(),
            );
        }
        conn.define_xml(&back).map_err(|e| format!("redefine: {e}"))?;
        if !conn.list_domains().map_err(|e| e.to_string())?.iter().any(|d| d.name == name) {
            return Err("a defined domain is not listed".to_string());
        }
        Ok(())
    })();
    let undefined = conn.undefine(&name).map_err(|e| format!("undefine: {e}"));
    result?;
    undefined?;
    if conn.list_domains().map_err(|e| e.to_string())?.iter().any(|d| d.name == name) {
        return Err("an undefined domain is still listed".to_string());
    }
    Ok("byte for byte, metadata and comments included".to_string())
}
