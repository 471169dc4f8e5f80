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
