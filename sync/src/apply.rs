//! Applying a plan: the store as the engine's live side ([`StoreLive`]),
//! and the one store batch that carries out a [`Plan`] (creates, updates
//! and replaces with the source-commit annotation, deletes as the API
//! server deletes, and a pruned namespace emptied). What to do is decided
//! by `driftless_diff::plan` alone; this module only writes it.

use std::sync::Arc;

use driftless_diff::{Change as PlanChange, Live, LiveObject, Plan};
use driftless_model::annotations::SOURCE_COMMIT;
use driftless_model::{Kind, ObjectRef};
use driftless_store::{Batch, Key, Op, Store, records};
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

    /// What `driftless plan --live` plans against, in the wire form of
    /// [`driftless_diff::Snapshot`]: every declared object, and those of
    /// `request`'s `objects` (refs a revision declares) that the store
    /// holds. Refs of unknown kinds are skipped: the client's validation
    /// reports them.
    pub fn snapshot(&self, request: &Value) -> Value {
        let wanted: Vec<ObjectRef> = request.get("objects").and_then(Value::as_array).into_iter().flatten().filter_map(driftless_diff::ref_from_json).collect();
        driftless_diff::Snapshot::of(self, &wanted).to_json()
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
        if let Some(value) = self.store.get(&key_of(object)) {
            return Some(LiveObject::Stored(value));
        }
        // A Job its TTL removed is still declared: its run is remembered.
        if object.kind == Kind::Job {
            let record = self.store.meta(&records::job_run(object.namespace.as_deref().unwrap_or_default(), &object.name))?;
            return Some(LiveObject::Finished(Arc::new(record)));
        }
        None
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
        // Remembered runs: when git stops declaring the Job, the plan
        // deletes it, which forgets the run.
        for name in self.store.meta_names(records::JOB_RUN_PREFIX) {
            let Some((namespace, job)) = name[records::JOB_RUN_PREFIX.len()..].split_once('/') else { continue };
            let object = ObjectRef::new(Kind::Job, Some(namespace), job);
            if self.store.get(&key_of(&object)).is_none() {
                out.push(object);
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
                if action.object.kind == Kind::Job {
                    forget_run(&mut batch, store, &action.object);
                }
            }
            PlanChange::Delete => {
                if let Some(op) = store.get(&key).and_then(|live| driftless_store::delete_op(&live, now)) {
                    batch.push(op);
                }
                if action.object.kind == Kind::Job {
                    forget_run(&mut batch, store, &action.object);
                }
                if action.cascades() {
                    empty_namespace(&mut batch, store, &action.object.name, now);
                }
            }
        }
    }
    (batch, plan.actions.iter().map(Action::of).collect())
}

/// Drops the record of a Job's finished run, if there is one: the Job runs
/// again, or git no longer declares it.
fn forget_run(batch: &mut Batch, store: &dyn Store, job: &ObjectRef) {
    let name = records::job_run(job.namespace.as_deref().unwrap_or_default(), &job.name);
    if store.meta(&name).is_some() {
        batch.set_meta(name, Value::Null);
    }
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
