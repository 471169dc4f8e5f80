//! Building a plan from two sets of objects.

use std::collections::BTreeMap;

use driftless_model::{Kind, Object, ObjectRef};
use serde::Serialize;
use serde_json::Value;

use crate::compare::{FieldChange, changes};
use crate::normalize;

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
    /// A field that cannot change in place changed: the object is deleted
    /// and created again (for a Pod, its containers restart).
    Replaces,
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
            Effect::Replaces => "replaces",
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
    /// It changes.
    Update {
        /// What the change does to running pods.
        effect: Effect,
        /// The fields that change.
        fields: Vec<FieldChange>,
    },
    /// It is deleted.
    Delete,
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
}

/// Counts by action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects created.
    pub create: usize,
    /// Objects updated.
    pub update: usize,
    /// Updates that replace pods (rolling or on delete).
    pub rolls_pods: usize,
    /// Objects deleted.
    pub delete: usize,
}

/// Every action, creates and updates in apply order (namespaces and
/// configuration before workloads), then deletes in reverse apply order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The actions.
    pub actions: Vec<Action>,
}

impl Plan {
    /// Counts by action.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for action in &self.actions {
            match &action.change {
                Change::Create => summary.create += 1,
                Change::Delete => summary.delete += 1,
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
        self.actions.is_empty()
    }
}

/// The plan that turns the objects `from` into the objects `to`. Takes
/// borrowed pairs (a `&BTreeMap<ObjectRef, Object>` will do) so that large
/// sets are compared without being copied.
pub fn plan<'a>(from: impl IntoIterator<Item = (&'a ObjectRef, &'a Object)>, to: impl IntoIterator<Item = (&'a ObjectRef, &'a Object)>) -> Plan {
    let from: BTreeMap<&ObjectRef, &Object> = from.into_iter().collect();
    let to: BTreeMap<&ObjectRef, &Object> = to.into_iter().collect();
    let mut actions = Vec::new();
    // BTreeMap order is ObjectRef order: kind in apply order, then
    // namespace and name.
    for (&object_ref, &after) in &to {
        let before = from.get(object_ref).copied();
        // Most objects are untouched between two revisions; equal as written
        // means equal after normalizing, so skip that work.
        if before == Some(after) {
            continue;
        }
        let mut after_value = normalize(after);
        match before {
            None => {
                redact(object_ref.kind, None, Some(&mut after_value));
                actions.push(Action { object: object_ref.clone(), change: Change::Create, before: None, after: Some(after_value) });
            }
            Some(before) => {
                let mut before_value = normalize(before);
                if before_value == after_value {
                    continue;
                }
                redact(object_ref.kind, Some(&mut before_value), Some(&mut after_value));
                let fields = changes(&before_value, &after_value);
                let effect = effect(object_ref.kind, &fields, &after_value);
                actions.push(Action {
                    object: object_ref.clone(),
                    change: Change::Update { effect, fields },
                    before: Some(before_value),
                    after: Some(after_value),
                });
            }
        }
    }
    let mut deletes: Vec<Action> = from
        .iter()
        .filter(|(object_ref, _)| !to.contains_key(*object_ref))
        .map(|(&object_ref, &before)| {
            let mut before_value = normalize(before);
            redact(object_ref.kind, Some(&mut before_value), None);
            Action { object: object_ref.clone(), change: Change::Delete, before: Some(before_value), after: None }
        })
        .collect();
    deletes.reverse();
    actions.extend(deletes);
    Plan { actions }
}

fn effect(kind: Kind, fields: &[FieldChange], after: &Value) -> Effect {
    let under = |prefix: &str| fields.iter().any(|f| f.path == prefix || f.path.starts_with(&format!("{prefix}.")));
    let only_metadata = fields.iter().all(|f| f.path.starts_with("metadata"));
    match kind {
        Kind::Deployment | Kind::ReplicaSet | Kind::ReplicationController | Kind::StatefulSet => {
            if under("spec.template") {
                let on_delete = after.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete");
                if kind == Kind::StatefulSet && on_delete { Effect::RollsOnDelete } else { Effect::RollsPods }
            } else if fields.iter().all(|f| f.path == "spec.replicas") {
                Effect::Scales
            } else {
                Effect::InPlace
            }
        }
        // A pod's spec is immutable but for images and a few fields; Driftless
        // replaces the pod rather than patch it.
        Kind::Pod if !only_metadata => Effect::Replaces,
        Kind::Service if under("spec.clusterIP") || under("spec.clusterIPs") => Effect::Replaces,
        Kind::PersistentVolumeClaim | Kind::PersistentVolume if under("spec") => Effect::Replaces,
        Kind::StorageClass if !only_metadata => Effect::Replaces,
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

/// kubectl's last-applied annotation holds the whole Secret, values and all.
fn strip_last_applied(value: &mut Value) {
    if let Some(annotations) = value.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(values: &[Value]) -> BTreeMap<ObjectRef, Object> {
        values.iter().map(|v| Object::parse(v).unwrap()).map(|o| (o.object_ref(), o)).collect()
    }

    fn deployment(image: &str, replicas: i32) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn secret(password: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": password, "user": "admin"}})
    }

    #[test]
    fn scale_only_does_not_roll() {
        let plan = plan(&objects(&[deployment("busybox:1.35", 2)]), &objects(&[deployment("busybox:1.35", 5)]));
        let Change::Update { effect, fields } = &plan.actions[0].change else { panic!("{plan:?}") };
        assert_eq!(*effect, Effect::Scales);
        assert_eq!(fields[0].path, "spec.replicas");
    }

    #[test]
    fn template_changes_roll() {
        let plan = plan(&objects(&[deployment("busybox:1.35", 2)]), &objects(&[deployment("busybox:1.36", 3)]));
        let Change::Update { effect, fields } = &plan.actions[0].change else { panic!("{plan:?}") };
        assert_eq!(*effect, Effect::RollsPods);
        let paths: Vec<_> = fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["spec.replicas", "spec.template.spec.containers[0].image"]);
        assert_eq!(plan.summary(), Summary { create: 0, update: 1, rolls_pods: 1, delete: 0 });
    }

    #[test]
    fn creates_in_apply_order_deletes_in_reverse() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let plan = plan(&objects(&[cm.clone(), deployment("a:1", 1)]), &objects(&[ns]));
        let order: Vec<_> = plan.actions.iter().map(|a| (a.object.kind, a.change.clone())).collect();
        assert_eq!(order, [(Kind::Namespace, Change::Create), (Kind::Deployment, Change::Delete), (Kind::ConfigMap, Change::Delete),]);
    }

    #[test]
    fn secret_values_never_appear_but_changes_do() {
        let plan = plan(&objects(&[secret("hunter2")]), &objects(&[secret("correct-horse")]));
        let text = format!("{plan:?}");
        for leaked in ["hunter2", "correct-horse", "aHVudGVyMg", "Y29ycmVjdC1ob3JzZQ", "YWRtaW4"] {
            assert!(!text.contains(leaked), "{leaked} leaked: {text}");
        }
        let Change::Update { fields, .. } = &plan.actions[0].change else { panic!() };
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].path, "data.password");
        assert_eq!(fields[0].after, Some(json!(REDACTED_CHANGED)));
    }

    #[test]
    fn identical_sets_plan_nothing() {
        let set = objects(&[deployment("a:1", 1), secret("x")]);
        assert!(plan(&set, &set).is_empty());
    }
}
