//! The service proxy end to end: real backends in network namespaces on a
//! bridge of each test's own (busybox httpd and socat processes; UDP
//! backends are sockets in the namespace served by a test thread, see
//! `net::TestNet::udp_backend`), clients on the host and inside
//! namespaces, the proxy's nftables table in the kernel.
//!
//! Needs root; CI runs as root. Network rule: traffic goes only to
//! addresses a test assigned itself (its pod range 10.245.X.0/24, its
//! service range 10.98.X.0/24, both routed on this machine before anything
//! is sent) and to 127.0.0.0/8. Every test removes what it made (the
//! `TestNet` guard), even when it fails.

use std::time::Duration;

mod affinity;
mod lifecycle;
mod net;
mod refuse;
mod tcp;
mod udp;

/// How long anything may take to become ready.
const DEADLINE: Duration = Duration::from_secs(10);
