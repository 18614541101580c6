//! What a remote URI names: `SCHEME+ssh://[user@]host[:port]/path?query`. The transport's
//! parameters are libvirt's where libvirt has them (`keyfile=`, `no_verify=1`,
//! `known_hosts=`, `no_tty=1`) plus `command=`, the luavirt binary on the remote host; they
//! are taken out, and what is left is the URI the remote host opens (`SCHEME://path?query`).

use crate::error::{Error, Result};
use luavirt_plugin_api::Uri;

/// The suffix of a scheme that reaches another host.
pub const SSH_SUFFIX: &str = "+ssh";

/// libvirt's transport parameters luavirt does not have: refused, never ignored.
const NOT_HERE: &[(&str, &str)] = &[
    ("socket", "luavirt runs `luavirt serve --stdio` over ssh and has no daemon socket"),
    ("netcat", "luavirt runs `luavirt serve --stdio` (see command=), not netcat"),
    ("proxy", "luavirt runs `luavirt serve --stdio` (see command=), not a proxy"),
    ("mode", "luavirt has one remote mode: `luavirt serve --stdio`"),
    ("sshauth", "OpenSSH chooses the authentication; set it in ~/.ssh/config"),
    ("pkipath", "luavirt has no TLS transport; ssh authenticates"),
    ("name", "the remote URI is the path and query of this one"),
];

/// Where and how to reach a remote host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// The URI as given, for messages.
    pub uri: String,
    /// The user to log in as.
    pub user: Option<String>,
    /// The host.
    pub host: String,
    /// The port.
    pub port: Option<u16>,
    /// `keyfile=`: the private key (ssh -i).
    pub keyfile: Option<String>,
    /// `known_hosts=`: the known hosts file.
    pub known_hosts: Option<String>,
    /// `no_verify=1`: accept any host key.
    pub no_verify: bool,
    /// `no_tty=1`: never ask for a password or passphrase (ssh's BatchMode).
    pub no_tty: bool,
    /// `command=`: the luavirt binary on the remote host (default `luavirt`).
    pub command: String,
    /// The URI the remote host opens.
    pub remote_uri: String,
}

impl SshTarget {
    /// Whether `uri` reaches another host.
    pub fn is_remote(uri: &Uri) -> bool {
        uri.scheme.ends_with(SSH_SUFFIX)
    }

    /// Reads a remote URI.
    pub fn parse(uri: &Uri) -> Result<SshTarget> {
        let bad = |why: String| Error::InvalidArg(format!("{uri}: {why}"));
        let scheme =
            uri.scheme.strip_suffix(SSH_SUFFIX).filter(|s| !s.is_empty()).ok_or_else(|| {
                bad("the scheme of a remote URI is DRIVER+ssh, like qemu+ssh://host/session".to_string())
            })?;
        if scheme.contains('+') {
            return Err(bad(format!("'{scheme}' is not a driver's scheme; write DRIVER+ssh, like qemu+ssh")));
        }
        let (user, hostport) = match uri.host.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, uri.host.as_str()),
        };
        let (host, port) = split_port(hostport).map_err(bad)?;
        if host.is_empty() {
            return Err(bad("it names no host; write DRIVER+ssh://[USER@]HOST[:PORT]/PATH".to_string()));
        }
        if host.starts_with('-') || user.as_deref().is_some_and(|u| u.is_empty() || u.starts_with('-')) {
            return Err(bad("a host or user name cannot be empty or start with '-'".to_string()));
        }
        let mut t = SshTarget {
            uri: uri.to_string(),
            user,
            host: host.to_string(),
            port,
            keyfile: None,
            known_hosts: None,
            no_verify: false,
            no_tty: false,
            command: "luavirt".to_string(),
            remote_uri: String::new(),
        };
        let mut rest = Vec::new();
        for (k, v) in &uri.query {
            let flag = |v: &str| match v {
                "1" | "yes" | "true" => Ok(true),
                "0" | "no" | "false" | "" => Ok(false),
                other => Err(bad(format!("{k}={other}: write {k}=1 or {k}=0"))),
            };
            match k.as_str() {
                "keyfile" => t.keyfile = Some(v.clone()),
                "known_hosts" => t.known_hosts = Some(v.clone()),
                "no_verify" => t.no_verify = flag(v)?,
                "no_tty" => t.no_tty = flag(v)?,
                "command" if v.is_empty() => return Err(bad("command= names no program".to_string())),
                "command" => t.command = v.clone(),
                other => {
                    if let Some((_, why)) = NOT_HERE.iter().find(|(n, _)| *n == other) {
                        return Err(bad(format!("libvirt's {other}= has no meaning here: {why}")));
                    }
                    rest.push((k.as_str(), v.as_str()));
                }
            }
        }
        let query: Vec<String> = rest.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        t.remote_uri = format!(
            "{scheme}://{}{}{}",
            encode_path(&uri.path),
            if query.is_empty() { "" } else { "?" },
            query.join("&")
        );
        Ok(t)
    }

    /// `[user@]host[:port]`, for messages.
    pub fn place(&self) -> String {
        let user = self.user.as_deref().map(|u| format!("{u}@")).unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{user}{}{port}", self.host)
    }
}

/// `host[:port]`, `[v6]:port` or a bare v6 address.
fn split_port(hostport: &str) -> std::result::Result<(&str, Option<u16>), String> {
    let parse = |p: &str| p.parse::<u16>().map(Some).map_err(|_| format!("the port '{p}' is not a number 1-65535"));
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an IPv6 address in [ ] has no closing ]")?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, parse(p)?)),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected '{after}' after [{host}]")),
        };
    }
    match hostport.split_once(':') {
        Some((h, p)) if !p.contains(':') => Ok((h, parse(p)?)),
        _ => Ok((hostport, None)),
    }
}

/// Percent-encodes what would end a query key or value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'%' | b'&' | b'=' | b'#' | b'?' | b'+' | b' ' => out.push_str(&format!("%{b:02X}")),
            b if b < 0x20 || b == 0x7f => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

/// Percent-encodes what would end a path.
fn encode_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'%' | b'#' | b'?' | b' ' => out.push_str(&format!("%{b:02X}")),
            b if b < 0x20 || b == 0x7f => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> std::result::Result<SshTarget, String> {
        SshTarget::parse(&Uri::parse(text).unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_remote_uri_names_the_host_the_transport_and_the_uri_opened_there() {
        let t = target("qemu+ssh://root@127.0.0.1:2222/session?state=/srv/b%20c&keyfile=/k/id&known_hosts=/k/kh&no_verify=1&command=/opt/lv/luavirt").unwrap();
        assert_eq!((t.user.as_deref(), t.host.as_str(), t.port), (Some("root"), "127.0.0.1", Some(2222)));
        assert_eq!((t.keyfile.as_deref(), t.known_hosts.as_deref()), (Some("/k/id"), Some("/k/kh")));
        assert!(t.no_verify && !t.no_tty);
        assert_eq!(t.command, "/opt/lv/luavirt");
        assert_eq!(t.remote_uri, "qemu:///session?state=/srv/b%20c");
        assert_eq!(Uri::parse(&t.remote_uri).unwrap().param("state"), Some("/srv/b c"));
        assert_eq!(t.place(), "root@127.0.0.1:2222");
        let v = target("vmx+ssh://[::1]:22/srv/ds?datastore.two=/mnt/x").unwrap();
        assert_eq!((v.host.as_str(), v.port, v.command.as_str()), ("::1", Some(22), "luavirt"));
        assert_eq!(v.remote_uri, "vmx:///srv/ds?datastore.two=/mnt/x");
        assert_eq!(target("libxl+ssh://h/etc/xen").unwrap().remote_uri, "libxl:///etc/xen");
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        for (uri, why) in [
            ("qemu+ssh:///session", "names no host"),
            ("qemu+ssh://-oProxyCommand=x/session", "start with '-'"),
            ("qemu+ssh://h:99999/session", "not a number"),
            ("qemu+ssh://h/session?socket=/x", "libvirt's socket= has no meaning"),
            ("qemu+ssh://h/session?no_verify=maybe", "no_verify=1 or no_verify=0"),
            ("qemu+tls+ssh://h/session", "not a driver's scheme"),
            ("qemu+ssh://h/session?command=", "names no program"),
        ] {
            let e = target(uri).unwrap_err();
            assert!(e.contains(why), "{uri}: {e}");
        }
    }
}
