//! The node lifecycle, as kube-controller-manager's node lifecycle
//! controller does it: each node's kubelet renews a Lease
//! (`kube-node-lease/<node>`, [`renew_lease`]) and posts its Ready
//! condition; a node that has done neither within the grace period
//! (`--node-monitor-grace-period`, 40 s) has its Ready condition set to
//! `Unknown` and is tainted `node.kubernetes.io/unreachable` (NoSchedule
//! and NoExecute), and a node whose kubelet says it is not ready is
//! tainted `node.kubernetes.io/not-ready`. The taints go once the node is
//! Ready again (its kubelet posts `True`).
//!
//! Owns: the Unknown state of a node's Ready condition and those two
//! taints. Must not touch: pods (the scheduler reads the taints; eviction
//! of pods that do not tolerate NoExecute is the taint manager's), or any
//! other part of a node's spec.

use std::time::Duration;

use driftless_model::Kind;
use driftless_store::{Batch, Key, Op, StoreError};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::context::rfc3339;

/// How often nodes are checked (kube-controller-manager's
/// `--node-monitor-period`).
pub const MONITOR_PERIOD: Duration = Duration::from_secs(5);
/// How long a node may go without a sign of life before it is Unknown
/// (`--node-monitor-grace-period`).
pub const GRACE: Duration = Duration::from_secs(40);
/// Where node Leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// A node's Lease lasts this long (the kubelet's default).
const LEASE_SECONDS: u64 = 40;

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// The node's side: renews its Lease, as the kubelet does every 10 s.
pub fn renew_lease(ctx: &Context, node: &str) -> Result<(), StoreError> {
    let owner = ctx.store.get(&Key::new(Kind::Node, "", node)).and_then(|n| n.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned));
    ctx.store.apply(Batch::one(Op::Put(lease_object(node, ctx.now(), owner.as_deref()))))?;
    Ok(())
}

/// A node's Lease, renewed at `now`, owned by its Node (whose uid is
/// `owner`, when known).
pub fn lease_object(node: &str, now: Timestamp, owner: Option<&str>) -> Value {
    let mut lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": micro_time(now)},
    });
    if let Some(uid) = owner {
        lease["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]);
    }
    lease
}

/// `metav1.MicroTime`'s form.
fn micro_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The newest sign of life of `node`: its Lease's renewal or its Ready
/// condition's heartbeat.
fn last_seen(ctx: &Context, node: &Value) -> Option<Timestamp> {
    let name = node.pointer("/metadata/name")?.as_str()?;
    let lease = ctx.store.get(&Key::new(Kind::Lease, LEASE_NAMESPACE, name));
    let renewed = lease.as_deref().and_then(|l| l.pointer("/spec/renewTime")).and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok());
    let posted = ready(node).and_then(|c| c.get("lastHeartbeatTime")).and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok());
    renewed.max(posted)
}

fn ready(node: &Value) -> Option<&Value> {
    node.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == "Ready")
}

/// One pass over every node; the names of those it changed.
pub fn check(ctx: &Context, grace: Duration) -> Result<Vec<String>, StoreError> {
    let now = ctx.now();
    let mut changed = Vec::new();
    for node in ctx.store.list(Kind::Node, None).0 {
        let Some(name) = node.pointer("/metadata/name").and_then(Value::as_str) else { continue };
        let stale = last_seen(ctx, &node).is_none_or(|seen| now.duration_since(seen).unsigned_abs() > grace);
        let mut status = node.get("status").cloned().unwrap_or_else(|| json!({}));
        if stale {
            mark_unknown(&mut status, now);
        }
        let condition = ready(&json!({"status": status})).and_then(|c| c["status"].as_str()).unwrap_or("Unknown").to_owned();
        let wanted = match condition.as_str() {
            "True" => None,
            "False" => Some(NOT_READY),
            _ => Some(UNREACHABLE),
        };
        let taints = node.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
        let kept: Vec<Value> = taints.iter().filter(|t| t["key"] != UNREACHABLE && t["key"] != NOT_READY).cloned().collect();
        let mut next = kept.clone();
        if let Some(key) = wanted {
            for effect in ["NoSchedule", "NoExecute"] {
                // A taint already there keeps the time it was added: pods'
                // tolerationSeconds count from it.
                let old = taints.iter().find(|t| t["key"] == key && t["effect"] == effect);
                next.push(old.cloned().unwrap_or_else(|| json!({"key": key, "effect": effect, "timeAdded": rfc3339(now)})));
            }
        }
        let status_changed = Some(&status) != node.get("status");
        if next == taints && !status_changed {
            continue;
        }
        tracing::info!(node = name, ready = %condition, taints = ?next.iter().map(|t| format!("{}:{}", t["key"].as_str().unwrap_or(""), t["effect"].as_str().unwrap_or(""))).collect::<Vec<_>>(), "node lifecycle");
        let key = Key::new(Kind::Node, "", name);
        let uid = node.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
        let mut batch = Batch::new();
        if next != taints {
            let mut updated = (*node).clone();
            if next.is_empty() {
                if let Some(spec) = updated.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("taints");
                }
            } else {
                updated["spec"]["taints"] = Value::Array(next);
            }
            batch.push(Op::Update(updated));
        }
        if status_changed {
            batch.push(Op::Status { key, uid, status });
        }
        match ctx.store.apply(batch) {
            Ok(_) => changed.push(name.to_owned()),
            // The node posted meanwhile: the next pass sees it.
            Err(StoreError::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
        if stale && condition == "Unknown" {
            let message = format!("Node {name} status is now: NodeNotReady");
            ctx.events.record(&node, driftless_events::EventType::Normal, "NodeNotReady", &message);
        }
    }
    // A node no one hears from runs no pod anyone can count on: its pods
    // are marked not ready (Services stop sending to them) until their
    // kubelet says otherwise, as Kubernetes' MarkPodsNotReady does.
    for node in ctx.store.list(Kind::Node, None).0 {
        if ready(&node).and_then(|c| c["status"].as_str()) == Some("Unknown")
            && let Some(name) = node.pointer("/metadata/name").and_then(Value::as_str)
        {
            mark_pods_not_ready(ctx, name, now)?;
        }
    }
    Ok(changed)
}

/// Sets the Ready condition of every pod bound to `node` that says it is
/// ready to False; the pods changed.
fn mark_pods_not_ready(ctx: &Context, node: &str, now: Timestamp) -> Result<usize, StoreError> {
    let mut batch = Batch::new();
    for pod in ctx.store.list(Kind::Pod, None).0 {
        if pod.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node) {
            continue;
        }
        let Some(mut status) = pod.get("status").cloned() else { continue };
        let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) else { continue };
        let Some(ready) = conditions.iter_mut().find(|c| c["type"] == "Ready" && c["status"] == "True") else { continue };
        ready["status"] = json!("False");
        ready["reason"] = json!("NodeNotReady");
        ready["message"] = json!(format!("node {node} is not ready"));
        ready["lastTransitionTime"] = json!(rfc3339(now));
        let (Some(key), uid) = (Key::of(&pod), pod.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned)) else { continue };
        batch.push(Op::Status { key, uid, status });
    }
    let count = batch.ops.len();
    if count == 0 {
        return Ok(0);
    }
    match ctx.store.apply(batch) {
        Ok(_) => {
            tracing::info!(node, pods = count, "marked the pods of an unreachable node not ready");
            Ok(count)
        }
        // A pod changed meanwhile: the next pass tries again.
        Err(error) if error.is_conflict() => Ok(0),
        Err(error) => Err(error),
    }
}

/// Sets the Ready condition (and, as Kubernetes does, every other
/// condition the kubelet posts) to Unknown, once.
fn mark_unknown(status: &mut Value, now: Timestamp) {
    let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        status["conditions"] = json!([{
            "type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
            "message": "Kubelet never posted node status.", "lastTransitionTime": rfc3339(now),
        }]);
        return;
    };
    for condition in conditions {
        if condition["status"] != "Unknown" {
            condition["status"] = json!("Unknown");
            condition["reason"] = json!("NodeStatusUnknown");
            condition["message"] = json!("Kubelet stopped posting node status.");
            condition["lastTransitionTime"] = json!(rfc3339(now));
        }
    }
}

/// Checks every [`MONITOR_PERIOD`] until `cancel` fires.
pub async fn run(ctx: Context, grace: Duration, cancel: CancellationToken) {
    crate::periodic::every(MONITOR_PERIOD, "node lifecycle", cancel, move || check(&ctx, grace).map(drop)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{NodeInfo, register};
    use crate::testing::Sim;

    fn taints(sim: &Sim, node: &str) -> Vec<String> {
        let node = sim.ctx.store.get(&Key::new(Kind::Node, "", node)).unwrap();
        node.pointer("/spec/taints")
            .and_then(Value::as_array)
            .map(|ts| ts.iter().map(|t| format!("{}:{}", t["key"].as_str().unwrap(), t["effect"].as_str().unwrap())).collect())
            .unwrap_or_default()
    }

    fn ready_status(sim: &Sim, node: &str) -> String {
        let node = sim.ctx.store.get(&Key::new(Kind::Node, "", node)).unwrap();
        ready(&node).unwrap()["status"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_silent_node_turns_unknown_and_tainted_and_recovers_when_it_posts() {
        let sim = Sim::new();
        let info = NodeInfo::of_this_machine("node-1", "127.0.0.1", "10.244.0.0/24");
        renew_lease(&sim.ctx, "node-1").unwrap();
        let lease = sim.ctx.store.get(&Key::new(Kind::Lease, LEASE_NAMESPACE, "node-1")).unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], "node-1");
        assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
        // Within the grace period: nothing changes.
        sim.advance(39);
        assert!(check(&sim.ctx, GRACE).unwrap().is_empty());
        // A Lease renewal alone keeps the node alive (the Ready heartbeat
        // is older).
        renew_lease(&sim.ctx, "node-1").unwrap();
        sim.advance(39);
        assert!(check(&sim.ctx, GRACE).unwrap().is_empty());
        assert_eq!(ready_status(&sim, "node-1"), "True");
        // A Ready pod on it, and one on another node.
        for (name, node) in [("here", "node-1"), ("there", "node-2")] {
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                             "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}});
            let created = sim.ctx.store.apply(Batch::one(Op::Create(pod))).unwrap();
            let status = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
            sim.ctx.store.apply(Batch::one(Op::Status { key: Key::of(&created[0]).unwrap(), uid: None, status })).unwrap();
        }
        let pod_ready = |name: &str| sim.ctx.store.get(&Key::new(Kind::Pod, "default", name)).unwrap()["status"]["conditions"][0]["status"].clone();
        // Past it: Unknown, and unreachable for scheduling and execution;
        // its pods are not ready any more (Services let go of them).
        sim.advance(2);
        assert_eq!(check(&sim.ctx, GRACE).unwrap(), ["node-1"]);
        assert_eq!((pod_ready("here"), pod_ready("there")), (json!("False"), json!("True")));
        assert_eq!(ready_status(&sim, "node-1"), "Unknown");
        assert_eq!(taints(&sim, "node-1"), [format!("{UNREACHABLE}:NoSchedule"), format!("{UNREACHABLE}:NoExecute")]);
        let added = sim.ctx.store.get(&Key::new(Kind::Node, "", "node-1")).unwrap()["spec"]["taints"][1]["timeAdded"].clone();
        // Once marked, later passes change nothing (the taints keep the
        // time they were added).
        sim.advance(30);
        assert!(check(&sim.ctx, GRACE).unwrap().is_empty());
        assert_eq!(sim.ctx.store.get(&Key::new(Kind::Node, "", "node-1")).unwrap()["spec"]["taints"][1]["timeAdded"], added);
        // The kubelet posts again: Ready, and the taints go; its own
        // re-registration keeps other taints (a user's) in place.
        let mut node = (*sim.ctx.store.get(&Key::new(Kind::Node, "", "node-1")).unwrap()).clone();
        node["spec"]["taints"].as_array_mut().unwrap().push(json!({"key": "dedicated", "value": "db", "effect": "NoSchedule"}));
        sim.ctx.store.apply(Batch::one(Op::Update(node))).unwrap();
        register(&sim.ctx, &info).unwrap();
        assert_eq!(ready_status(&sim, "node-1"), "True");
        assert_eq!(check(&sim.ctx, GRACE).unwrap(), ["node-1"]);
        assert_eq!(taints(&sim, "node-1"), ["dedicated:NoSchedule"]);
    }
}
