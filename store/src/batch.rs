//! Atomic groups of writes.

use serde_json::Value;

use crate::Key;

/// One write.
#[derive(Clone, Debug)]
pub enum Op {
    /// Creates an object; fails if it exists. The store sets `uid` (unless
    /// given), `resourceVersion`, `generation` and `creationTimestamp`.
    Create(Value),
    /// Replaces an existing object's metadata and spec. If the object
    /// carries `metadata.resourceVersion`, the write fails with a conflict
    /// unless it is still current. `status` is kept as stored unless the
    /// new object has one. `generation` rises when the spec changes; `uid`
    /// and `creationTimestamp` never change.
    Update(Value),
    /// Creates the object, or replaces it as [`Op::Update`] does without a
    /// version check.
    Put(Value),
    /// Replaces only the `status` of the object at `key`, if it still has
    /// `uid` (when given).
    Status {
        /// The object.
        key: Key,
        /// The uid the caller read, so a recreated object is not touched.
        uid: Option<String>,
        /// The new status.
        status: Value,
    },
    /// Removes the object at `key`, if it still has `uid` (when given).
    /// Removing an absent object is not an error.
    Delete {
        /// The object.
        key: Key,
        /// The uid the caller read.
        uid: Option<String>,
    },
}

/// Writes applied together: all or none, in order, with one revision each.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The object writes.
    pub ops: Vec<Op>,
    /// Metadata records to set with them (`Value::Null` removes one).
    pub meta: Vec<(String, Value)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// A batch of one operation.
    pub fn one(op: Op) -> Batch {
        Batch { ops: vec![op], meta: Vec::new() }
    }

    /// Adds an operation.
    pub fn push(&mut self, op: Op) -> &mut Batch {
        self.ops.push(op);
        self
    }

    /// Sets a metadata record with the batch.
    pub fn set_meta(&mut self, name: impl Into<String>, value: Value) -> &mut Batch {
        self.meta.push((name.into(), value));
        self
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.meta.is_empty()
    }
}
