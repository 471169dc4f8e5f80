//! The kubelet on the recording fake runtime: what it runs, stops,
//! adopts, drains and reports, with no root, processes or clock.

use driftless_model::Kind;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use driftless_nodeapi::fake::{Call, FakeImages, FakeRuntime};
use driftless_nodeapi::{ContainerState, ContainerStatus, Phase, PodStatus};
use driftless_store::{Batch, Key, Op, SqliteStore, Store};
use serde_json::json;

use super::*;
use crate::{Context, SystemClock};

struct Node {
    ctx: Context,
    fake: Arc<FakeRuntime>,
    kubelet: Arc<Kubelet>,
    applied: Arc<AtomicU64>,
}

fn node() -> Node {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let clock: Arc<dyn crate::Clock> = Arc::new(SystemClock);
    let events = Arc::new(driftless_events::Recorder::new(store.clone(), clock.clone(), "kubelet", "node-1"));
    let ctx = Context { store: store.clone(), events, clock };
    let fake = Arc::new(FakeRuntime::default());
    let resolve = Arc::new(StoreResolve::new(store, Arc::new(FakeImages)));
    let applied = Arc::new(AtomicU64::new(0));
    let kubelet = Kubelet::new(ctx.clone(), "node-1", "192.0.2.10", fake.clone(), resolve, Some(applied.clone()));
    Node { ctx, fake, kubelet, applied }
}

fn pod(name: &str, uid: &str, node: Option<&str>) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default", "uid": uid},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1.35"}],
                    "volumes": [{"name": "conf", "configMap": {"name": "settings"}}]}})
}

fn running(ip: &str) -> PodStatus {
    PodStatus {
        phase: Phase::Running,
        pod_ip: Some(ip.into()),
        containers: vec![ContainerStatus {
            name: "c".into(),
            state: ContainerState::Running { started_at: "2026-12-03T10:00:00Z".into() },
            last_termination: None,
            ready: true,
            restart_count: 0,
            probe_failures: 0,
            probe_message: None,
            container_id: Some("pod-c-0".into()),
            image_id: Some("docker.io/library/busybox@sha256:abc".into()),
        }],
    }
}

impl Node {
    fn create(&self, value: Value) -> Key {
        let key = Key::of(&value).unwrap();
        self.ctx.store.apply(Batch::one(Op::Create(value))).unwrap();
        key
    }

    /// How many times the pod's `reason` event happened (repeats raise a count).
    fn count(&self, name: &str, reason: &str) -> u64 {
        let events = driftless_events::about(&*self.ctx.store, "Pod", "default", name, None);
        events.iter().filter(|e| e["reason"] == reason).map(|e| e["count"].as_u64().unwrap_or(1)).sum()
    }

    fn events(&self, name: &str) -> Vec<String> {
        driftless_events::about(&*self.ctx.store, "Pod", "default", name, None).iter().map(|e| e["reason"].as_str().unwrap_or("").to_owned()).collect()
    }
}

#[tokio::test]
async fn runs_bound_pods_and_writes_what_the_runtime_reports() {
    let node = node();
    let key = node.create(pod("web", "u1", Some("node-1")));
    node.create(pod("elsewhere", "u2", Some("node-2")));
    assert_eq!(node.kubelet.keys(&*node.ctx.store), std::slice::from_ref(&key), "only this node's pods");

    assert_eq!(node.kubelet.reconcile(&key).await.unwrap(), Action::AwaitChange);
    assert_eq!(node.fake.calls(), [Call::Run("u1".into())]);
    // Running again is a no-op for the runtime, but a refresh of volumes.
    node.kubelet.reconcile(&key).await.unwrap();
    assert_eq!(node.fake.calls()[1..], [Call::Run("u1".into()), Call::Refresh("u1".into())]);

    node.fake.set_status("u1", running("10.244.0.5"));
    node.kubelet.report_once().unwrap();
    let stored = node.ctx.store.get(&key).unwrap();
    assert_eq!(stored["status"]["phase"], "Running");
    assert_eq!(stored["status"]["podIP"], "10.244.0.5");
    assert_eq!(stored["status"]["hostIP"], "192.0.2.10");
    let ready = stored["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    assert_eq!(ready["status"], "True");
    assert_eq!(node.events("web"), ["Created", "Started"]);

    // An unchanged status is not written again.
    let revision = node.ctx.store.revision();
    node.kubelet.report_once().unwrap();
    assert_eq!(node.ctx.store.revision(), revision);
}

#[tokio::test]
async fn orphans_are_stopped_and_adopted_pods_are_not_restarted() {
    let node = node();
    // What a killed daemon left running: one pod the store still has, one
    // it does not.
    node.fake.set_status("kept", running("10.244.0.6"));
    node.fake.set_status("orphan", running("10.244.0.7"));
    let key = node.create(pod("kept", "kept", Some("node-1")));
    assert_eq!(node.kubelet.remove_orphans().await.unwrap(), 1);
    assert_eq!(node.fake.calls(), [Call::Stop("orphan".into())]);

    node.kubelet.reconcile(&key).await.unwrap();
    assert_eq!(node.fake.calls()[1..], [Call::Run("kept".into())], "run_pod adopts by uid; the runtime does not start it again");
}

#[tokio::test]
async fn a_restarted_daemon_records_no_start_for_containers_it_only_adopted() {
    let node = node();
    let key = node.create(pod("web", "u1", Some("node-1")));
    node.kubelet.reconcile(&key).await.unwrap();
    node.fake.set_status("u1", running("10.244.0.5"));
    node.kubelet.report_once().unwrap();
    assert_eq!(node.events("web"), ["Created", "Started"]);

    // A new daemon process: a kubelet that has reported nothing yet, on
    // the same store and the same still-running container.
    let resolve = Arc::new(StoreResolve::new(node.ctx.store.clone(), Arc::new(FakeImages)));
    let restarted = Kubelet::new(node.ctx.clone(), "node-1", "192.0.2.10", node.fake.clone(), resolve, None);
    restarted.reconcile(&key).await.unwrap();
    restarted.report_once().unwrap();
    assert_eq!(node.count("web", "Started"), 1, "adoption starts nothing");

    // A container that did restart while the daemon was down is reported.
    let mut again = running("10.244.0.5");
    again.containers[0].state = ContainerState::Running { started_at: "2026-12-03T10:05:00Z".into() };
    again.containers[0].restart_count = 1;
    node.fake.set_status("u1", again);
    let resolve = Arc::new(StoreResolve::new(node.ctx.store.clone(), Arc::new(FakeImages)));
    let third = Kubelet::new(node.ctx.clone(), "node-1", "192.0.2.10", node.fake.clone(), resolve, None);
    third.reconcile(&key).await.unwrap();
    third.report_once().unwrap();
    assert_eq!((node.count("web", "Created"), node.count("web", "Started")), (2, 2));
}

#[tokio::test]
async fn replaced_and_moved_pods_stop_under_their_old_uid() {
    let node = node();
    let key = node.create(pod("web", "old", Some("node-1")));
    node.kubelet.reconcile(&key).await.unwrap();
    // The sync replaced it: same name, new uid.
    node.ctx.store.apply(Batch::new().push(Op::Delete { key: key.clone(), uid: None }).push(Op::Create(pod("web", "new", Some("node-1")))).clone()).unwrap();
    node.kubelet.reconcile(&key).await.unwrap();
    assert_eq!(node.fake.calls(), [Call::Run("old".into()), Call::Stop("old".into()), Call::Run("new".into())]);
}

#[tokio::test]
async fn an_image_pull_back_off_retries_when_the_runtime_says() {
    let node = node();
    let key = node.create(pod("web", "u1", Some("node-1")));
    node.fake.pull_fails("u1", "registry.example/app:1", Duration::from_secs(40));
    assert_eq!(node.kubelet.reconcile(&key).await.unwrap(), Action::Requeue(Duration::from_secs(40)));
    node.fake.pull_succeeds("u1");
    assert_eq!(node.kubelet.reconcile(&key).await.unwrap(), Action::AwaitChange);
}

#[tokio::test]
async fn finished_pods_of_an_earlier_run_are_never_rerun() {
    let node = node();
    let mut done = pod("job", "u1", Some("node-1"));
    done["status"] = json!({"phase": "Succeeded"});
    let key = node.create(done);
    node.kubelet.reconcile(&key).await.unwrap();
    assert!(node.fake.calls().is_empty());
}

#[tokio::test]
async fn a_deleted_pod_serves_until_no_service_sends_to_it_then_stops() {
    let node = node();
    let key = node.create(pod("web", "u1", Some("node-1")));
    node.kubelet.reconcile(&key).await.unwrap();
    node.fake.set_status("u1", running("10.244.0.5"));
    node.kubelet.report_once().unwrap();
    let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
                           "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 80}]}]});
    let endpoints_key = node.create(endpoints);

    // Deleted gracefully: still listed in Endpoints, so it keeps serving.
    let live = node.ctx.store.get(&key).unwrap();
    node.ctx.store.apply(Batch::one(driftless_store::delete_op(&live, jiff::Timestamp::now()).unwrap())).unwrap();
    assert!(matches!(node.kubelet.reconcile(&key).await.unwrap(), Action::Requeue(_)));
    assert!(!node.fake.calls().contains(&Call::Stop("u1".into())));

    // The Endpoints controller drops it; until the proxy has applied a
    // store without it, it still serves.
    node.ctx.store.apply(Batch::one(Op::Delete { key: endpoints_key, uid: None })).unwrap();
    assert!(matches!(node.kubelet.reconcile(&key).await.unwrap(), Action::Requeue(_)));
    node.applied.store(node.ctx.store.revision(), std::sync::atomic::Ordering::SeqCst);
    assert_eq!(node.kubelet.reconcile(&key).await.unwrap(), Action::AwaitChange);
    assert_eq!(node.fake.calls().last(), Some(&Call::Stop("u1".into())));
    assert!(node.ctx.store.get(&key).is_none(), "removed from the store once stopped");
    assert!(node.events("web").contains(&"Killing".to_owned()));
}

#[tokio::test]
async fn config_changes_reach_the_pods_that_use_them() {
    let node = node();
    let key = node.create(pod("web", "u1", Some("node-1")));
    node.create(pod("other", "u2", Some("node-1")));
    let mut other = (*node.ctx.store.get(&Key::new(Kind::Pod, "default", "other")).unwrap()).clone();
    other["spec"]["volumes"] = json!([]);
    other["status"] = json!({"phase": "Running"});
    node.ctx.store.apply(Batch::one(Op::Put(other))).unwrap();
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"}, "data": {"a": "1"}});
    node.create(config.clone());
    let event = driftless_store::WatchEvent {
        kind: driftless_store::EventType::Modified,
        key: Key::new(Kind::ConfigMap, "default", "settings"),
        object: Arc::new(config),
        revision: node.ctx.store.revision(),
    };
    // The pod that mounts it (Pending here) is woken; the other is not.
    assert_eq!(node.kubelet.triggers(&event, &*node.ctx.store), [key]);
}

#[test]
fn each_failed_probe_is_an_unhealthy_event_in_the_probers_words() {
    let before = running("10.244.0.5");
    let mut after = before.clone();
    after.containers[0].ready = false;
    after.containers[0].probe_failures = 2;
    after.containers[0].probe_message = Some("Readiness probe failed: HTTP probe failed with statuscode: 500".into());
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web-1"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.35"}]}})).unwrap();
    let events = status::events(&pod, Some(&before), None, &after);
    let unhealthy: Vec<&String> = events.iter().filter(|(_, reason, _)| *reason == "Unhealthy").map(|(_, _, m)| m).collect();
    assert_eq!(unhealthy, ["Readiness probe failed: HTTP probe failed with statuscode: 500"; 2]);
    // Seen again with no new failure: nothing; adopted: nothing either.
    assert!(status::events(&pod, Some(&after), None, &after).is_empty());
    assert!(status::events(&pod, None, None, &after).iter().all(|(_, reason, _)| *reason != "Unhealthy"));
}

#[test]
fn a_failed_pull_is_reported_in_kubelets_words() {
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web-1"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.35"}]}})).unwrap();
    let before = running("10.244.0.5");
    let mut after = before.clone();
    let message = "pulling \"docker.io/library/busybox:1.35\": the registry sent more than the 1031919 bytes the manifest gives".to_owned();
    after.containers[0].state = ContainerState::Waiting { reason: "ErrImagePull".into(), message: Some(message.clone()) };
    let events = status::events(&pod, Some(&before), None, &after);
    assert_eq!(events, [(EventType::Warning, "Failed", format!("Failed to pull image \"busybox:1.35\": {message}"))]);
}

#[tokio::test(start_paused = true)]
async fn a_status_change_is_reported_at_once_not_at_the_next_poll() {
    let node = node();
    let key = node.create(pod("web", "u1", Some("node-1")));
    node.kubelet.reconcile(&key).await.unwrap();
    let cancel = CancellationToken::new();
    let reporting = tokio::spawn(node.kubelet.clone().report_statuses(cancel.clone()));
    // Paused, the clock moves only when every task waits; this one never
    // waits, so no poll tick can pass and only the runtime's word can
    // bring the status in.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !node.fake.watched() {
        assert!(std::time::Instant::now() < deadline, "the kubelet never asked to be told of changes");
        tokio::task::yield_now().await;
    }
    // The first report (the poll's first tick is at once) has written
    // what the runtime said when the pod was run.
    while node.ctx.store.get(&key).unwrap()["status"]["phase"] != "Pending" {
        assert!(std::time::Instant::now() < deadline, "the first report never came");
        tokio::task::yield_now().await;
    }
    let started = tokio::time::Instant::now();
    node.fake.set_status("u1", running("10.244.0.5"));
    while node.ctx.store.get(&key).unwrap()["status"]["phase"] != "Running" {
        assert!(std::time::Instant::now() < deadline, "the change was not reported");
        tokio::task::yield_now().await;
    }
    assert_eq!(tokio::time::Instant::now(), started, "reported before any poll");
    cancel.cancel();
    reporting.await.unwrap();
}
