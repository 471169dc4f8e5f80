//! `references.json`: which manifest each normalized reference names.
//!
//! Owns: reading and atomically replacing that one file. Must not touch:
//! blobs and layers; the store decides what a change means for them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::ImageError;
use crate::error::{io_at, json_at};
use crate::fsutil::write_atomic;

/// Normalized reference → manifest digest, sorted for stable files.
pub(crate) type Table = BTreeMap<String, String>;

/// The references file of a store.
#[derive(Debug, Clone)]
pub(crate) struct References {
    path: PathBuf,
    tmp: PathBuf,
}

impl References {
    /// The file at `path`, staging replacements in `tmp`.
    pub(crate) fn new(path: PathBuf, tmp: PathBuf) -> Self {
        Self { path, tmp }
    }

    /// Reads the table; a store that never had an image has no file yet.
    pub(crate) fn load(&self) -> Result<Table, ImageError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => json_at(&self.path, "references file", &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::new()),
            Err(e) => Err(io_at(&self.path)(e)),
        }
    }

    /// Replaces the file with `table`, atomically and durably.
    pub(crate) fn save(&self, table: &Table) -> Result<(), ImageError> {
        let mut bytes = serde_json::to_vec_pretty(table).expect("a string map always serializes");
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes, &self.tmp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("references.json");
        let refs = References::new(path.clone(), dir.path().to_path_buf());
        assert!(refs.load().unwrap().is_empty());
        let table = Table::from([("docker.io/library/busybox:1.35".to_owned(), "sha256:ab".to_owned())]);
        refs.save(&table).unwrap();
        assert_eq!(refs.load().unwrap(), table);
        std::fs::write(&path, "{").unwrap();
        let err = refs.load().unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: invalid references file: ", path.display())), "{err}");
    }
}
