//! The routes that keep pod and service traffic on the node, checked
//! before anything is programmed: the pod CIDR routed to the bridge (which
//! holds the gateway address) and the service CIDR routed `local` on `lo`.
//! Without them a DNAT or a missing rule would send packets out by the
//! default route. The node runtime creates them; the proxy only checks
//! (through `driftless-routes`).

use ipnet::Ipv4Net;

use crate::config::ProxyConfig;

/// A route the proxy needs is missing, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The pod CIDR is not routed to the bridge.
    #[error("the pod CIDR {cidr} is not routed to {bridge}: refusing to program DNAT that could leave the node")]
    PodCidr {
        /// The pod CIDR.
        cidr: Ipv4Net,
        /// The bridge.
        bridge: String,
    },
    /// The service CIDR is not routed `local` on `lo`.
    #[error("the service CIDR {0} is not routed local on lo: refusing to program frontends that could leave the node")]
    ServiceCidr(Ipv4Net),
    /// The routing tables could not be read.
    #[error("cannot read routes: {0}")]
    Read(String),
}

/// Checks both routes.
pub(crate) fn verify(config: &ProxyConfig) -> Result<(), RouteError> {
    let pod = driftless_routes::routed_to(config.pod_cidr, &config.bridge).map_err(|e| RouteError::Read(e.to_string()))?;
    if !pod {
        return Err(RouteError::PodCidr { cidr: config.pod_cidr, bridge: config.bridge.clone() });
    }
    if !service_cidr_is_local(config.service_cidr)? {
        return Err(RouteError::ServiceCidr(config.service_cidr));
    }
    Ok(())
}

/// Asks the kernel over netlink, from synchronous code or inside the
/// daemon's runtime alike.
fn service_cidr_is_local(cidr: Ipv4Net) -> Result<bool, RouteError> {
    driftless_routes::local_on_lo_blocking(cidr).map_err(|e| RouteError::Read(e.to_string()))
}
