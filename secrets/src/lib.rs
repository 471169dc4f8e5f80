//! Encrypted Secrets in git: SOPS files with age recipients.
