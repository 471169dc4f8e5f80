//! Pod garbage collection of orphans, as kube-controller-manager's PodGC
//! does it: a pod bound to a node that does not exist is removed at once
//! (no grace: no node the cluster knows can be running it). A node this
//! collector saw and that is gone now (`kubectl delete node`) frees its
//! pods on the next pass; a node it never saw gets a quarantine first
//! ([`QUARANTINE`], Kubernetes' 40 s), in case it is still registering.
//!
//! This is how a StatefulSet pod on a dead node is let go: its controller
//! makes no replacement while the old pod exists (at most one pod per
//! ordinal, as Kubernetes guarantees), and deleting the Node is the
//! operator saying the node is gone.
//!
//! Owns: removing pods bound to missing nodes. Must not touch: pods on
//! nodes that exist, however unready (eviction and the node lifecycle
//! judge those).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use driftless_model::Kind;
use driftless_store::{Batch, Key, Op, StoreError};
use jiff::Timestamp;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::events::EventType;

/// How long a pod bound to a node never seen waits before it is removed.
pub const QUARANTINE: Duration = Duration::from_secs(40);
/// How often orphans are looked for.
const PERIOD: Duration = Duration::from_secs(2);

/// What the collector remembers between passes.
#[derive(Default)]
pub struct PodGc {
    /// Nodes seen at some pass.
    seen: Mutex<HashSet<String>>,
    /// When each orphan of a never-seen node was first found, by uid.
    quarantined: Mutex<HashMap<String, Timestamp>>,
}

impl PodGc {
    /// One pass; the pods removed (`namespace/name`).
    pub fn collect(&self, ctx: &Context) -> Result<Vec<String>, StoreError> {
        let now = ctx.now();
        let nodes: HashSet<String> =
            ctx.store.list(Kind::Node, None).0.iter().filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str).map(str::to_owned)).collect();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.extend(nodes.iter().cloned());
        let mut quarantined = self.quarantined.lock().unwrap_or_else(|e| e.into_inner());
        let mut orphans = HashSet::new();
        let mut removed = Vec::new();
        for pod in ctx.store.list(Kind::Pod, None).0 {
            let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
            if node.is_empty() || nodes.contains(node) {
                continue;
            }
            let Some(key) = Key::of(&pod) else { continue };
            let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_owned();
            orphans.insert(uid.clone());
            if !seen.contains(node) {
                let since = *quarantined.entry(uid.clone()).or_insert(now);
                if now.duration_since(since).unsigned_abs() < QUARANTINE {
                    continue;
                }
            }
            tracing::info!(pod = %key, node, "removing a pod bound to a node that does not exist");
            ctx.events.record(&pod, EventType::Normal, "PodGC", &format!("Removed: node {node} does not exist"));
            ctx.store.apply(Batch::one(Op::Delete { key: key.clone(), uid: Some(uid) }))?;
            removed.push(format!("{}/{}", key.namespace, key.name));
        }
        quarantined.retain(|uid, _| orphans.contains(uid));
        Ok(removed)
    }
}

/// Collects orphans every [`PERIOD`] until `cancel` fires.
pub async fn run(ctx: Context, cancel: CancellationToken) {
    let collector = PodGc::default();
    crate::periodic::every(PERIOD, "pod garbage collection", cancel, move || collector.collect(&ctx).map(drop)).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::node::{NodeInfo, register};
    use crate::testing::Sim;

    fn pod_on(name: &str, node: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
    }

    #[tokio::test]
    async fn a_statefulset_pod_is_replaced_only_once_its_node_is_deleted() {
        let sim = Sim::new();
        register(&sim.ctx, &NodeInfo::of_this_machine("node-2", "10.0.0.2", "10.244.2.0/24")).unwrap();
        sim.apply_yaml(
            "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-2}
      containers: [{name: c, image: busybox}]
",
        );
        sim.settle().await;
        let first = sim.get(Kind::Pod, "default", "db-0");
        assert_eq!(first["spec"]["nodeName"], "node-2");
        let gc = PodGc::default();
        assert!(gc.collect(&sim.ctx).unwrap().is_empty(), "its node exists");

        // The node is deleted: the pod goes on the next pass, and its
        // StatefulSet makes db-0 again (pinned to the deleted node, it
        // waits unbound).
        sim.ctx.store.apply(Batch::one(Op::Delete { key: Key::new(Kind::Node, "", "node-2"), uid: None })).unwrap();
        assert_eq!(gc.collect(&sim.ctx).unwrap(), ["default/db-0"]);
        sim.settle().await;
        let second = sim.get(Kind::Pod, "default", "db-0");
        assert_ne!(second["metadata"]["uid"], first["metadata"]["uid"]);
        assert!(second.pointer("/spec/nodeName").is_none());
    }

    #[test]
    fn a_pod_bound_to_a_node_never_seen_waits_out_the_quarantine() {
        let sim = Sim::new();
        sim.ctx.store.apply(Batch::one(Op::Create(pod_on("early", "node-9")))).unwrap();
        let gc = PodGc::default();
        assert!(gc.collect(&sim.ctx).unwrap().is_empty());
        sim.advance(39);
        assert!(gc.collect(&sim.ctx).unwrap().is_empty());
        sim.advance(1);
        assert_eq!(gc.collect(&sim.ctx).unwrap(), ["default/early"]);
        // A pod on a node that exists is never touched.
        sim.ctx.store.apply(Batch::one(Op::Create(pod_on("kept", "node-1")))).unwrap();
        sim.advance(100);
        assert!(gc.collect(&sim.ctx).unwrap().is_empty());
    }
}
