//! The StatefulSet controller: pods `<name>-<ordinal>` with stable names,
//! hostnames under the governing service, and one claim per ordinal from
//! `volumeClaimTemplates` (`<template>-<name>-<ordinal>`, kept on scale
//! down and reattached on scale up); `OrderedReady` (each ordinal waits for
//! the one before it to be Running and Ready; scale down from the highest,
//! one at a time) or `Parallel`; `RollingUpdate` from the highest ordinal
//! down to `partition`, one pod at a time, or `OnDelete`. Revisions are
//! kept as ControllerRevisions, as Kubernetes keeps them.

use driftless_model::Kind;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use driftless_model::KindOf;
use driftless_model::k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use driftless_model::k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume};
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use driftless_store::{Batch, Key, Op, Store, to_value};
use serde_json::{Value, json};

use crate::events::EventType;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError, owner, pods, revisions};

/// The label naming a pod's revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label with the pod's name, for per-pod Services.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The controller.
pub struct StatefulSetController {
    ctx: Context,
}

impl StatefulSetController {
    /// A StatefulSet controller.
    pub fn new(ctx: Context) -> Arc<StatefulSetController> {
        Arc::new(StatefulSetController { ctx })
    }
}

/// The ordinal in a pod name `<set>-<n>`.
pub fn ordinal(set: &str, pod: &str) -> Option<u32> {
    let n = pod.strip_prefix(set)?.strip_prefix('-')?;
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse().ok()
}

fn running_and_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && pods::is_ready(pod) && pod.metadata.deletion_timestamp.is_none()
}

fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get(REVISION_LABEL).map(String::as_str)
}

struct Set<'a> {
    ctx: &'a Context,
    key: &'a Key,
    value: Arc<Value>,
    set: StatefulSet,
    spec: StatefulSetSpec,
    name: String,
    uid: String,
}

impl Reconciler for StatefulSetController {
    fn name(&self) -> &'static str {
        "statefulset"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::StatefulSet).owning(&[Kind::Pod, Kind::ControllerRevision])
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let Some(value) = self.ctx.store.get(key) else { return Ok(Action::AwaitChange) };
        let set = StatefulSet::from_json(&value).map_err(|e| ReconcileError::Malformed(format!("StatefulSet: {e}")))?;
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(Action::AwaitChange);
        }
        let spec = set.spec.clone().unwrap_or_default();
        let name = set.metadata.name.clone().unwrap_or_default();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let this = Set { ctx: &self.ctx, key, value, set, spec, name, uid };
        this.reconcile()
    }
}

impl Set<'_> {
    fn store(&self) -> &dyn Store {
        &*self.ctx.store
    }

    fn apply(&self, batch: Batch) -> Result<(), ReconcileError> {
        self.store().apply(batch)?;
        Ok(())
    }

    fn reconcile(&self) -> Result<Action, ReconcileError> {
        let (update_revision, revisions) = self.revisions()?;
        let Some(update_revision) = update_revision else { return Ok(Action::AwaitChange) };
        let current_revision =
            self.set.status.as_ref().and_then(|s| s.current_revision.clone()).filter(|r| revisions.contains_key(r)).unwrap_or_else(|| update_revision.clone());

        let replicas = u32::try_from(self.spec.replicas.unwrap_or(1).max(0)).unwrap_or(0);
        let ordered = self.spec.pod_management_policy.as_deref() != Some("Parallel");
        let strategy = self.spec.update_strategy.clone().unwrap_or_default();
        let rolling = strategy.type_.as_deref() != Some("OnDelete");
        let partition = u32::try_from(strategy.rolling_update.as_ref().and_then(|r| r.partition).unwrap_or(0).max(0)).unwrap_or(0);

        // The pods this set controls, by ordinal (adopting orphans with a
        // name of the set).
        let mut by_ordinal: BTreeMap<u32, Pod> = BTreeMap::new();
        let mut adopt = Batch::new();
        for value in self.store().list(Kind::Pod, Some(&self.key.namespace)).0 {
            let named = value.pointer("/metadata/name").and_then(Value::as_str).and_then(|p| ordinal(&self.name, p));
            let Some(n) = named else { continue };
            let Ok(pod) = Pod::from_json(&value) else { continue };
            match owner::controller_of_meta(&pod.metadata) {
                Some(o) if o.uid == self.uid => {
                    by_ordinal.insert(n, pod);
                }
                None if pods::is_active(&pod) => {
                    let mut pod = pod;
                    pod.metadata.owner_references.get_or_insert_with(Vec::new).push(owner::reference(Kind::StatefulSet, &self.set.metadata));
                    adopt.push(Op::Update(to_value(&pod)));
                }
                _ => {}
            }
        }
        if !adopt.is_empty() {
            self.apply(adopt)?;
            return Ok(Action::AwaitChange);
        }

        let mut batch = Batch::new();
        let mut events: Vec<(&'static str, String)> = Vec::new();
        let mut blocked = false;
        // Make sure every ordinal below replicas has its claims and a
        // healthy pod, in order when ordered.
        for n in 0..replicas {
            if blocked {
                break;
            }
            self.ensure_claims(n, &mut batch);
            match by_ordinal.get(&n) {
                None => {
                    let revision = if rolling && n < partition { &current_revision } else { &update_revision };
                    let template = revisions.get(revision).cloned().unwrap_or_else(|| self.spec.template.clone());
                    let pod = self.new_pod(n, revision, &template);
                    events.push(("SuccessfulCreate", format!("create Pod {}-{n} in StatefulSet {} successful", self.name, self.name)));
                    batch.push(Op::Create(to_value(&pod)));
                    blocked = ordered;
                }
                Some(pod) if pods::is_terminal(pod) && pod.metadata.deletion_timestamp.is_none() => {
                    // A failed (or finished) pod is replaced, as Kubernetes
                    // replaces it.
                    events.push(("SuccessfulDelete", format!("delete Pod {}-{n} in StatefulSet {} successful", self.name, self.name)));
                    batch.push(pods::delete_op(pod, self.ctx.now()));
                    blocked = ordered;
                }
                Some(pod) => blocked = ordered && !running_and_ready(pod),
            }
        }
        // Then remove condemned ordinals, the highest first.
        if !blocked && batch.ops.is_empty() {
            let all_ready = (0..replicas).all(|n| by_ordinal.get(&n).is_some_and(running_and_ready));
            for (n, pod) in by_ordinal.iter().rev().filter(|(n, _)| **n >= replicas) {
                if pod.metadata.deletion_timestamp.is_some() {
                    if ordered {
                        break;
                    }
                    continue;
                }
                if ordered && !all_ready {
                    break;
                }
                events.push(("SuccessfulDelete", format!("delete Pod {}-{n} in StatefulSet {} successful", self.name, self.name)));
                batch.push(pods::delete_op(pod, self.ctx.now()));
                if ordered {
                    break;
                }
            }
        }
        // Then roll: from the highest ordinal down to the partition, one
        // pod at a time, each waiting for the one before to be ready.
        if rolling && batch.ops.is_empty() && !blocked {
            for n in (partition..replicas).rev() {
                let Some(pod) = by_ordinal.get(&n) else { break };
                if revision_of(pod) != Some(update_revision.as_str()) {
                    if pod.metadata.deletion_timestamp.is_none() {
                        events.push(("SuccessfulDelete", format!("delete Pod {}-{n} in StatefulSet {} successful", self.name, self.name)));
                        batch.push(pods::delete_op(pod, self.ctx.now()));
                    }
                    break;
                }
                if !running_and_ready(pod) {
                    break;
                }
            }
        }
        if !batch.ops.is_empty() {
            self.apply(batch)?;
            for (reason, message) in events {
                self.ctx.events.record(&self.value, EventType::Normal, reason, &message);
            }
            return Ok(Action::AwaitChange);
        }
        self.write_status(&by_ordinal, replicas, &current_revision, &update_revision)
    }

    /// The revision of the current template (created if new) and the
    /// templates of every revision, by name.
    fn revisions(&self) -> Result<(Option<String>, HashMap<String, PodTemplateSpec>), ReconcileError> {
        let collisions = self.set.status.as_ref().and_then(|s| s.collision_count);
        let labels = self.spec.selector.match_labels.clone();
        let history = revisions::history(self.store(), Kind::StatefulSet, &self.set.metadata, &self.key.namespace, &self.spec.template, collisions, labels)?;
        Ok((Some(history.update), history.templates))
    }

    fn claim_name(&self, template: &str, n: u32) -> String {
        format!("{template}-{}-{n}", self.name)
    }

    /// Creates the claims of ordinal `n` that do not exist yet; existing
    /// ones, kept from an earlier scale down, are reused as they are.
    fn ensure_claims(&self, n: u32, batch: &mut Batch) {
        for template in self.spec.volume_claim_templates.iter().flatten() {
            let Some(template_name) = template.metadata.name.as_deref() else { continue };
            let name = self.claim_name(template_name, n);
            if self.store().get(&Key::new(Kind::PersistentVolumeClaim, self.key.namespace.clone(), name.clone())).is_some() {
                continue;
            }
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(self.spec.selector.match_labels.clone().unwrap_or_default());
            let claim = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(self.key.namespace.clone()),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                status: None,
            };
            batch.push(Op::Create(to_value(&claim)));
        }
    }

    fn new_pod(&self, n: u32, revision: &str, template: &PodTemplateSpec) -> Pod {
        let pod_name = format!("{}-{n}", self.name);
        let meta = template.metadata.clone().unwrap_or_default();
        let mut labels = meta.labels.unwrap_or_default();
        labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
        labels.insert(POD_INDEX_LABEL.into(), n.to_string());
        labels.insert(REVISION_LABEL.into(), revision.to_owned());
        let mut spec = template.spec.clone().unwrap_or_default();
        spec.hostname = Some(pod_name.clone());
        if !self.spec.service_name.as_deref().unwrap_or("").is_empty() {
            spec.subdomain = self.spec.service_name.clone();
        }
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        for template in self.spec.volume_claim_templates.iter().flatten() {
            let Some(volume_name) = template.metadata.name.clone() else { continue };
            volumes.retain(|v| v.name != volume_name);
            volumes.push(Volume {
                name: volume_name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: self.claim_name(&volume_name, n), read_only: None }),
                ..Default::default()
            });
        }
        Pod {
            metadata: ObjectMeta {
                name: Some(pod_name),
                namespace: Some(self.key.namespace.clone()),
                labels: Some(labels),
                annotations: meta.annotations,
                owner_references: Some(vec![owner::reference(Kind::StatefulSet, &self.set.metadata)]),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    fn write_status(&self, pods: &BTreeMap<u32, Pod>, replicas: u32, current: &str, update: &str) -> Result<Action, ReconcileError> {
        let now = self.ctx.now();
        let min_ready = self.spec.min_ready_seconds.unwrap_or(0);
        let live: Vec<&Pod> = pods.values().filter(|p| pods::is_active(p)).collect();
        let ready = live.iter().filter(|p| pods::is_ready(p)).count();
        let available = live.iter().filter(|p| pods::is_available(p, min_ready, now)).count();
        let updated = live.iter().filter(|p| revision_of(p) == Some(update)).count();
        let mut current = current.to_owned();
        // Once every pod runs the update revision, it is the current one.
        if updated == usize::try_from(replicas).unwrap_or(0) && live.len() == updated && ready == updated {
            current = update.to_owned();
        }
        let at_current = live.iter().filter(|p| revision_of(p) == Some(current.as_str())).count();
        let mut status = json!({
            "observedGeneration": self.set.metadata.generation.unwrap_or(0),
            "replicas": live.len(),
            "readyReplicas": ready,
            "availableReplicas": available,
            "currentReplicas": at_current,
            "updatedReplicas": updated,
            "currentRevision": current,
            "updateRevision": update,
        });
        if let Some(count) = self.set.status.as_ref().and_then(|s| s.collision_count) {
            status["collisionCount"] = Value::from(count);
        }
        if self.value.get("status") != Some(&status) {
            self.apply(Batch::one(Op::Status { key: self.key.clone(), uid: Some(self.uid.clone()), status }))?;
        }
        let wait = live.iter().filter_map(|p| pods::until_available(p, min_ready, now)).min();
        Ok(wait.map_or(Action::AwaitChange, |w| Action::Requeue(w + Duration::from_millis(100))))
    }
}

#[cfg(test)]
mod tests;
