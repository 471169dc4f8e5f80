//! The crate's errors: what starting the server can fail with. Building a
//! table never fails (what cannot be served is a warning), and neither does
//! swapping one.

use std::io;
use std::net::SocketAddr;

/// Why the ingress server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngressError {
    /// A listen address could not be bound (in use, not local, no
    /// permission).
    #[error("cannot bind {scheme} listener on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// `http` or `https`.
        scheme: &'static str,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The configuration lists no address to listen on.
    #[error("no listen address configured")]
    NoListenAddress,
    /// A worker's thread or runtime could not be made.
    #[error("cannot start an ingress worker")]
    Runtime(#[source] io::Error),
    /// rustls refused the TLS configuration.
    #[error("cannot set up tls")]
    Tls(#[source] rustls::Error),
}
