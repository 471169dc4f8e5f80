//! Applying a plan: the store as the engine's live side ([`StoreLive`]),
//! and the one store batch that carries out a [`Plan`] (creates, updates
//! and replaces with the source-commit annotation, deletes as the API
//! server deletes, and a pruned namespace emptied). What to do is decided
//! by `driftless_diff::plan` alone; this module only writes it.

use driftless_diff::{Change as PlanChange, Live, LiveObject, Plan};
use driftless_model::annotations::SOURCE_COMMIT;
use driftless_model::{Kind, ObjectRef};
use driftless_store::{Batch, Key, Op, Store};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The annotation on every object the sync applied: the commit that last
/// changed it, `<short id> <subject>`. Its presence marks an object as
/// declared by git, and so prunable.
pub const MANAGED: &str = SOURCE_COMMIT;

/// What happens to one object, as the ledger records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It is new.
    Create,
    /// Its declared content changed, in place.
    Update,
    /// It could not change in place: deleted and created again.
    Replace,
    /// Git no longer declares it.
    Delete,
}

impl Change {
    /// `create`, `update`, `replace`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Replace => "replace",
            Change::Delete => "delete",
        }
    }

    /// The change a word names (`update` for anything unknown).
    pub fn parse(word: &str) -> Change {
        match word {
            "create" => Change::Create,
            "replace" => Change::Replace,
            "delete" => Change::Delete,
            _ => Change::Update,
        }
    }
}

/// One object's change, as the ledger and `driftless history` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What happens.
    pub change: Change,
    /// `Kind namespace/name`.
    pub object: String,
    /// What it does to running pods (`rolls pods`, `scales`, `in place`,
    /// `replaces`); empty for creates and deletes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub effect: String,
}

impl Action {
    /// The ledger's record of one of the engine's actions.
    pub fn of(action: &driftless_diff::Action) -> Action {
        let change = match action.change {
            PlanChange::Create => Change::Create,
            PlanChange::Update { .. } => Change::Update,
            PlanChange::Replace { .. } => Change::Replace,
            PlanChange::Delete => Change::Delete,
        };
        Action { change, object: action.object.to_string(), effect: action.change.effect().to_owned() }
    }
}

/// The store as the engine's live side: what git declared is what carries
/// the [`MANAGED`] annotation.
pub struct StoreLive<'a> {
    store: &'a dyn Store,
}

impl<'a> StoreLive<'a> {
    /// The live side over `store`.
    pub fn new(store: &'a dyn Store) -> StoreLive<'a> {
        StoreLive { store }
    }
}

fn key_of(object_ref: &ObjectRef) -> Key {
    Key::new(object_ref.kind, object_ref.namespace.clone().unwrap_or_default(), object_ref.name.clone())
}

fn managed(value: &Value) -> bool {
    value.pointer("/metadata/annotations").and_then(|a| a.get(MANAGED)).is_some()
}

impl Live for StoreLive<'_> {
    fn get(&self, object: &ObjectRef) -> Option<LiveObject<'_>> {
        self.store.get(&key_of(object)).map(LiveObject::Stored)
    }

    fn declared(&self) -> Vec<ObjectRef> {
        let mut out = Vec::new();
        for &kind in Kind::DECLARABLE {
            for value in self.store.list(kind, None).0.iter().filter(|v| managed(v)) {
                let namespace = value.pointer("/metadata/namespace").and_then(Value::as_str);
                let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) else { continue };
                out.push(ObjectRef::new(kind, namespace, name));
            }
        }
        out
    }
}

/// The batch that carries out `plan` on `store`, and the ledger's record of
/// it. `note` is the commit, as the [`MANAGED`] annotation records it.
/// The plan must have been made against this store's state.
pub fn batch_for(plan: &Plan, store: &dyn Store, note: &str, now: Timestamp) -> (Batch, Vec<Action>) {
    let mut batch = Batch::new();
    for action in &plan.actions {
        let key = key_of(&action.object);
        let write = || {
            let mut value = action.write().cloned().unwrap_or_default();
            set_annotation(&mut value, MANAGED, note);
            value
        };
        match &action.change {
            PlanChange::Create => {
                batch.push(Op::Create(write()));
            }
            PlanChange::Update { .. } => {
                batch.push(Op::Put(write()));
            }
            PlanChange::Replace { .. } => {
                batch.push(Op::Delete { key, uid: None });
                batch.push(Op::Create(write()));
            }
            PlanChange::Delete => {
                if let Some(op) = store.get(&key).and_then(|live| driftless_store::delete_op(&live, now)) {
                    batch.push(op);
                }
                if action.cascades() {
                    empty_namespace(&mut batch, store, &action.object.name, now);
                }
            }
        }
    }
    (batch, plan.actions.iter().map(Action::of).collect())
}

/// Deletes what a pruned namespace still holds that git does not declare
/// (what controllers made in it); declared objects were planned already.
fn empty_namespace(batch: &mut Batch, store: &dyn Store, namespace: &str, now: Timestamp) {
    for kind in Kind::ALL.iter().filter(|k| k.namespaced()) {
        for live in store.list(*kind, Some(namespace)).0 {
            if managed(&live) {
                continue;
            }
            if let Some(op) = driftless_store::delete_op(&live, now) {
                batch.push(op);
            }
        }
    }
}

fn set_annotation(value: &mut Value, name: &str, note: &str) {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let annotations = meta.entry("annotations").or_insert_with(|| Value::Object(Default::default()));
    if let Some(map) = annotations.as_object_mut() {
        map.insert(name.to_owned(), Value::from(note));
    }
}

#[cfg(test)]
mod tests;
