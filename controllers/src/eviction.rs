//! Eviction by NoExecute taints, as Kubernetes' taint manager does it: a
//! pod bound to a node with a NoExecute taint it does not tolerate is
//! deleted (gracefully: its node stops it, if the node still can); one that
//! tolerates every such taint stays, until the shortest `tolerationSeconds`
//! of those tolerations has passed since the taint was added.
//!
//! Kubernetes' DefaultTolerationSeconds admission gives every pod a
//! toleration of 300 s for `node.kubernetes.io/not-ready` and `unreachable`
//! (NoExecute); here the pods are not rewritten, the default is applied
//! when judging a pod without a toleration of its own for those taints
//! (`--default-unreachable-toleration-seconds`), with the same outcome.
//!
//! Owns: deleting pods for NoExecute taints. Must not touch: the taints
//! (the node lifecycle's and users'), or replacing the pods (their
//! controllers do, on other nodes; a StatefulSet waits for the pod to be
//! gone, as Kubernetes guarantees at most one).

use std::time::Duration;

use driftless_model::k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use driftless_model::{Kind, KindOf};
use driftless_store::{Batch, StoreError, StoreExt, delete_op};
use jiff::Timestamp;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::scheduler::filter::tolerates;

/// How long pods tolerate a node that is not ready or unreachable unless
/// they say otherwise (kube-apiserver's default).
pub const DEFAULT_TOLERATION: Duration = Duration::from_secs(300);
/// How often taints and tolerations are judged.
const PERIOD: Duration = Duration::from_secs(1);

/// The taints the node lifecycle sets, which every pod tolerates for the
/// default time unless it says otherwise.
const DEFAULTED: [&str; 2] = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"];

/// When a pod with `tolerations` is to leave a node with `taints` (its
/// NoExecute ones): `None` never, else the time (now or later).
fn deadline(taints: &[Taint], tolerations: &[Toleration], default: Duration) -> Option<Timestamp> {
    let mut due: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let added = taint.time_added.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0);
        let matching: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        let seconds = if matching.is_empty() {
            if !DEFAULTED.contains(&taint.key.as_str()) {
                // Not tolerated: at once.
                return Some(Timestamp::UNIX_EPOCH);
            }
            Some(default.as_secs() as i64)
        } else {
            // Tolerated for the shortest time any matching toleration
            // gives; forever if none gives one.
            matching.iter().filter_map(|t| t.toleration_seconds).min()
        };
        if let Some(seconds) = seconds {
            let at = added.checked_add(jiff::SignedDuration::from_secs(seconds.max(0))).unwrap_or(added);
            due = Some(due.map_or(at, |d| d.min(at)));
        }
    }
    due
}

/// One pass: evicts every pod whose time on its tainted node is up; the
/// names (`namespace/name`) of those evicted.
pub fn evict(ctx: &Context, default: Duration) -> Result<Vec<String>, StoreError> {
    let now = ctx.now();
    let mut evicted = Vec::new();
    let nodes = ctx.store.api::<driftless_model::k8s_openapi::api::core::v1::Node>().list(None);
    for node in nodes {
        let taints: Vec<Taint> = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        if !taints.iter().any(|t| t.effect == "NoExecute") {
            continue;
        }
        let Some(node_name) = node.metadata.name.as_deref() else { continue };
        for pod in ctx.store.list(Kind::Pod, None).0 {
            if pod.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node_name) || pod.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let Ok(typed) = Pod::from_json(&pod) else { continue };
            let tolerations = typed.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
            let Some(due) = deadline(&taints, &tolerations, default) else { continue };
            if due > now {
                continue;
            }
            let Some(op) = delete_op(&pod, now) else { continue };
            ctx.store.apply(Batch::one(op))?;
            let name = format!("{}/{}", typed.metadata.namespace.as_deref().unwrap_or(""), typed.metadata.name.as_deref().unwrap_or(""));
            tracing::info!(pod = %name, node = node_name, "evicted for a NoExecute taint");
            ctx.events.record(&pod, driftless_events::EventType::Normal, "TaintManagerEviction", &format!("Marking for deletion Pod {name}"));
            evicted.push(name);
        }
    }
    Ok(evicted)
}

/// Judges every [`PERIOD`] until `cancel` fires.
pub async fn run(ctx: Context, default: Duration, cancel: CancellationToken) {
    crate::periodic::every(PERIOD, "eviction", cancel, move || evict(&ctx, default).map(drop)).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::Sim;
    use driftless_store::{Key, Op};

    fn pod(name: &str, tolerations: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}], "tolerations": tolerations},
        })
    }

    fn leaving(sim: &Sim, name: &str) -> bool {
        sim.ctx.store.get(&Key::new(Kind::Pod, "default", name)).is_none_or(|p| p.pointer("/metadata/deletionTimestamp").is_some())
    }

    #[test]
    fn pods_leave_a_tainted_node_when_their_tolerations_run_out() {
        let sim = Sim::new();
        for (name, tolerations) in [
            ("plain", json!([])),
            ("brief", json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}])),
            ("forever", json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}])),
            ("anything", json!([{"operator": "Exists"}])),
        ] {
            sim.ctx.store.apply(Batch::one(Op::Create(pod(name, tolerations)))).unwrap();
        }
        // No NoExecute taint: nothing leaves.
        assert!(evict(&sim.ctx, DEFAULT_TOLERATION).unwrap().is_empty());
        let mut node = (*sim.ctx.store.get(&Key::new(Kind::Node, "", "node-1")).unwrap()).clone();
        let added = crate::context::rfc3339(sim.ctx.now());
        node["spec"]["taints"] = json!([
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": added},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": added},
        ]);
        sim.ctx.store.apply(Batch::one(Op::Update(node.clone()))).unwrap();
        assert!(evict(&sim.ctx, DEFAULT_TOLERATION).unwrap().is_empty());
        sim.advance(10);
        assert_eq!(evict(&sim.ctx, DEFAULT_TOLERATION).unwrap(), ["default/brief"]);
        sim.advance(289);
        assert!(evict(&sim.ctx, DEFAULT_TOLERATION).unwrap().is_empty(), "the default is 300 s");
        sim.advance(1);
        assert_eq!(evict(&sim.ctx, DEFAULT_TOLERATION).unwrap(), ["default/plain"]);
        sim.advance(10_000);
        assert!(evict(&sim.ctx, DEFAULT_TOLERATION).unwrap().is_empty());
        assert!(leaving(&sim, "brief") && leaving(&sim, "plain") && !leaving(&sim, "forever") && !leaving(&sim, "anything"));
        // A NoExecute taint nobody tolerates (a user's) evicts at once,
        // unless tolerated.
        node["spec"]["taints"] = json!([{"key": "maintenance", "effect": "NoExecute", "timeAdded": crate::context::rfc3339(sim.ctx.now())}]);
        sim.ctx.store.apply(Batch::one(Op::Put(node))).unwrap();
        assert_eq!(evict(&sim.ctx, DEFAULT_TOLERATION).unwrap(), ["default/forever"]);
        assert!(!leaving(&sim, "anything"));
    }
}
