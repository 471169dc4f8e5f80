//! The scheduler: binds each pod with no `spec.nodeName` to the node that
//! fits it best ([`filter`]), or leaves it Pending with a
//! `FailedScheduling` event that says why. It looks at every Node in the
//! store, so it serves several nodes as well as one.

pub mod filter;
pub mod spread;

use driftless_model::Kind;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::KindOf;
use driftless_model::k8s_openapi::api::core::v1::{Node, Pod};
use driftless_store::{Batch, EventType as Change, Key, Op, Parsed, Store, StoreExt, WatchEvent, to_value};
use serde_json::{Value, json};

use crate::context::rfc3339;
use crate::events::EventType;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError, pods};

/// How long an unschedulable pod waits before it is tried again, if
/// nothing (a pod leaving, a node changing) wakes it sooner.
const RETRY: Duration = Duration::from_secs(30);

/// The scheduler.
pub struct Scheduler {
    ctx: Context,
    /// What each node offers pods, as last seen: a node's heartbeat
    /// (every 10 s) changes nothing a pending pod waits for, and must not
    /// wake every pending pod.
    shapes: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The nodes and the pods bound to them, parsed at a store revision:
    /// pending pods are tried one after another (hundreds at once when a
    /// node fills up, again every [`RETRY`]), and while nothing changes in
    /// between they share one parse instead of each parsing every pod.
    seen: std::sync::Mutex<Option<Arc<Snapshot>>>,
    /// Bound pods as parsed for the last snapshot: a new snapshot parses
    /// only the pods written since.
    parsed: Parsed<Pod>,
}

/// What placing a pod looks at, as the store was at `revision`.
struct Snapshot {
    revision: u64,
    nodes: Vec<Node>,
    /// Pods bound to a node and not finished.
    bound: Vec<Arc<Pod>>,
}

impl Scheduler {
    /// A scheduler.
    pub fn new(ctx: Context) -> Arc<Scheduler> {
        Arc::new(Scheduler { ctx, shapes: Default::default(), seen: Default::default(), parsed: Parsed::default() })
    }

    /// The nodes and bound pods now: the last snapshot if the store has
    /// not changed since, else a new one. Pending pods are not parsed.
    fn snapshot(&self, store: &dyn Store) -> Arc<Snapshot> {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(snapshot) = seen.as_ref().filter(|s| s.revision == store.revision()) {
            return snapshot.clone();
        }
        let (pods, revision) = store.list(Kind::Pod, None);
        let bound: Vec<Arc<Value>> = pods.into_iter().filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str).is_some()).collect();
        let bound = self.parsed.parse(&bound).into_iter().filter(|p| !pods::is_terminal(p)).collect();
        let nodes = store.api::<Node>().list(None);
        // A write between the two lists leaves the snapshot marked older
        // than the store, so the next call rebuilds it.
        let snapshot = Arc::new(Snapshot { revision, nodes, bound });
        *seen = Some(snapshot.clone());
        snapshot
    }

    /// Whether the node in `event` now offers pods something it did not
    /// (a new or removed node, other allocatable, taints, labels,
    /// readiness), remembering what it offers.
    fn node_changed(&self, event: &WatchEvent) -> bool {
        let node = &event.object;
        let ready =
            node.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().find(|c| c["type"] == "Ready").map(|c| c["status"].clone());
        let shape = json!([
            node.pointer("/status/allocatable"),
            node.pointer("/spec/taints"),
            node.pointer("/spec/unschedulable"),
            node.pointer("/metadata/labels"),
            ready,
        ])
        .to_string();
        let mut shapes = self.shapes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if event.kind == Change::Deleted {
            shapes.remove(&event.key.name);
            return true;
        }
        shapes.insert(event.key.name.clone(), shape.clone()).is_none_or(|before| before != shape)
    }
}

fn pending(value: &Value) -> bool {
    value.pointer("/spec/nodeName").is_none_or(Value::is_null) && value.pointer("/metadata/deletionTimestamp").is_none()
}

impl Reconciler for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::Pod)
    }

    /// Only pods waiting for a node.
    fn keys(&self, store: &dyn Store) -> Vec<Key> {
        store.list(Kind::Pod, None).0.iter().filter(|p| pending(p)).filter_map(|p| Key::of(p)).collect()
    }

    /// A pending pod; and every pending pod when room may have been made
    /// (a pod gone, a node changed in what it offers pods).
    fn triggers(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        match (event.key.kind, event.kind) {
            (Kind::Pod, Change::Deleted) => self.keys(store),
            (Kind::Node, _) if self.node_changed(event) => self.keys(store),
            (Kind::Pod, _) if pending(&event.object) => vec![event.key.clone()],
            _ => vec![],
        }
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let store = &*self.ctx.store;
        let Some(value) = store.get(key) else { return Ok(Action::AwaitChange) };
        if !pending(&value) {
            return Ok(Action::AwaitChange);
        }
        let pod = Pod::from_json(&value).map_err(|e| ReconcileError::Malformed(format!("Pod: {e}")))?;
        let snapshot = self.snapshot(store);
        let (nodes, bound) = (&snapshot.nodes, &snapshot.bound);
        let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
        let cluster = spread::Cluster { nodes, bound };
        let mut feasible: Vec<(&Node, i64)> = Vec::new();
        for node in nodes {
            let name = node.metadata.name.as_deref().unwrap_or_default();
            let on_node: Vec<&Pod> = bound.iter().map(|p| &**p).filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name)).collect();
            match filter::unfit(&pod, node, &on_node).or_else(|| cluster.unfit(&pod, node)) {
                Some(reason) => *reasons.entry(reason).or_default() += 1,
                None => feasible.push((node, filter::score(&pod, node, &on_node))),
            }
        }
        // Resources weigh 1, spreading and pod affinity 2 each, as in
        // Kubernetes' default profile.
        let candidates: Vec<&Node> = feasible.iter().map(|(n, _)| *n).collect();
        let spread = cluster.scores(&pod, &candidates);
        let mut best: Option<(i64, String)> = None;
        for ((node, resources), spread) in feasible.iter().zip(spread) {
            let (score, name) = (resources + 2 * spread, node.metadata.name.clone().unwrap_or_default());
            if best.as_ref().is_none_or(|(s, n)| score > *s || score == *s && name < *n) {
                best = Some((score, name));
            }
        }
        let now = rfc3339(self.ctx.now());
        let Some((_, node)) = best else {
            let detail: Vec<String> = reasons.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
            let message = if nodes.is_empty() {
                "no nodes available to schedule pods".to_owned()
            } else {
                format!("0/{} nodes are available: {}.", nodes.len(), detail.join(", "))
            };
            let condition = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastTransitionTime": now});
            let already = value
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "PodScheduled" && c["message"] == message));
            if !already {
                self.ctx.events.record(&value, EventType::Warning, "FailedScheduling", &message);
                let status = json!({"phase": "Pending", "conditions": [condition]});
                store.apply(Batch::one(Op::Status { key: key.clone(), uid: pod.metadata.uid.clone(), status }))?;
                tracing::info!(pod = %key, %message, "unschedulable");
            }
            return Ok(Action::Requeue(RETRY));
        };
        let mut bound = pod.clone();
        bound.spec.get_or_insert_with(Default::default).node_name = Some(node.clone());
        let status = json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
        });
        let mut batch = Batch::new();
        batch.push(Op::Update(to_value(&bound)));
        batch.push(Op::Status { key: key.clone(), uid: pod.metadata.uid.clone(), status });
        store.apply(batch)?;
        let message = format!("Successfully assigned {}/{} to {node}", key.namespace, key.name);
        self.ctx.events.record(&value, EventType::Normal, "Scheduled", &message);
        tracing::debug!(pod = %key, node, "scheduled");
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    //! When pending pods are woken: a node's heartbeat does not wake them,
    //! a node offering more does.

    use std::sync::Arc;

    use driftless_store::{EventType as Change, Key, SqliteStore, Store, WatchEvent};
    use serde_json::{Value, json};

    use super::*;

    fn node(cpu: &str, heartbeat: &str) -> Arc<Value> {
        Arc::new(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {"kubernetes.io/os": "linux"}},
            "status": {"allocatable": {"cpu": cpu, "pods": "110"}, "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": heartbeat}]},
        }))
    }

    fn event(kind: Change, object: Arc<Value>) -> WatchEvent {
        WatchEvent { kind, key: Key::new(Kind::Node, "", "node-1"), object, revision: 1 }
    }

    #[test]
    fn a_heartbeat_wakes_no_pending_pod_and_more_room_wakes_them_all() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
        let scheduler = Scheduler::new(Context::new(store, "scheduler", "node-1"));
        assert!(scheduler.node_changed(&event(Change::Added, node("2", "10:00:00"))));
        assert!(!scheduler.node_changed(&event(Change::Modified, node("2", "10:00:10"))), "a heartbeat");
        assert!(scheduler.node_changed(&event(Change::Modified, node("4", "10:00:20"))), "more CPU");
        assert!(scheduler.node_changed(&event(Change::Deleted, node("4", "10:00:20"))));
    }
}
