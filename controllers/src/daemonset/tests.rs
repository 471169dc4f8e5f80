//! Tests of the DaemonSet controller on the simulated cluster with two
//! nodes: one pod per eligible node, node selectors, rolling updates under
//! maxUnavailable and maxSurge, OnDelete, and revisions.

use std::collections::{BTreeMap, BTreeSet};

use driftless_model::Kind;
use driftless_model::k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use driftless_store::StoreExt;

use crate::node::{NodeInfo, register};
use crate::testing::Sim;

fn daemon(image: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: fluentd, namespace: default}}
spec:
  selector: {{matchLabels: {{name: fluentd}}}}
{extra}
  template:
    metadata: {{labels: {{name: fluentd}}}}
    spec:
      containers: [{{name: fluentd, image: '{image}'}}]
"
    )
}

fn two_nodes() -> Sim {
    let sim = Sim::new();
    let mut info = NodeInfo::of_this_machine("node-2", "127.0.0.2", "10.244.1.0/24");
    info.cpus = 8;
    info.memory = 16 << 30;
    info.labels = BTreeMap::from([("disk".to_owned(), "ssd".to_owned())]);
    register(&sim.ctx, &info).unwrap();
    sim
}

/// (node, image) of every active daemon pod, sorted.
fn placed(sim: &Sim) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sim
        .pods()
        .iter()
        .filter(|p| crate::pods::is_active(p))
        .map(|p| {
            let spec = p.spec.as_ref().unwrap();
            (spec.node_name.clone().unwrap_or_default(), spec.containers[0].image.clone().unwrap_or_default())
        })
        .collect();
    out.sort();
    out
}

fn pair(node: &str, image: &str) -> (String, String) {
    (node.to_owned(), image.to_owned())
}

#[tokio::test]
async fn one_pod_per_node_pinned_by_affinity_and_only_where_the_selector_allows() {
    let sim = two_nodes();
    sim.apply_yaml(&daemon("fluentd:1", ""));
    sim.settle().await;
    assert_eq!(placed(&sim), [pair("node-1", "fluentd:1"), pair("node-2", "fluentd:1")]);
    let pod = sim.pods().into_iter().find(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("node-2")).unwrap();
    let affinity = pod.spec.as_ref().unwrap().affinity.clone().unwrap().node_affinity.unwrap();
    let field = affinity.required_during_scheduling_ignored_during_execution.unwrap().node_selector_terms[0].match_fields.clone().unwrap()[0].clone();
    assert_eq!((field.key.as_str(), field.values.unwrap()[0].as_str()), ("metadata.name", "node-2"));
    assert!(pod.spec.as_ref().unwrap().tolerations.as_ref().unwrap().iter().any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")));
    let status = sim.store().api::<DaemonSet>().get("default", "fluentd").unwrap().status.unwrap();
    assert_eq!((status.desired_number_scheduled, status.current_number_scheduled, status.number_ready), (2, 2, 2));

    // A node selector leaves node-1 out: its pod goes.
    sim.apply_yaml(&daemon("fluentd:1", "").replace("    spec:\n", "    spec:\n      nodeSelector: {disk: ssd}\n"));
    sim.settle().await;
    assert_eq!(placed(&sim), [pair("node-2", "fluentd:1")]);
}

#[tokio::test]
async fn a_rolling_update_keeps_all_but_max_unavailable_serving() {
    let sim = two_nodes();
    sim.apply_yaml(&daemon("fluentd:1", ""));
    sim.settle().await;
    sim.apply_yaml(&daemon("fluentd:2", ""));
    let mut seen = BTreeSet::new();
    sim.settle_checking(100, |sim| {
        let now = placed(sim);
        // maxUnavailable 1 of 2 nodes: never both down at once.
        assert!(!now.is_empty(), "{now:?}");
        seen.insert(now);
    })
    .await;
    assert_eq!(placed(&sim), [pair("node-1", "fluentd:2"), pair("node-2", "fluentd:2")]);
    assert!(seen.iter().any(|s| s.len() == 1), "one node at a time: {seen:?}");
    let revisions = sim.store().api::<ControllerRevision>().list(Some("default"));
    assert_eq!(revisions.iter().map(|r| r.revision).collect::<BTreeSet<_>>(), BTreeSet::from([1, 2]));
}

/// `(revision, commit)` of each ControllerRevision, by revision.
fn revisions(sim: &Sim) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = sim
        .store()
        .api::<ControllerRevision>()
        .list(Some("default"))
        .iter()
        .map(|r| (r.revision, r.metadata.annotations.as_ref().and_then(|a| a.get(driftless_model::annotations::REVISION_COMMIT)).cloned().unwrap_or_default()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn going_back_to_a_template_makes_its_revision_the_newest_with_the_commit_that_did() {
    let sim = two_nodes();
    for (image, commit) in [("fluentd:1", "aaaaaaa one"), ("fluentd:2", "bbbbbbb two"), ("fluentd:1", "ccccccc back")] {
        let yaml = daemon(image, "").replace(
            "metadata: {name: fluentd, namespace: default}",
            &format!("metadata: {{name: fluentd, namespace: default, annotations: {{driftless.dev/commit: '{commit}'}}}}"),
        );
        sim.apply_yaml(&yaml);
        sim.settle().await;
    }
    // Revision 1 (fluentd:1) was made current again: it is now 3 and
    // names the commit that brought it back, as undo needs.
    assert_eq!(revisions(&sim), [(2, "bbbbbbb".to_owned()), (3, "ccccccc".to_owned())]);
}

#[tokio::test]
async fn max_surge_starts_the_new_pod_before_stopping_the_old() {
    let sim = two_nodes();
    let surge = "  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";
    sim.apply_yaml(&daemon("fluentd:1", surge));
    sim.settle().await;
    sim.apply_yaml(&daemon("fluentd:2", surge));
    sim.settle_checking(100, |sim| {
        let now = placed(sim);
        // Every node always has a pod; at most one node has two.
        for node in ["node-1", "node-2"] {
            assert!(now.iter().any(|(n, _)| n == node), "{node} has no pod: {now:?}");
        }
        assert!(now.len() <= 3, "{now:?}");
    })
    .await;
    assert_eq!(placed(&sim), [pair("node-1", "fluentd:2"), pair("node-2", "fluentd:2")]);
}

#[tokio::test]
async fn on_delete_waits_for_pods_to_be_deleted() {
    let sim = two_nodes();
    let on_delete = "  updateStrategy: {type: OnDelete}";
    sim.apply_yaml(&daemon("fluentd:1", on_delete));
    sim.settle().await;
    sim.apply_yaml(&daemon("fluentd:2", on_delete));
    sim.settle().await;
    assert_eq!(placed(&sim), [pair("node-1", "fluentd:1"), pair("node-2", "fluentd:1")]);
    let old = sim.pods().into_iter().find(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("node-1")).unwrap();
    let key = driftless_store::key_of(&old);
    sim.store().apply(driftless_store::Batch::one(driftless_store::Op::Delete { key, uid: None })).unwrap();
    sim.settle().await;
    assert_eq!(placed(&sim), [pair("node-1", "fluentd:2"), pair("node-2", "fluentd:1")]);
    assert_eq!(sim.store().list(Kind::DaemonSet, None).0.len(), 1);
}
