//! The garbage collector: deletes objects whose owners are gone (cascading
//! deletion through `ownerReferences`, in the background as Kubernetes'
//! default propagation does). What a deleted namespace held is removed by
//! the sync loop, in the same write as the namespace.
//!
//! As Kubernetes' collector, it reconciles dependents: every object with
//! owner references is a key, a deletion wakes the dependents that name the
//! deleted uid, and a dependent is deleted once none of its owners exists
//! (by kind, name and uid). The initial list and the periodic resync find a
//! dependent left behind by a crash between two writes.

use std::sync::Arc;

use driftless_model::Kind;
use driftless_store::{Batch, EventType, Key, Op, Store, WatchEvent};
use serde_json::Value;

use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError};

/// The collector.
pub struct GarbageCollector {
    ctx: Context,
}

impl GarbageCollector {
    /// A collector.
    pub fn new(ctx: Context) -> Arc<GarbageCollector> {
        Arc::new(GarbageCollector { ctx })
    }
}

/// The owner references of an object: (kind, name, uid).
fn owners(value: &Value) -> Vec<(&str, &str, &str)> {
    let owners = value.pointer("/metadata/ownerReferences").and_then(Value::as_array);
    owners.into_iter().flatten().filter_map(|o| Some((o.get("kind")?.as_str()?, o.get("name")?.as_str()?, o.get("uid")?.as_str()?))).collect()
}

/// Every object with owner references. Events are not among them: the
/// recorder makes them unowned, and bounds their number itself; and the
/// store keeps them as text (`store/src/objects.rs`), so reading all of
/// them on every deletion would parse a thousand objects each time.
fn dependents(store: &dyn Store) -> impl Iterator<Item = Arc<Value>> + '_ {
    Kind::ALL.iter().filter(|&&kind| kind != Kind::Event).flat_map(move |&kind| store.list(kind, None).0).filter(|v| !owners(v).is_empty())
}

impl Reconciler for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    /// Its keys span every kind: [`Reconciler::keys`] and
    /// [`Reconciler::triggers`] say which.
    fn watch(&self) -> Watch {
        Watch::any()
    }

    /// Every object with owner references.
    fn keys(&self, store: &dyn Store) -> Vec<Key> {
        dependents(store).filter_map(|v| Key::of(&v)).collect()
    }

    /// The dependents of a deleted object.
    fn triggers(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        if event.kind != EventType::Deleted || event.key.kind == Kind::Event {
            return vec![];
        }
        let Some(uid) = event.object.pointer("/metadata/uid").and_then(Value::as_str) else { return vec![] };
        dependents(store).filter(|v| owners(v).iter().any(|(_, _, owner)| *owner == uid)).filter_map(|v| Key::of(&v)).collect()
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let store = &*self.ctx.store;
        let Some(value) = store.get(key) else { return Ok(Action::AwaitChange) };
        if value.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Action::AwaitChange);
        }
        let owners = owners(&value);
        let exists = |(kind, name, uid): &(&str, &str, &str)| {
            // An owner of a kind the store does not hold cannot exist.
            let Some(kind) = Kind::from_name(kind) else { return false };
            let namespace = if kind.namespaced() { key.namespace.as_str() } else { "" };
            store.get(&Key::new(kind, namespace, *name)).is_some_and(|o| o.pointer("/metadata/uid").and_then(Value::as_str) == Some(*uid))
        };
        if owners.is_empty() || owners.iter().any(exists) {
            return Ok(Action::AwaitChange);
        }
        tracing::info!(object = %key, "collecting an object whose owners are gone");
        if let Some(op) = driftless_store::delete_op(&value, self.ctx.now()) {
            store.apply(Batch::one(op))?;
        } else {
            store.apply(Batch::one(Op::Delete { key: key.clone(), uid: None }))?;
        }
        Ok(Action::AwaitChange)
    }
}
