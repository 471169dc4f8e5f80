//! The crate's errors: what starting the server, swapping its zone and
//! building a zone can fail with.

use std::io;
use std::net::SocketAddr;

/// Why the DNS server could not start or take a zone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A listen address could not be bound (in use, not local, no permission).
    #[error("cannot bind {protocol} {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The configuration lists no address to listen on.
    #[error("no listen address configured")]
    NoListenAddress,
    /// `DnsServer::start` was called outside a tokio runtime.
    #[error("the dns server must be started inside a tokio runtime")]
    NoRuntime,
    /// A UDP worker's thread or runtime could not be made.
    #[error("cannot start a dns worker")]
    Runtime(#[source] std::io::Error),
    /// The configured cluster domain is not a valid domain name.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// A zone built for another cluster domain was handed to the server.
    #[error("zone is for {zone}, but the server serves {server}")]
    DomainMismatch {
        /// The zone's domain.
        zone: String,
        /// The server's domain.
        server: String,
    },
}

/// Why a zone could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// The cluster domain is not a valid, non-root domain name.
    #[error("invalid cluster domain {domain:?}: {reason}")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
}
