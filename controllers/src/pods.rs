//! Facts about pods that several controllers need: whether a pod is active,
//! ready, available, and which to delete first.

use std::cmp::{Ordering, Reverse};

use driftless_model::k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use jiff::Timestamp;
use rand::Rng;

/// A pod as a controller counting its replicas reads it: its metadata and
/// its status's phase and conditions, without its spec or container
/// statuses; `None` when those do not parse. A ReplicaSet reads every pod
/// it owns on each change of any of them, and parsing them whole was most
/// of its time while 100 pods started (docs/benchmarks.md).
pub fn counted(value: &serde_json::Value) -> Option<Pod> {
    use driftless_model::k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use serde::Deserialize;
    let metadata = ObjectMeta::deserialize(value.get("metadata")?).ok()?;
    let status = match value.get("status") {
        None | Some(serde_json::Value::Null) => None,
        Some(status) => Some(PodStatus {
            phase: status.get("phase").and_then(serde_json::Value::as_str).map(str::to_owned),
            conditions: match status.get("conditions") {
                None | Some(serde_json::Value::Null) => None,
                Some(conditions) => Some(Vec::<PodCondition>::deserialize(conditions).ok()?),
            },
            ..PodStatus::default()
        }),
    };
    Some(Pod { metadata, spec: None, status })
}

/// Whether a pod counts toward its owner's replicas: not finished and not
/// being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether a pod is finished.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Whether the pod's `Ready` condition is true.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod's `Ready` condition last became true, if it is true.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let condition = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    if condition.status != "True" {
        return None;
    }
    Some(condition.last_transition_time.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0))
}

/// Whether the pod has been ready for at least `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    ready_since(pod).is_some_and(|since| min_ready_seconds <= 0 || now.as_second() - since.as_second() >= i64::from(min_ready_seconds))
}

/// How long until a ready but not yet available pod becomes available.
pub fn until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<std::time::Duration> {
    let since = ready_since(pod)?;
    let left = i64::from(min_ready_seconds) - (now.as_second() - since.as_second());
    (left > 0).then(|| std::time::Duration::from_secs(left as u64))
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        _ => 2,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status.iter().flat_map(|s| s.container_statuses.iter().flatten()).map(|c| c.restart_count).max().unwrap_or(0)
}

fn created(pod: &Pod) -> Timestamp {
    pod.metadata.creation_timestamp.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0)
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata.annotations.as_ref().and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost")).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Kubernetes' order for scaling down: pods that matter least first:
/// unscheduled before scheduled, pending before running, not ready before
/// ready, lower deletion cost first, ready for less time first, more
/// restarts first, newer first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| created(b).cmp(&created(a)))
}

/// Kubernetes' order for a ReplicaSet's scale-down (`ActivePodsWithRanks`,
/// with `LogarithmicScaleDown`): [`deletion_order`]'s first rules, then
/// pods on nodes that run more of the workload first (so replicas stay
/// spread), then ready for less time and newer first, compared by powers
/// of two of their age, ties broken by uid (so equal pods on several
/// nodes are taken from all of them, not from the node that came up
/// last).
pub struct ScaleDown {
    now: Timestamp,
    /// Active pods of the workload (the ReplicaSet and its siblings under
    /// one Deployment) per node.
    on_node: std::collections::HashMap<String, usize>,
}

impl ScaleDown {
    /// The order at `now`, with `related` the active pods of the workload.
    pub fn new<'a>(related: impl IntoIterator<Item = &'a Pod>, now: Timestamp) -> ScaleDown {
        let mut on_node = std::collections::HashMap::new();
        for pod in related.into_iter().filter(|p| is_active(p)) {
            if let Some(node) = node_of(pod) {
                *on_node.entry(node.to_owned()).or_insert(0) += 1;
            }
        }
        ScaleDown { now, on_node }
    }

    fn rank(&self, pod: &Pod) -> usize {
        node_of(pod).and_then(|n| self.on_node.get(n)).copied().unwrap_or(0)
    }

    /// Kubernetes' `ActivePodsWithRanks` order, made total: its `Less`
    /// compares ages by power of two and breaks ties by uid only between
    /// the two pods at hand, which is not transitive (Go's sort bears it,
    /// Rust's refuses it). Here each pod gets one key: unscheduled, pending
    /// or unknown, not ready and cheaper first; then on more crowded nodes;
    /// then ready for less time, more restarts, created later (ages by
    /// power of two); then by uid.
    pub fn order(&self, a: &Pod, b: &Pod) -> Ordering {
        self.key(a).cmp(&self.key(b))
    }

    #[allow(clippy::type_complexity, reason = "one key, read field by field above")]
    fn key<'p>(&self, pod: &'p Pod) -> (bool, u8, bool, i32, Reverse<usize>, i64, Reverse<i32>, i64, Option<&'p str>) {
        (
            node_of(pod).is_some(),
            phase_rank(pod),
            is_ready(pod),
            deletion_cost(pod),
            Reverse(self.rank(pod)),
            ready_since(pod).map_or(-1, |t| self.bucket(t)),
            Reverse(restarts(pod)),
            self.bucket(created(pod)),
            pod.metadata.uid.as_deref(),
        )
    }

    /// The power of two of an age in nanoseconds (younger is smaller);
    /// -1 for none.
    fn bucket(&self, t: Timestamp) -> i64 {
        let age = self.now.as_nanosecond() - t.as_nanosecond();
        if age > 0 { i64::from(age.ilog2()) } else { -1 }
    }
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

/// A pod from a template, named `<prefix>-<5 random characters>` as
/// Kubernetes' `generateName` does, controlled by `owner`.
pub fn from_template(template: &PodTemplateSpec, namespace: &str, prefix: &str, owner: OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{}", random_suffix())),
            namespace: Some(namespace.to_owned()),
            labels: meta.labels,
            annotations: meta.annotations,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The write that deletes a pod, as the API server deletes one
/// ([`driftless_store::delete_op`]): at once if no node runs it; otherwise
/// it is marked for graceful deletion and the node removes it once its
/// containers have stopped.
pub fn delete_op(pod: &Pod, now: Timestamp) -> driftless_store::Op {
    let key = driftless_store::key_of(pod);
    driftless_store::delete_op(&driftless_store::to_value(pod), now).unwrap_or(driftless_store::Op::Delete { key, uid: pod.metadata.uid.clone() })
}

/// Records the events a ReplicaSet-like controller records for the pods it
/// created and deleted (`SuccessfulCreate`, `SuccessfulDelete`).
pub fn record_created_and_deleted(events: &driftless_events::Recorder, owner: &serde_json::Value, created: &[String], deleted: &[String]) {
    for name in created {
        events.record(owner, driftless_events::EventType::Normal, "SuccessfulCreate", &format!("Created pod: {name}"));
    }
    for name in deleted {
        events.record(owner, driftless_events::EventType::Normal, "SuccessfulDelete", &format!("Deleted pod: {name}"));
    }
}

/// Five characters from the alphabet Kubernetes uses for generated names
/// (no vowels, no look-alike digits).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use driftless_model::k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready_at: Option<i64>) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(PodSpec { node_name: node.map(Into::into), ..Default::default() }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|at| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(Timestamp::from_second(at).unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_counted_pod_reads_as_the_whole_pod_for_what_replicas_count() {
        // A running pod as the kubelet reports it, with what counting skips.
        let value = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u1", "labels": {"app": "web"},
                "creationTimestamp": "2026-12-07T10:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]},
            "status": {"phase": "Running", "podIP": "10.244.0.5",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T10:00:05Z"}],
                "containerStatuses": [{"name": "c", "image": "nginx:1.27", "imageID": "", "ready": true, "restartCount": 3,
                    "state": {"running": {"startedAt": "2026-12-07T10:00:04Z"}}}]}
        });
        let whole: Pod = serde_json::from_value(value.clone()).unwrap();
        let slim = counted(&value).unwrap();
        assert_eq!(slim.metadata, whole.metadata);
        assert!(slim.spec.is_none());
        let status = slim.status.as_ref().unwrap();
        assert_eq!(status.phase, whole.status.as_ref().unwrap().phase);
        assert_eq!(status.conditions, whole.status.as_ref().unwrap().conditions);
        let now = Timestamp::from_second(1_796_637_700).unwrap();
        assert_eq!((is_active(&slim), is_ready(&slim), is_available(&slim, 10, now)), (is_active(&whole), is_ready(&whole), is_available(&whole, 10, now)));
        assert_eq!(ready_since(&slim), ready_since(&whole));
        // No status yet, or a null one, as the store may hold a new pod.
        let mut fresh = value.clone();
        fresh["status"] = serde_json::Value::Null;
        assert!(counted_status_is_none(&fresh));
        fresh.as_object_mut().unwrap().remove("status");
        assert!(counted_status_is_none(&fresh));
        // Conditions that do not parse make the pod unreadable, as whole.
        let mut broken = value;
        broken["status"]["conditions"] = serde_json::json!("Ready");
        assert!(counted(&broken).is_none());
    }

    fn counted_status_is_none(value: &serde_json::Value) -> bool {
        counted(value).is_some_and(|p| p.status.is_none())
    }

    #[test]
    fn scale_down_removes_what_matters_least_first() {
        let mut pods = [
            pod("ready-long", Some("n"), "Running", Some(100)),
            pod("unscheduled", None, "Pending", None),
            pod("ready-recent", Some("n"), "Running", Some(200)),
            pod("running-not-ready", Some("n"), "Running", None),
            pod("pending", Some("n"), "Pending", None),
        ];
        pods.sort_by(deletion_order);
        let names: Vec<_> = pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["unscheduled", "pending", "running-not-ready", "ready-recent", "ready-long"]);
    }

    #[test]
    fn a_scale_down_takes_from_crowded_nodes_first_and_from_all_nodes_alike() {
        let with_uid = |name: &str, node: &str, ready_at: i64, uid: &str| {
            let mut p = pod(name, Some(node), "Running", Some(ready_at));
            p.metadata.uid = Some(uid.into());
            p
        };
        let now = Timestamp::from_second(100_000).unwrap();
        // Three on a, one on b: a's go first, whatever their age.
        let pods = [with_uid("a1", "a", 90_000, "1"), with_uid("a2", "a", 10, "2"), with_uid("a3", "a", 10, "3"), with_uid("b1", "b", 99_990, "4")];
        let order = ScaleDown::new(&pods, now);
        let mut sorted: Vec<&Pod> = pods.iter().collect();
        sorted.sort_by(|x, y| order.order(x, y));
        assert_eq!(sorted.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect::<Vec<_>>(), ["a1", "a2", "a3", "b1"]);

        // Two and two, ready within the same power of two of each other:
        // the uid decides, not which node came up last (Kubernetes'
        // LogarithmicScaleDown), so a scale-down takes from both nodes.
        let pods = [with_uid("a1", "a", 99_000, "d"), with_uid("a2", "a", 99_001, "a"), with_uid("b1", "b", 99_010, "c"), with_uid("b2", "b", 99_011, "b")];
        let order = ScaleDown::new(&pods, now);
        let mut sorted: Vec<&Pod> = pods.iter().collect();
        sorted.sort_by(|x, y| order.order(x, y));
        assert_eq!(sorted.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect::<Vec<_>>(), ["a2", "b2", "b1", "a1"]);

        // Ages in different powers of two: the younger first.
        let pods = [with_uid("old", "a", 10, "a"), with_uid("young", "b", 99_999, "z")];
        let order = ScaleDown::new(&pods, now);
        assert_eq!(order.order(&pods[1], &pods[0]), Ordering::Less);
    }

    #[test]
    fn the_scale_down_order_is_total_when_pods_became_ready_in_the_same_second() {
        // Ready times have a resolution of one second, so many pods share
        // one; their creation times straddle a power of two of age
        // (2^43 ns, 8796 s). Kubernetes' `Less` then cycles (same ready
        // time: by creation's power of two; ready in the same power of
        // two: by uid), and Rust's sort panics on a cycle.
        let now = Timestamp::from_second(1_000_000).unwrap();
        let pods: Vec<Pod> = (0..40)
            .map(|i: i64| {
                let mut p = pod(&format!("p{i}"), Some(["a", "b"][(i % 2) as usize]), "Running", Some(999_000 + i % 3));
                p.metadata.uid = Some(format!("{:08x}", (i * 2_654_435_761) % 4_294_967_291));
                p.metadata.creation_timestamp = Some(Time(Timestamp::from_second(991_190 + (i * 37) % 30).unwrap()));
                p
            })
            .collect();
        let order = ScaleDown::new(&pods, now);
        for a in &pods {
            for b in &pods {
                assert_eq!(order.order(a, b), order.order(b, a).reverse());
                for c in &pods {
                    if order.order(a, b) != Ordering::Greater && order.order(b, c) != Ordering::Greater {
                        assert_ne!(order.order(a, c), Ordering::Greater, "{:?} {:?} {:?}", a.metadata.name, b.metadata.name, c.metadata.name);
                    }
                }
            }
        }
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod("p", Some("n"), "Running", Some(1000));
        let at = |s| Timestamp::from_second(s).unwrap();
        assert!(is_available(&p, 0, at(1000)));
        assert!(!is_available(&p, 10, at(1005)));
        assert_eq!(until_available(&p, 10, at(1005)), Some(std::time::Duration::from_secs(5)));
        assert!(is_available(&p, 10, at(1010)));
        assert!(!is_available(&pod("q", None, "Pending", None), 0, at(0)));
        assert_eq!(random_suffix().len(), 5);
    }
}
