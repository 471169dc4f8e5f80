//! The DaemonSet controller: one pod per eligible node (its node selector,
//! required node affinity and tolerations; written for N nodes), each
//! pinned to its node by node affinity on `metadata.name` as Kubernetes
//! pins them and bound by the scheduler; pods on nodes that no longer
//! qualify are removed. Updates roll node by node under `maxUnavailable`
//! and `maxSurge`, or wait for pods to be deleted (`OnDelete`); templates
//! are kept as ControllerRevisions for `rollout history`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::Kind;
use driftless_model::KindOf;
use driftless_model::k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use driftless_model::k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodTemplateSpec, Toleration,
};
use driftless_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use driftless_store::{Batch, Key, Op, Store, StoreExt, WatchEvent, to_value};
use serde_json::json;

use crate::runner::{Action, Reconciler, Watch};
use crate::scheduler::filter;
use crate::statefulset::REVISION_LABEL;
use crate::{Context, ReconcileError, owner, pods, revisions};

/// The label with the DaemonSet generation a pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// The tolerations the DaemonSet controller adds to its pods, so that a
/// node's condition taints do not evict or keep out its daemons.
const DAEMON_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// The controller.
pub struct DaemonSetController {
    ctx: Context,
}

impl DaemonSetController {
    /// A DaemonSet controller.
    pub fn new(ctx: Context) -> Arc<DaemonSetController> {
        Arc::new(DaemonSetController { ctx })
    }
}

impl Reconciler for DaemonSetController {
    fn name(&self) -> &'static str {
        "daemonset"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::DaemonSet).owning(&[Kind::Pod, Kind::ControllerRevision])
    }

    fn watches(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        // A node that comes, goes or changes may change where daemons run.
        if event.key.kind != Kind::Node {
            return vec![];
        }
        store.list(Kind::DaemonSet, None).0.iter().filter_map(|d| Key::of(d)).collect()
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let Some(value) = self.ctx.store.get(key) else { return Ok(Action::AwaitChange) };
        if value.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Action::AwaitChange);
        }
        let set = DaemonSet::from_json(&value).map_err(|e| ReconcileError::Malformed(format!("DaemonSet: {e}")))?;
        let spec = set.spec.clone().unwrap_or_default();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let store = &*self.ctx.store;
        let now = self.ctx.now();
        let collisions = set.status.as_ref().and_then(|s| s.collision_count);
        let history =
            revisions::history(store, Kind::DaemonSet, &set.metadata, &key.namespace, &spec.template, collisions, spec.selector.match_labels.clone())?;
        let update = history.update;

        let nodes = store.api::<Node>().list(None);
        let owned: Vec<Pod> = store
            .api::<Pod>()
            .list(Some(&key.namespace))
            .into_iter()
            .filter(|p| owner::controller_of_meta(&p.metadata).is_some_and(|o| o.uid == uid))
            .collect();
        let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
        for pod in owned.iter().filter(|p| pods::is_active(p)) {
            by_node.entry(node_of(pod).unwrap_or_default()).or_default().push(pod);
        }
        let template = with_daemon_tolerations(&spec.template);
        let eligible: Vec<&Node> =
            nodes.iter().filter(|n| filter::placement_unfit(template.spec.as_ref().unwrap_or(&Default::default()), n).is_none()).collect();
        let eligible_names: Vec<String> = eligible.iter().filter_map(|n| n.metadata.name.clone()).collect();

        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let on_delete = spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("OnDelete");
        let desired = eligible_names.len();
        let (max_surge, max_unavailable) = budgets(&spec, desired);

        let mut create: Vec<String> = Vec::new();
        let mut delete: Vec<&Pod> = Vec::new();
        // Nodes that should not run it lose their pods.
        for (node, pods) in &by_node {
            if !eligible_names.contains(node) {
                delete.extend(pods.iter().copied());
            }
        }
        let is_new = |p: &Pod| revision_of(p) == Some(update.as_str());
        let available = |p: &Pod| pods::is_available(p, min_ready, now);
        // Unavailable now: eligible nodes without an available pod.
        let mut unavailable = eligible_names.iter().filter(|n| !by_node.get(*n).is_some_and(|ps| ps.iter().any(|p| available(p)))).count();
        let mut surging = 0;
        for node in &eligible_names {
            let pods = by_node.get(node).cloned().unwrap_or_default();
            let (new, old): (Vec<&Pod>, Vec<&Pod>) = pods.iter().partition(|p| is_new(p));
            match (new.as_slice(), old.as_slice()) {
                ([], []) => create.push(node.clone()),
                // Duplicates go, the oldest kept.
                ([keep, extra @ ..], old) => {
                    delete.extend(extra.iter().copied());
                    // The new pod took over: the old ones go once it is available.
                    if !old.is_empty() && (available(keep) || !old.iter().any(|p| available(p))) {
                        delete.extend(old.iter().copied());
                    }
                }
                ([], [current, extra @ ..]) => {
                    delete.extend(extra.iter().copied());
                    if on_delete {
                        continue;
                    }
                    if !available(current) {
                        // Not serving anyway: replace it at no cost.
                        delete.push(current);
                    } else if surging < max_surge {
                        surging += 1;
                        create.push(node.clone());
                    } else if unavailable < max_unavailable {
                        unavailable += 1;
                        delete.push(current);
                    }
                }
            }
        }

        let mut batch = Batch::new();
        let mut created = Vec::new();
        for node in &create {
            let pod = new_pod(&set, &key.namespace, &template, node, &update);
            created.push(pod.metadata.name.clone().unwrap_or_default());
            batch.push(Op::Create(to_value(&pod)));
        }
        let mut deleted = Vec::new();
        for pod in &delete {
            deleted.push(pod.metadata.name.clone().unwrap_or_default());
            batch.push(pods::delete_op(pod, now));
        }
        if !batch.is_empty() {
            store.apply(batch)?;
            pods::record_created_and_deleted(&self.ctx.events, &value, &created, &deleted);
            return Ok(Action::AwaitChange);
        }

        let scheduled = |node: &String| by_node.get(node).is_some_and(|p| !p.is_empty());
        let count = |f: &dyn Fn(&Pod) -> bool| eligible_names.iter().filter(|n| by_node.get(*n).is_some_and(|ps| ps.iter().any(|p| f(p)))).count();
        let ready = count(&|p| pods::is_ready(p));
        let available_count = count(&|p| available(p));
        let status = json!({
            "currentNumberScheduled": eligible_names.iter().filter(|n| scheduled(n)).count(),
            "numberMisscheduled": by_node.keys().filter(|n| !eligible_names.contains(n)).count(),
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "updatedNumberScheduled": count(&|p| is_new(p)),
            "numberAvailable": available_count,
            "numberUnavailable": desired - available_count,
            "observedGeneration": set.metadata.generation.unwrap_or(0),
        });
        if value.get("status") != Some(&status) {
            store.apply(Batch::one(Op::Status { key: key.clone(), uid: Some(uid), status }))?;
        }
        let wait = owned.iter().filter(|p| pods::is_active(p)).filter_map(|p| pods::until_available(p, min_ready, now)).min();
        Ok(wait.map_or(Action::AwaitChange, |w| Action::Requeue(w + Duration::from_millis(100))))
    }
}

/// How many pods may be added beside old ones, and how many nodes may be
/// without an available pod, during a rolling update of `desired` nodes
/// (percentages rounded up; both zero means one unavailable).
fn budgets(spec: &DaemonSetSpec, desired: usize) -> (usize, usize) {
    let rolling = spec.update_strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
    let scaled = |value: Option<&IntOrString>, default: usize| match value {
        None => default,
        Some(IntOrString::Int(n)) => usize::try_from(*n).unwrap_or(0),
        Some(IntOrString::String(s)) => {
            let percent: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (desired * percent).div_ceil(100)
        }
    };
    let surge = scaled(rolling.and_then(|r| r.max_surge.as_ref()), 0);
    let unavailable = scaled(rolling.and_then(|r| r.max_unavailable.as_ref()), 1);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// The node a daemon pod is bound to, or pinned to by its affinity.
fn node_of(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = &spec.node_name {
        return Some(node.clone());
    }
    let terms = &spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?.node_selector_terms;
    terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find(|f| f.key == "metadata.name" && f.operator == "In")?.values.as_ref()?.first().cloned()
}

fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get(REVISION_LABEL).map(String::as_str)
}

/// The template with the tolerations every daemon pod gets.
fn with_daemon_tolerations(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    let spec = template.spec.get_or_insert_with(Default::default);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in DAEMON_TOLERATIONS {
        if !tolerations.iter().any(|t| t.key.as_deref() == Some(*key) && t.effect.as_deref() == Some(*effect)) {
            tolerations.push(Toleration {
                key: Some((*key).to_owned()),
                operator: Some("Exists".to_owned()),
                effect: Some((*effect).to_owned()),
                ..Default::default()
            });
        }
    }
    template
}

/// A daemon pod for `node`: the template pinned to the node by a required
/// node affinity on its name (replacing any `matchFields` the template has,
/// as Kubernetes does), labelled with its revision and generation.
fn new_pod(set: &DaemonSet, namespace: &str, template: &PodTemplateSpec, node: &str, revision: &str) -> Pod {
    let name = set.metadata.name.clone().unwrap_or_default();
    let mut pod = pods::from_template(template, namespace, &name, owner::reference(Kind::DaemonSet, &set.metadata));
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(REVISION_LABEL.to_owned(), revision.to_owned());
    labels.insert(TEMPLATE_GENERATION_LABEL.to_owned(), set.metadata.generation.unwrap_or(0).to_string());
    let pin = NodeSelectorRequirement { key: "metadata.name".to_owned(), operator: "In".to_owned(), values: Some(vec![node.to_owned()]) };
    let spec = pod.spec.get_or_insert_with(Default::default);
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    let required = node_affinity.required_during_scheduling_ignored_during_execution.get_or_insert_with(|| NodeSelector { node_selector_terms: vec![] });
    if required.node_selector_terms.is_empty() {
        required.node_selector_terms.push(NodeSelectorTerm::default());
    }
    for term in &mut required.node_selector_terms {
        term.match_fields = Some(vec![pin.clone()]);
    }
    pod
}

#[cfg(test)]
mod tests;
