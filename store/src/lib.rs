//! The daemon's store: every object the control plane knows (what git
//! declared, what controllers made, what the node observed), kept in an
//! embedded database under the data folder and announced to watchers as it
//! changes.
//!
//! Owns: persistence of objects (as Kubernetes JSON, keyed by kind,
//! namespace and name), resource versions, uids, generations, creation
//! timestamps, small named metadata records (such as the applied revision),
//! atomic batches, and watch notifications.
//!
//! Must not touch: git, the node, the network, or any Kubernetes semantics
//! beyond object identity and the metadata the API server itself maintains
//! (`uid`, `resourceVersion`, `generation`, `creationTimestamp`). Controllers
//! decide what to write.
//!
//! [`Store`] is the boundary a distributed backend (etcd) could implement
//! later; [`SqliteStore`] is the embedded one. Reads are served from memory
//! (the whole data set is small: objects of one node) and every write goes
//! to SQLite first, in one transaction per [`Batch`], before memory and
//! watchers see it. SQLite was chosen over redb because its write-ahead log
//! with `synchronous=NORMAL` survives a killed process without an fsync per
//! commit (a killed daemon loses nothing it reported written), while redb's
//! commits are either fsynced one by one or may be rolled back by a crash.

mod batch;
#[cfg(test)]
mod conformance;
mod delete;
pub mod election;
mod error;
mod etcd;
mod key;
mod objects;
pub mod records;
mod sqlite;
mod stage;
mod typed;
mod watch;

pub use batch::{Batch, Op};
pub use delete::delete_op;
pub use error::StoreError;
pub use etcd::{EtcdConfig, EtcdStore, EtcdTls};
pub use key::Key;
pub use sqlite::SqliteStore;
pub use typed::{Api, Parsed, StoreExt, key_of, to_value};
pub use watch::{EventType, WatchEvent};

use std::sync::Arc;

use driftless_model::Kind;
use serde_json::Value;

/// What the control plane needs from a store.
pub trait Store: Send + Sync {
    /// The object at `key`.
    fn get(&self, key: &Key) -> Option<Arc<Value>>;
    /// Every object of `kind` (in `namespace` if given), sorted by
    /// namespace and name, and the store's revision they were read at.
    fn list(&self, kind: Kind, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64);
    /// How many objects of `kind` (in `namespace` if given) there are,
    /// without reading them: a store may keep some kinds in a form that
    /// costs parsing to read (Events, see `objects.rs`).
    fn count(&self, kind: Kind, namespace: Option<&str>) -> usize {
        self.list(kind, namespace).0.len()
    }
    /// The keys of every object of `kind` (in `namespace` if given), in
    /// the order of [`Store::list`], none of the objects read.
    fn keys(&self, kind: Kind, namespace: Option<&str>) -> Vec<Key> {
        self.list(kind, namespace).0.iter().filter_map(|v| Key::of(v)).collect()
    }
    /// Applies every operation of `batch` or none; returns the objects as
    /// written (deleted objects as they were), in operation order.
    fn apply(&self, batch: Batch) -> Result<Vec<Arc<Value>>, StoreError>;
    /// A stream of every change after this call, in revision order.
    fn watch(&self) -> tokio::sync::broadcast::Receiver<WatchEvent>;
    /// The revision of the last change.
    fn revision(&self) -> u64;
    /// A named metadata record (the applied commit, allocations...).
    fn meta(&self, name: &str) -> Option<Value>;
    /// The names of the metadata records starting with `prefix`, sorted.
    fn meta_names(&self, prefix: &str) -> Vec<String>;
    /// Why the last write failed (a full disk), until a write succeeds:
    /// what status shows while the store cannot save even that.
    fn write_error(&self) -> Option<String> {
        None
    }
}
