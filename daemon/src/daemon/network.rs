//! Service networking, driven from the store: on every change to
//! Services, Endpoints or Pods, the cluster DNS gets a new zone and the
//! service proxy a new table, both rebuilt whole from the objects
//! (level-triggered; a missed change is made good by the next one, and a
//! periodic rebuild covers the rest).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use driftless_dns::{DnsHandle, Zone};
use driftless_ingress::{IngressHandle, IngressTable};
use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Pod, Secret, Service};
use driftless_model::k8s_openapi::api::networking::v1::Ingress;
use driftless_model::{Kind, KindOf};
use driftless_proxy::{Protocol, ServicePort, ServiceProxy, ServiceTable};
use driftless_store::{Store, StoreExt};
use ipnet::Ipv4Net;
use tokio_util::sync::CancellationToken;

/// How often everything is rebuilt even without a change.
const RESYNC: Duration = Duration::from_secs(30);
/// How long a change waits for the ones that usually follow it (a pod's
/// status, then its Endpoints) before the rebuild.
const DEBOUNCE: Duration = Duration::from_millis(10);

/// Where service traffic may come from and go to.
#[derive(Clone, Debug)]
pub(crate) struct Addresses {
    /// Where pods are: backends must be in it (the cluster CIDR, or this
    /// node's pod CIDR when it is alone).
    pub(crate) pod_cidr: Ipv4Net,
    /// The node's addresses that carry NodePorts (the bridge gateway);
    /// 127.0.0.1 carries them too.
    pub(crate) node: Vec<Ipv4Addr>,
}

fn socket(ip: Ipv4Addr, port: i32) -> Option<SocketAddr> {
    u16::try_from(port).ok().map(|p| SocketAddr::new(IpAddr::V4(ip), p))
}

/// The proxy's table for `services` and their `endpoints`: every port of
/// every Service with a cluster IP (not headless, not ExternalName), its
/// frontends (ClusterIP, node ports on the node's addresses and loopback,
/// load-balancer addresses) and its ready backends. Backends outside the
/// pod CIDR (a hand-written Endpoints naming another host) are left out:
/// traffic to them would leave the node.
pub(crate) fn service_table(services: &[Service], endpoints: &[Endpoints], addresses: &Addresses) -> (ServiceTable, Vec<String>) {
    let mut ports = Vec::new();
    let mut warnings = Vec::new();
    let by_name: BTreeMap<(String, String), &Endpoints> =
        endpoints.iter().map(|e| ((e.metadata.namespace.clone().unwrap_or_default(), e.metadata.name.clone().unwrap_or_default()), e)).collect();
    for service in services {
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        let spec = service.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else { continue };
        let load_balancers: Vec<Ipv4Addr> = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
            .collect();
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            let seconds = spec.session_affinity_config.as_ref().and_then(|c| c.client_ip.as_ref()).and_then(|c| c.timeout_seconds).unwrap_or(10800);
            Duration::from_secs(u64::try_from(seconds).unwrap_or(10800)).min(driftless_proxy::MAX_AFFINITY)
        });
        let service_ports = spec.ports.clone().unwrap_or_default();
        for port in &service_ports {
            let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                other => {
                    warnings.push(format!("Service {namespace}/{name} port {}: protocol {other} is not proxied", port.port));
                    continue;
                }
            };
            let mut frontends: Vec<SocketAddr> = socket(cluster_ip, port.port).into_iter().collect();
            if let Some(node_port) = port.node_port {
                frontends.extend(addresses.node.iter().chain(std::iter::once(&Ipv4Addr::LOCALHOST)).filter_map(|ip| socket(*ip, node_port)));
            }
            frontends.extend(load_balancers.iter().filter_map(|ip| socket(*ip, port.port)));
            let mut backends = Vec::new();
            for subset in by_name.get(&(namespace.clone(), name.clone())).and_then(|e| e.subsets.as_ref()).into_iter().flatten() {
                let subset_ports = subset.ports.clone().unwrap_or_default();
                // Endpoints ports match service ports by name (an unnamed
                // service port is the only one, and so is its endpoint port).
                let target = match &port.name {
                    Some(port_name) if service_ports.len() > 1 => subset_ports.iter().find(|p| p.name.as_deref() == Some(port_name.as_str())),
                    _ => subset_ports.iter().find(|p| p.name == port.name).or_else(|| (subset_ports.len() == 1).then(|| &subset_ports[0])),
                };
                let Some(target) = target else { continue };
                for address in subset.addresses.iter().flatten() {
                    let Ok(ip) = address.ip.parse::<Ipv4Addr>() else { continue };
                    if !addresses.pod_cidr.contains(&ip) {
                        warnings.push(format!("Endpoints {namespace}/{name}: {ip} is outside the pod CIDR {}, left out", addresses.pod_cidr));
                        continue;
                    }
                    backends.extend(socket(ip, target.port));
                }
            }
            backends.sort();
            backends.dedup();
            let port_name = port.name.clone().unwrap_or_else(|| port.port.to_string());
            ports.push(ServicePort { name: format!("{namespace}/{name}:{port_name}"), protocol, frontends, backends, session_affinity: affinity });
        }
    }
    (ServiceTable { peers: Vec::new(), ports }, warnings)
}

/// The DNS server and service proxy, kept in step with the store.
pub(crate) struct Network {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) dns: DnsHandle,
    pub(crate) proxy: Box<dyn ServiceProxy>,
    /// The Ingress server, and the class it serves, if it listens anywhere.
    pub(crate) ingress: Option<(IngressHandle, String)>,
    pub(crate) domain: String,
    pub(crate) addresses: Addresses,
    /// The store revision the proxy last applied in full (the kubelet
    /// waits for it before stopping a deleted pod).
    pub(crate) applied: Arc<std::sync::atomic::AtomicU64>,
}

impl Network {
    /// Rebuilds everything once.
    fn rebuild(mut self) -> (Network, Result<(), String>) {
        let revision = self.store.revision();
        let services = self.store.api::<Service>().list(None);
        let endpoints = self.store.api::<Endpoints>().list(None);
        // Each pod is parsed as the zone takes it, not all of them first
        // (1.7 MiB at once for 300 pods, heaptrack on an agent).
        let (pods, _) = self.store.list(Kind::Pod, None);
        let pods = pods.iter().filter_map(|pod| Pod::from_json(pod).ok());
        let mut errors = Vec::new();
        match Zone::build(&self.domain, &services, &endpoints, pods) {
            Ok(zone) => {
                for skipped in zone.skipped() {
                    tracing::debug!(%skipped, "left out of the DNS zone");
                }
                if let Err(error) = self.dns.set_zone(zone) {
                    errors.push(format!("dns: {error}"));
                }
            }
            Err(error) => errors.push(format!("dns zone: {error}")),
        }
        let (mut table, warnings) = service_table(&services, &endpoints, &self.addresses);
        // Every node's address: this node's pods answer them.
        table.peers = self
            .store
            .list(Kind::Node, None)
            .0
            .iter()
            .filter_map(|n| n.pointer("/status/addresses")?.as_array()?.iter().find(|a| a["type"] == "InternalIP")?.get("address")?.as_str()?.parse().ok())
            .filter(|ip: &std::net::Ipv4Addr| !self.addresses.pod_cidr.contains(ip) && !self.addresses.node.contains(ip))
            .collect();
        for warning in warnings {
            tracing::debug!(%warning, "service table");
        }
        match self.proxy.apply(&table) {
            Ok(()) => {
                tracing::debug!(revision, backends = ?table.ports.iter().map(|p| (p.name.as_str(), p.backends.len())).collect::<Vec<_>>(), "service table in place");
                self.applied.store(revision, std::sync::atomic::Ordering::SeqCst)
            }
            Err(error) => errors.push(format!("proxy: {error}")),
        }
        if let Some((ingress, class)) = &self.ingress {
            let ingresses = self.store.api::<Ingress>().list(None);
            let secrets = self.store.api::<Secret>().list(None);
            let (table, warnings) = IngressTable::build(class, &ingresses, &services, &endpoints, &secrets);
            for warning in warnings {
                tracing::debug!(%warning, "ingress table");
            }
            ingress.set_table(table);
            self.report_ingress_addresses(&ingresses, class);
        }
        (self, if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) })
    }

    /// Reports the node's address in `status.loadBalancer` of every Ingress
    /// it serves, as an ingress controller does (kubectl's ADDRESS).
    fn report_ingress_addresses(&self, ingresses: &[Ingress], class: &str) {
        let Some(address) = self.addresses.node.first() else { return };
        let status = serde_json::json!({"loadBalancer": {"ingress": [{"ip": address.to_string()}]}});
        for ingress in ingresses {
            let named = ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref());
            if named.is_some_and(|n| n != class) {
                continue;
            }
            let key = driftless_store::key_of(ingress);
            let current = self.store.get(&key).and_then(|v| v.get("status").cloned());
            if current.as_ref() != Some(&status) {
                let op = driftless_store::Op::Status { key, uid: ingress.metadata.uid.clone(), status: status.clone() };
                if let Err(error) = self.store.apply(driftless_store::Batch::one(op)) {
                    tracing::debug!(%error, "could not report an Ingress address");
                }
            }
        }
    }

    /// Runs until `cancel` fires, then removes the proxy's rules.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let mut events = self.store.watch();
        let mut network = Some(self);
        loop {
            let Some(current) = network.take() else { return };
            // The proxy shells out to nft: off the async threads.
            match tokio::task::spawn_blocking(move || current.rebuild()).await {
                Ok((current, result)) => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "service networking is not up to date");
                    }
                    network = Some(current);
                }
                Err(error) => {
                    tracing::error!(%error, "service networking rebuild panicked");
                    return;
                }
            }
            // Wait for a change that matters, then let its burst pass.
            let relevant = |kind: &Kind| matches!(kind, Kind::Service | Kind::Endpoints | Kind::Pod | Kind::Ingress | Kind::Secret | Kind::Node);
            let woke = tokio::select! {
                _ = cancel.cancelled() => false,
                _ = tokio::time::sleep(RESYNC) => true,
                _ = async {
                    loop {
                        match events.recv().await {
                            Ok(event) if relevant(&event.key.kind) => return,
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                        }
                    }
                } => true,
            };
            if !woke {
                break;
            }
            tokio::time::sleep(DEBOUNCE).await;
            while events.try_recv().is_ok() {}
        }
        if let Some(network) = network {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(error) = network.proxy.shutdown() {
                    tracing::warn!(%error, "service proxy cleanup failed");
                }
                drop(network.dns);
                drop(network.ingress);
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn tables_have_every_frontend_and_the_ready_backends_by_port_name() {
        let svc: Service = parse(
            "metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.20
  sessionAffinity: ClientIP
  ports: [{name: http, port: 80, nodePort: 30080, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]
status: {loadBalancer: {ingress: [{ip: 127.0.0.100}]}}",
        );
        let headless: Service = parse("metadata: {name: db, namespace: default}\nspec: {clusterIP: None, ports: [{port: 5432}]}");
        let ep: Endpoints = parse(
            "metadata: {name: web, namespace: default}
subsets:
- addresses: [{ip: 10.244.0.5}, {ip: 10.244.0.6}, {ip: 192.0.2.9}]
  notReadyAddresses: [{ip: 10.244.0.7}]
  ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]",
        );
        let addresses = Addresses { pod_cidr: "10.244.0.0/24".parse().unwrap(), node: vec!["10.244.0.1".parse().unwrap()] };
        let (table, warnings) = service_table(&[svc, headless], &[ep], &addresses);
        assert_eq!(table.ports.len(), 2, "the headless service is DNS only");
        let http = &table.ports[0];
        assert_eq!(http.name, "default/web:http");
        let frontends: Vec<String> = http.frontends.iter().map(ToString::to_string).collect();
        assert_eq!(frontends, ["10.96.0.20:80", "10.244.0.1:30080", "127.0.0.1:30080", "127.0.0.100:80"]);
        let backends: Vec<String> = http.backends.iter().map(ToString::to_string).collect();
        assert_eq!(backends, ["10.244.0.5:8080", "10.244.0.6:8080"], "ready ones only, inside the pod CIDR");
        assert_eq!(http.session_affinity, Some(Duration::from_secs(10800)));
        assert_eq!(table.ports[1].protocol, Protocol::Udp);
        assert_eq!(table.ports[1].backends[0].port(), 5353);
        assert!(warnings.iter().any(|w| w.contains("192.0.2.9")));
    }

    /// The whole rebuild on the fake proxy and a DNS server on loopback:
    /// the table and zone follow the store, and the revision the kubelet
    /// waits for moves only when the proxy took the table.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_rebuild_follows_the_store_and_records_only_tables_the_proxy_took() {
        use driftless_store::{Batch, Op, SqliteStore};
        use serde_json::json;

        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
        let service = |ip: &str| {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"clusterIP": ip, "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
        };
        let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
                               "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 8080, "protocol": "TCP"}]}]});
        store.apply(Batch::new().push(Op::Create(service("10.96.0.20"))).push(Op::Create(endpoints)).clone()).unwrap();

        let dns = driftless_dns::DnsServer::start(driftless_dns::DnsConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Default::default() }).unwrap();
        let mut config = driftless_proxy::ProxyConfig::new("10.96.0.0/16".parse().unwrap(), "10.244.0.0/24".parse().unwrap(), "dl-test0");
        config.node_addresses = vec!["10.244.0.1".parse().unwrap()];
        let fake = driftless_proxy::FakeProxy::new(config).unwrap();
        let tables = fake.applied();
        let applied = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let network = Network {
            store: store.clone(),
            dns,
            proxy: Box::new(fake),
            ingress: None,
            domain: "cluster.local".into(),
            addresses: Addresses { pod_cidr: "10.244.0.0/24".parse().unwrap(), node: vec!["10.244.0.1".parse().unwrap()] },
            applied: applied.clone(),
        };
        let (network, result) = network.rebuild();
        result.unwrap();
        {
            let tables = tables.lock().unwrap();
            let backends: Vec<String> = tables[0].ports[0].backends.iter().map(ToString::to_string).collect();
            assert_eq!(backends, ["10.244.0.5:8080"]);
        }
        assert_eq!(applied.load(std::sync::atomic::Ordering::SeqCst), store.revision());
        let zone = network.dns.zone().zone_file();
        assert!(zone.contains("web.default.svc.cluster.local.") && zone.contains("10.96.0.20"), "{zone}");

        // An address the proxy refuses (outside the service CIDR): the DNS
        // still follows, but the proxy's revision does not move, so no
        // deleted pod is stopped on the strength of it.
        let before = applied.load(std::sync::atomic::Ordering::SeqCst);
        store.apply(Batch::one(Op::Put(service("10.1.0.9")))).unwrap();
        let (network, result) = network.rebuild();
        assert!(result.unwrap_err().contains("proxy"));
        assert_eq!(applied.load(std::sync::atomic::Ordering::SeqCst), before);
        assert_eq!(tables.lock().unwrap().len(), 1);
        assert!(network.dns.zone().zone_file().contains("10.1.0.9"));
    }
}
