//! Tests of the StatefulSet controller on the simulated cluster: ordered
//! start, scale down from the highest ordinal with claims kept and reused,
//! and rolling updates that honour the partition.

use driftless_model::Kind;
use driftless_model::k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use driftless_store::StoreExt;

use crate::testing::Sim;

fn set(replicas: u32, image: &str, partition: u32) -> String {
    format!(
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: local, annotations: {{storageclass.kubernetes.io/is-default-class: 'true'}}}}
provisioner: driftless.dev/local-path
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: default}}
spec:
  replicas: {replicas}
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{partition: {partition}}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{{name: c, image: {image}}}]}}
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"
    )
}

fn names(sim: &Sim) -> Vec<String> {
    let mut n: Vec<String> = sim.pods().into_iter().filter(crate::pods::is_active).map(|p| p.metadata.name.unwrap()).collect();
    n.sort();
    n
}

#[tokio::test]
async fn starts_in_order_and_scales_down_from_the_top_keeping_claims() {
    let sim = Sim::new();
    sim.apply_yaml(&set(3, "db:1", 0));
    let mut seen = Vec::new();
    sim.settle_checking(100, |sim| {
        let now = names(sim);
        // Ordinal n exists only once n-1 is there (and ready).
        for (i, name) in now.iter().enumerate() {
            assert_eq!(name, &format!("db-{i}"), "pods appear in ordinal order: {now:?}");
        }
        if seen.last() != Some(&now) {
            seen.push(now);
        }
    })
    .await;
    assert_eq!(seen.last().unwrap(), &["db-0", "db-1", "db-2"]);
    assert!(seen.iter().any(|s| s.len() == 1) && seen.iter().any(|s| s.len() == 2), "one at a time: {seen:?}");
    let pod = sim.store().api::<Pod>().get("default", "db-1").unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("db-1"));
    assert_eq!(spec.subdomain.as_deref(), Some("db"));
    let volume = spec.volumes.unwrap().into_iter().find(|v| v.name == "data").unwrap();
    assert_eq!(volume.persistent_volume_claim.unwrap().claim_name, "data-db-1");
    let claims = sim.store().api::<PersistentVolumeClaim>().list(Some("default"));
    assert_eq!(claims.len(), 3);
    assert!(claims.iter().all(|c| c.status.as_ref().unwrap().phase.as_deref() == Some("Bound")), "provisioned and bound");
    let data_1_volume = sim.store().api::<PersistentVolumeClaim>().get("default", "data-db-1").unwrap().spec.unwrap().volume_name;

    sim.apply_yaml(&set(1, "db:1", 0));
    let mut order = Vec::new();
    sim.settle_checking(100, |sim| {
        let now = names(sim);
        if order.last() != Some(&now) {
            order.push(now);
        }
    })
    .await;
    assert_eq!(order, [vec!["db-0", "db-1"], vec!["db-0"]].map(|v| v.into_iter().map(String::from).collect::<Vec<_>>()));
    assert_eq!(sim.store().api::<PersistentVolumeClaim>().list(Some("default")).len(), 3, "claims outlive their pods");

    sim.apply_yaml(&set(2, "db:1", 0));
    sim.settle().await;
    assert_eq!(names(&sim), ["db-0", "db-1"]);
    let again = sim.store().api::<PersistentVolumeClaim>().get("default", "data-db-1").unwrap().spec.unwrap().volume_name;
    assert_eq!(again, data_1_volume, "db-1 gets its old volume back");
}

#[tokio::test]
async fn rolling_updates_go_from_the_top_down_to_the_partition() {
    let sim = Sim::new();
    sim.apply_yaml(&set(3, "db:1", 1));
    sim.settle().await;
    sim.apply_yaml(&set(3, "db:2", 1));
    sim.settle().await;
    let image = |name: &str| sim.store().api::<Pod>().get("default", name).unwrap().spec.unwrap().containers[0].image.clone().unwrap();
    assert_eq!([image("db-0"), image("db-1"), image("db-2")], ["db:1", "db:2", "db:2"]);
    let status = sim.get(Kind::StatefulSet, "default", "db")["status"].clone();
    assert_eq!(status["updatedReplicas"], 2);
    assert_ne!(status["currentRevision"], status["updateRevision"]);
    sim.apply_yaml(&set(3, "db:2", 0));
    sim.settle().await;
    assert_eq!(image("db-0"), "db:2");
    let status = sim.get(Kind::StatefulSet, "default", "db")["status"].clone();
    assert_eq!(status["currentRevision"], status["updateRevision"]);
}

#[test]
fn ordinals_come_from_names() {
    use super::ordinal;
    assert_eq!(ordinal("web", "web-0"), Some(0));
    assert_eq!(ordinal("web", "web-12"), Some(12));
    assert_eq!(ordinal("web", "web-01"), None);
    assert_eq!(ordinal("web", "webx-1"), None);
    assert_eq!(ordinal("web", "web-"), None);
    assert_eq!(ordinal("web", "web-a"), None);
}
