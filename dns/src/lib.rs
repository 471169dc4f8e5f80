//! Cluster DNS: authoritative for the cluster domain (`cluster.local`),
//! built from Services, Endpoints and Pods; everything else is forwarded to
//! the configured upstream servers.
//!
//! Owns: the zone ([`Zone`], an immutable snapshot built by a pure function
//! of the objects, with the records of the Kubernetes DNS specification),
//! answering queries from it over UDP and TCP ([`DnsServer::start`],
//! [`DnsHandle`]), and forwarding the rest with `hickory-resolver`.
//!
//! Must not touch: the network configuration (addresses, routes, the
//! service CIDR), the object store or anything on disk. It binds the
//! sockets it is given, answers on them, and sends queries only to the
//! upstreams it is given. The daemon decides what to serve, when to swap
//! the zone ([`DnsHandle::set_zone`]) and where to listen.
//!
//! ```no_run
//! # async fn run() -> Result<(), driftless_dns::DnsError> {
//! use driftless_dns::{DnsConfig, DnsServer, Zone};
//! let config = DnsConfig {
//!     listen: vec!["10.96.0.10:53".parse().unwrap()],
//!     upstreams: vec!["192.0.2.53:53".parse().unwrap()],
//!     ..DnsConfig::default()
//! };
//! let dns = DnsServer::start(config)?;
//! dns.set_zone(Zone::build("cluster.local", &[], &[], &[])?)?;
//! // ... later, on every change of Services, Endpoints or Pods:
//! // dns.set_zone(Zone::build("cluster.local", &services, &endpoints, &pods)?)?;
//! dns.shutdown().await;
//! # Ok(()) }
//! ```

mod answers;
mod config;
mod error;
mod forward;
mod handler;
mod server;
mod udp;
mod zone;

pub use config::DnsConfig;
pub use error::{DnsError, ZoneError};
pub use server::{DnsHandle, DnsServer};
#[doc(hidden)]
pub use udp::answer_datagram;
pub use zone::{DEFAULT_TTL, Zone};
