//! Why a reconcile failed.

use driftless_store::StoreError;

/// A failed reconcile; the runner retries it with back-off.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The store refused a write or a read-modify-write raced another.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node runtime failed.
    #[error(transparent)]
    Node(#[from] driftless_nodeapi::NodeError),
    /// A stored object is not what its kind says it is.
    #[error("{0}")]
    Malformed(String),
    /// A blocking call could not run.
    #[error("node call failed to run: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A thread for a node call could not be started.
    #[error("could not start a thread for a node call: {0}")]
    Thread(std::io::Error),
    /// The reconcile panicked (a bug; it is logged).
    #[error("reconcile panicked")]
    Panicked,
}

impl ReconcileError {
    /// Whether the failure is a write race, worth retrying at once.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ReconcileError::Store(error) if error.is_conflict())
    }
}
