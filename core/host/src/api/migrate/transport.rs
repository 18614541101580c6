//! How a migration's memory and copied disks travel from the source to the destination.
//! On one machine, through the destination's Unix sockets. Between machines, directly over
//! TCP (the destination listens on `--listen-address`, by default the host name its URI
//! gives, on a port of the range), or with `--tunnelled` through the ssh connections: the
//! destination still listens on Unix sockets, and OpenSSH forwards them (`-L` to here from a
//! remote destination, then `-R` to a remote source).

use super::MigrateRequest;
use crate::api::Connection;
use crate::error::{Error, Result};
use crate::remote::RemoteLink;
use luavirt_plugin_api::records::{MigrateEndpoints, MigrateListen};
use serde::Serialize;
use std::path::PathBuf;
use std::rc::Rc;

/// The ports a destination listens on by default (libvirt's migration ports).
pub const DEFAULT_PORTS: (u16, u16) = (49152, 49215);

/// How the data travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Transport {
    /// Source and destination share a machine: the destination's Unix sockets.
    LocalSockets,
    /// Directly over TCP.
    Tcp {
        /// Where the destination listens.
        listen: String,
        /// Where the source connects.
        connect: String,
        /// The ports it may listen on.
        ports: (u16, u16),
    },
    /// Through the ssh connections.
    Tunnelled,
    /// Nothing travels: an offline migration (images are made at the destination).
    None,
}

/// Reads `MIN-MAX` (or one port).
pub fn parse_ports(text: &str) -> Result<(u16, u16)> {
    let bad = || Error::InvalidArg(format!("port range '{text}': write MIN-MAX, like 49152-49215"));
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b) = (a.trim().parse::<u16>().map_err(|_| bad())?, b.trim().parse::<u16>().map_err(|_| bad())?);
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

fn wildcard(address: &str) -> bool {
    matches!(address, "0.0.0.0" | "::" | "[::]" | "*")
}

/// The transport for migrating from `src` to `dest` as `req` asks.
pub(crate) fn choose(src: &Connection, dest: &Connection, req: &MigrateRequest, offline: bool) -> Result<Transport> {
    let refuse = |why: String| Err(Error::InvalidArg(why));
    if offline {
        if req.tunnelled || req.listen_address.is_some() || req.port_range.is_some() {
            return refuse(
                "An offline migration moves no memory: the destination makes the images itself, so «tunnelled», «listen_address» and «port_range» do not apply".to_string(),
            );
        }
        return Ok(Transport::None);
    }
    if req.tunnelled && (req.listen_address.is_some() || req.port_range.is_some()) {
        return refuse(
            "«tunnelled» sends the data through ssh, so «listen_address» and «port_range» do not apply".to_string(),
        );
    }
    let same_machine = src.same_machine(dest);
    if req.tunnelled {
        if same_machine {
            return refuse(format!(
                "{} and {} are on the same machine: there is nothing to tunnel; drop «tunnelled»",
                src.uri(),
                dest.uri()
            ));
        }
        return Ok(Transport::Tunnelled);
    }
    if same_machine && req.listen_address.is_none() {
        if req.port_range.is_some() {
            return refuse("«port_range» is for TCP: give «listen_address» too".to_string());
        }
        return Ok(Transport::LocalSockets);
    }
    let dest_host = dest.client.remote_link().map(|l| l.target().host.clone());
    let listen = match (&req.listen_address, &dest_host) {
        (Some(a), _) => a.clone(),
        (None, Some(h)) => h.clone(),
        (None, None) => {
            return refuse(format!(
                "The destination {} is this machine and the source {} another: give «listen_address», an address of this machine the source reaches, or «tunnelled»",
                dest.uri(),
                src.uri()
            ));
        }
    };
    let connect = match (wildcard(&listen), dest_host) {
        (false, _) => listen.clone(),
        (true, Some(h)) => h,
        (true, None) => {
            return refuse(format!(
                "The destination listens on every address ({listen}), and the source needs one to connect to: give «listen_address» an address of {}",
                dest.uri()
            ));
        }
    };
    Ok(Transport::Tcp { listen, connect, ports: req.port_range.unwrap_or(DEFAULT_PORTS) })
}

impl Transport {
    /// What prepare is told: where to listen on TCP, if it does.
    pub(crate) fn listen(&self) -> Option<MigrateListen> {
        match self {
            Transport::Tcp { listen, ports, .. } => {
                Some(MigrateListen { address: listen.clone(), port_min: ports.0, port_max: ports.1 })
            }
            _ => None,
        }
    }

    /// In words, for plans and reports.
    pub fn describe(&self) -> String {
        match self {
            Transport::LocalSockets => "the destination's Unix sockets (one machine)".to_string(),
            Transport::Tcp { listen, connect, ports } => {
                format!("TCP to {connect} (the destination listens on {listen}, ports {}-{})", ports.0, ports.1)
            }
            Transport::Tunnelled => "through ssh (Unix sockets forwarded by OpenSSH)".to_string(),
            Transport::None => "none (offline)".to_string(),
        }
    }
}

/// Socket forwards made for one migration; cancelled, and their local sockets removed, when
/// dropped.
#[derive(Default)]
pub(crate) struct Tunnel {
    forwards: Vec<(Rc<RemoteLink>, &'static str, PathBuf, PathBuf)>,
    files: Vec<PathBuf>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        for (link, kind, listen, to) in self.forwards.drain(..).rev() {
            let _ = link.ssh().cancel_forward(kind, &listen, &to);
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Where the source reaches what prepare answered: the endpoints perform is given.
pub(crate) fn reach(
    transport: &Transport,
    src: &Connection,
    dest: &Connection,
    answered: &MigrateEndpoints,
    id: &str,
) -> Result<(MigrateEndpoints, Tunnel)> {
    let mut tunnel = Tunnel::default();
    let mut out = answered.clone();
    // A marker on another machine cannot be seen from the source's: without one, a source
    // left unsure stays paused rather than run the guest twice.
    if !src.same_machine(dest) {
        out.commit_marker = None;
    }
    let endpoints = [("memory", &mut out.memory_uri), ("disks", &mut out.disk_uri)];
    match transport {
        Transport::None | Transport::LocalSockets => {}
        Transport::Tcp { connect, .. } => {
            for (what, uri) in endpoints {
                let Some(u) = uri.as_mut() else { continue };
                let Some(port) = u.strip_prefix("tcp:").and_then(|r| r.rsplit_once(':')).map(|(_, p)| p.to_string())
                else {
                    return Err(not_as_asked(dest, what, u, "a tcp: endpoint"));
                };
                *u = if connect.contains(':') {
                    format!("tcp:[{connect}]:{port}")
                } else {
                    format!("tcp:{connect}:{port}")
                };
            }
        }
        Transport::Tunnelled => {
            let short: String = id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
            let mut src_dir: Option<String> = None;
            for (what, uri) in endpoints {
                let Some(u) = uri.as_mut() else { continue };
                let Some(there) = u.strip_prefix("unix:").map(PathBuf::from) else {
                    return Err(not_as_asked(dest, what, u, "a unix: endpoint"));
                };
                let file = format!("{what}-{short}.sock");
                // To this machine: forwarded from a remote destination.
                let here = match dest.client.remote_link() {
                    Some(link) => {
                        let local = link.ssh().dir().join(&file);
                        link.ssh().forward("-L", &local, &there)?;
                        tunnel.forwards.push((link.clone(), "-L", local.clone(), there.clone()));
                        tunnel.files.push(local.clone());
                        local
                    }
                    None => there,
                };
                // To the source's machine: forwarded to a remote source.
                let at_source = match src.client.remote_link() {
                    Some(link) => {
                        let dir = match &src_dir {
                            Some(d) => d.clone(),
                            None => src_dir.insert(link.tunnel_dir()?).clone(),
                        };
                        let remote = PathBuf::from(dir).join(&file);
                        link.ssh().forward("-R", &remote, &here)?;
                        tunnel.forwards.push((link.clone(), "-R", remote.clone(), here.clone()));
                        remote
                    }
                    None => here,
                };
                *u = format!("unix:{}", at_source.display());
            }
        }
    }
    Ok((out, tunnel))
}

fn not_as_asked(dest: &Connection, what: &str, uri: &str, wanted: &str) -> Error {
    Error::Unsupported {
        driver: dest.driver().name.clone(),
        operation: format!(
            "migration between machines (asked for {wanted} for the {what}, its prepare answered {uri})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ports;

    #[test]
    fn port_ranges_read_as_written_or_are_refused() {
        assert_eq!(parse_ports("49152-49215").unwrap(), (49152, 49215));
        assert_eq!(parse_ports("5000").unwrap(), (5000, 5000));
        for bad in ["", "0-10", "10-5", "a-b", "70000"] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
    }
}
