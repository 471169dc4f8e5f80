//! Tests of the ReplicaSet and ReplicationController controller on the
//! simulated cluster.

use driftless_model::Kind;
use driftless_store::{Batch, Op, StoreExt, key_of};

use crate::testing::Sim;

/// ReplicaSet `web` of `replicas` pods labelled `app: web`.
fn web(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: web, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: c, image: app:1}}]}}
"
    )
}

#[tokio::test]
async fn keeps_replicas_adopts_orphans_and_replaces_deleted_pods() {
    let sim = Sim::new();
    sim.apply_yaml(
        "apiVersion: v1
kind: Pod
metadata: {name: stray, namespace: default, labels: {app: db}}
spec: {containers: [{name: c, image: app:1}]}
",
    );
    sim.apply_yaml(
        "apiVersion: v1
kind: ReplicationController
metadata: {name: db, namespace: default}
spec:
  replicas: 3
  selector: {app: db}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: app:1}]}
",
    );
    sim.settle().await;
    let pods = sim.pods();
    assert_eq!(pods.len(), 3, "the orphan is adopted and counted");
    let stray = pods.iter().find(|p| p.metadata.name.as_deref() == Some("stray")).unwrap();
    assert_eq!(stray.metadata.owner_references.as_ref().unwrap()[0].kind, "ReplicationController");
    let rc = sim.get(Kind::ReplicationController, "default", "db");
    assert_eq!(rc["status"]["readyReplicas"], 3);

    // A pod deleted behind the controller's back is replaced.
    let victim = pods.iter().find(|p| p.metadata.name.as_deref() != Some("stray")).unwrap();
    sim.store().apply(Batch::one(Op::Delete { key: key_of(victim), uid: None })).unwrap();
    sim.settle().await;
    assert_eq!(sim.pods().len(), 3);
    assert!(sim.pods().iter().all(|p| p.metadata.name != victim.metadata.name));
}

#[tokio::test]
async fn min_ready_seconds_delays_availability() {
    let sim = Sim::new();
    sim.apply_yaml(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  minReadySeconds: 30
  selector: {matchExpressions: [{key: app, operator: In, values: [web]}]}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: app:1}]}
",
    );
    sim.settle().await;
    let rs = sim.get(Kind::ReplicaSet, "default", "web");
    assert_eq!(rs["status"]["readyReplicas"], 2);
    assert_eq!(rs["status"]["availableReplicas"], 0);
    sim.advance(31);
    sim.settle().await;
    assert_eq!(sim.get(Kind::ReplicaSet, "default", "web")["status"]["availableReplicas"], 2);
    assert_eq!(sim.store().api::<driftless_model::k8s_openapi::api::core::v1::Pod>().list(None).len(), 2);
}

#[tokio::test]
async fn scaling_down_takes_from_the_node_that_runs_the_most() {
    let sim = Sim::new();
    sim.apply_yaml(&web(4));
    sim.settle().await;
    // Three on node-a, one on node-b: the one on node-b is first in every
    // other respect (the pods are alike, and it is listed first).
    let mut pods = sim.pods();
    pods.sort_by_key(|p| p.metadata.name.clone());
    let mut batch = Batch::new();
    for (i, pod) in pods.iter().enumerate() {
        let mut moved = serde_json::to_value(pod).unwrap();
        moved["spec"]["nodeName"] = serde_json::json!(if i == 0 { "node-b" } else { "node-a" });
        batch.push(Op::Update(moved));
    }
    sim.store().apply(batch).unwrap();
    sim.settle().await;
    sim.apply_yaml(&web(3));
    sim.settle().await;
    let nodes: Vec<String> = sim.pods().iter().filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(nodes.iter().filter(|n| *n == "node-a").count(), 2, "{nodes:?}");
    assert_eq!(nodes.iter().filter(|n| *n == "node-b").count(), 1, "{nodes:?}");
}

#[tokio::test]
async fn a_pod_relabelled_out_of_the_selector_is_released_whole_and_replaced() {
    let sim = Sim::new();
    sim.apply_yaml(&web(2));
    sim.settle().await;
    // As `kubectl label pod ... app=debug --overwrite` takes a pod out for
    // a look: the controller lets go of it and makes another.
    let mut taken = sim.pods().remove(0);
    taken.metadata.labels.get_or_insert_with(Default::default).insert("app".into(), "debug".into());
    sim.store().apply(Batch::one(Op::Update(driftless_store::to_value(&taken)))).unwrap();
    sim.settle().await;
    let pods = sim.pods();
    assert_eq!(pods.len(), 3, "two for the ReplicaSet, and the one let go");
    let released = pods.iter().find(|p| p.metadata.name == taken.metadata.name).unwrap();
    assert!(released.metadata.owner_references.iter().flatten().all(|o| o.kind != "ReplicaSet"), "released: {:?}", released.metadata.owner_references);
    assert_eq!(released.spec, taken.spec, "its spec is kept whole");
    assert_eq!(sim.get(Kind::ReplicaSet, "default", "web")["status"]["replicas"], 2);
}
