//! Change notifications.

use std::sync::Arc;

use serde_json::Value;

use crate::Key;

/// What happened to an object, in the API's watch vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed (spec, metadata or status).
    Modified,
    /// Removed; the event carries the object as it was.
    Deleted,
}

impl EventType {
    /// `ADDED`, `MODIFIED` or `DELETED`, as a Kubernetes watch stream says.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, sent to every watcher after it is written.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventType,
    /// Which object.
    pub key: Key,
    /// The object after the change (before it, for deletions).
    pub object: Arc<Value>,
    /// The store revision of the change.
    pub revision: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watch buffer's size is a bound on what a slow watcher pins, not
    /// memory always held: a change every watcher has read is dropped.
    #[tokio::test]
    async fn a_change_every_watcher_has_read_is_not_kept_by_the_buffer() {
        let (events, mut first) = tokio::sync::broadcast::channel::<WatchEvent>(16);
        let mut second = events.subscribe();
        let object = Arc::new(Value::String("a pod".into()));
        let key = Key { kind: driftless_model::Kind::Pod, namespace: "default".into(), name: "p".into() };
        events.send(WatchEvent { kind: EventType::Deleted, key, object: object.clone(), revision: 1 }).unwrap();
        drop(first.recv().await.unwrap());
        assert_eq!(Arc::strong_count(&object), 2, "read by one watcher of two: still buffered");
        drop(second.recv().await.unwrap());
        assert_eq!(Arc::strong_count(&object), 1, "read by both: the buffer let it go");
    }
}
