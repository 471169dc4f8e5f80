//! The garbage collector: deletes objects whose owners are gone (cascading
//! deletion through `ownerReferences`, in the background as Kubernetes'
//! default propagation does). What a deleted namespace held is removed by
//! the sync loop, in the same write as the namespace.
//!
//! It is one sweep over the store, woken by deletions and run periodically
//! too, so a dependent left behind by a crash between two writes is found
//! on the next sweep.

use std::collections::HashSet;
use std::sync::Arc;

use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::{Batch, EventType, Key, Op, Store, WatchEvent};
use serde_json::Value;

use crate::runner::{Action, Reconciler};
use crate::{Context, ReconcileError, pods};

/// The collector.
pub struct GarbageCollector {
    ctx: Context,
}

impl GarbageCollector {
    /// A collector.
    pub fn new(ctx: Context) -> Arc<GarbageCollector> {
        Arc::new(GarbageCollector { ctx })
    }

    fn sweep_key() -> Key {
        Key::new("GarbageCollector", "", "sweep")
    }
}

impl Reconciler for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    fn keys(&self, _: &dyn Store) -> Vec<Key> {
        vec![GarbageCollector::sweep_key()]
    }

    fn triggers(&self, event: &WatchEvent, _: &dyn Store) -> Vec<Key> {
        if event.kind == EventType::Deleted && event.key.kind != "Event" { vec![GarbageCollector::sweep_key()] } else { vec![] }
    }

    async fn reconcile(&self, _: &Key) -> Result<Action, ReconcileError> {
        let store = &*self.ctx.store;
        let mut uids: HashSet<String> = HashSet::new();
        let mut all: Vec<Arc<Value>> = Vec::new();
        for kind in driftless_model::Kind::ALL {
            for value in store.list(kind.name(), None).0 {
                if let Some(uid) = value.pointer("/metadata/uid").and_then(Value::as_str) {
                    uids.insert(uid.to_owned());
                }
                all.push(value);
            }
        }
        let now = self.ctx.now();
        let mut batch = Batch::new();
        let mut removed = 0;
        for value in &all {
            let Some(key) = Key::of(value) else { continue };
            if value.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let owners = value.pointer("/metadata/ownerReferences").and_then(Value::as_array);
            let orphaned = owners
                .is_some_and(|owners| !owners.is_empty() && owners.iter().all(|o| o.get("uid").and_then(Value::as_str).is_none_or(|uid| !uids.contains(uid))));
            if !orphaned {
                continue;
            }
            removed += 1;
            tracing::info!(object = %key, "collecting an object whose owners are gone");
            if key.kind == "Pod" {
                if let Ok(pod) = serde_json::from_value::<Pod>((**value).clone()) {
                    batch.push(pods::delete_op(&pod, now));
                    continue;
                }
            }
            let uid = value.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
            batch.push(Op::Delete { key, uid });
        }
        if removed > 0 {
            store.apply(batch)?;
        }
        Ok(Action::AwaitChange)
    }
}
