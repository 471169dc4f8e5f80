//! Failures that stop a command before it can judge its input.

use std::path::PathBuf;

/// Why a command could not run. Each maps to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The manifests could not be loaded (missing path, not a repository,
    /// unknown revision...).
    #[error(transparent)]
    Load(#[from] driftless_manifest::LoadError),
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The image store refused an operation.
    #[error(transparent)]
    Image(#[from] driftless_image::ImageError),
    /// Git refused an operation.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}
