//! The node's metrics sampler, metrics-server's part on one node: every
//! [`INTERVAL`] it reads, through the runtime, the counters of the running
//! containers of each pod bound to this node and the machine's, and
//! records them in [`Metrics`] under the pod's `namespace/name`, where the
//! API serves them as `metrics.k8s.io` and the HPA reads them.
//!
//! Must not touch: the store (it only reads pods), or cgroups (the runtime
//! reads them).

use std::collections::HashSet;
use std::time::Duration;

use driftless_model::Kind;
use driftless_nodeapi::{Metrics, PodRuntime, SharedRuntime};
use driftless_store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::Context;

/// How often the node samples: metrics-server's default resolution.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Samples every `interval` until `cancel`.
pub async fn sample(ctx: Context, runtime: SharedRuntime, node: String, metrics: Metrics, interval: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (store, runtime, node, metrics) = (ctx.store.clone(), runtime.clone(), node.clone(), metrics.clone());
        let now_ms = ctx.now().as_millisecond();
        let sampled = tokio::task::spawn_blocking(move || sample_once(&*store, &*runtime, &node, &metrics, now_ms)).await;
        if let Err(error) = sampled {
            tracing::warn!(%error, "metrics sampling failed");
        }
    }
}

/// Reads every pod of `node` and the machine once, at `now_ms`.
pub fn sample_once(store: &dyn Store, runtime: &dyn PodRuntime, node: &str, metrics: &Metrics, now_ms: i64) {
    let (pods, _) = store.list(Kind::Pod, None);
    let mut present = HashSet::new();
    for pod in pods.iter().filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)) {
        let text = |pointer: &str| pod.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
        let (uid, key) = (text("/metadata/uid"), format!("{}/{}", text("/metadata/namespace"), text("/metadata/name")));
        let reading = runtime.usage(uid);
        if reading.is_empty() {
            continue;
        }
        metrics.record(&key, now_ms, reading);
        present.insert(key);
    }
    metrics.retain(&|key| present.contains(key));
    if let Some(reading) = runtime.node_usage() {
        metrics.record_node(node, now_ms, reading);
    }
}

#[cfg(test)]
mod tests {
    use driftless_nodeapi::fake::FakeRuntime;
    use driftless_nodeapi::{ContainerUsage, NodeUsage, Usage};
    use driftless_store::{Batch, Op, SqliteStore};
    use serde_json::json;

    use super::*;

    #[test]
    fn pods_of_this_node_are_sampled_by_name_and_forgotten_when_gone() {
        let store = SqliteStore::in_memory();
        let mut batch = Batch::new();
        for (name, node) in [("web", "node-1"), ("elsewhere", "node-2")] {
            batch.push(Op::Create(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
                "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox"}]}})));
        }
        store.apply(batch).unwrap();
        let runtime = FakeRuntime::default();
        let reading = |cpu| vec![ContainerUsage { name: "app".into(), cpu_nanoseconds: cpu, memory_working_set: 1 << 20 }];
        runtime.set_usage("uid-web", reading(0));
        runtime.set_usage("uid-elsewhere", reading(0));
        runtime.set_node_usage(NodeUsage { cpu_nanoseconds: 0, memory_working_set: 1 << 30 });
        let metrics = Metrics::new();
        sample_once(&store, &runtime, "node-1", &metrics, 0);
        // Half a core for 10 s.
        runtime.set_usage("uid-web", reading(5_000_000_000));
        runtime.set_usage("uid-elsewhere", reading(5_000_000_000));
        runtime.set_node_usage(NodeUsage { cpu_nanoseconds: 10_000_000_000, memory_working_set: 1 << 30 });
        sample_once(&store, &runtime, "node-1", &metrics, 10_000);
        let web = metrics.pod("default/web").unwrap();
        assert_eq!(web.containers, vec![("app".to_owned(), Usage { nanocores: 500_000_000, memory_bytes: 1 << 20 })]);
        assert_eq!(metrics.pod("default/elsewhere"), None, "another node's pod");
        assert_eq!(metrics.node().map(|n| (n.name, n.usage.nanocores)), Some(("node-1".to_owned(), 1_000_000_000)));
        // The pod stops: its metrics go.
        runtime.set_usage("uid-web", vec![]);
        sample_once(&store, &runtime, "node-1", &metrics, 20_000);
        assert_eq!(metrics.pod("default/web"), None);
    }
}
