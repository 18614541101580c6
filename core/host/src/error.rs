//! The host's errors: what failed, on which object, and what to do.

use luavirt_plugin_api::ErrorCode;
use luavirt_plugin_api::xml::XmlError;
use std::path::PathBuf;

/// An error from a host operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A driver reported an error.
    #[error("{message}")]
    Driver {
        /// The driver's code.
        code: ErrorCode,
        /// The driver's message.
        message: String,
    },
    /// The driver does not implement an operation.
    #[error("Driver '{driver}' does not support {operation}")]
    Unsupported {
        /// Driver name.
        driver: String,
        /// What was asked, in words.
        operation: String,
    },
    /// No loaded driver serves a URI's scheme.
    #[error(
        "No driver serves {uri}: no loaded driver claims the scheme '{scheme}' (loaded: {loaded}); `luavirt drivers` lists drivers and why any were refused"
    )]
    NoDriver {
        /// The URI.
        uri: String,
        /// Its scheme.
        scheme: String,
        /// Schemes that are served, comma-separated.
        loaded: String,
    },
    /// No driver loaded at all.
    #[error(
        "No driver loaded: luavirt looked in {searched}{refused}; install the drivers in PREFIX/lib/luavirt/drivers beside PREFIX/bin/luavirt (tools/install.sh does) or name their folder in LUAVIRT_DRIVER_DIR"
    )]
    NoDrivers {
        /// The folders searched.
        searched: String,
        /// Why files found were refused, if any were.
        refused: String,
    },
    /// No domain of that name.
    #[error("Domain '{name}' not found on {uri}{}", suggestion(.close))]
    NoDomain {
        /// The name asked for.
        name: String,
        /// The connection.
        uri: String,
        /// Names close to it.
        close: Vec<String>,
    },
    /// No snapshot of that name.
    #[error("Domain '{domain}' has no snapshot '{name}'{}", snapshot_suggestion(.close))]
    NoSnapshot {
        /// The domain.
        domain: String,
        /// The name asked for.
        name: String,
        /// Names close to it.
        close: Vec<String>,
    },
    /// No disk of that name in the domain.
    #[error("Domain '{domain}' has no disk '{disk}'; its disks are: {}", list_or_none(.disks))]
    NoDisk {
        /// The domain.
        domain: String,
        /// The disk asked for.
        disk: String,
        /// Its disks' targets.
        disks: Vec<String>,
    },
    /// A document is malformed or breaks a rule.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// An argument is not acceptable.
    #[error("{0}")]
    InvalidArg(String),
    /// A hook refused the operation (or failed, which refuses it too).
    #[error("{}", vetoed(.operation, .domain, .by, .reason, *.failed))]
    Vetoed {
        /// The operation, as messages name it (`snapshot`, `migration`).
        operation: String,
        /// The domain.
        domain: String,
        /// The hook: `file:line`.
        by: String,
        /// Its reason, or its error.
        reason: String,
        /// The hook failed instead of answering.
        failed: bool,
    },
    /// A remote host could not be reached, or refused the connection.
    #[error("{uri}: {message}")]
    Remote {
        /// The URI.
        uri: String,
        /// What went wrong.
        message: String,
    },
    /// The connection to a remote host was lost.
    #[error("The connection to {place} was lost: {detail}{}", lost_request(*.delivery))]
    ConnectionLost {
        /// The URI.
        uri: String,
        /// `[user@]host[:port]`.
        place: String,
        /// What happened, with what ssh said.
        detail: String,
        /// Whether the request under way can have run there.
        delivery: crate::remote::Delivery,
    },
    /// A file could not be read or written.
    #[error("Cannot {doing} {}: {source}", path.display())]
    Io {
        /// What was being done.
        doing: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn vetoed(operation: &str, domain: &str, by: &str, reason: &str, failed: bool) -> String {
    if failed {
        format!(
            "The {operation} of domain '{domain}' did not run, and nothing was changed: the policy hook at {by} failed: {reason}; fix the policy, or move it out of the policy folder"
        )
    } else {
        format!("Policy {by} refused the {operation} of domain '{domain}': {reason} (nothing was changed)")
    }
}

fn lost_request(delivery: crate::remote::Delivery) -> &'static str {
    match delivery {
        crate::remote::Delivery::NotSent => "; the request was not sent, so nothing was done there",
        crate::remote::Delivery::Unknown => "; the request was sent and may or may not have run there",
    }
}

fn suggestion(close: &[String]) -> String {
    match close {
        [] => "; «do:list --all» shows every domain".to_string(),
        [one] => format!(". Did you mean '{one}'?"),
        many => {
            format!(". Did you mean one of {}?", many.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", "))
        }
    }
}

fn snapshot_suggestion(close: &[String]) -> String {
    match close {
        [] => "; `luavirt snapshot-list DOMAIN` shows its snapshots".to_string(),
        _ => suggestion(close),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "(none)".to_string() } else { items.join(", ") }
}

impl Error {
    /// The error's code, as drivers' errors carry one.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Driver { code, .. } => *code,
            Error::Unsupported { .. } => ErrorCode::Unsupported,
            Error::NoDriver { .. } => ErrorCode::InvalidUri,
            Error::NoDrivers { .. } => ErrorCode::Unsupported,
            Error::NoDomain { .. } => ErrorCode::NoDomain,
            Error::NoDisk { .. } => ErrorCode::NoDisk,
            Error::NoSnapshot { .. } => ErrorCode::NoSnapshot,
            Error::Xml(_) => ErrorCode::Xml,
            Error::InvalidArg(_) => ErrorCode::InvalidArg,
            Error::Io { .. } | Error::Remote { .. } | Error::ConnectionLost { .. } => ErrorCode::Io,
            Error::Vetoed { .. } => ErrorCode::InvalidState,
        }
    }

    /// The short stable name of the error's kind, for `--json` output and Lua error tables:
    /// the code's name, or `vetoed` when a hook refused the operation.
    pub fn code_name(&self) -> &'static str {
        match self {
            Error::Vetoed { .. } => "vetoed",
            other => other.code().name(),
        }
    }
}

/// Result of a host operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
