//! The blob folder, `blobs/sha256/<hex>`: content-addressed files, each
//! written only after its content was hashed to its name.
//!
//! Owns: copying blobs in (verified), reading them back (verified again,
//! which catches a disk that went bad), listing and deleting them. Must not
//! touch: what a blob means; manifests and configs are parsed by callers.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::ImageError;
use crate::digest::{HashingWriter, sha256_hex, sha256_of};
use crate::error::io_at;
use crate::fsutil::sync_parent;
use crate::space::{FileSystem, Guard, guard_error};
use std::sync::Arc;

/// A blob that is missing, corrupt or named by a digest the store cannot use.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The content does not hash to the digest it is stored or referenced under.
    #[error("blob {digest} in {} is corrupt: content hashes to {actual}", origin.display())]
    Corrupt {
        /// The digest the blob should have.
        digest: String,
        /// Where it came from (an image layout, an archive, the store).
        origin: PathBuf,
        /// What it hashes to.
        actual: String,
    },
    /// The content has another length than its descriptor says.
    #[error("blob {digest} in {} has {actual} bytes where its descriptor says {expected}", origin.display())]
    WrongSize {
        /// The blob's digest.
        digest: String,
        /// Where it came from.
        origin: PathBuf,
        /// The descriptor's size.
        expected: u64,
        /// The content's size.
        actual: u64,
    },
    /// A blob something refers to is not there.
    #[error("blob {digest} is missing from {}", origin.display())]
    Missing {
        /// The blob's digest.
        digest: String,
        /// Where it was looked for.
        origin: PathBuf,
    },
    /// Only `sha256:<64 lowercase hex>` digests are supported.
    #[error("unsupported digest {digest:?}: only sha256 digests are supported (`sha256:` and 64 lowercase hex digits)")]
    UnsupportedDigest {
        /// The digest as written.
        digest: String,
    },
}

/// The blob folder of a store.
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
    fs: Arc<dyn FileSystem>,
}

impl Blobs {
    /// The blob folder `dir`, staging new blobs in `tmp` (same file system).
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf, fs: Arc<dyn FileSystem>) -> Self {
        Self { dir, tmp, fs }
    }

    /// Where the blob of `digest` is or would be.
    pub(crate) fn path(&self, digest: &str) -> Result<PathBuf, BlobError> {
        Ok(self.dir.join(sha256_hex(digest)?))
    }

    /// Copies the blob at `source` in, checking that it hashes to `digest`
    /// and, when given, has `size` bytes. `origin` names the image it came
    /// from in errors. A blob already in the store is not copied again.
    pub(crate) fn copy_in(&self, source: &Path, digest: &str, size: Option<u64>, origin: &Path) -> Result<PathBuf, ImageError> {
        let dest = self.path(digest)?;
        if dest.exists() {
            return Ok(dest);
        }
        let (staged, actual, len) = self.stage(source, digest, origin)?;
        if actual != digest {
            return Err(BlobError::Corrupt { digest: digest.to_owned(), origin: origin.to_path_buf(), actual }.into());
        }
        if let Some(expected) = size.filter(|s| *s != len) {
            return Err(BlobError::WrongSize { digest: digest.to_owned(), origin: origin.to_path_buf(), expected, actual: len }.into());
        }
        self.persist(staged, &dest)?;
        Ok(dest)
    }

    /// Copies a file in under whatever it hashes to, for inputs that do not
    /// name their blobs by digest (`docker save` layers); returns the
    /// digest and size.
    pub(crate) fn copy_in_unnamed(&self, source: &Path, origin: &Path) -> Result<(String, u64), ImageError> {
        let (staged, digest, len) = self.stage(source, "", origin)?;
        let dest = self.path(&digest)?;
        if !dest.exists() {
            self.persist(staged, &dest)?;
        }
        Ok((digest, len))
    }

    /// Copies `source` into a temporary file, hashing it on the way.
    fn stage(&self, source: &Path, digest: &str, origin: &Path) -> Result<(tempfile::NamedTempFile, String, u64), ImageError> {
        let mut input = File::open(source).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::from(BlobError::Missing { digest: digest.to_owned(), origin: origin.to_path_buf() }),
            _ => ImageError::Io { path: source.to_path_buf(), source: e },
        })?;
        // The size is known: refuse before copying what cannot fit.
        let len = input.metadata().map_err(io_at(source))?.len();
        self.fits(len, &format!("to copy in {} ({len} bytes) from {}", source.display(), origin.display()))?;
        let staged = tempfile::NamedTempFile::new_in(&self.tmp).map_err(io_at(&self.tmp))?;
        let mut writer = HashingWriter::new(staged);
        io::copy(&mut input, &mut writer).map_err(io_at(source))?;
        Ok(writer.finish())
    }

    /// Refuses `bytes` more in the store when they would leave its file
    /// system under the reserve kept for running pods.
    pub(crate) fn fits(&self, bytes: u64, what: &str) -> Result<(), ImageError> {
        let mut guard = Guard::new(&*self.fs, &self.tmp).map_err(|e| guard_error(e, what))?;
        guard.fits(bytes).map_err(|e| guard_error(e, what))
    }

    /// Stores bytes the store made itself (the manifest of a `docker save`
    /// image) and returns their digest.
    pub(crate) fn put(&self, bytes: &[u8]) -> Result<String, ImageError> {
        let digest = sha256_of(bytes);
        let dest = self.path(&digest)?;
        if !dest.exists() {
            let mut staged = tempfile::NamedTempFile::new_in(&self.tmp).map_err(io_at(&self.tmp))?;
            staged.write_all(bytes).map_err(io_at(staged.path()))?;
            self.persist(staged, &dest)?;
        }
        Ok(digest)
    }

    fn persist(&self, staged: tempfile::NamedTempFile, dest: &Path) -> Result<(), ImageError> {
        staged.as_file().sync_all().map_err(io_at(staged.path()))?;
        staged.persist(dest).map_err(|e| ImageError::Io { path: dest.to_path_buf(), source: e.error })?;
        sync_parent(dest)
    }

    /// Reads a (small) blob whole, checking its content against its name.
    pub(crate) fn read(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest)?;
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::from(BlobError::Missing { digest: digest.to_owned(), origin: self.dir.clone() }),
            _ => ImageError::Io { path: path.clone(), source: e },
        })?;
        let actual = sha256_of(&bytes);
        if actual != digest {
            return Err(BlobError::Corrupt { digest: digest.to_owned(), origin: self.dir.clone(), actual }.into());
        }
        Ok(bytes)
    }

    /// The digests of every blob in the folder.
    pub(crate) fn list(&self) -> Result<Vec<String>, ImageError> {
        let mut digests = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_at(&self.dir))? {
            let entry = entry.map_err(io_at(&self.dir))?;
            digests.push(format!("sha256:{}", entry.file_name().to_string_lossy()));
        }
        digests.sort();
        Ok(digests)
    }

    /// Deletes a blob; a blob already gone is fine.
    pub(crate) fn remove(&self, digest: &str) -> Result<(), ImageError> {
        let path = self.path(digest)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ImageError::Io { path, source: e }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(dir: &Path) -> Blobs {
        std::fs::create_dir_all(dir.join("blobs")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        Blobs::new(dir.join("blobs"), dir.join("tmp"), Arc::new(crate::Statvfs))
    }

    #[test]
    fn copies_verified_blobs_and_refuses_corrupt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = blobs(dir.path());
        let source = dir.path().join("src");
        std::fs::write(&source, b"hello").unwrap();
        let digest = sha256_of(b"hello");
        let path = store.copy_in(&source, &digest, Some(5), Path::new("/x/layout")).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"hello");
        assert_eq!(store.read(&digest).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), [digest.as_str()]);

        let other = sha256_of(b"other");
        let err = store.copy_in(&source, &other, None, Path::new("/x/layout")).unwrap_err();
        assert_eq!(err.to_string(), format!("blob {other} in /x/layout is corrupt: content hashes to {digest}"));
        let err = store.copy_in(&source, &sha256_of(b"hello!"), None, Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("is corrupt"), "{err}");
        std::fs::write(&source, b"hello!").unwrap();
        let err = store.copy_in(&source, &sha256_of(b"hello!"), Some(5), Path::new("/x")).unwrap_err();
        assert!(err.to_string().ends_with("has 6 bytes where its descriptor says 5"), "{err}");
        // Nothing half-written is left behind by the refusals.
        assert_eq!(store.list().unwrap(), [digest.as_str()]);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn reading_rechecks_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = blobs(dir.path());
        let digest = store.put(b"{}").unwrap();
        std::fs::write(store.path(&digest).unwrap(), b"{ }").unwrap();
        assert!(matches!(store.read(&digest), Err(ImageError::Blob(BlobError::Corrupt { .. }))));
        store.remove(&digest).unwrap();
        store.remove(&digest).unwrap();
        assert!(matches!(store.read(&digest), Err(ImageError::Blob(BlobError::Missing { .. }))));
    }
}
