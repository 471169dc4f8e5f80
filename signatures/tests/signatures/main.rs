//! Integration tests of `driftless-signatures` on real signatures: keys made
//! by `ssh-keygen` and `gpg`, commits signed by `git`, and every verdict
//! checked against `git verify-commit` with the same keys. One binary; the
//! modules are the areas.

mod folder;
mod openpgp;
mod range;
mod ssh;
mod support;
