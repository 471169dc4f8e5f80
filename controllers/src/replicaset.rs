//! The ReplicaSet and ReplicationController controller: keeps the number of
//! active pods that match the selector equal to `spec.replicas`, adopting
//! matching orphans, deleting the pods that matter least first, and
//! reporting replicas, ready and available counts.

use driftless_model::Kind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::KindOf;
use driftless_model::k8s_openapi::api::apps::v1::ReplicaSet;
use driftless_model::k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use driftless_model::selector;
use driftless_store::{Batch, Key, Op, Store, WatchEvent, to_value};
use serde_json::{Value, json};

use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError, owner, pods};

/// How many pods one reconcile creates or deletes at most, as the
/// ReplicaSet controller's burst.
const BURST: usize = 500;

/// Which of the two kinds a controller runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `apps/v1` ReplicaSet (set-based selector).
    ReplicaSet,
    /// `v1` ReplicationController (equality selector).
    ReplicationController,
}

impl Flavor {
    fn kind(self) -> Kind {
        match self {
            Flavor::ReplicaSet => Kind::ReplicaSet,
            Flavor::ReplicationController => Kind::ReplicationController,
        }
    }
}

/// What both kinds say, in one shape.
struct Spec {
    meta: ObjectMeta,
    replicas: i32,
    min_ready_seconds: i32,
    selector: LabelSelector,
    template: PodTemplateSpec,
}

impl Spec {
    fn parse(flavor: Flavor, value: &Value) -> Result<Spec, ReconcileError> {
        let malformed = |e: serde_json::Error| ReconcileError::Malformed(format!("{}: {e}", flavor.kind()));
        match flavor {
            Flavor::ReplicaSet => {
                let rs = ReplicaSet::from_json(value).map_err(malformed)?;
                let spec = rs.spec.unwrap_or_default();
                Ok(Spec {
                    meta: rs.metadata,
                    replicas: spec.replicas.unwrap_or(1),
                    min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
                    selector: spec.selector,
                    template: spec.template.unwrap_or_default(),
                })
            }
            Flavor::ReplicationController => {
                let rc = ReplicationController::from_json(value).map_err(malformed)?;
                let spec = rc.spec.unwrap_or_default();
                Ok(Spec {
                    meta: rc.metadata,
                    replicas: spec.replicas.unwrap_or(1),
                    min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
                    selector: LabelSelector { match_labels: spec.selector, match_expressions: None },
                    template: spec.template.unwrap_or_default(),
                })
            }
        }
    }

    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        let empty = self.selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty) && self.selector.match_expressions.as_ref().is_none_or(Vec::is_empty);
        !empty && selector::matches(&self.selector, labels)
    }
}

/// The controller for one of the two kinds.
pub struct ReplicaSetController {
    ctx: Context,
    flavor: Flavor,
}

impl ReplicaSetController {
    /// A controller of `flavor` objects.
    pub fn new(ctx: Context, flavor: Flavor) -> Arc<ReplicaSetController> {
        Arc::new(ReplicaSetController { ctx, flavor })
    }
}

impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        match self.flavor {
            Flavor::ReplicaSet => "replicaset",
            Flavor::ReplicationController => "replicationcontroller",
        }
    }

    fn watch(&self) -> Watch {
        Watch::of(self.flavor.kind()).owning(&[Kind::Pod])
    }

    fn watches(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        let kind = self.flavor.kind();
        if event.key.kind != Kind::Pod || owner::controller_of(&event.object).is_some() {
            return vec![];
        }
        // An orphan: every owner in its namespace whose selector matches
        // may adopt it.
        let labels = labels_of(&event.object);
        store
            .list(kind, Some(&event.key.namespace))
            .0
            .iter()
            .filter(|owner| Spec::parse(self.flavor, owner).is_ok_and(|spec| spec.selects(&labels)))
            .filter_map(|owner| Key::of(owner))
            .collect()
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        self.sync(key)
    }
}

impl ReplicaSetController {
    /// The uids of the other ReplicaSets under the controller (a
    /// Deployment) of `value`; none for one without.
    fn siblings(&self, value: &Value, namespace: &str) -> std::collections::HashSet<String> {
        let Some(parent) = owner::controller_of(value) else { return Default::default() };
        self.ctx
            .store
            .list(self.flavor.kind(), Some(namespace))
            .0
            .iter()
            .filter(|rs| owner::controller_of(rs).is_some_and(|c| c.uid == parent.uid))
            .filter_map(|rs| rs.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    fn sync(&self, key: &Key) -> Result<Action, ReconcileError> {
        let Some(value) = self.ctx.store.get(key) else { return Ok(Action::AwaitChange) };
        if value.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Action::AwaitChange);
        }
        let spec = Spec::parse(self.flavor, &value)?;
        let uid = spec.meta.uid.clone().unwrap_or_default();
        let namespace = key.namespace.as_str();
        let store = &*self.ctx.store;
        let now = self.ctx.now();

        // Claim: pods this object controls, plus matching orphans. Read as
        // counted (metadata, phase, conditions), each with its stored
        // value for what needs the whole pod.
        let mut batch = Batch::new();
        let mut owned: Vec<(Pod, std::sync::Arc<Value>)> = Vec::new();
        for value in store.list(Kind::Pod, Some(namespace)).0 {
            // Only pods this object controls, or orphans it may adopt, are
            // worth parsing.
            let controller = owner::controller_of(&value);
            if controller.as_ref().is_some_and(|c| c.uid != uid) {
                continue;
            }
            let Some(mut pod) = pods::counted(&value) else { continue };
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            match owner::controller_of_meta(&pod.metadata) {
                Some(reference) if reference.uid == uid => {
                    if spec.selects(&labels) || !pods::is_active(&pod) {
                        owned.push((pod, value));
                    } else if let Ok(mut released) = Pod::from_json(&value) {
                        // It no longer matches: release it, as Kubernetes
                        // does, so another owner may adopt it.
                        released.metadata.owner_references =
                            Some(released.metadata.owner_references.unwrap_or_default().into_iter().filter(|o| o.uid != uid).collect());
                        batch.push(Op::Update(to_value(&released)));
                    }
                }
                None if pods::is_active(&pod) && spec.selects(&labels) => {
                    let Ok(mut adopted) = Pod::from_json(&value) else { continue };
                    let reference = owner::reference(self.flavor.kind(), &spec.meta);
                    adopted.metadata.owner_references.get_or_insert_with(Vec::new).push(reference.clone());
                    pod.metadata.owner_references.get_or_insert_with(Vec::new).push(reference);
                    batch.push(Op::Update(to_value(&adopted)));
                    owned.push((pod, value));
                }
                _ => {}
            }
        }

        let active: Vec<&(Pod, std::sync::Arc<Value>)> = owned.iter().filter(|(p, _)| pods::is_active(p)).collect();
        let want = usize::try_from(spec.replicas.max(0)).unwrap_or(0);
        let mut created = Vec::new();
        let mut deleted = Vec::new();
        if active.len() < want {
            let prefix = spec.meta.name.clone().unwrap_or_default();
            let reference = owner::reference(self.flavor.kind(), &spec.meta);
            for _ in 0..(want - active.len()).min(BURST) {
                let pod = pods::from_template(&spec.template, namespace, &prefix, reference.clone());
                created.push(pod.metadata.name.clone().unwrap_or_default());
                batch.push(Op::Create(to_value(&pod)));
            }
        } else if active.len() > want {
            // Spread is kept as Kubernetes keeps it: pods on the nodes
            // that run most of the workload (this and its sibling
            // ReplicaSets under one Deployment) go first. The order reads
            // whole pods (their nodes, restarts).
            let siblings = self.siblings(&value, namespace);
            let related: Vec<Pod> = store
                .list(Kind::Pod, Some(namespace))
                .0
                .iter()
                .filter(|p| owner::controller_of(p).is_some_and(|c| c.uid == uid || siblings.contains(&c.uid)))
                .filter_map(|p| Pod::from_json(p).ok())
                .collect();
            let order = pods::ScaleDown::new(&related, now);
            let mut whole: Vec<Pod> = active.iter().filter_map(|(_, v)| Pod::from_json(v).ok()).collect();
            whole.sort_by(|a, b| order.order(a, b));
            for pod in whole.iter().take((active.len() - want).min(BURST)) {
                deleted.push(pod.metadata.name.clone().unwrap_or_default());
                batch.push(pods::delete_op(pod, now));
            }
        }
        if !batch.is_empty() {
            store.apply(batch)?;
            pods::record_created_and_deleted(&self.ctx.events, &value, &created, &deleted);
            // The next reconcile (woken by these writes) reports status.
            return Ok(Action::AwaitChange);
        }

        let active: Vec<&Pod> = active.into_iter().map(|(p, _)| p).collect();
        let template_labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        let fully_labeled = active
            .iter()
            .filter(|p| {
                let labels = p.metadata.labels.clone().unwrap_or_default();
                template_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .count();
        let ready = active.iter().filter(|p| pods::is_ready(p)).count();
        let available = active.iter().filter(|p| pods::is_available(p, spec.min_ready_seconds, now)).count();
        let status = json!({
            "replicas": active.len(),
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": spec.meta.generation.unwrap_or(0),
        });
        if value.get("status") != Some(&status) {
            store.apply(Batch::one(Op::Status { key: key.clone(), uid: Some(uid), status }))?;
        }
        // A ready pod becomes available after minReadySeconds: look again
        // then, since nothing else will change to wake us.
        let wait = active.iter().filter_map(|p| pods::until_available(p, spec.min_ready_seconds, now)).min();
        Ok(wait.map_or(Action::AwaitChange, |w| Action::Requeue(w + Duration::from_millis(100))))
    }
}

fn labels_of(value: &Value) -> BTreeMap<String, String> {
    value
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
