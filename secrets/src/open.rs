//! Opening a manifest file that may be SOPS-encrypted: the one step every
//! reader of manifests (the sync loop, `validate`, `plan`, the write path)
//! takes instead of parsing the bytes as they are.
//!
//! Must not touch: the file's bytes as stored. The plaintext lives only in
//! the parsed documents returned; a file that cannot be decrypted becomes
//! an unreadable file, reported at its line like a syntax error.

use driftless_manifest::{Pos, RawFile, SourceFile, SyntaxError};

use crate::{Keyring, decrypt, is_encrypted};

/// Parses `raw`, decrypting it first when it is a SOPS file. A SOPS file
/// `keyring` cannot decrypt (no identity for its recipients, a tampered
/// value or MAC) is read as no documents and an error at the line SOPS's
/// metadata or the bad value is on, so validation refuses the revision
/// whole and names the place.
pub fn open(raw: RawFile, keyring: &Keyring) -> SourceFile {
    if !is_encrypted(&raw.bytes) {
        return raw.parse();
    }
    match decrypt(&raw.bytes, keyring) {
        Ok(bytes) => RawFile::new(raw.path, bytes).parse(),
        Err(error) => {
            let pos = Pos { line: u32::try_from(error.line).unwrap_or(u32::MAX), col: u32::try_from(error.col).unwrap_or(u32::MAX) };
            let hint = if keyring.is_empty() { " (no age identity is configured: `driftless secrets keygen`, or set SOPS_AGE_KEY_FILE)" } else { "" };
            SourceFile { path: raw.path, outcome: Err(SyntaxError { pos, message: format!("cannot decrypt this SOPS file: {}{hint}", error.message) }) }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn plain_files_parse_as_they_are() {
        let raw = RawFile::new(Arc::from("a.yaml"), b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n".to_vec());
        let file = open(raw, &Keyring::default());
        assert_eq!(file.outcome.unwrap().len(), 1);
    }

    #[test]
    fn a_sops_file_without_its_key_is_an_error_at_its_metadata() {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/secret.enc.yaml")).unwrap();
        let file = open(RawFile::new(Arc::from("s.yaml"), bytes), &Keyring::default());
        let error = file.outcome.unwrap_err();
        assert!(error.message.contains("cannot decrypt") && error.message.contains("secrets keygen"), "{}", error.message);
        assert!(error.pos.line > 1, "{error:?}");
    }
}
