//! Ingress: an HTTP(S) reverse proxy serving `networking.k8s.io/v1`
//! Ingress objects, a library the daemon drives.
//!
//! Owns: the routing table ([`IngressTable`], an immutable snapshot built
//! by a pure function of Ingresses, Services, Endpoints and Secrets, with
//! warnings for whatever it had to skip), the HTTP and HTTPS listeners it
//! is given ([`IngressServer::start`], [`IngressHandle`]), TLS termination
//! with a certificate per SNI name, and forwarding requests to the ready
//! endpoint addresses the table names (round robin, HTTP/1.1 kept alive,
//! bodies streamed, upgrades passed through).
//!
//! Must not touch: routes, addresses, nftables or any other network
//! configuration, the object store, DNS, or anything on disk. It binds the
//! sockets it is given and connects only to the endpoint addresses the
//! table was built with. The daemon decides what to serve, when to swap
//! the table ([`IngressHandle::set_table`]) and where to listen.
//!
//! Routing follows the Ingress specification: exact hosts beat
//! `*.wildcard` hosts (one label) beat rules without a host; within a host
//! the longest matching path wins, `Exact` before `Prefix` at equal length;
//! rules of every Ingress of the class merge, the oldest Ingress winning a
//! conflict. A host whose paths do not match falls through to the
//! wildcard, then host-less rules, then the `defaultBackend`; with none of
//! them the answer is a 404. See [`IngressTable::build`] and
//! [`IngressTable::route`].
//!
//! ```no_run
//! # async fn run() -> Result<(), driftless_ingress::IngressError> {
//! use driftless_ingress::{DEFAULT_CLASS, IngressConfig, IngressServer, IngressTable};
//! let config = IngressConfig {
//!     http: vec!["0.0.0.0:80".parse().unwrap()],
//!     https: vec!["0.0.0.0:443".parse().unwrap()],
//!     ..IngressConfig::default()
//! };
//! let ingress = IngressServer::start(config)?;
//! // On every change of Ingresses, Services, Endpoints or Secrets:
//! let (table, warnings) = IngressTable::build(DEFAULT_CLASS, &[], &[], &[], &[]);
//! for warning in warnings {
//!     tracing::warn!("{warning}");
//! }
//! ingress.set_table(table);
//! // ... and at the end:
//! ingress.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
mod error;
mod proxy;
mod server;
mod table;
mod tls;

pub use config::IngressConfig;
pub use error::IngressError;
pub use server::{IngressHandle, IngressServer};
pub use table::{Backend, BackendPort, DEFAULT_CLASS, IngressTable, PathMatch, Route};
