//! What a batch's operations make of the objects, decided once for every
//! backend: identity fields set, versions checked, creates of what exists
//! and updates of what does not refused, all against the store as the
//! batch has changed it so far, so a failure writes nothing.
//!
//! Must not touch: any storage. The backend says what an object is now
//! (`current`) and which revision each change gets (`next`: SQLite counts
//! one per change; etcd's transaction gives one to all, filled in later).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::sqlite::{created, set_revision, uid_matches, updated};
use crate::{EventType, Key, Op, StoreError};

/// A batch's operations, decided.
pub(crate) struct Staged {
    /// Each key's final value (`None`: deleted).
    pub(crate) finals: HashMap<Key, Option<Arc<Value>>>,
    /// Each change in operation order, with its revision: the object as
    /// written (as it was, for a delete).
    pub(crate) changes: Vec<(EventType, Key, Arc<Value>, u64)>,
}

/// Decides `ops` against `current`, giving each change the revision
/// `next` returns. The operations are taken, not borrowed: each becomes
/// the stored object without a copy. Copying every operation here was the
/// largest transient allocation of a scale-down, 100 pods copied whole at
/// the heap's peak (docs/benchmarks.md, "Issue 21").
pub(crate) fn stage(ops: Vec<Op>, current: &dyn Fn(&Key) -> Option<Arc<Value>>, now: &str, next: &mut dyn FnMut() -> u64) -> Result<Staged, StoreError> {
    let mut finals: HashMap<Key, Option<Arc<Value>>> = HashMap::new();
    let mut changes = Vec::new();
    for op in ops {
        let now_of = |key: &Key, finals: &HashMap<Key, Option<Arc<Value>>>| match finals.get(key) {
            Some(value) => value.clone(),
            None => current(key),
        };
        let (kind, key, value, revision) = match op {
            Op::Create(value) => {
                let key = Key::of(&value).ok_or(StoreError::Unnamed)?;
                if now_of(&key, &finals).is_some() {
                    return Err(StoreError::AlreadyExists(key));
                }
                let revision = next();
                (EventType::Added, key, created(value, revision, now), revision)
            }
            Op::Update(value) => {
                let key = Key::of(&value).ok_or(StoreError::Unnamed)?;
                let old = now_of(&key, &finals).ok_or_else(|| StoreError::NotFound(key.clone()))?;
                if let Some(expected) = value.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                    let actual = old.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
                    if expected != actual {
                        return Err(StoreError::Conflict { key, expected: expected.to_owned(), actual: actual.to_owned() });
                    }
                }
                let revision = next();
                (EventType::Modified, key, updated(&old, value, revision), revision)
            }
            Op::Put(mut value) => {
                let key = Key::of(&value).ok_or(StoreError::Unnamed)?;
                let revision = next();
                match now_of(&key, &finals) {
                    Some(old) => {
                        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                            meta.remove("resourceVersion");
                        }
                        (EventType::Modified, key, updated(&old, value, revision), revision)
                    }
                    None => (EventType::Added, key, created(value, revision, now), revision),
                }
            }
            Op::Status { key, uid, status } => {
                let old = now_of(&key, &finals).filter(|old| uid_matches(old, uid.as_deref()));
                let old = old.ok_or_else(|| StoreError::NotFound(key.clone()))?;
                let mut value = (*old).clone();
                value["status"] = status;
                let revision = next();
                set_revision(&mut value, revision);
                (EventType::Modified, key, value, revision)
            }
            Op::Delete { key, uid } => {
                let Some(old) = now_of(&key, &finals).filter(|old| uid_matches(old, uid.as_deref())) else {
                    continue;
                };
                let revision = next();
                finals.insert(key.clone(), None);
                changes.push((EventType::Deleted, key, old, revision));
                continue;
            }
        };
        let value = Arc::new(value);
        finals.insert(key.clone(), Some(value.clone()));
        changes.push((kind, key, value, revision));
    }
    Ok(Staged { finals, changes })
}
