//! The sync loop: git is the only source of truth, and this crate is how
//! its truth reaches the store.
//!
//! Owns: reading the watched branch of a local repository (watched with
//! `notify`) or of a remote one (fetched into a mirror on an interval, or
//! when a webhook wakes the loop); with `--verify-commits`, refusing a head
//! not signed by an allowed key; decrypting SOPS files with the data
//! folder's age identities; validating each new head commit whole with the
//! same pipeline as `driftless validate`; applying a valid commit to the store in one atomic
//! batch (creating, updating and pruning what git declares, carrying over
//! the fields the API server allocates); refusing an invalid one whole; and
//! recording every sync, applied or refused, as a commit on the ledger ref
//! (`refs/driftless/applied`) of the same repository.
//!
//! Must not touch: the user's branches, index or working tree (uncommitted
//! changes are never read), the node, or any object that git does not
//! declare except what a pruned namespace held. Controllers turn what it
//! writes into pods.

mod apply;
mod error;
pub mod ledger;
pub mod revisions;
mod source;
mod syncer;
mod watch;

pub use apply::{Action, Change, MANAGED, StoreLive, batch_for};
pub use error::SyncError;
pub use ledger::{LEDGER_REF, LedgerEntry};
pub use source::{Source, SourceConfig};
pub use syncer::{Observer, Outcome, Reply, STATUS_META, SyncStatus, Syncer, Trigger, Verify};
