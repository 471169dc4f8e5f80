//! The node half of a daemon: the runtime (bridge, routes, containers),
//! the kubelet running the pods bound to this node, their status reports,
//! the service network (cluster DNS, service proxy, Ingress) and the
//! node's heartbeat. `driftless up` runs it beside the control plane on
//! the store itself; `driftless agent` runs it alone, on a
//! `driftless_api::RemoteStore` of the control plane's API. Both run this
//! one function, so a node behaves the same wherever its control plane is.
//!
//! Must not touch: the controllers, the sync loop, the API: the control
//! plane's, whoever runs it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use driftless_controllers::Context;
use driftless_controllers::kubelet::{Kubelet, StoreResolve};
use driftless_controllers::node::{NodeInfo, heartbeat, register};
use driftless_controllers::runner::{self, RunOptions};
use driftless_nodeapi::SharedRuntime;
use driftless_runtime::node::Node;
use driftless_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{DaemonConfig, daemon_error, network};
use crate::CommandError;

/// A running node: dropped off the async runtime (it owns one for
/// netlink), which leaves its pods running for the next run to adopt.
pub(crate) struct RunningNode {
    /// The runtime (the node itself).
    pub(crate) runtime: SharedRuntime,
    /// Held so it goes with the node, off the runtime.
    _kubelet: Arc<Kubelet>,
}

/// Sets up the node and spawns its tasks on `tasks`, until `cancel`.
/// `ctx.store` must hold the pods bound to this node already (a remote
/// store must be synced): pods the runtime has and the store does not are
/// stopped as orphans.
/// Where the node serves its pods' streams to the control plane, when
/// over the network (an agent's): the port, and the PEM of the CA its
/// serving certificate chains to, both published on its Node.
pub(crate) struct Streams {
    pub(crate) port: u16,
    pub(crate) ca_pem: String,
}

pub(crate) async fn start(
    config: &DaemonConfig,
    ctx: &Context,
    tasks: &mut JoinSet<()>,
    cancel: &CancellationToken,
    streams: Option<Streams>,
) -> Result<RunningNode, CommandError> {
    let node_config = config.node_config()?;
    tracing::info!(bridge = %node_config.bridge, pod_cidr = %node_config.pod_cidr, service_cidr = ?node_config.service_cidr, "setting up the node");
    // Node::new talks netlink on a runtime of its own: not on ours.
    let node = tokio::task::spawn_blocking(move || {
        // The pods' volatile state on a tmpfs of its own (why: the
        // runtime's `volatile`); where none can be mounted, on disk.
        if let Err(error) = driftless_runtime::volatile::mount(&node_config.run_dir) {
            tracing::warn!(%error, "keeping the pods' volatile state on disk");
        }
        Node::new(node_config)
    })
    .await
    .map_err(daemon_error)?
    .map_err(daemon_error)?;
    let node = Arc::new(node);
    let routes: Arc<dyn super::peers::PeerRoutes> = node.clone();
    match run(config, ctx, tasks, cancel, (node.clone(), routes), streams).await {
        Ok(kubelet) => Ok(RunningNode { runtime: node, _kubelet: kubelet }),
        Err(error) => {
            // The node owns a runtime for netlink: not dropped on ours.
            let _ = tokio::task::spawn_blocking(move || drop(node)).await;
            Err(error)
        }
    }
}

async fn run(
    config: &DaemonConfig,
    ctx: &Context,
    tasks: &mut JoinSet<()>,
    cancel: &CancellationToken,
    (shared, routes): (SharedRuntime, Arc<dyn super::peers::PeerRoutes>),
    streams: Option<Streams>,
) -> Result<Arc<Kubelet>, CommandError> {
    let host_ip = config.host_ip()?;
    let mut info = NodeInfo::of_this_machine(&config.node_name, &host_ip, &config.pod_cidr);
    if let Some(streams) = streams {
        info.streams_port = Some(streams.port);
        info.annotations.insert(driftless_api::SERVING_CA.to_owned(), streams.ca_pem);
    }
    let registering = (ctx.clone(), info.clone());
    tokio::task::spawn_blocking(move || register(&registering.0, &registering.1)).await.map_err(daemon_error)?.map_err(daemon_error)?;

    let image_store = driftless_image::ImageStore::open(config.node_dir()).map_err(CommandError::Image)?;
    let images = Arc::new(driftless_runtime::images::NodeImages::new(
        image_store,
        driftless_image::PullOptions { insecure_registries: config.insecure_registries.clone(), credentials: None },
    ));
    let resolve = Arc::new(StoreResolve::new(ctx.store.clone(), images));
    let network_applied = Arc::new(AtomicU64::new(0));
    let kubelet = Kubelet::new(ctx.clone(), &config.node_name, &host_ip, shared.clone(), resolve, Some(network_applied.clone()));
    match kubelet.remove_orphans().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "stopped pods the store no longer has"),
        Err(error) => tracing::warn!(%error, "could not look for orphaned pods"),
    }
    // Everything that may fail before any task holds the node.
    let network = start_network(config, ctx.store.clone(), network_applied).await?;
    tasks.spawn(runner::run(kubelet.clone(), ctx.store.clone(), RunOptions { concurrency: 16, ..RunOptions::default() }, cancel.clone()));
    tasks.spawn(network.run(cancel.clone()));
    tasks.spawn(kubelet.clone().report_statuses(cancel.clone()));
    tasks.spawn(heartbeat(ctx.clone(), info, cancel.clone()));
    if config.cluster_cidr.is_some() {
        tasks.spawn(super::peers::run(ctx.store.clone(), routes, config.node_name.clone(), cancel.clone()));
    }
    Ok(kubelet)
}

/// Starts the cluster DNS on its service address and the service proxy.
/// The node has routed the service CIDR `local` on `lo` by now, so the
/// DNS address can be bound and no service address can leave the machine.
async fn start_network(config: &DaemonConfig, store: Arc<dyn Store>, applied: Arc<AtomicU64>) -> Result<network::Network, CommandError> {
    let dns_address = config.dns_address()?;
    let dns = driftless_dns::DnsServer::start(driftless_dns::DnsConfig {
        listen: vec![std::net::SocketAddr::new(dns_address.into(), 53)],
        upstreams: config.dns_upstreams.clone(),
        domain: config.cluster_domain.clone(),
        ..Default::default()
    })
    .map_err(|e| CommandError::Usage(format!("cluster DNS on {dns_address}:53: {e}")))?;
    let pod_cidr: ipnet::Ipv4Net = config.pod_cidr.parse().map_err(daemon_error)?;
    let service_cidr: ipnet::Ipv4Net = config.service_cidr.parse().map_err(daemon_error)?;
    let gateway: std::net::Ipv4Addr = config.node_address()?.parse().map_err(daemon_error)?;
    // NodePorts answer on the bridge's address, and on the node's own.
    let mut node_addresses = vec![gateway];
    if let Some(ip) = &config.node_ip {
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|e| CommandError::Usage(format!("--node-ip {ip}: {e}")))?;
        if ip != gateway {
            node_addresses.push(ip);
        }
    }
    let cluster_cidr: Option<ipnet::Ipv4Net> = match &config.cluster_cidr {
        Some(cidr) => Some(cidr.parse().map_err(|e| CommandError::Usage(format!("--cluster-cidr {cidr}: {e}")))?),
        None => None,
    };
    let mut proxy_config = driftless_proxy::ProxyConfig::new(service_cidr, pod_cidr, config.bridge.clone());
    proxy_config.cluster_cidr = cluster_cidr;
    proxy_config.node_addresses = node_addresses.clone();
    proxy_config.table = config.nft_table.clone();
    let proxy = tokio::task::spawn_blocking(move || driftless_proxy::Proxy::start(proxy_config))
        .await
        .map_err(daemon_error)?
        .map_err(|e| CommandError::Usage(format!("service proxy: {e}")))?;
    // A node without its ports 80/443 still runs everything else.
    let ingress = if config.ingress_http.is_empty() && config.ingress_https.is_empty() {
        None
    } else {
        let ingress_config = driftless_ingress::IngressConfig { http: config.ingress_http.clone(), https: config.ingress_https.clone(), ..Default::default() };
        match driftless_ingress::IngressServer::start(ingress_config) {
            Ok(handle) => Some((handle, config.ingress_class.clone())),
            Err(error) => {
                tracing::error!(%error, "the Ingress cannot listen; Ingresses are not served");
                None
            }
        }
    };
    tracing::info!(dns = %dns_address, upstreams = ?config.dns_upstreams, table = %config.nft_table, ingress = ?ingress.as_ref().map(|(h, _)| h.local_addrs()), "service networking up");
    Ok(network::Network {
        store,
        dns,
        proxy: Box::new(proxy),
        ingress,
        domain: config.cluster_domain.clone(),
        addresses: network::Addresses { pod_cidr: cluster_cidr.unwrap_or(pod_cidr), node: node_addresses },
        applied,
    })
}
