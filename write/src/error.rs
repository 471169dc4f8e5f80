//! What can go wrong writing a change to git.

use thiserror::Error;

/// Why a verb committed nothing.
#[derive(Debug, Error)]
pub enum WriteError {
    /// The object is not declared by any file under the watched path.
    #[error("{object} is not declared in {path:?} at {commit}")]
    NotDeclared {
        /// `kind/name` (and namespace).
        object: String,
        /// The watched path.
        path: String,
        /// The short commit id looked at.
        commit: String,
    },
    /// The verb does not apply to the object (wrong kind, no such
    /// container, a failed precondition...).
    #[error("{0}")]
    Verb(String),
    /// The change cannot be written without rewriting the user's file.
    #[error("{file}:{line}: cannot edit in place: {why}")]
    NotInPlace {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// Why.
        why: String,
    },
    /// The file has uncommitted changes in the checked-out working tree.
    #[error("{file} has uncommitted changes; commit or stash them first (the change would be written to that file)")]
    Dirty {
        /// The file, relative to the repository root.
        file: String,
    },
    /// The new revision is invalid or changes what cannot change; nothing
    /// was committed.
    #[error("the change would make an invalid revision; nothing was committed:\n{}", .errors.join("\n"))]
    Invalid {
        /// Each finding, `FILE:LINE:COL: error: ...` as `validate` prints.
        errors: Vec<String>,
    },
    /// The change changes nothing.
    #[error("{0}: nothing to change")]
    NoChange(String),
    /// The branch moved under every attempt.
    #[error("the branch {0} kept moving; try again")]
    Raced(String),
    /// The branch moved, and the new head changed the very fields the verb
    /// changes.
    #[error("{field} was changed meanwhile by {commit}; look at it and run the verb again")]
    Conflict {
        /// The field, as a JSON pointer.
        field: String,
        /// The commit that moved the branch (short id).
        commit: String,
    },
    /// A branch to create exists already.
    #[error("branch {0} exists already")]
    BranchExists(String),
    /// Loading the revision failed.
    #[error(transparent)]
    Load(#[from] driftless_manifest::LoadError),
    /// A git operation failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// Pushing to the remote failed.
    #[error("push to {remote} failed: {message}")]
    Push {
        /// The remote.
        remote: String,
        /// git's words.
        message: String,
    },
}
