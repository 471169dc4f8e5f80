//! Ports for servers a test starts in another process (the daemon, etcd,
//! a registry, chromedriver): chosen here, bound there.
//!
//! Asking the kernel for port 0 and releasing it races with every outgoing
//! connection of the tests running alongside: the kernel hands those their
//! source ports from the same ephemeral range (`ip_local_port_range`,
//! 32768–60999 here), and CI lost a daemon to `Address already in use` that
//! way. So ports come from below that range and below the NodePort range
//! (30000–32767), where only explicit binds land, each handed out once per
//! test process, and are checked free for TCP and UDP before they are given.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The range: above the well-known and registered ports users' services
/// sit on in tests, under NodePorts and the kernel's ephemeral ports.
const FIRST: u32 = 20_000;
const COUNT: u32 = 9_000;

static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A port on every address that nothing listens on now, and that no other
/// call in this process has been given.
pub(crate) fn free_port() -> u16 {
    // Test binaries run one after another, but a second clone's suite may
    // run at once: start where the process id says, not always at FIRST.
    let _ = NEXT.compare_exchange(u32::MAX, std::process::id() % COUNT, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        let tcp = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port));
        let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT)
}
