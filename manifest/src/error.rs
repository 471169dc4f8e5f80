//! What can stop loading altogether.

use std::path::PathBuf;

/// Loading failed before any document could be judged: the input itself is
/// missing or unreadable. Syntax errors are not here; they belong to one file
/// and are reported in [`crate::SourceFile::outcome`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// A path exists but could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The unreadable path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The folder is not a git repository.
    #[error("{}: not a git repository", path.display())]
    NotARepository {
        /// The folder.
        path: PathBuf,
    },
    /// The revision does not name a commit in the repository.
    #[error("revision {rev:?} not found in {}", repo.display())]
    RevisionNotFound {
        /// The repository.
        repo: PathBuf,
        /// The revision as given.
        rev: String,
    },
    /// The path does not exist in the revision's tree.
    #[error("path {path:?} does not exist at revision {rev} ({commit})")]
    PathNotInRevision {
        /// The path inside the repository.
        path: String,
        /// The revision as given.
        rev: String,
        /// The commit it resolved to, abbreviated.
        commit: String,
    },
    /// The revision is past one of the bounds of [`crate::limits`]; `path`
    /// is the file that crossed it.
    #[error("{path}: the revision holds {why}; refused whole")]
    TooLarge {
        /// The file at which the bound was crossed.
        path: String,
        /// Which bound.
        why: String,
    },
    /// Any other failure of the git library.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}
