//! The server's configuration: where it listens, where it forwards, which
//! domain it owns and the TTL of its answers.

use std::net::SocketAddr;
use std::time::Duration;

use crate::zone::DEFAULT_TTL;

/// How to run the cluster DNS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// Addresses to answer on, each over UDP and TCP. A port of 0 picks a
    /// free port, the same one for UDP and TCP ([`DnsHandle::local_addrs`]
    /// says which).
    ///
    /// [`DnsHandle::local_addrs`]: crate::DnsHandle::local_addrs
    pub listen: Vec<SocketAddr>,
    /// Servers to forward names outside the cluster domain to. With none,
    /// such names are answered REFUSED.
    pub upstreams: Vec<SocketAddr>,
    /// The cluster domain, `cluster.local` by default.
    pub domain: String,
    /// The TTL of every authoritative record and of negative answers.
    pub ttl: u32,
    /// How long a forwarded query may take in all before the client is
    /// answered SERVFAIL.
    pub upstream_timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { listen: Vec::new(), upstreams: Vec::new(), domain: "cluster.local".to_owned(), ttl: DEFAULT_TTL, upstream_timeout: Duration::from_secs(2) }
    }
}
