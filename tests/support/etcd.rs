//! An etcd member for a test: Debian's `etcd` (scripts/setup.sh) on two
//! free loopback ports, its data in a temporary folder, killed and removed
//! when dropped (a failing test unwinds through the drop too). Its limits
//! are raised as Driftless's store needs (one transaction per commit:
//! docs/ARCHITECTURE.md), unless started with etcd's defaults.
//!
//! Shared by the store's tests and the daemon's (`#[path]`).

use std::process::{Child, Command, Stdio};

pub(crate) use super::ports::free_port;
use std::time::{Duration, Instant};

/// An etcd member for one test, killed and its data removed when dropped
/// (a failing test unwinds through the drop too).
pub(crate) struct Etcd {
    child: Child,
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// A member with the limits Driftless needs.
    pub(crate) fn start() -> Etcd {
        Etcd::start_with(&["--max-txn-ops", "10000", "--max-request-bytes", "33554432"])
    }

    /// A member with etcd's default limits.
    pub(crate) fn with_defaults() -> Etcd {
        Etcd::start_with(&[])
    }

    /// A member serving TLS with `cert` and `key`, requiring client
    /// certificates signed by `ca`.
    pub(crate) fn start_tls(ca: &str, cert: &str, key: &str) -> Etcd {
        Etcd::start_with(&["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth"])
    }

    fn start_with(extra: &[&str]) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let scheme = if extra.contains(&"--cert-file") { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut command = Command::new("etcd");
        command
            .args(["--name", "s1", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("s1={peer_url}"), "--initial-cluster-state", "new"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("etcd (Debian's etcd-server, from scripts/setup.sh)");
        let etcd = Etcd { child, url: format!("etcd://127.0.0.1:{client}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        etcd
    }
}

impl Etcd {
    /// The member's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 3-member etcd cluster on loopback, each member killable on its own.
pub(crate) struct EtcdCluster {
    members: Vec<Option<Child>>,
    clients: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Three members, with the limits Driftless needs.
    pub(crate) fn start() -> EtcdCluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports.iter().enumerate().map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}")).collect();
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let (client_url, peer_url) = (format!("http://127.0.0.1:{client}"), format!("http://127.0.0.1:{peer}"));
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}"), "--data-dir"])
                .arg(dir.path().join(format!("m{i}")))
                .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial.join(","), "--initial-cluster-state", "new", "--initial-cluster-token", "driftless-test"])
                .args(["--max-txn-ops", "10000", "--max-request-bytes", "33554432"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("etcd (Debian's etcd-server, from scripts/setup.sh)");
            members.push(Some(child));
        }
        let clients: Vec<u16> = ports.iter().map(|(c, _)| *c).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in &clients {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(Instant::now() < deadline, "the etcd members did not listen within 30 s");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        EtcdCluster { members, clients, _dir: dir }
    }

    /// `etcd://` naming every member.
    pub(crate) fn url(&self) -> String {
        format!("etcd://{}", self.clients.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(","))
    }

    /// Kills member `i` (SIGKILL).
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
