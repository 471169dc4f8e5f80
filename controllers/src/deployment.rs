//! The Deployment controller: one ReplicaSet per pod template, named
//! `<deployment>-<pod-template-hash>`, rolled by `RollingUpdate` (within
//! `maxSurge` and `maxUnavailable`) or `Recreate`, with scale-only changes
//! applied in place, `paused`, `minReadySeconds`, `revisionHistoryLimit`,
//! `progressDeadlineSeconds`, and Kubernetes' status and conditions.
//!
//! Each reconcile takes one step (create, scale up, scale down, clean up)
//! and returns; the write wakes the next reconcile, so every step sees the
//! store as it is, as the deployment controller does with its informers.

mod hash;
pub mod rollout;
mod status;

use driftless_model::Kind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::KindOf;
use driftless_model::k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec};
use driftless_model::k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use driftless_model::selector;
use driftless_store::{Batch, Key, Op, Store, StoreExt, WatchEvent, to_value};
use serde_json::Value;

pub use hash::{LABEL as POD_TEMPLATE_HASH, pod_template_hash};

use crate::events::EventType;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError, owner, pods};

/// The revision annotation on ReplicaSets (`kubectl rollout history`).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The change cause annotation `kubectl rollout history` shows.
pub use driftless_model::annotations::CHANGE_CAUSE;
use driftless_model::annotations::REVISION_COMMIT;
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The annotation the sync loop sets on every object it applies: the
/// commit and its subject, the change cause of new ReplicaSets.
pub use driftless_model::annotations::SOURCE_COMMIT;

/// A ReplicaSet the deployment owns, with the numbers the rollout uses.
#[derive(Clone)]
struct Owned {
    rs: ReplicaSet,
}

impl Owned {
    fn name(&self) -> &str {
        self.rs.metadata.name.as_deref().unwrap_or("")
    }
    fn replicas(&self) -> i32 {
        self.rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
    }
    fn available(&self) -> i32 {
        self.rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
    }
    fn ready(&self) -> i32 {
        self.rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
    }
    fn current(&self) -> i32 {
        self.rs.status.as_ref().map_or(0, |s| s.replicas)
    }
    fn revision(&self) -> i64 {
        annotation(&self.rs.metadata, REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.rs.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn created(&self) -> String {
        self.rs.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default()
    }
}

fn annotation<'a>(meta: &'a ObjectMeta, name: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(name).map(String::as_str)
}

/// Whether a ReplicaSet's template is the deployment's, ignoring the hash
/// label the controller added.
fn same_template(rs: &PodTemplateSpec, deployment: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        let mut value = serde_json::to_value(&t).unwrap_or(Value::Null);
        // An empty label map and none are the same template.
        if value.pointer("/metadata/labels").and_then(Value::as_object).is_some_and(serde_json::Map::is_empty)
            && let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("labels");
        }
        value
    };
    strip(rs) == strip(deployment)
}

/// The controller.
pub struct DeploymentController {
    ctx: Context,
}

impl DeploymentController {
    /// A Deployment controller.
    pub fn new(ctx: Context) -> Arc<DeploymentController> {
        Arc::new(DeploymentController { ctx })
    }
}

/// One reconcile's view of a deployment.
struct Rollout<'a> {
    ctx: &'a Context,
    value: Arc<Value>,
    key: &'a Key,
    deployment: Deployment,
    spec: DeploymentSpec,
    replicas: i32,
    surge: i32,
    unavailable: i32,
    new: Option<Owned>,
    old: Vec<Owned>,
}

impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::Deployment).owning(&[Kind::ReplicaSet])
    }

    fn watches(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        // Recreate waits for the old pods to be gone: a deleted pod wakes
        // its ReplicaSet's Deployment.
        if event.key.kind != Kind::Pod || event.kind != driftless_store::EventType::Deleted {
            return vec![];
        }
        let Some(rs) = owner::controller_of(&event.object) else { return vec![] };
        let Some(rs) = store.get(&Key::new(Kind::ReplicaSet, event.key.namespace.clone(), rs.name)) else { return vec![] };
        owner::controller_of(&rs)
            .filter(|o| o.kind == Kind::Deployment.name())
            .map(|o| Key::new(Kind::Deployment, event.key.namespace.clone(), o.name))
            .into_iter()
            .collect()
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let Some(value) = self.ctx.store.get(key) else { return Ok(Action::AwaitChange) };
        let deployment = Deployment::from_json(&value).map_err(|e| ReconcileError::Malformed(format!("Deployment: {e}")))?;
        if deployment.metadata.deletion_timestamp.is_some() {
            return Ok(Action::AwaitChange);
        }
        let spec = deployment.spec.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1);
        let rolling = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) != Some("Recreate");
        let (surge, unavailable) = if rolling {
            let r = spec.strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
            rollout::fenceposts(r.and_then(|r| r.max_surge.as_ref()), r.and_then(|r| r.max_unavailable.as_ref()), replicas)
        } else {
            (0, 0)
        };
        let mut rollout = Rollout { ctx: &self.ctx, value, key, deployment, spec, replicas, surge, unavailable, new: None, old: vec![] };
        if rollout.claim()? {
            return Ok(Action::AwaitChange);
        }
        let paused = rollout.spec.paused == Some(true);
        let stepped = if paused || rollout.is_scaling_event() {
            rollout.scale()?
        } else if rolling {
            rollout.rolling()?
        } else {
            rollout.recreate()?
        };
        if stepped {
            return Ok(Action::AwaitChange);
        }
        rollout.cleanup()?;
        rollout.write_status()
    }
}

impl Rollout<'_> {
    fn store(&self) -> &dyn Store {
        &*self.ctx.store
    }

    fn uid(&self) -> String {
        self.deployment.metadata.uid.clone().unwrap_or_default()
    }

    fn name(&self) -> String {
        self.deployment.metadata.name.clone().unwrap_or_default()
    }

    /// Finds the ReplicaSets this deployment controls (adopting matching
    /// orphans) and which of them runs the current template. Returns
    /// whether it wrote (an adoption).
    fn claim(&mut self) -> Result<bool, ReconcileError> {
        let uid = self.uid();
        let mut adopt = Batch::new();
        let mut owned = Vec::new();
        for value in self.store().list(Kind::ReplicaSet, Some(&self.key.namespace)).0 {
            if owner::controller_of(&value).is_some_and(|c| c.uid != uid) {
                continue;
            }
            let Ok(rs) = ReplicaSet::from_json(&value) else { continue };
            match owner::controller_of_meta(&rs.metadata) {
                Some(o) if o.uid == uid => owned.push(Owned { rs }),
                None => {
                    let labels = rs.metadata.labels.clone().unwrap_or_default();
                    if !labels.is_empty() && selector::matches(&self.spec.selector, &labels) {
                        let mut rs = rs;
                        rs.metadata.owner_references.get_or_insert_with(Vec::new).push(owner::reference(Kind::Deployment, &self.deployment.metadata));
                        adopt.push(Op::Update(to_value(&rs)));
                    }
                }
                Some(_) => {}
            }
        }
        if !adopt.is_empty() {
            self.store().apply(adopt)?;
            return Ok(true);
        }
        owned.sort_by_key(|o| (o.created(), o.name().to_owned()));
        let template = &self.spec.template;
        let new = owned.iter().position(|o| o.template().is_some_and(|t| same_template(t, template)));
        self.new = new.map(|i| owned.remove(i));
        self.old = owned;
        Ok(false)
    }

    fn all(&self) -> impl Iterator<Item = &Owned> {
        self.new.iter().chain(self.old.iter())
    }

    fn total_spec(&self) -> i32 {
        self.all().map(Owned::replicas).sum()
    }

    fn max_old_revision(&self) -> i64 {
        self.old.iter().map(Owned::revision).max().unwrap_or(0)
    }

    /// A scaling event: some active ReplicaSet was sized for a different
    /// replica count than the deployment asks for now.
    fn is_scaling_event(&self) -> bool {
        let want = self.replicas.to_string();
        self.all().filter(|o| o.replicas() > 0).any(|o| annotation(&o.rs.metadata, DESIRED_REPLICAS).is_some_and(|d| d != want))
    }

    /// Sets a ReplicaSet's replicas, with the annotations that record what
    /// it was sized for, and records the event.
    fn scale_op(&self, owned: &Owned, replicas: i32) -> Op {
        let mut rs = owned.rs.clone();
        rs.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(DESIRED_REPLICAS.into(), self.replicas.to_string());
        annotations.insert(MAX_REPLICAS.into(), (self.replicas + self.surge).to_string());
        let from = owned.replicas();
        let (direction, message) = if replicas > from {
            ("up", format!("Scaled up replica set {} to {replicas}", owned.name()))
        } else {
            ("down", format!("Scaled down replica set {} to {replicas} from {from}", owned.name()))
        };
        tracing::info!(deployment = %self.key, replicaset = owned.name(), from, to = replicas, direction, "scaling replica set");
        self.ctx.events.record(&self.value, EventType::Normal, "ScalingReplicaSet", &message);
        Op::Update(to_value(&rs))
    }

    fn apply(&self, ops: Vec<Op>) -> Result<bool, ReconcileError> {
        if ops.is_empty() {
            return Ok(false);
        }
        self.store().apply(Batch { ops, meta: vec![] })?;
        Ok(true)
    }

    /// Creates the ReplicaSet for the current template with `replicas`.
    fn create_new(&self, replicas: i32) -> Result<bool, ReconcileError> {
        let collisions = self.deployment.status.as_ref().and_then(|s| s.collision_count);
        let hash = pod_template_hash(&self.spec.template, collisions);
        let name = format!("{}-{hash}", self.name());
        if let Some(existing) = self.store().get(&Key::new(Kind::ReplicaSet, self.key.namespace.clone(), name.clone())) {
            // Same name, other template (or owner): a hash collision. Count
            // it, as Kubernetes does, so the next hash differs.
            let mut status = self.value.get("status").cloned().unwrap_or_else(|| Value::Object(Default::default()));
            status["collisionCount"] = Value::from(collisions.unwrap_or(0) + 1);
            tracing::warn!(deployment = %self.key, replicaset = name, existing = ?Key::of(&existing), "pod template hash collision");
            self.store().apply(Batch::one(Op::Status { key: self.key.clone(), uid: Some(self.uid()), status }))?;
            return Ok(true);
        }
        let mut template = self.spec.template.clone();
        template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = self.spec.selector.clone();
        selector.match_labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
        let mut annotations = BTreeMap::new();
        annotations.insert(REVISION.to_owned(), (self.max_old_revision() + 1).to_string());
        annotations.insert(DESIRED_REPLICAS.to_owned(), self.replicas.to_string());
        annotations.insert(MAX_REPLICAS.to_owned(), (self.replicas + self.surge).to_string());
        if let Some(cause) = self.change_cause() {
            annotations.insert(CHANGE_CAUSE.to_owned(), cause);
        }
        if let Some(commit) = self.source_commit() {
            annotations.insert(REVISION_COMMIT.to_owned(), commit);
        }
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.key.namespace.clone()),
                labels,
                annotations: Some(annotations),
                owner_references: Some(vec![owner::reference(Kind::Deployment, &self.deployment.metadata)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec { replicas: Some(replicas), min_ready_seconds: self.spec.min_ready_seconds, selector, template: Some(template) }),
            status: None,
        };
        self.store().apply(Batch::one(Op::Create(to_value(&rs))))?;
        self.ctx.events.record(&self.value, EventType::Normal, "ScalingReplicaSet", &format!("Scaled up replica set {name} to {replicas}"));
        tracing::info!(deployment = %self.key, replicaset = name, replicas, "created new replica set");
        Ok(true)
    }

    /// The deployment's own change cause, else the commit that applied it.
    fn change_cause(&self) -> Option<String> {
        let meta = &self.deployment.metadata;
        annotation(meta, CHANGE_CAUSE).or_else(|| annotation(meta, SOURCE_COMMIT)).map(str::to_owned)
    }

    /// The short id of the commit that last changed the deployment.
    fn source_commit(&self) -> Option<String> {
        annotation(&self.deployment.metadata, SOURCE_COMMIT).and_then(|note| note.split_whitespace().next()).map(str::to_owned)
    }

    /// Keeps the new ReplicaSet's revision the highest (a rollback to an
    /// old template makes its ReplicaSet current again) and its
    /// `minReadySeconds` the deployment's.
    fn sync_new(&self) -> Result<bool, ReconcileError> {
        let Some(new) = &self.new else { return Ok(false) };
        let revision = self.max_old_revision() + 1;
        let min_ready = self.spec.min_ready_seconds;
        let rs_min_ready = new.rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if new.revision() >= revision && rs_min_ready.unwrap_or(0) == min_ready.unwrap_or(0) {
            return Ok(false);
        }
        let mut rs = new.rs.clone();
        rs.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(REVISION.into(), revision.max(new.revision()).to_string());
        if let Some(cause) = self.change_cause()
            && new.revision() < revision
        {
            rs.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(CHANGE_CAUSE.into(), cause);
        }
        if let Some(commit) = self.source_commit()
            && new.revision() < revision
        {
            rs.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(REVISION_COMMIT.into(), commit);
        }
        rs.spec.get_or_insert_with(Default::default).min_ready_seconds = min_ready;
        self.apply(vec![Op::Update(to_value(&rs))])
    }

    /// A rolling update's next step.
    fn rolling(&mut self) -> Result<bool, ReconcileError> {
        let Some(new) = self.new.clone() else {
            let replicas = rollout::new_rs_replicas(self.replicas, self.surge, self.total_spec(), 0);
            return self.create_new(replicas);
        };
        if self.sync_new()? {
            return Ok(true);
        }
        // Grow the new ReplicaSet as far as the surge allows.
        if new.replicas() > self.replicas {
            return self.apply(vec![self.scale_op(&new, self.replicas)]);
        }
        let grown = rollout::new_rs_replicas(self.replicas, self.surge, self.total_spec(), new.replicas());
        if grown != new.replicas() {
            return self.apply(vec![self.scale_op(&new, grown)]);
        }
        // Shrink old ones as far as availability allows.
        let old_pods: i32 = self.old.iter().map(Owned::replicas).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let max_unavailable = rollout::max_unavailable(self.replicas, self.unavailable);
        let new_unavailable = new.replicas() - new.available();
        let max_down = rollout::max_scale_down(self.replicas, max_unavailable, self.total_spec(), new_unavailable);
        if max_down <= 0 {
            return Ok(false);
        }
        // Unhealthy old pods go first: they serve nothing.
        let mut sizes: Vec<i32> = self.old.iter().map(Owned::replicas).collect();
        let mut cleaned = 0;
        for (i, old) in self.old.iter().enumerate() {
            if cleaned >= max_down {
                break;
            }
            let unhealthy = sizes[i] - old.available();
            if unhealthy > 0 {
                let down = unhealthy.min(max_down - cleaned);
                sizes[i] -= down;
                cleaned += down;
            }
        }
        // Then healthy ones, down to the minimum available.
        let available: i32 = self.all().map(Owned::available).sum();
        let healthy_down = rollout::healthy_scale_down(self.replicas, max_unavailable, available);
        let mut done = 0;
        for size in sizes.iter_mut() {
            if done >= healthy_down {
                break;
            }
            if *size == 0 {
                continue;
            }
            let down = (*size).min(healthy_down - done);
            *size -= down;
            done += down;
        }
        let ops = self.old.iter().zip(&sizes).filter(|(o, size)| o.replicas() != **size).map(|(o, size)| self.scale_op(o, *size)).collect();
        self.apply(ops)
    }

    /// `Recreate`: every old pod gone before the new ReplicaSet grows.
    fn recreate(&mut self) -> Result<bool, ReconcileError> {
        let shrink: Vec<Op> = self.old.iter().filter(|o| o.replicas() > 0).map(|o| self.scale_op(o, 0)).collect();
        if self.apply(shrink)? {
            return Ok(true);
        }
        let old_uids: Vec<String> = self.old.iter().filter_map(|o| o.rs.metadata.uid.clone()).collect();
        let old_running = self
            .store()
            .api::<Pod>()
            .list(Some(&self.key.namespace))
            .iter()
            .any(|pod| owner::controller_of_meta(&pod.metadata).is_some_and(|o| old_uids.contains(&o.uid)) && !pods::is_terminal(pod));
        if old_running {
            return Ok(false);
        }
        let Some(new) = self.new.clone() else { return self.create_new(self.replicas) };
        if self.sync_new()? {
            return Ok(true);
        }
        if new.replicas() != self.replicas {
            return self.apply(vec![self.scale_op(&new, self.replicas)]);
        }
        Ok(false)
    }

    /// A scaling event or a paused deployment: resize without rolling,
    /// proportionally across active ReplicaSets mid-rollout.
    fn scale(&mut self) -> Result<bool, ReconcileError> {
        let active: Vec<&Owned> = self.all().filter(|o| o.replicas() > 0).collect();
        if active.len() <= 1 {
            let target = active.first().copied().or(self.new.as_ref()).or_else(|| self.old.iter().max_by_key(|o| o.revision()));
            return match target {
                Some(target) if target.replicas() != self.replicas || self.is_scaling_event() => {
                    let op = self.scale_op(target, self.replicas);
                    self.apply(vec![op])
                }
                _ => Ok(false),
            };
        }
        let allowed = self.replicas + self.surge;
        let total = self.total_spec();
        let to_add = allowed - total;
        let mut sizes: Vec<(usize, i32)> = Vec::new();
        let mut order: Vec<&Owned> = active.clone();
        // Larger first when growing, smaller first when shrinking.
        order.sort_by_key(|o| if to_add > 0 { -o.replicas() } else { o.replicas() });
        let mut left = to_add;
        for (i, o) in order.iter().enumerate() {
            let share = if total > 0 { (i64::from(to_add) * i64::from(o.replicas()) / i64::from(total)) as i32 } else { 0 };
            let share = if to_add > 0 { share.min(left) } else { share.max(left) };
            left -= share;
            sizes.push((i, (o.replicas() + share).max(0)));
        }
        if left != 0
            && let Some((_, size)) = sizes.first_mut()
        {
            *size = (*size + left).max(0);
        }
        let mut ops = Vec::new();
        for (i, size) in sizes {
            let o = order[i];
            if o.replicas() != size || annotation(&o.rs.metadata, DESIRED_REPLICAS) != Some(&self.replicas.to_string()) {
                ops.push(self.scale_op(o, size));
            }
        }
        self.apply(ops)
    }

    /// Removes old ReplicaSets beyond `revisionHistoryLimit` once they have
    /// no pods.
    fn cleanup(&self) -> Result<(), ReconcileError> {
        let limit = usize::try_from(self.spec.revision_history_limit.unwrap_or(10).max(0)).unwrap_or(0);
        let mut empty: Vec<&Owned> = self.old.iter().filter(|o| o.replicas() == 0 && o.current() == 0).collect();
        if empty.len() <= limit {
            return Ok(());
        }
        empty.sort_by_key(|o| o.revision());
        let ops = empty[..empty.len() - limit].iter().map(|o| Op::Delete { key: driftless_store::key_of(&o.rs), uid: o.rs.metadata.uid.clone() }).collect();
        self.apply(ops)?;
        Ok(())
    }

    fn write_status(&self) -> Result<Action, ReconcileError> {
        let now = self.ctx.now();
        let (status, requeue) = status::compute(self, now);
        if self.value.get("status") != Some(&status) {
            let previous = self.value.pointer("/status/conditions").cloned();
            if status::timed_out(&status) && !status::timed_out_value(previous.as_ref()) {
                let message = format!("Deployment {:?} has timed out progressing.", self.name());
                self.ctx.events.record(&self.value, EventType::Warning, "ProgressDeadlineExceeded", &message);
            }
            self.store().apply(Batch::one(Op::Status { key: self.key.clone(), uid: Some(self.uid()), status }))?;
        }
        Ok(requeue.map_or(Action::AwaitChange, |d| Action::Requeue(d + Duration::from_millis(100))))
    }
}

#[cfg(test)]
mod tests;
