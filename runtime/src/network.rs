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

pub use ipam::{Ipam, IpamError};
pub use netlink::{Bridge, NetError, PodInterface, delete_local_route, ensure_local_route, local_route_exists, route_exists};
