//! Encrypted Secrets in git: SOPS files with age recipients, as Flux users
//! keep them (`apiVersion`, `kind` and `metadata` in plaintext, `data` and
//! `stringData` encrypted with `--encrypted-regex '^(data|stringData)$'`).
//!
//! - [`decrypt`] takes a file's bytes and returns new bytes with the same
//!   line structure: each `ENC[...]` value replaced in place by its
//!   plaintext as one line of YAML, encrypted comments by their text, and
//!   the `sops:` block by empty lines, so the manifest loader's
//!   file:line:column positions stay true. The MAC is verified; errors
//!   carry the line and column of the offending value.
//! - [`encrypt_secret`] encrypts a plaintext Secret manifest in SOPS's own
//!   format, so that `sops --decrypt` reads it back.
//! - [`open`] is how every reader of manifests parses a file: decrypted
//!   when it is a SOPS file, an error at its line when it cannot be.
//! - [`Keyring`] holds age identities (the data folder's, or SOPS's
//!   environment variables); [`keygen`] makes one.
//!
//! Owns SOPS's format and age keys. Never writes plaintext anywhere, never
//! logs a value, and puts no plaintext in `Debug` output or error messages;
//! does not read manifests' meaning beyond `kind: Secret`, and touches no
//! file but the identity files it is pointed at.

mod decrypt;
mod encrypt;
mod error;
mod keyring;
mod open;
mod sops;

pub use decrypt::{decrypt, is_encrypted};
pub use encrypt::encrypt_secret;
pub use error::{DecryptError, SecretsError};
pub use keyring::{Keyring, keygen};
pub use open::open;

/// Where the daemon keeps its age identities, under its data folder.
pub const KEYS_FILE: &str = "age/keys.txt";
