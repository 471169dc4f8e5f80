//! The engine: the one function that decides what turning the live state
//! into a desired set of objects does. `driftless plan` renders its
//! result; the sync loop turns the same value into its store batch and
//! ledger entry.

use std::collections::{BTreeMap, BTreeSet};

use driftless_model::annotations::LAST_APPLIED;
use driftless_model::{Kind, Object, ObjectRef};
use serde::Serialize;
use serde_json::Value;

use crate::autoscaled::{Held, hold, owners};
use crate::carry::carry_over;
use crate::compare::{FieldChange, changes};
use crate::immutable::{Refusal, Verdict, verdict};
use crate::live::{Live, LiveObject};
use crate::normalize::{applied, strip};

/// What an update does to running pods, which is what a reviewer most
/// needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// The pod template changed: the controller replaces its pods.
    RollsPods,
    /// The template of a StatefulSet with `updateStrategy: OnDelete`
    /// changed: pods are replaced only as they are deleted.
    RollsOnDelete,
    /// Only the replica count changed: pods are added or removed, none
    /// replaced.
    Scales,
    /// The object is updated in place; running pods are untouched.
    InPlace,
}

impl Effect {
    /// Words for tables and headings.
    pub fn describe(self) -> &'static str {
        match self {
            Effect::RollsPods => "rolls pods",
            Effect::RollsOnDelete => "rolls pods on delete",
            Effect::Scales => "scales",
            Effect::InPlace => "in place",
        }
    }
}

/// What happens to one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Change {
    /// It is created.
    Create,
    /// It changes in place.
    Update {
        /// What the change does to running pods.
        effect: Effect,
        /// The fields that change.
        fields: Vec<FieldChange>,
    },
    /// It cannot change in place: it is deleted and created again.
    Replace {
        /// Why.
        reason: String,
        /// The fields that change.
        fields: Vec<FieldChange>,
    },
    /// It is deleted (a Namespace with everything left in it).
    Delete,
}

impl Change {
    /// `create`, `update`, `replace` or `delete`.
    pub fn verb(&self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update { .. } => "update",
            Change::Replace { .. } => "replace",
            Change::Delete => "delete",
        }
    }

    /// The effect words: `rolls pods`, `in place`, `replaces`... (empty for
    /// creates and deletes).
    pub fn effect(&self) -> &'static str {
        match self {
            Change::Update { effect, .. } => effect.describe(),
            Change::Replace { .. } => "replaces",
            Change::Create | Change::Delete => "",
        }
    }
}

/// The object the daemon writes for a create, update or replace: the
/// declaration with the API server's defaults and the live object's
/// allocated fields. Secret values are in it, so it never prints.
#[derive(Clone, PartialEq)]
pub(crate) struct Write(Value);

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Write(..)")
    }
}

/// One step of a plan, with both normalized (and redacted) forms of the
/// object for rendering.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// The object.
    pub object: ObjectRef,
    /// What happens to it.
    pub change: Change,
    /// The object before, normalized and redacted; `None` for a create.
    pub before: Option<Value>,
    /// The object after, normalized and redacted; `None` for a delete.
    pub after: Option<Value>,
    write: Option<Write>,
}

impl Action {
    /// What the daemon writes (creates, updates, replaces): unredacted, for
    /// the store only.
    pub fn write(&self) -> Option<&Value> {
        self.write.as_ref().map(|w| &w.0)
    }

    /// Whether deleting the object deletes what is left in it (a
    /// Namespace's objects that git does not declare).
    pub fn cascades(&self) -> bool {
        self.change == Change::Delete && self.object.kind == Kind::Namespace
    }
}

/// Counts by action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects created.
    pub create: usize,
    /// Objects updated in place.
    pub update: usize,
    /// Updates that replace pods (rolling or on delete).
    pub rolls_pods: usize,
    /// Objects deleted and created again.
    pub replace: usize,
    /// Objects deleted.
    pub delete: usize,
    /// Changes refused.
    pub refused: usize,
}

/// Every action, creates, updates and replaces in apply order (namespaces
/// and configuration before workloads), then deletes in reverse apply
/// order; and the changes the API server would refuse.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The actions.
    pub actions: Vec<Action>,
    /// Changes Kubernetes refuses (immutable fields). A plan with any is
    /// not applied: the daemon refuses the commit whole.
    pub refused: Vec<Refusal>,
    /// Workloads whose declared replicas are left alone because an HPA
    /// owns them (a note for reviewers; nothing to apply).
    pub held: Vec<Held>,
}

impl Plan {
    /// Counts by action.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary { refused: self.refused.len(), ..Summary::default() };
        for action in &self.actions {
            match &action.change {
                Change::Create => summary.create += 1,
                Change::Delete => summary.delete += 1,
                Change::Replace { .. } => summary.replace += 1,
                Change::Update { effect, .. } => {
                    summary.update += 1;
                    if matches!(effect, Effect::RollsPods | Effect::RollsOnDelete) {
                        summary.rolls_pods += 1;
                    }
                }
            }
        }
        summary
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.refused.is_empty()
    }

    /// Whether the daemon would apply it (no change is refused).
    pub fn is_applicable(&self) -> bool {
        self.refused.is_empty()
    }
}

/// The plan that makes `live` hold the objects `desired` (as validated,
/// before defaults). Takes borrowed pairs (a `&BTreeMap<ObjectRef,
/// Object>` will do) so that large sets are compared without being copied.
pub fn plan<'a>(desired: impl IntoIterator<Item = (&'a ObjectRef, &'a Object)>, live: &dyn Live) -> Plan {
    let desired: BTreeMap<&ObjectRef, &Object> = desired.into_iter().collect();
    let autoscaled = owners(desired.iter().map(|(r, o)| (*r, *o)));
    let mut plan = Plan::default();
    // BTreeMap order is ObjectRef order: kind in apply order, then
    // namespace and name.
    for (&object_ref, &object) in &desired {
        let current = live.get(object_ref);
        // Most objects are untouched between two revisions; equal as
        // written means equal after normalizing, so skip that work.
        if let Some(LiveObject::Declared(before)) = &current
            && *before == object
        {
            continue;
        }
        let mut write = applied(object);
        let Some(current) = current else {
            let mut after = normalized(&write);
            redact(object_ref.kind, None, Some(&mut after));
            plan.actions.push(Action { object: object_ref.clone(), change: Change::Create, before: None, after: Some(after), write: Some(Write(write)) });
            continue;
        };
        carry_over(&mut write, &current.value());
        if let Some(autoscaler) = autoscaled.get(object_ref) {
            plan.held.extend(hold(object_ref, autoscaler, &mut write, &current.value()));
        }
        let mut before = current.normalized(object_ref);
        let mut after = normalized(&write);
        let deleting = current.deleting();
        if before == after && !deleting {
            continue;
        }
        let verdict = if deleting {
            Verdict::Replace("it is being deleted: it is created again".to_owned())
        } else if matches!(current, LiveObject::Finished(_)) {
            Verdict::Replace("its last run finished and was removed after ttlSecondsAfterFinished: the changed Job runs again".to_owned())
        } else {
            verdict(object_ref.kind, &before, &after)
        };
        redact(object_ref.kind, Some(&mut before), Some(&mut after));
        let fields = changes(&before, &after);
        let change = match verdict {
            Verdict::InPlace => Change::Update { effect: effect(object_ref.kind, &fields, &after), fields },
            Verdict::Replace(reason) => Change::Replace { reason, fields },
            Verdict::Refuse(refused) => {
                plan.refused.extend(refused.into_iter().map(|(pointer, message)| Refusal { object: object_ref.clone(), pointer, message }));
                Change::Update { effect: effect(object_ref.kind, &fields, &after), fields }
            }
        };
        plan.actions.push(Action { object: object_ref.clone(), change, before: Some(before), after: Some(after), write: Some(Write(write)) });
    }
    let gone: BTreeSet<ObjectRef> = live.declared().into_iter().filter(|r| !desired.contains_key(r)).collect();
    for object_ref in gone.into_iter().rev() {
        let Some(current) = live.get(&object_ref) else { continue };
        // Already on its way out (a pod in its grace period).
        if current.deleting() {
            continue;
        }
        let mut before = current.normalized(&object_ref);
        redact(object_ref.kind, Some(&mut before), None);
        plan.actions.push(Action { object: object_ref, change: Change::Delete, before: Some(before), after: None, write: None });
    }
    plan
}

fn normalized(value: &Value) -> Value {
    let mut value = value.clone();
    strip(&mut value);
    value
}

fn effect(kind: Kind, fields: &[FieldChange], after: &Value) -> Effect {
    let under = |prefix: &str| fields.iter().any(|f| f.path == prefix || f.path.starts_with(&format!("{prefix}.")));
    match kind {
        Kind::Deployment | Kind::ReplicaSet | Kind::ReplicationController | Kind::StatefulSet | Kind::DaemonSet => {
            if under("spec.template") {
                let on_delete = after.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete");
                if matches!(kind, Kind::StatefulSet | Kind::DaemonSet) && on_delete { Effect::RollsOnDelete } else { Effect::RollsPods }
            } else if fields.iter().all(|f| f.path == "spec.replicas") {
                Effect::Scales
            } else {
                Effect::InPlace
            }
        }
        _ => Effect::InPlace,
    }
}

/// The placeholder shown for a Secret value.
pub(crate) const REDACTED: &str = "(redacted)";
/// The placeholder shown for a Secret value that changes.
pub(crate) const REDACTED_CHANGED: &str = "(redacted, changed)";

/// Replaces every Secret value by a placeholder that still shows whether it
/// changed. Normalization has already folded `stringData` into `data`.
fn redact(kind: Kind, before: Option<&mut Value>, after: Option<&mut Value>) {
    if kind != Kind::Secret {
        return;
    }
    let old: BTreeMap<String, Value> = before
        .as_ref()
        .and_then(|v| v.get("data"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if let Some(after) = after {
        strip_last_applied(after);
        if let Some(data) = after.get_mut("data").and_then(Value::as_object_mut) {
            for (key, value) in data.iter_mut() {
                let changed = old.get(key).is_some_and(|o| o != value);
                *value = Value::String(if changed { REDACTED_CHANGED } else { REDACTED }.to_owned());
            }
        }
    }
    if let Some(before) = before {
        strip_last_applied(before);
        if let Some(data) = before.get_mut("data").and_then(Value::as_object_mut) {
            for value in data.values_mut() {
                *value = Value::String(REDACTED.to_owned());
            }
        }
    }
}

/// `value` as it may be shown (the dashboard's live object): a Secret's
/// values, and kubectl's copy of them, replaced by the placeholder.
pub fn redacted(kind: Kind, value: &Value) -> Value {
    let mut value = value.clone();
    if kind == Kind::Secret
        && let Some(object) = value.as_object_mut()
        && let Some(Value::Object(plain)) = object.remove("stringData")
    {
        let data = object.entry("data").or_insert_with(|| Value::Object(Default::default()));
        if let Some(data) = data.as_object_mut() {
            data.extend(plain);
        }
    }
    redact(kind, Some(&mut value), None);
    value
}

/// kubectl's last-applied annotation holds the whole Secret, values and all.
fn strip_last_applied(value: &mut Value) {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let emptied = match meta.get_mut("annotations").and_then(Value::as_object_mut) {
        Some(annotations) => annotations.remove(LAST_APPLIED).is_some() && annotations.is_empty(),
        None => false,
    };
    if emptied {
        meta.remove("annotations");
    }
}

#[cfg(test)]
mod tests;
