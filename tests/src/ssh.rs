//! A private OpenSSH server for the remote tests: `/usr/sbin/sshd -D` on 127.0.0.1 and a free
//! port, with throw-away host and user keys in its own folder, run and stopped by the test
//! (no system service). Remote URIs reach it as
//! `DRIVER+ssh://USER@127.0.0.1:PORT/PATH?...&keyfile=KEY&known_hosts=FILE&command=LUAVIRT`.
//!
//! sshd runs in a mount namespace of its own where `/etc/machine-id` is another machine's:
//! what it runs is on "another machine" as luavirt tells machines apart (it then cannot see
//! the other side's commit markers, and migrations between the two travel over TCP or ssh),
//! while files stay shared, as storage shared between hosts is, but for one folder
//! ([`Sshd::there`]) that is a tmpfs of the namespace's own: files only the other machine has.

use crate::{built, set_mode};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The sshd binary.
const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd of the test's own.
pub struct Sshd {
    /// Its folder: keys, config, log.
    pub dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The user that logs in.
    pub user: String,
    /// The user's private key.
    pub key: PathBuf,
    /// A known_hosts file that knows the server's host key.
    pub known_hosts: PathBuf,
    child: Child,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).output().unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Sshd {
    /// Starts one (tools/setup.sh installs openssh-server).
    pub fn start() -> Sshd {
        assert!(Path::new(SSHD).exists(), "{SSHD} is missing; run tools/setup.sh (it installs openssh-server)");
        static N: AtomicU32 = AtomicU32::new(0);
        let dir =
            std::env::temp_dir().join(format!("lvt-sshd-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o700);
        // sshd's privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let (host_key, key) = (dir.join("host_key"), dir.join("user_key"));
        keygen(&host_key);
        keygen(&key);
        let authorized = dir.join("authorized_keys");
        std::fs::copy(dir.join("user_key.pub"), &authorized).unwrap();
        set_mode(&authorized, 0o600);
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nAllowStreamLocalForwarding yes\nAllowTcpForwarding yes\n",
                    host_key.display(),
                    dir.join("sshd.pid").display(),
                    authorized.display()
                ),
            )
            .unwrap();
            let machine_id = dir.join("machine-id");
            std::fs::write(&machine_id, format!("{:032x}\n", std::process::id() as u128 * 7919 + port as u128))
                .unwrap();
            let there = dir.join("there");
            std::fs::create_dir_all(&there).unwrap();
            let mut child = Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "mount --bind {} /etc/machine-id && mount -t tmpfs -o mode=0700 tmpfs {} && exec {SSHD} -D -e -f {}",
                    machine_id.display(),
                    there.display(),
                    config.display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let known_hosts = dir.join("known_hosts");
            std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}")).unwrap();
            // Up when it accepts connections; gone if it could not bind.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                    assert!(
                        err.contains("Address already in use"),
                        "sshd (in its own mount namespace) ended ({status}): {err}"
                    );
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Its log lines go nowhere from here on (the pipe is drained by a thread).
                    let mut stderr = child.stderr.take().unwrap();
                    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                    return Sshd { dir, port, user, key, known_hosts, child };
                }
                assert!(Instant::now() < deadline, "sshd did not accept connections on port {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("no free port for sshd after 5 tries");
    }

    /// `SCHEME+ssh://USER@127.0.0.1:PORT` + `path` (with its query, if any) + the key, the
    /// known hosts and the built luavirt as the remote command.
    pub fn uri(&self, scheme: &str, path: &str) -> String {
        self.uri_with(scheme, path, &built("luavirt"))
    }

    /// A folder whose files only the other machine (what sshd runs) sees; here it is empty.
    pub fn there(&self) -> PathBuf {
        self.dir.join("there")
    }

    /// `program`, run on the other machine (in sshd's mount namespace).
    pub fn command_there(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.child.id().to_string(), "-m", "--", program]);
        c
    }

    /// [`Sshd::uri`] with another remote command.
    pub fn uri_with(&self, scheme: &str, path: &str, command: &Path) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!(
            "{scheme}+ssh://{}@127.0.0.1:{}{path}{sep}keyfile={}&known_hosts={}&command={}",
            self.user,
            self.port,
            self.key.display(),
            self.known_hosts.display(),
            command.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
