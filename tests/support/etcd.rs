//! An etcd member for a test: Debian's `etcd` (scripts/setup.sh) on two
//! free loopback ports, its data in a temporary folder, killed and removed
//! when dropped (a failing test unwinds through the drop too). Its limits
//! are raised as Driftless's store needs (one transaction per commit:
//! docs/ARCHITECTURE.md), unless started with etcd's defaults.
//!
//! Shared by the store's tests and the daemon's (`#[path]`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An etcd member for one test, killed and its data removed when dropped
/// (a failing test unwinds through the drop too).
pub(crate) struct Etcd {
    child: Child,
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

    fn start_with(extra: &[&str]) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
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

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
