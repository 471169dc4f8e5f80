//! Why a sync could not run (as opposed to a commit being refused, which is
//! an outcome, not an error).

/// A sync that could not run: the repository is unreachable or broken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Loading the commit failed.
    #[error(transparent)]
    Load(#[from] driftless_manifest::LoadError),
    /// Git failed (open, fetch, write the ledger).
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// Fetching from the remote failed.
    #[error("fetching {repo}: {message}")]
    Fetch {
        /// The repository.
        repo: String,
        /// What git said.
        message: String,
    },
    /// A commit's objects cannot be read: the repository is damaged.
    #[error("cannot read commit {commit} of {repo}: {source} (the repository is damaged: `git fsck` names the bad object)")]
    Unreadable {
        /// The commit, shortened.
        commit: String,
        /// The repository.
        repo: String,
        /// What failed.
        #[source]
        source: Box<SyncError>,
    },
    /// The watched branch does not exist.
    #[error("branch {branch:?} not found in {repo}")]
    NoBranch {
        /// The branch.
        branch: String,
        /// The repository.
        repo: String,
    },
    /// The store refused the batch.
    #[error(transparent)]
    Store(#[from] driftless_store::StoreError),
    /// The repository could not be watched.
    #[error("cannot watch {path}: {source}")]
    Watch {
        /// What was watched.
        path: String,
        /// Why.
        #[source]
        source: notify::Error,
    },
    /// A file of the mirror could not be made.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The age identities could not be read.
    #[error("age identities: {0}")]
    Secrets(#[source] driftless_secrets::SecretsError),
}
