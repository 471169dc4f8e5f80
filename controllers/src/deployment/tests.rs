//! Tests of the Deployment controller on the simulated cluster: rollouts
//! respect maxSurge and maxUnavailable at every step, Recreate never runs
//! both versions, scale-only changes do not roll, a broken rollout stalls
//! with the old pods serving and times out, and a revert reuses the old
//! ReplicaSet.

use driftless_model::Kind;
use driftless_model::k8s_openapi::api::apps::v1::ReplicaSet;
use driftless_store::StoreExt;

use crate::testing::Sim;

fn deployment(replicas: u32, image: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: 60
  selector: {{matchLabels: {{app: web}}}}
  strategy: {strategy}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: c, image: {image}}}]
"
    )
}

const ROLLING: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}";

fn replica_sets(sim: &Sim) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = sim
        .store()
        .api::<ReplicaSet>()
        .list(Some("default"))
        .into_iter()
        .map(|rs| {
            let image = rs.spec.as_ref().unwrap().template.as_ref().unwrap().spec.as_ref().unwrap().containers[0].image.clone().unwrap();
            (image, rs.spec.unwrap().replicas.unwrap())
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn creates_one_replica_set_and_reports_availability() {
    let sim = Sim::new();
    sim.apply_yaml(&deployment(3, "app:1", ROLLING));
    sim.settle().await;
    assert_eq!(replica_sets(&sim), [("app:1".to_owned(), 3)]);
    assert_eq!(sim.pods_by_image()["app:1"], (3, 3));
    let d = sim.get(Kind::Deployment, "default", "web");
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    let progressing = d["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Progressing").unwrap().clone();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    let rs = sim.store().api::<ReplicaSet>().list(Some("default")).remove(0);
    let name = rs.metadata.name.clone().unwrap();
    assert!(name.starts_with("web-") && name.len() > 8, "{name}");
    assert_eq!(rs.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"], "1");
    for pod in sim.pods() {
        assert!(pod.metadata.name.unwrap().starts_with(&format!("{name}-")));
        assert!(pod.metadata.labels.unwrap().contains_key("pod-template-hash"));
    }
}

#[tokio::test]
async fn a_rolling_update_stays_within_surge_and_unavailability_at_every_step() {
    let sim = Sim::new();
    sim.apply_yaml(&deployment(4, "app:1", ROLLING));
    sim.settle().await;
    sim.apply_yaml(&deployment(4, "app:2", ROLLING));
    let mut saw_both = false;
    sim.settle_checking(200, |sim| {
        let by_image = sim.pods_by_image();
        let total: usize = by_image.values().map(|(n, _)| n).sum();
        let ready: usize = by_image.values().map(|(_, r)| r).sum();
        assert!(total <= 5, "more than replicas + maxSurge pods: {by_image:?}");
        assert!(ready >= 3, "fewer than replicas - maxUnavailable ready: {by_image:?}");
        saw_both |= by_image.len() == 2;
    })
    .await;
    assert!(saw_both, "old and new ran side by side during the rollout");
    assert_eq!(sim.pods_by_image().keys().collect::<Vec<_>>(), ["app:2"]);
    assert_eq!(replica_sets(&sim), [("app:1".to_owned(), 0), ("app:2".to_owned(), 4)]);
}

#[tokio::test]
async fn recreate_never_runs_both_versions() {
    let sim = Sim::new();
    let recreate = "{type: Recreate}";
    sim.apply_yaml(&deployment(3, "app:1", recreate));
    sim.settle().await;
    sim.apply_yaml(&deployment(3, "app:2", recreate));
    sim.settle_checking(200, |sim| {
        let pods = sim.pods();
        let images: std::collections::BTreeSet<_> = pods.iter().map(|p| p.spec.as_ref().unwrap().containers[0].image.clone().unwrap()).collect();
        assert!(images.len() <= 1, "both versions exist at once: {images:?}");
    })
    .await;
    assert_eq!(sim.pods_by_image()["app:2"], (3, 3));
}

#[tokio::test]
async fn scaling_only_does_not_roll_pods() {
    let sim = Sim::new();
    sim.apply_yaml(&deployment(2, "app:1", ROLLING));
    sim.settle().await;
    let before: Vec<_> = sim.pods().into_iter().map(|p| p.metadata.name.unwrap()).collect();
    sim.apply_yaml(&deployment(5, "app:1", ROLLING));
    sim.settle().await;
    assert_eq!(replica_sets(&sim), [("app:1".to_owned(), 5)]);
    let after: Vec<_> = sim.pods().into_iter().map(|p| p.metadata.name.unwrap()).collect();
    assert_eq!(after.len(), 5);
    assert!(before.iter().all(|p| after.contains(p)), "the first pods keep running");
    sim.apply_yaml(&deployment(1, "app:1", ROLLING));
    sim.settle().await;
    assert_eq!(sim.pods_by_image()["app:1"], (1, 1));
}

#[tokio::test]
async fn a_broken_rollout_keeps_old_pods_serving_then_times_out_and_a_revert_recovers() {
    let sim = Sim::new();
    sim.broken_images.lock().unwrap().push("app:broken".into());
    sim.apply_yaml(&deployment(4, "app:1", ROLLING));
    sim.settle().await;
    sim.apply_yaml(&deployment(4, "app:broken", ROLLING));
    sim.settle().await;
    let by_image = sim.pods_by_image();
    assert_eq!(by_image["app:1"].1, 3, "replicas - maxUnavailable old pods keep serving: {by_image:?}");
    assert_eq!(by_image["app:broken"], (2, 0), "surge + unavailability worth of new pods, none ready");
    sim.advance(61);
    sim.settle().await;
    let d = sim.get(Kind::Deployment, "default", "web");
    let progressing = d["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Progressing").unwrap().clone();
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");

    // git revert: the old template again.
    sim.apply_yaml(&deployment(4, "app:1", ROLLING));
    sim.settle().await;
    assert_eq!(sim.pods_by_image().keys().collect::<Vec<_>>(), ["app:1"]);
    assert_eq!(sim.pods_by_image()["app:1"], (4, 4));
    let sets = sim.store().api::<ReplicaSet>().list(Some("default"));
    assert_eq!(sets.len(), 2, "the old ReplicaSet is reused, not a third made");
    let old = sets
        .iter()
        .find(|rs| rs.spec.as_ref().unwrap().template.as_ref().unwrap().spec.as_ref().unwrap().containers[0].image.as_deref() == Some("app:1"))
        .unwrap();
    assert_eq!(old.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"], "3");
    let d = sim.get(Kind::Deployment, "default", "web");
    let progressing = d["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Progressing").unwrap().clone();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
}

#[tokio::test]
async fn old_replica_sets_beyond_the_history_limit_are_removed() {
    let sim = Sim::new();
    for version in 1..=5 {
        let yaml = deployment(1, &format!("app:{version}"), ROLLING).replace("progressDeadlineSeconds: 60", "revisionHistoryLimit: 2");
        sim.apply_yaml(&yaml);
        sim.settle().await;
    }
    let images: Vec<_> = replica_sets(&sim).into_iter().map(|(i, _)| i).collect();
    assert_eq!(images, ["app:3", "app:4", "app:5"]);
}

#[tokio::test]
async fn paused_deployments_scale_but_do_not_roll() {
    let sim = Sim::new();
    sim.apply_yaml(&deployment(2, "app:1", ROLLING));
    sim.settle().await;
    let paused = deployment(3, "app:2", ROLLING).replace("  replicas: 3\n", "  replicas: 3\n  paused: true\n");
    sim.apply_yaml(&paused);
    sim.settle().await;
    assert_eq!(replica_sets(&sim), [("app:1".to_owned(), 3)]);
    sim.apply_yaml(&deployment(3, "app:2", ROLLING));
    sim.settle().await;
    assert_eq!(sim.pods_by_image()["app:2"], (3, 3));
}
