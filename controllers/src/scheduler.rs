//! The scheduler: binds each pod with no `spec.nodeName` to the node that
//! fits it best ([`filter`]), or leaves it Pending with a
//! `FailedScheduling` event that says why. It looks at every Node in the
//! store, so it serves several nodes as well as one.

pub mod filter;

use driftless_model::Kind;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::k8s_openapi::api::core::v1::{Node, Pod};
use driftless_store::{Batch, EventType as Change, Key, Op, Store, StoreExt, WatchEvent, to_value};
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
}

impl Scheduler {
    /// A scheduler.
    pub fn new(ctx: Context) -> Arc<Scheduler> {
        Arc::new(Scheduler { ctx })
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
    /// (a pod gone, a node changed).
    fn triggers(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        match (event.key.kind, event.kind) {
            (Kind::Pod, Change::Deleted) | (Kind::Node, _) => self.keys(store),
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
        let pod: Pod = serde_json::from_value((*value).clone()).map_err(|e| ReconcileError::Malformed(format!("Pod: {e}")))?;
        let nodes = store.api::<Node>().list(None);
        let all_pods = store.api::<Pod>().list(None);
        let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
        let mut best: Option<(i64, String)> = None;
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let on_node: Vec<&Pod> =
                all_pods.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()) && !pods::is_terminal(p)).collect();
            match filter::unfit(&pod, node, &on_node) {
                Some(reason) => *reasons.entry(reason).or_default() += 1,
                None => {
                    let score = filter::score(&pod, node, &on_node);
                    if best.as_ref().is_none_or(|(s, n)| score > *s || score == *s && name < *n) {
                        best = Some((score, name));
                    }
                }
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
