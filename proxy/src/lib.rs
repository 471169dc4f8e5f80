//! The service proxy: Kubernetes Services on the node, as nftables DNAT
//! in the kernel (kube-proxy's nftables mode is the model).
//!
//! The daemon builds a [`ServiceTable`] from Services and Endpoints and
//! hands the whole table to [`Proxy::apply`] each time (level-triggered);
//! the proxy makes its nftables table match: every frontend (ClusterIP,
//! NodePort on node and loopback addresses, LoadBalancer address) reaches
//! one of the port's ready backends, round-robin (`numgen inc`) or sticky
//! per client with `sessionAffinity: ClientIP`; a port without backends
//! refuses at once (TCP reset, ICMP port unreachable); idle UDP flows
//! time out after [`ProxyConfig::udp_idle_timeout`]. `docs/benchmarks.md`
//! says why the kernel rather than a userspace proxy: measured.
//!
//! Owns: one nftables table (`driftless` by default, family `ip`), two
//! settings of the node bridge (`forwarding`, `route_localnet`), both put
//! back on shutdown. (A pod reaching itself through a service needs its
//! bridge port in hairpin mode: the node runtime sets that as it attaches
//! the pod, as the CNI bridge plugin does.)
//!
//! **Architecture Invariant:** nothing is programmed unless the pod CIDR
//! is routed to the bridge and the service CIDR is routed `local` on
//! `lo` ([`Proxy::start`] and every [`Proxy::apply`] check), and
//! forwarding is only turned on once the table's leak guard (nothing from
//! or to those ranges leaves by another interface) is in place.
//!
//! Must not touch: routes, links, namespaces and addresses (the node
//! runtime owns them; the proxy only checks routes), other nftables tables,
//! global sysctls, the store of desired state. It is told what to serve.

mod config;
mod conntrack;
mod error;
mod fake;
mod nft;
mod proxy;
mod routes;
mod rules;
mod sysctl;
mod table;

pub use config::{ConfigError, DEFAULT_MASQUERADE_MARK, DEFAULT_TABLE, DEFAULT_UDP_IDLE_TIMEOUT, ProxyConfig};
pub use error::ProxyError;
pub use fake::{FakeProxy, ServiceProxy};
pub use nft::NftError;
pub use proxy::Proxy;
pub use routes::RouteError;
pub use sysctl::SysctlError;
pub use table::{MAX_AFFINITY, Protocol, ServicePort, ServiceTable, TableError};
