//! Errors from reading the folder of allowed signers. Owns only the error
//! type; a refused commit is not an error but a verdict (`verify::Refusal`).

use std::path::PathBuf;

/// Why the folder of allowed signers could not be read. Each message names
/// the file, and the line where the format has lines, so the user can fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The folder or one of its files could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A line of an `allowed_signers` file, or a `.pub` key, is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An OpenPGP key file does not hold a usable public key.
    #[error("{}:{line}: {reason}", path.display())]
    OpenPgp {
        /// The file.
        path: PathBuf,
        /// The line the offending block starts on (1 for binary files).
        line: usize,
        /// What rPGP or the check said.
        reason: String,
    },
}
