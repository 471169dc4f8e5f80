//! Commit signatures: which keys may sign the watched branch, and whether a
//! commit was signed by one of them.
//!
//! [`AllowedSigners::load`] reads a folder of SSH keys (git's
//! `allowed_signers` format, or single `.pub` keys) and OpenPGP public keys;
//! [`verify`] checks the head, or every commit since the last applied one
//! ([`Mode`]), the way `git verify-commit` would with the same keys. The
//! crate decides only whether signatures are good: the sync loop decides
//! what a refusal refuses. It never calls `git`, `gpg` or `ssh-keygen`.

mod allowed;
mod allowed_signers;
mod error;
mod openpgp;
mod ssh;
mod verify;

pub use allowed::AllowedSigners;
pub use error::SignatureError;
pub use verify::{Format, MAX_RANGE_COMMITS, Mode, Refusal, Refused, Signer, verify, verify_commit};
