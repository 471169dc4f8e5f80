//! Service addresses, as the API server and a load-balancer controller
//! hand them out: a ClusterIP from the service CIDR (the one asked for, if
//! it is free and in range), node ports from 30000–32767 (the ones asked
//! for, if free), and for `LoadBalancer` Services an address from the
//! node's pool, reported in `status.loadBalancer.ingress`.
//!
//! Allocations live in the Services themselves (`spec.clusterIP`,
//! `spec.ports[].nodePort`, the status), so they survive restarts and are
//! released with the Service; the sync loop carries them over when git
//! leaves them out. One reconcile runs at a time (the daemon runs this
//! controller with a concurrency of one), so two Services never get the
//! same address.

use driftless_model::Kind;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use driftless_model::k8s_openapi::api::core::v1::Service;
use driftless_store::{Batch, Key, Op, Store, StoreExt, WatchEvent, to_value};
use ipnet::Ipv4Net;
use serde_json::{Value, json};

use crate::events::EventType;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError};

/// The NodePort range (the API server's default).
pub const NODE_PORTS: std::ops::RangeInclusive<i32> = 30000..=32767;

/// Where addresses come from.
#[derive(Clone, Debug)]
pub struct AddressPools {
    /// The service CIDR.
    pub service_cidr: Ipv4Net,
    /// Addresses kept for fixed assignments (the cluster DNS): never handed
    /// out unless asked for by name.
    pub reserved: Vec<Ipv4Addr>,
    /// LoadBalancer addresses; empty leaves LoadBalancer Services pending,
    /// as a cluster without a load-balancer provider does.
    pub load_balancers: Vec<Ipv4Addr>,
}

/// The allocator.
pub struct ServiceAllocator {
    ctx: Context,
    pools: AddressPools,
    /// The version of each Service last warned about, so a problem that
    /// lasts is reported once per change of the Service, not per resync.
    warned: std::sync::Mutex<std::collections::HashMap<Key, String>>,
}

impl ServiceAllocator {
    /// An allocator over `pools`.
    pub fn new(ctx: Context, pools: AddressPools) -> Arc<ServiceAllocator> {
        Arc::new(ServiceAllocator { ctx, pools, warned: Default::default() })
    }
}

/// Every address and port the Services in `store` hold, but those of
/// `except` (the Service being allocated for).
fn taken(store: &dyn Store, except: &Key) -> (BTreeSet<Ipv4Addr>, BTreeSet<i32>, BTreeSet<Ipv4Addr>) {
    let (mut ips, mut ports, mut lbs) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for svc in store.list(Kind::Service, None).0 {
        if Key::of(&svc).as_ref() == Some(except) {
            continue;
        }
        for ip in svc.pointer("/spec/clusterIPs").and_then(Value::as_array).into_iter().flatten().chain(svc.pointer("/spec/clusterIP")) {
            if let Some(ip) = ip.as_str().and_then(|s| s.parse().ok()) {
                ips.insert(ip);
            }
        }
        for port in svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten() {
            if let Some(p) = port.get("nodePort").and_then(Value::as_i64) {
                ports.insert(p as i32);
            }
        }
        for ingress in svc.pointer("/status/loadBalancer/ingress").and_then(Value::as_array).into_iter().flatten() {
            if let Some(ip) = ingress.get("ip").and_then(Value::as_str).and_then(|s| s.parse().ok()) {
                lbs.insert(ip);
            }
        }
    }
    (ips, ports, lbs)
}

impl Reconciler for ServiceAllocator {
    fn name(&self) -> &'static str {
        "service-allocator"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::Service)
    }

    fn watches(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        // A deleted Service frees addresses a pending one may want.
        if event.key.kind == Kind::Service && event.kind == driftless_store::EventType::Deleted { self.keys(store) } else { vec![] }
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let store = &*self.ctx.store;
        let Some(value) = store.get(key) else { return Ok(Action::AwaitChange) };
        let Some(mut svc) = store.api::<Service>().get(&key.namespace, &key.name) else { return Ok(Action::AwaitChange) };
        let mut spec = svc.spec.clone().unwrap_or_default();
        let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
        let (ips, ports, lbs) = taken(store, key);
        let mut changed = false;
        let mut problems: Vec<(&str, String)> = Vec::new();

        if kind != "ExternalName" {
            match spec.cluster_ip.as_deref() {
                Some("None") => {}
                Some(asked) if !asked.is_empty() => {
                    let ok = asked.parse::<Ipv4Addr>().ok().filter(|ip| self.pools.service_cidr.contains(ip));
                    match ok {
                        None => {
                            problems.push(("ClusterIPOutOfRange", format!("spec.clusterIP {asked} is not in the service CIDR {}", self.pools.service_cidr)))
                        }
                        Some(ip) if ips.contains(&ip) => {
                            problems.push(("ClusterIPAlreadyAllocated", format!("spec.clusterIP {ip} is already allocated to another Service")))
                        }
                        Some(_) => {}
                    }
                }
                _ => {
                    // Dynamic addresses from the top of the range down, as
                    // the API server prefers, leaving the bottom for fixed
                    // ones like the DNS service's.
                    let free = self.pools.service_cidr.hosts().rev().find(|ip| !ips.contains(ip) && !self.pools.reserved.contains(ip));
                    match free {
                        Some(ip) => {
                            spec.cluster_ip = Some(ip.to_string());
                            changed = true;
                        }
                        None => problems.push(("ClusterIPExhausted", format!("no free address in {}", self.pools.service_cidr))),
                    }
                }
            }
            if spec.cluster_ip.as_deref().is_some_and(|ip| !ip.is_empty()) && spec.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
                spec.cluster_ips = spec.cluster_ip.clone().map(|ip| vec![ip]);
                changed = true;
            }
        }
        let wants_node_ports = kind == "NodePort" || (kind == "LoadBalancer" && spec.allocate_load_balancer_node_ports != Some(false));
        if wants_node_ports {
            // This Service's own fixed ports are not free for its others.
            let mut used = ports.clone();
            used.extend(spec.ports.iter().flatten().filter_map(|p| p.node_port));
            for port in spec.ports.iter_mut().flatten() {
                match port.node_port {
                    Some(p) if ports.contains(&p) => problems.push(("PortAlreadyAllocated", format!("nodePort {p} is already allocated to another Service"))),
                    Some(_) => {}
                    None => match NODE_PORTS.clone().find(|p| !used.contains(p)) {
                        Some(p) => {
                            port.node_port = Some(p);
                            used.insert(p);
                            changed = true;
                        }
                        None => problems.push(("PortExhausted", "no free node port in 30000-32767".to_owned())),
                    },
                }
            }
        }
        let mut batch = Batch::new();
        if changed {
            svc.spec = Some(spec.clone());
            batch.push(Op::Update(to_value(&svc)));
        }
        if kind == "LoadBalancer" {
            let current: Option<Ipv4Addr> = value.pointer("/status/loadBalancer/ingress/0/ip").and_then(Value::as_str).and_then(|s| s.parse().ok());
            let keep = current.filter(|ip| self.pools.load_balancers.contains(ip) && !lbs.contains(ip));
            let chosen = keep.or_else(|| self.pools.load_balancers.iter().copied().find(|ip| !lbs.contains(ip)));
            let status = match chosen {
                Some(ip) => json!({"loadBalancer": {"ingress": [{"ip": ip.to_string(), "ipMode": "VIP"}]}}),
                None => {
                    if !self.pools.load_balancers.is_empty() {
                        problems.push(("LoadBalancerExhausted", "no free address in the load-balancer pool".to_owned()));
                    }
                    json!({"loadBalancer": {}})
                }
            };
            if value.get("status") != Some(&status) {
                batch.push(Op::Status { key: key.clone(), uid: svc.metadata.uid.clone(), status });
                if let Some(ip) = chosen {
                    self.ctx.events.record(&value, EventType::Normal, "EnsuredLoadBalancer", &format!("Ensured load balancer {ip}"));
                }
            }
        }
        if !batch.is_empty() {
            store.apply(batch)?;
        }
        let version = value.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_owned();
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if !problems.is_empty() && warned.get(key) != Some(&version) {
            for (reason, message) in problems {
                self.ctx.events.record(&value, EventType::Warning, reason, &message);
            }
            warned.insert(key.clone(), version);
        }
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;

    fn pools() -> AddressPools {
        AddressPools {
            service_cidr: "10.96.0.0/28".parse().unwrap(),
            reserved: vec!["10.96.0.10".parse().unwrap()],
            load_balancers: vec!["127.0.0.100".parse().unwrap()],
        }
    }

    #[tokio::test]
    async fn addresses_are_unique_requested_ones_honoured_and_kept() {
        let sim = Sim::new();
        sim.apply_yaml(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}], selector: {app: a}}\n---
apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {type: NodePort, ports: [{port: 80}, {port: 81, nodePort: 30001}], selector: {app: b}}\n---
apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 53, protocol: UDP}]}\n---
apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, ports: [{port: 80}], selector: {app: c}}\n---
apiVersion: v1\nkind: Service\nmetadata: {name: lb2}\nspec: {type: LoadBalancer, allocateLoadBalancerNodePorts: false, ports: [{port: 80}], selector: {app: c}}\n---
apiVersion: v1\nkind: Service\nmetadata: {name: headless}\nspec: {clusterIP: None, ports: [{port: 80}], selector: {app: c}}\n",
        );
        let allocator = ServiceAllocator::new(sim.ctx.clone(), pools());
        for _ in 0..3 {
            for key in allocator.keys(sim.store()) {
                allocator.reconcile(&key).await.unwrap();
            }
        }
        let get = |n: &str| sim.get(Kind::Service, "default", n);
        let ips: Vec<String> = ["a", "b", "lb", "lb2"].iter().map(|n| get(n)["spec"]["clusterIP"].as_str().unwrap().to_owned()).collect();
        let unique: BTreeSet<&String> = ips.iter().collect();
        assert_eq!(unique.len(), 4, "{ips:?}");
        assert!(!ips.contains(&"10.96.0.10".to_owned()), "the reserved address is not handed out");
        assert_eq!(ips[0], "10.96.0.14", "from the top of the range");
        assert_eq!(get("dns")["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(get("headless")["spec"]["clusterIP"], "None");
        let b = get("b");
        assert_eq!(b["spec"]["ports"][1]["nodePort"], 30001);
        assert_eq!(b["spec"]["ports"][0]["nodePort"], 30000, "the first free port, around the one asked for");
        assert_eq!(get("lb")["status"]["loadBalancer"]["ingress"][0]["ip"], "127.0.0.100");
        assert!(get("lb")["spec"]["ports"][0]["nodePort"].is_i64());
        assert!(get("lb2")["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(get("lb2")["status"]["loadBalancer"], json!({}), "the pool has one address: the second stays pending");

        // Stable: another pass changes nothing.
        let revision = sim.store().revision();
        for key in allocator.keys(sim.store()) {
            allocator.reconcile(&key).await.unwrap();
        }
        assert_eq!(sim.store().revision(), revision);
    }
}
