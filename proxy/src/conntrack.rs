//! Forgetting UDP flows that NAT decided wrongly, as kube-proxy does.
//!
//! NAT rules see only a flow's first packet; conntrack applies the same
//! decision to every later one. A UDP client that sent to a service
//! address before the service had a rule (its datagrams went to the host
//! and found nothing) keeps that un-NATed flow for as long as it keeps
//! sending. So after an apply the proxy deletes the flows to the
//! frontends of every UDP port that had no backends before.
//!
//! Unlike kube-proxy, flows to a backend a port no longer has are left
//! alone: like TCP connections, a busy flow keeps its backend while it
//! lives, and an idle one expires after the proxy's UDP timeout
//! (docs/ARCHITECTURE.md, where we differ).
//!
//! TCP needs none of this: a new connection is a new flow.
//! Deletion goes through the `conntrack` tool (conntrack-tools), as
//! rules go through `nft`; a missing tool is logged, not an error, since
//! only those stale flows suffer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use tracing::{debug, warn};

use crate::table::{Protocol, ServicePort};

/// What to forget after a table replaced `before`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Stale {
    /// Flows whose original destination is one of these.
    pub(crate) to_frontends: Vec<SocketAddr>,
}

/// The UDP ports' backends, by port name: what the next apply compares.
pub(crate) fn udp_backends(ports: &[ServicePort]) -> HashMap<String, Vec<SocketAddr>> {
    ports.iter().filter(|p| p.protocol == Protocol::Udp).map(|p| (p.name.clone(), p.backends.clone())).collect()
}

/// The flows that `ports` make stale, given the backends before.
pub(crate) fn stale(before: &HashMap<String, Vec<SocketAddr>>, ports: &[ServicePort]) -> Stale {
    let mut out = Stale::default();
    for port in ports.iter().filter(|p| p.protocol == Protocol::Udp) {
        let old = before.get(&port.name).map(Vec::as_slice).unwrap_or(&[]);
        if old.is_empty() && !port.backends.is_empty() {
            out.to_frontends.extend(&port.frontends);
        }
    }
    out.to_frontends.sort();
    out.to_frontends.dedup();
    out
}

/// Deletes the stale flows.
pub(crate) fn forget(stale: &Stale) {
    for frontend in &stale.to_frontends {
        delete(&["--orig-dst", &frontend.ip().to_string(), "--dport", &frontend.port().to_string()]);
    }
}

fn delete(filter: &[&str]) {
    // Exit status 1 with "0 flow entries" is the common case: nothing
    // was stale.
    let out = Command::new("conntrack").args(["-D", "-p", "udp"]).args(filter).stdin(Stdio::null()).output();
    match out {
        Ok(out) => debug!(?filter, result = %String::from_utf8_lossy(&out.stderr).trim(), "stale UDP flows deleted"),
        Err(error) => warn!(%error, ?filter, "cannot run conntrack to delete stale UDP flows (install conntrack-tools)"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn port(name: &str, protocol: Protocol, frontends: &[&str], backends: &[&str]) -> ServicePort {
        ServicePort {
            name: name.to_owned(),
            protocol,
            frontends: frontends.iter().map(|a| a.parse().unwrap()).collect(),
            backends: backends.iter().map(|a| a.parse().unwrap()).collect(),
            session_affinity: None::<Duration>,
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_udp_port_gaining_its_first_backend_forgets_flows_to_its_frontends() {
        let before = udp_backends(&[port("dns", Protocol::Udp, &["10.96.0.10:53"], &[])]);
        let now = [port("dns", Protocol::Udp, &["10.96.0.10:53", "127.0.0.1:30053"], &["10.244.0.5:53"])];
        assert_eq!(stale(&before, &now), Stale { to_frontends: addrs(&["10.96.0.10:53", "127.0.0.1:30053"]) });
        // A port that is new counts as having had none.
        assert_eq!(stale(&HashMap::new(), &now).to_frontends.len(), 2);
    }

    #[test]
    fn ports_that_had_backends_and_tcp_ports_forget_nothing() {
        let before = udp_backends(&[
            port("dns", Protocol::Udp, &["10.96.0.10:53"], &["10.244.0.5:53", "10.244.0.6:53"]),
            port("web", Protocol::Tcp, &["10.96.0.12:80"], &[]),
        ]);
        let now = [port("dns", Protocol::Udp, &["10.96.0.10:53"], &["10.244.0.6:53"]), port("web", Protocol::Tcp, &["10.96.0.12:80"], &["10.244.0.8:80"])];
        assert_eq!(stale(&before, &now), Stale::default());
    }
}
