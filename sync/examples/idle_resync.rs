//! Benchmark: what an idle periodic resync costs with 1,000 objects in the
//! store: every controller reconciling every key it owns (as the runner's
//! resync does), and the sync loop planning the applied revision against
//! the store, when nothing has changed.
//!
//! Usage: `cargo run --release -p driftless-sync --example idle_resync
//! [ROUNDS]`. Builds 30 Deployments (3 pods each, so 30 ReplicaSets and
//! 90 Pods: a node holds 110), 500 ConfigMaps, 300 Services and 50
//! Secrets: 1,000 objects. The node
//! agent runs over the recording fake runtime, so this times the control
//! plane alone. It checks that an idle pass writes nothing.

use driftless_model::Kind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_controllers::Context;
use driftless_controllers::deployment::DeploymentController;
use driftless_controllers::gc::GarbageCollector;
use driftless_controllers::kubelet::{Kubelet, StoreResolve};
use driftless_controllers::node::{NodeInfo, register};
use driftless_controllers::replicaset::{Flavor, ReplicaSetController};
use driftless_controllers::runner::Reconciler;
use driftless_controllers::scheduler::Scheduler;
use driftless_controllers::statefulset::StatefulSetController;
use driftless_controllers::storage::{ClaimBinder, VolumeReclaimer};
use driftless_model::{Object, ObjectRef};
use driftless_store::{Batch, Key, Op, SqliteStore, Store};
use serde_json::{Value, json};

fn declared() -> BTreeMap<ObjectRef, Object> {
    let mut values = Vec::new();
    for i in 0..30 {
        values.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("app-{i}")},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                    "spec": {"containers": [{"name": "c", "image": "busybox:1.35", "ports": [{"containerPort": 8080}]}]}}}}));
    }
    for i in 0..500 {
        values.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("config-{i}")}, "data": {"key": "value"}}));
    }
    for i in 0..300 {
        values.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("svc-{i}")},
            "spec": {"selector": {"app": format!("app-{}", i % 30)}, "ports": [{"port": 80, "targetPort": 8080}]}}));
    }
    for i in 0..50 {
        values.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("secret-{i}")}, "stringData": {"password": "hunter2"}}));
    }
    values
        .iter()
        .map(|v| {
            let object = Object::parse(v).unwrap();
            (object.object_ref(), object)
        })
        .collect()
}

async fn pass<R: Reconciler>(reconciler: &Arc<R>, store: &dyn Store) -> (usize, Duration) {
    let keys = reconciler.keys(store);
    let started = Instant::now();
    for key in &keys {
        reconciler.reconcile(key).await.unwrap();
    }
    (keys.len(), started.elapsed())
}

/// The stand-in for the node: bound pods Running and Ready.
fn mark_running(store: &dyn Store) {
    let mut batch = Batch::new();
    for pod in store.list(Kind::Pod, None).0 {
        if pod.pointer("/spec/nodeName").is_none() || pod.pointer("/status/phase") == Some(&Value::from("Running")) {
            continue;
        }
        let status = json!({"phase": "Running", "podIP": "10.244.0.2",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        batch.push(Op::Status { key: Key::of(&pod).unwrap(), uid: None, status });
    }
    if !batch.is_empty() {
        store.apply(batch).unwrap();
    }
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let ctx = Context::new(store.clone(), "bench", "node-1");
    let mut info = NodeInfo::of_this_machine("node-1", "10.244.0.1", "10.244.0.0/24");
    info.memory = 64 << 30;
    info.cpus = 64;
    register(&ctx, &info).unwrap();
    let desired = declared();
    let plan = driftless_diff::plan(&desired, &driftless_sync::StoreLive::new(&*store));
    let (batch, _) = driftless_sync::batch_for(&plan, &*store, "abc1234 bench", jiff::Timestamp::now());
    store.apply(batch).unwrap();

    let images = Arc::new(driftless_nodeapi::fake::FakeImages);
    let fake: driftless_nodeapi::SharedRuntime = Arc::new(driftless_nodeapi::fake::FakeRuntime::default());
    let kubelet = Kubelet::new(ctx.clone(), "node-1", "10.244.0.1", fake, Arc::new(StoreResolve::new(store.clone(), images)), None);
    let volumes = dir.path().join("volumes");
    let rs = ReplicaSetController::new(ctx.clone(), Flavor::ReplicaSet);
    let rc = ReplicaSetController::new(ctx.clone(), Flavor::ReplicationController);
    let deployments = DeploymentController::new(ctx.clone());
    let sets = StatefulSetController::new(ctx.clone());
    let scheduler = Scheduler::new(ctx.clone());
    let binder = ClaimBinder::new(ctx.clone(), volumes.clone());
    let reclaimer = VolumeReclaimer::new(ctx.clone(), volumes);
    let gc = GarbageCollector::new(ctx.clone());

    // Settle: until a whole round writes nothing.
    runtime.block_on(async {
        for _ in 0..50 {
            let before = store.revision();
            pass(&deployments, &*store).await;
            pass(&rs, &*store).await;
            pass(&scheduler, &*store).await;
            pass(&kubelet, &*store).await;
            mark_running(&*store);
            if store.revision() == before {
                break;
            }
        }
    });
    let kinds = [Kind::Deployment, Kind::ReplicaSet, Kind::Pod, Kind::ConfigMap, Kind::Service, Kind::Secret, Kind::Event];
    let counts: Vec<String> = kinds.iter().map(|k| format!("{} {k}", store.list(*k, None).0.len())).collect();
    let objects: usize = kinds.iter().filter(|k| **k != Kind::Event).map(|k| store.list(*k, None).0.len()).sum();
    println!("store: {objects} objects ({})", counts.join(", "));

    let mut totals: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..rounds {
        let before = store.revision();
        runtime.block_on(async {
            for (name, (n, took)) in [
                ("deployment", pass(&deployments, &*store).await),
                ("replicaset", pass(&rs, &*store).await),
                ("replicationcontroller", pass(&rc, &*store).await),
                ("statefulset", pass(&sets, &*store).await),
                ("scheduler", pass(&scheduler, &*store).await),
                ("claim-binder", pass(&binder, &*store).await),
                ("volume-reclaimer", pass(&reclaimer, &*store).await),
                ("garbage-collector", pass(&gc, &*store).await),
                ("kubelet", pass(&kubelet, &*store).await),
            ] {
                totals.entry(name).or_default().push(took);
                keys.insert(name, n);
            }
        });
        let started = Instant::now();
        let plan = driftless_diff::plan(&desired, &driftless_sync::StoreLive::new(&*store));
        let (batch, actions) = driftless_sync::batch_for(&plan, &*store, "abc1234 bench", jiff::Timestamp::now());
        totals.entry("sync (plan the applied revision)").or_default().push(started.elapsed());
        keys.insert("sync (plan the applied revision)", desired.len());
        assert!(batch.is_empty() && actions.is_empty(), "the applied revision plans to nothing");
        assert_eq!(store.revision(), before, "an idle resync writes nothing");
    }
    println!("| reconciler | keys | median | max |");
    println!("|---|---|---|---|");
    let mut all = Duration::ZERO;
    for (name, mut times) in totals {
        times.sort();
        let median = times[times.len() / 2];
        all += median;
        println!("| {name} | {} | {:.2} ms | {:.2} ms |", keys[name], median.as_secs_f64() * 1e3, times[times.len() - 1].as_secs_f64() * 1e3);
    }
    println!("| **total** | | **{:.1} ms** | |", all.as_secs_f64() * 1e3);
}
