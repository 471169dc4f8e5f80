//! The service table: what the control plane asks the proxy to serve, and
//! the checks a table must pass before any of it reaches the kernel.
//!
//! The table is level-triggered: each [`crate::Proxy::apply`] hands over
//! every service port, and the proxy makes the kernel match it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use ipnet::Ipv4Net;

/// Every service port the node serves, with its ready endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceTable {
    /// One entry per Service port (and protocol).
    pub ports: Vec<ServicePort>,
    /// The addresses of the cluster's other nodes, which this node's pods
    /// may answer (a NodePort's masqueraded client, a node connecting to
    /// a pod) when the cluster spans nodes (`ProxyConfig::cluster_cidr`).
    pub peers: Vec<Ipv4Addr>,
}

/// One port of one Service: where clients reach it and where it sends them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// `ns/svc:port-name`, for logs and rule comments. Together with the
    /// protocol it names the port's rules, so it must be unique.
    pub name: String,
    /// The transport protocol of every frontend and backend.
    pub protocol: Protocol,
    /// Where clients connect: `ClusterIP:port`, node addresses at the
    /// `nodePort` (127.0.0.1 included), LoadBalancer `address:port`.
    pub frontends: Vec<SocketAddr>,
    /// Ready endpoints (`podIP:targetPort`), possibly none: then every
    /// frontend refuses at once.
    pub backends: Vec<SocketAddr>,
    /// `sessionAffinity: ClientIP` with its `timeoutSeconds`.
    pub session_affinity: Option<Duration>,
}

/// The transport protocol of a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The name nftables and Kubernetes use, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kubernetes' bound on `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const MAX_AFFINITY: Duration = Duration::from_secs(86_400);

/// Why a service table was refused. Nothing of a refused table is applied.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A frontend the node could not own: outside the service CIDR and
    /// neither a node address nor loopback. Programming it would capture
    /// (or leak) traffic for somebody else's address.
    #[error("{port}: frontend {frontend} is outside the service CIDR {service_cidr} and is not a node or loopback address")]
    ForeignFrontend {
        /// The service port.
        port: String,
        /// The frontend.
        frontend: SocketAddr,
        /// The proxy's service CIDR.
        service_cidr: Ipv4Net,
    },
    /// A backend outside the pod CIDR: traffic to it would leave the node.
    #[error("{port}: backend {backend} is outside the pod CIDR {pod_cidr}")]
    ForeignBackend {
        /// The service port.
        port: String,
        /// The backend.
        backend: SocketAddr,
        /// The proxy's pod CIDR.
        pod_cidr: Ipv4Net,
    },
    /// An IPv6 address: the node network is IPv4 only.
    #[error("{port}: {addr} is IPv6; the node network is IPv4 only")]
    Ipv6 {
        /// The service port.
        port: String,
        /// The address.
        addr: SocketAddr,
    },
    /// Port 0 cannot be served or reached.
    #[error("{port}: {addr} has port 0")]
    PortZero {
        /// The service port.
        port: String,
        /// The address.
        addr: SocketAddr,
    },
    /// Two service ports claim the same frontend and protocol.
    #[error("{frontend}/{protocol} is a frontend of both {first} and {second}")]
    DuplicateFrontend {
        /// The frontend.
        frontend: SocketAddr,
        /// Its protocol.
        protocol: Protocol,
        /// The first service port claiming it.
        first: String,
        /// The second.
        second: String,
    },
    /// Two entries with the same name and protocol.
    #[error("{name}/{protocol} appears twice in the table")]
    DuplicateName {
        /// The name.
        name: String,
        /// The protocol.
        protocol: Protocol,
    },
    /// An affinity timeout Kubernetes would not accept.
    #[error("{port}: session affinity timeout {timeout:?} is not between 1 s and 86400 s")]
    AffinityTimeout {
        /// The service port.
        port: String,
        /// The timeout.
        timeout: Duration,
    },
}

/// A service port reduced to what the rules need, in IPv4 terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckedPort {
    pub(crate) name: String,
    pub(crate) protocol: Protocol,
    pub(crate) frontends: Vec<SocketAddrV4>,
    pub(crate) backends: Vec<SocketAddrV4>,
    /// Whole seconds, as nftables set timeouts count them.
    pub(crate) affinity_secs: Option<u32>,
}

/// The addresses a table is checked against.
#[derive(Clone, Debug)]
pub(crate) struct Bounds<'a> {
    pub(crate) service_cidr: Ipv4Net,
    pub(crate) pod_cidr: Ipv4Net,
    pub(crate) node_addresses: &'a [Ipv4Addr],
}

impl Bounds<'_> {
    fn frontend_allowed(&self, ip: Ipv4Addr) -> bool {
        self.service_cidr.contains(&ip) || ip.is_loopback() || self.node_addresses.contains(&ip)
    }
}

fn v4(port: &str, addr: SocketAddr) -> Result<SocketAddrV4, TableError> {
    let addr4 = match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => return Err(TableError::Ipv6 { port: port.to_owned(), addr }),
    };
    if addr4.port() == 0 {
        return Err(TableError::PortZero { port: port.to_owned(), addr });
    }
    Ok(addr4)
}

/// Checks a whole table; the first problem refuses it. Duplicate frontends
/// or backends within one port are merged (Endpoints can list an address
/// once per subset).
pub(crate) fn check(table: &ServiceTable, bounds: &Bounds<'_>) -> Result<Vec<CheckedPort>, TableError> {
    let mut owners: BTreeMap<(SocketAddrV4, Protocol), &str> = BTreeMap::new();
    let mut names: BTreeMap<(&str, Protocol), ()> = BTreeMap::new();
    let mut checked = Vec::with_capacity(table.ports.len());
    for port in &table.ports {
        let name = port.name.as_str();
        if names.insert((name, port.protocol), ()).is_some() {
            return Err(TableError::DuplicateName { name: name.to_owned(), protocol: port.protocol });
        }
        let mut frontends = Vec::new();
        for &frontend in &port.frontends {
            let addr = v4(name, frontend)?;
            if !bounds.frontend_allowed(*addr.ip()) {
                return Err(TableError::ForeignFrontend { port: name.to_owned(), frontend, service_cidr: bounds.service_cidr });
            }
            match owners.insert((addr, port.protocol), name) {
                Some(first) if first != name => {
                    return Err(TableError::DuplicateFrontend { frontend, protocol: port.protocol, first: first.to_owned(), second: name.to_owned() });
                }
                Some(_) => {}
                None => frontends.push(addr),
            }
        }
        let mut backends = Vec::new();
        for &backend in &port.backends {
            let addr = v4(name, backend)?;
            if !bounds.pod_cidr.contains(addr.ip()) || *addr.ip() == bounds.pod_cidr.network() || *addr.ip() == bounds.pod_cidr.broadcast() {
                return Err(TableError::ForeignBackend { port: name.to_owned(), backend, pod_cidr: bounds.pod_cidr });
            }
            if !backends.contains(&addr) {
                backends.push(addr);
            }
        }
        let affinity_secs = match port.session_affinity {
            None => None,
            Some(timeout) if timeout >= Duration::from_secs(1) && timeout <= MAX_AFFINITY => Some(timeout.as_secs() as u32),
            Some(timeout) => return Err(TableError::AffinityTimeout { port: name.to_owned(), timeout }),
        };
        checked.push(CheckedPort { name: name.to_owned(), protocol: port.protocol, frontends, backends, affinity_secs });
    }
    Ok(checked)
}

/// The peers that are node addresses: none inside the pod or service
/// ranges, nor loopback (a Node claiming one is left out, and logged).
pub(crate) fn peers(table: &ServiceTable, bounds: &Bounds<'_>) -> Vec<Ipv4Addr> {
    let mut peers = Vec::new();
    for &peer in &table.peers {
        if bounds.pod_cidr.contains(&peer) || bounds.service_cidr.contains(&peer) || peer.is_loopback() || peer.is_unspecified() {
            tracing::warn!(%peer, "a node's address is a pod, service or loopback address; pods may not answer it");
        } else if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    peers
}

#[cfg(test)]
mod tests;
