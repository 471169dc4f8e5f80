//! Pod CIDRs for nodes that join without one, as kube-controller-manager's
//! node IPAM (`--allocate-node-cidrs` with `--cluster-cidr`) gives them: the
//! first range of the cluster CIDR, of the node mask size (`/24`), that no
//! Node holds, written to the Node's `spec.podCIDR` and `podCIDRs`. The
//! node's agent waits for it before it hands out pod addresses.
//!
//! Owns: the `podCIDR` of Nodes that have none. Must not touch: a Node's
//! CIDR once it has one (its agent's `--pod-cidr`, or an earlier
//! allocation), whatever range it is.

use std::time::Duration;

use driftless_model::Kind;
use driftless_store::{Batch, Key, Op, StoreError};
use ipnet::Ipv4Net;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::events::EventType;

/// How often Nodes without a CIDR are looked for.
const PERIOD: Duration = Duration::from_millis(500);

/// One pass: a CIDR for every Node without one; the nodes given one.
pub fn allocate(ctx: &Context, cluster: Ipv4Net, mask: u8) -> Result<Vec<(String, Ipv4Net)>, StoreError> {
    let (nodes, _) = ctx.store.list(Kind::Node, None);
    let mut used: Vec<Ipv4Net> = nodes
        .iter()
        .flat_map(|n| {
            let single = n.pointer("/spec/podCIDR").and_then(Value::as_str).map(str::to_owned);
            let many = n.pointer("/spec/podCIDRs").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c.as_str().map(str::to_owned));
            single.into_iter().chain(many).collect::<Vec<_>>()
        })
        .filter_map(|c| c.parse().ok())
        .collect();
    let mut given = Vec::new();
    for node in nodes.iter().filter(|n| n.pointer("/spec/podCIDR").and_then(Value::as_str).is_none_or(str::is_empty)) {
        let Some(key) = Key::of(node) else { continue };
        let free = cluster.subnets(mask).ok().and_then(|mut subnets| subnets.find(|s| !used.iter().any(|u| u.contains(s) || s.contains(u))));
        let Some(cidr) = free else {
            ctx.events.record(node, EventType::Warning, "CIDRNotAvailable", &format!("Node {} status is now: CIDRNotAvailable ({cluster} is full)", key.name));
            continue;
        };
        let mut assigned = (**node).clone();
        assigned["spec"]["podCIDR"] = json!(cidr.to_string());
        assigned["spec"]["podCIDRs"] = json!([cidr.to_string()]);
        // Conditional on the Node read: a heartbeat in between is merged
        // on the next pass.
        match ctx.store.apply(Batch::one(Op::Update(assigned))) {
            Err(error) if error.is_conflict() => continue,
            result => result?,
        };
        tracing::info!(node = %key.name, %cidr, "allocated a pod CIDR");
        ctx.events.record(node, EventType::Normal, "CIDRAssignmentSucceeded", &format!("Node {} was given {cidr}", key.name));
        used.push(cidr);
        given.push((key.name.clone(), cidr));
    }
    Ok(given)
}

/// Allocates every [`PERIOD`] until `cancel` fires.
pub async fn run(ctx: Context, cluster: Ipv4Net, mask: u8, cancel: CancellationToken) {
    crate::periodic::every(PERIOD, "node IPAM", cancel, move || allocate(&ctx, cluster, mask).map(drop)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;

    fn node(name: &str, cidr: Option<&str>) -> Value {
        let mut node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}});
        if let Some(cidr) = cidr {
            node["spec"]["podCIDR"] = json!(cidr);
        }
        node
    }

    #[test]
    fn nodes_without_a_range_get_the_first_free_one() {
        let sim = Sim::new();
        // The simulation's node-1 has 10.244.0.0/24.
        for n in [node("given", Some("10.244.1.0/24")), node("new-a", None), node("new-b", None)] {
            sim.ctx.store.apply(Batch::one(Op::Create(n))).unwrap();
        }
        let cluster: Ipv4Net = "10.244.0.0/16".parse().unwrap();
        let given = allocate(&sim.ctx, cluster, 24).unwrap();
        let names: Vec<String> = given.iter().map(|(n, c)| format!("{n} {c}")).collect();
        assert_eq!(names, ["new-a 10.244.2.0/24", "new-b 10.244.3.0/24"]);
        assert_eq!(sim.get(Kind::Node, "", "new-a")["spec"]["podCIDRs"], json!(["10.244.2.0/24"]));
        assert!(allocate(&sim.ctx, cluster, 24).unwrap().is_empty(), "once given, kept");
        // A full cluster CIDR says so and gives nothing.
        sim.ctx.store.apply(Batch::one(Op::Create(node("late", None)))).unwrap();
        assert!(allocate(&sim.ctx, "10.244.0.0/23".parse().unwrap(), 24).unwrap().is_empty());
    }
}
