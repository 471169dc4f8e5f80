//! Why a store operation failed.

use crate::Key;

/// A failed store operation. Nothing of its batch was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `Create` of an object that exists.
    #[error("{0} already exists")]
    AlreadyExists(Key),
    /// `Update`, `Status` or `Delete` of an object that does not exist (or
    /// no longer has the uid the caller read).
    #[error("{0} not found")]
    NotFound(Key),
    /// `Update` with a `resourceVersion` that is no longer current: someone
    /// wrote the object since the caller read it.
    #[error("{key} was changed since it was read (resourceVersion {expected}, now {actual})")]
    Conflict {
        /// The object.
        key: Key,
        /// The version the caller read.
        expected: String,
        /// The version stored now.
        actual: String,
    },
    /// The object has no `metadata.name`, or a `kind` the store does not
    /// hold.
    #[error("object has no metadata.name, or a kind the store does not hold")]
    Unnamed,
    /// The database refused or failed.
    #[error("store database: {0}")]
    Database(#[from] rusqlite::Error),
    /// etcd failed or refused a request (unreachable, a transaction over
    /// its limits...), in etcd's words.
    #[error("etcd: {0}")]
    Etcd(String),
    /// This instance no longer leads: another was elected since the fence
    /// was set. Nothing was written.
    #[error("not the leader any more: the leader key {key} is no longer the one created at revision {revision}")]
    NotLeader {
        /// The leader key.
        key: String,
        /// The fence's revision.
        revision: i64,
    },
    /// The control plane a node's store reads through could not take or
    /// answer a request.
    #[error("the control plane: {0}")]
    Remote(String),
    /// The store's address cannot be read.
    #[error("store: {0}")]
    Config(String),
    /// A stored object could not be read back.
    #[error("stored {what} is not JSON: {source}")]
    Corrupt {
        /// What was being read (an object's key, a metadata record).
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The store's file is damaged, emptied, replaced, or lost the last
    /// changes it acknowledged: it cannot be trusted, and nothing is served
    /// from it.
    #[error("{path}: {why}")]
    Damaged {
        /// The store's file.
        path: String,
        /// What was found.
        why: String,
    },
    /// The database folder could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether trying again after reading the object anew may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. } | StoreError::AlreadyExists(_) | StoreError::NotFound(_))
    }
}
