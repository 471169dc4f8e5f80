//! The server's configuration: where it listens and how long it waits for
//! clients and backends.

use std::net::SocketAddr;
use std::time::Duration;

/// How to run the ingress server. Only the listen addresses have no
/// default; start from `IngressConfig::default()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    /// Addresses to serve plain HTTP on (HTTP/1.1, and HTTP/2 with prior
    /// knowledge). A port of 0 picks a free port
    /// ([`IngressHandle::http_addrs`] says which).
    ///
    /// [`IngressHandle::http_addrs`]: crate::IngressHandle::http_addrs
    pub http: Vec<SocketAddr>,
    /// Addresses to serve HTTPS on (TLS 1.2 and 1.3, ALPN `h2` and
    /// `http/1.1`), with the certificates of the current table.
    pub https: Vec<SocketAddr>,
    /// How long connecting to one backend endpoint may take before the
    /// next is tried.
    pub connect_timeout: Duration,
    /// How long a client may take to send a request's headers (HTTP/1),
    /// and to finish a TLS handshake.
    pub header_read_timeout: Duration,
    /// How long a backend may take to answer a request's headers once it
    /// is sent (504 after), as nginx's `proxy_read_timeout`.
    pub response_timeout: Duration,
    /// How long [`IngressHandle::shutdown`] lets requests in flight finish
    /// before it closes their connections.
    ///
    /// [`IngressHandle::shutdown`]: crate::IngressHandle::shutdown
    pub drain_timeout: Duration,
    /// How many worker threads serve (each with its own listeners,
    /// backend connections and single-threaded runtime); by default one
    /// per core, at most four.
    pub workers: usize,
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            http: Vec::new(),
            https: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
            workers: std::thread::available_parallelism().map_or(1, |cores| cores.get().min(4)),
        }
    }
}
