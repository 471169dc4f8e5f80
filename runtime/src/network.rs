//! Pod networking: a node bridge with the pod CIDR, one veth pair per pod,
//! and addresses that are never handed out twice.
//!
//! **Network safety.** The pod CIDR is the bridge's own subnet, so the
//! kernel routes it to the bridge the moment the gateway address is set:
//! a packet for a pod address can never follow the default route off the
//! machine. [`Bridge::ensure`] does this before any pod gets an address.
//! The service CIDR gets a `local` route on `lo` ([`ensure_local_route`]),
//! so a packet for a service address is the host's own and never leaves.

mod ipam;
mod netlink;
pub mod peers;

pub use ipam::{Ipam, IpamError};
pub use netlink::{Bridge, NetError, PodInterface, delete_local_route, ensure_local_route, local_route_exists, route_exists};

/// Connects to `port` on the loopback of the network namespace at `netns`.
/// A socket belongs to the namespace it is created in, so a short-lived
/// thread enters the namespace (which changes only that thread), connects,
/// and hands the socket back; the connection stays in the pod.
pub fn connect_inside(netns: &std::path::Path, port: u16, timeout: std::time::Duration) -> std::io::Result<std::net::TcpStream> {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        std::net::TcpStream::connect_timeout(&(std::net::Ipv4Addr::LOCALHOST, port).into(), timeout)
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the connecting thread panicked")))
}
