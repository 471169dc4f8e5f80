//! How the proxy is set up on a node: its address ranges, the bridge pods
//! sit on, and the names and timeouts of what it installs.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;

/// The default nftables table, one per node.
pub const DEFAULT_TABLE: &str = "driftless";

/// How long an idle UDP flow keeps its backend: conntrack's own default
/// for unreplied UDP, applied to replied ("stream") flows too, so a client
/// that goes quiet is balanced again after at most this long.
pub const DEFAULT_UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The packet mark bit that asks for masquerading, kube-proxy's.
pub const DEFAULT_MASQUERADE_MARK: u32 = 0x4000;

/// The proxy's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Service (ClusterIP) addresses. Must be routed `local` on `lo`.
    pub service_cidr: Ipv4Net,
    /// Pod addresses. Must be routed to `bridge`, which holds the gateway.
    pub pod_cidr: Ipv4Net,
    /// Every node's pod addresses (the cluster CIDR, holding `pod_cidr`),
    /// when pods of other nodes are routed to theirs: backends may be
    /// anywhere in it, and pods may send to it by other links than the
    /// bridge. None: this node's pods are all there is.
    pub cluster_cidr: Option<Ipv4Net>,
    /// The node bridge pods attach to.
    pub bridge: String,
    /// The node's own addresses that may carry NodePorts besides loopback
    /// (the bridge gateway, so pods reach `nodeIP:nodePort`).
    pub node_addresses: Vec<Ipv4Addr>,
    /// The nftables table (family `ip`) the proxy owns, wholly.
    pub table: String,
    /// Idle timeout of UDP flows through a service.
    pub udp_idle_timeout: Duration,
    /// The mark bit used between DNAT and masquerade.
    pub masquerade_mark: u32,
    /// The `nft` program.
    pub nft: PathBuf,
}

impl ProxyConfig {
    /// A configuration with the defaults: table `driftless`, UDP flows idle
    /// out after 30 s, mark 0x4000, `nft` from `PATH`, no node addresses
    /// but loopback.
    pub fn new(service_cidr: Ipv4Net, pod_cidr: Ipv4Net, bridge: impl Into<String>) -> ProxyConfig {
        ProxyConfig {
            service_cidr: service_cidr.trunc(),
            pod_cidr: pod_cidr.trunc(),
            cluster_cidr: None,
            bridge: bridge.into(),
            node_addresses: Vec::new(),
            table: DEFAULT_TABLE.to_owned(),
            udp_idle_timeout: DEFAULT_UDP_IDLE_TIMEOUT,
            masquerade_mark: DEFAULT_MASQUERADE_MARK,
            nft: PathBuf::from("nft"),
        }
    }

    /// Where backends may be: the cluster CIDR, or this node's pods.
    pub fn pods(&self) -> Ipv4Net {
        self.cluster_cidr.unwrap_or(self.pod_cidr)
    }

    /// Checks what can be checked without the kernel.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let name_ok = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !name_ok(&self.table, 64) {
            return Err(ConfigError::TableName(self.table.clone()));
        }
        // IFNAMSIZ is 16 with the terminating NUL.
        if self.bridge.is_empty() || self.bridge.len() > 15 || self.bridge.contains(['/', ' ', '"']) {
            return Err(ConfigError::BridgeName(self.bridge.clone()));
        }
        if self.service_cidr.contains(&self.pod_cidr.network()) || self.pod_cidr.contains(&self.service_cidr.network()) {
            return Err(ConfigError::Overlap { service_cidr: self.service_cidr, pod_cidr: self.pod_cidr });
        }
        let secs = self.udp_idle_timeout.as_secs();
        if !(1..=u64::from(u32::MAX)).contains(&secs) {
            return Err(ConfigError::UdpTimeout(self.udp_idle_timeout));
        }
        if let Some(cluster) = self.cluster_cidr
            && (!cluster.contains(&self.pod_cidr) || cluster.contains(&self.service_cidr.network()) || self.service_cidr.contains(&cluster.network()))
        {
            return Err(ConfigError::Cluster { cluster_cidr: cluster, pod_cidr: self.pod_cidr, service_cidr: self.service_cidr });
        }
        if self.masquerade_mark.count_ones() != 1 {
            return Err(ConfigError::Mark(self.masquerade_mark));
        }
        Ok(())
    }
}

/// A configuration the proxy cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The table name is not a plain identifier.
    #[error("nftables table name {0:?} must be a letter then letters, digits, '-' or '_' (at most 64)")]
    TableName(String),
    /// Not an interface name.
    #[error("{0:?} is not an interface name")]
    BridgeName(String),
    /// The two ranges overlap, so a pod address could be taken for a service.
    #[error("the service CIDR {service_cidr} and the pod CIDR {pod_cidr} overlap")]
    Overlap {
        /// The service CIDR.
        service_cidr: Ipv4Net,
        /// The pod CIDR.
        pod_cidr: Ipv4Net,
    },
    /// Conntrack counts timeouts in whole seconds, at least one.
    #[error("the UDP idle timeout {0:?} must be at least 1 s")]
    UdpTimeout(Duration),
    /// The cluster CIDR does not hold the pod CIDR, or overlaps the
    /// service CIDR.
    #[error("the cluster CIDR {cluster_cidr} must hold the pod CIDR {pod_cidr} and not overlap the service CIDR {service_cidr}")]
    Cluster {
        /// The cluster CIDR.
        cluster_cidr: Ipv4Net,
        /// The pod CIDR.
        pod_cidr: Ipv4Net,
        /// The service CIDR.
        service_cidr: Ipv4Net,
    },
    /// The mark must be one bit, so it can be set and cleared alone.
    #[error("the masquerade mark {0:#x} must be a single bit")]
    Mark(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProxyConfig {
        ProxyConfig::new("10.98.0.0/16".parse().unwrap(), "10.245.0.0/24".parse().unwrap(), "dlp0")
    }

    #[test]
    fn defaults_pass_and_mistakes_are_named() {
        assert!(config().check().is_ok());
        let overlap = ProxyConfig { pod_cidr: "10.98.1.0/24".parse().unwrap(), ..config() };
        assert!(matches!(overlap.check(), Err(ConfigError::Overlap { .. })));
        let table = ProxyConfig { table: "bad name".into(), ..config() };
        assert!(matches!(table.check(), Err(ConfigError::TableName(_))));
        let bridge = ProxyConfig { bridge: "a-very-long-bridge-name".into(), ..config() };
        assert!(matches!(bridge.check(), Err(ConfigError::BridgeName(_))));
        let udp = ProxyConfig { udp_idle_timeout: Duration::from_millis(10), ..config() };
        assert!(matches!(udp.check(), Err(ConfigError::UdpTimeout(_))));
        let mark = ProxyConfig { masquerade_mark: 0x3, ..config() };
        assert!(matches!(mark.check(), Err(ConfigError::Mark(_))));
    }
}
