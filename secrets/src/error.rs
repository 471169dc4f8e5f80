//! The crate's errors. Messages name files, lines, recipients and key
//! types, never a secret value or key.

use std::io;
use std::path::PathBuf;

/// An error reading or making keys, or encrypting a manifest.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// An identity file (or `SOPS_AGE_KEY_FILE`) could not be read.
    #[error("cannot read the age identities in {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An identity file could not be written.
    #[error("cannot write the age identity {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `keygen` never replaces an identity: files encrypted for it would be lost.
    #[error("{path} already exists; refusing to overwrite an age identity")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A line of an identity source is neither a comment nor an x25519 identity.
    #[error("{origin}, line {line}: not an age x25519 identity (AGE-SECRET-KEY-1...)")]
    BadIdentity {
        /// The file, or `SOPS_AGE_KEY`.
        origin: String,
        /// The 1-based line.
        line: usize,
    },
    /// A recipient is not an `age1...` x25519 recipient.
    #[error("not an age x25519 recipient: {0}")]
    BadRecipient(String),
    /// `encrypt_secret` was given no recipient.
    #[error("no age recipient to encrypt for")]
    NoRecipients,
    /// The manifest already carries a `sops:` block.
    #[error("the file is already encrypted with SOPS")]
    AlreadyEncrypted,
    /// The manifest cannot be encrypted as a Secret.
    #[error("line {line}, column {col}: {message}")]
    Manifest {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// age refused to encrypt the data key.
    #[error("age encryption failed: {0}")]
    Age(String),
}

/// Why an encrypted file did not decrypt, at the 1-based line and column of
/// the offending value, or of the `sops:` key for key and MAC errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct DecryptError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What went wrong; never a plaintext value.
    pub message: String,
}
