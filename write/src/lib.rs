//! The write path: every imperative verb (`scale`, `set image`, `label`,
//! `rollout undo`...) becomes one small, attributed commit on the watched
//! branch, so the repository stays the only source of truth.
//!
//! Owns: finding the document that declares an object, the verbs as pure
//! functions of that document's value (`verb.rs`), writing the new value
//! into the file without disturbing anything else (`yaml.rs`), validating
//! the resulting revision whole with the daemon's pipeline and planning it
//! with the daemon's change engine, and committing it (`commit.rs`): author
//! the caller, committer Driftless, trailers naming the verb and object,
//! the checked-out working tree and index left as `git commit` leaves
//! them.
//!
//! Must not touch: the store or the node. What a commit does to the
//! running system is the sync loop's business, as for any other commit.

mod change;
mod commit;
mod edit;
mod error;
pub mod merge;
mod restore;
mod undo;
mod verb;
pub mod yaml;

pub use change::{Change, OBJECT_TRAILER, RESTORES_TRAILER, REVERTS_TRAILER, Request, Target, Timings, VERB_TRAILER, Writer, Written, object_trailer, write};
pub use commit::Identity;
pub use edit::{Opened, open};
pub use error::WriteError;
pub use undo::Undo;
pub use verb::{RESTARTED_AT, Verb, display};
