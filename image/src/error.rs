//! The crate's error: what a caller of [`crate::ImageStore`] can get back.
//! Domain failures live in their module's enum and are gathered here;
//! plain I/O and JSON failures carry the path they happened on.

use std::path::{Path, PathBuf};

use crate::{BlobError, ImportError, ReferenceError, UnpackError};

/// Why an image store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// No image of that reference is in the store.
    #[error("image {reference:?} not found in the store")]
    NotFound {
        /// The normalized reference that was asked for.
        reference: String,
    },
    /// The reference cannot be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A blob is missing, corrupt or of an unsupported digest.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A layer could not be unpacked safely or does not match its diff_id.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// The input to an import is not an image this store can read.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A registry refused or failed a pull; the message is the registry's.
    #[error("pulling {reference:?}: {message}")]
    Pull {
        /// The normalized reference.
        reference: String,
        /// What went wrong, in the registry's or the network's words.
        message: String,
    },
    /// A layer folder the image needs is gone from the store.
    #[error("layer {diff_id} of image {reference:?} is missing from {}", path.display())]
    LayerMissing {
        /// The image's normalized reference.
        reference: String,
        /// The layer's diff_id (`sha256:...`).
        diff_id: String,
        /// Where the layer should be.
        path: PathBuf,
    },
    /// Writing more would leave the store's file system under the reserve
    /// kept for running pods ([`crate::space`]).
    #[error("refusing {what}: {source}")]
    NoSpace {
        /// What was being written (`to unpack layer sha256:...`).
        what: String,
        /// How full the file system is.
        #[source]
        source: crate::SpaceError,
    },
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (manifest, config, index, references) is malformed.
    #[error("{}: invalid {what}: {source}", path.display())]
    Json {
        /// The file, or the blob's path in the store.
        path: PathBuf,
        /// What the document should have been (`image manifest`, ...).
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Wraps an I/O error with the path it happened on, for `map_err`.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io { path: path.to_path_buf(), source }
}

/// Parses a JSON document, naming the file and what it should have been.
pub(crate) fn json_at<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str, bytes: &[u8]) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|source| ImageError::Json { path: path.to_path_buf(), what, source })
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, ImageError> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    json_at(path, what, &bytes)
}
