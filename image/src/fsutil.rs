//! Small file-system steps the store builds its guarantees on: atomic
//! replacement, durable renames, deletion that never leaves half a folder
//! under its name, and the store-wide lock.
//!
//! Must not touch: anything but the paths it is given.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::ImageError;
use crate::error::io_at;

/// Replaces `path` with `bytes` atomically: a temporary file in `tmp_dir`
/// (on the same file system) is written, synced and renamed over `path`,
/// and the folder is synced so that the rename survives a crash.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], tmp_dir: &Path) -> Result<(), ImageError> {
    let mut file = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_at(tmp_dir))?;
    file.write_all(bytes).map_err(io_at(file.path()))?;
    file.as_file().sync_all().map_err(io_at(file.path()))?;
    file.persist(path).map_err(|e| ImageError::Io { path: path.to_path_buf(), source: e.error })?;
    sync_parent(path)
}

/// Renames and syncs the destination's folder.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<(), ImageError> {
    std::fs::rename(from, to).map_err(io_at(to))?;
    sync_parent(to)
}

/// Syncs the folder holding `path`, which makes a rename into it durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), ImageError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_at(parent))
}

/// Deletes a folder by first moving it into `tmp_dir`, so that a crash
/// halfway through never leaves a partial folder under its real name.
pub(crate) fn remove_dir_atomically(path: &Path, tmp_dir: &Path) -> Result<(), ImageError> {
    let doomed = tempfile::Builder::new().prefix("removing-").tempdir_in(tmp_dir).map_err(io_at(tmp_dir))?;
    let target = doomed.path().join("x");
    rename_durably(path, &target)?;
    // Dropping the TempDir deletes it with everything in it.
    doomed.close().map_err(io_at(&target))
}

/// An exclusive `flock` on the store, held while it changes, so that two
/// processes (a daemon and a CLI import) never interleave their changes.
pub(crate) struct StoreLock {
    _lock: Flock<File>,
}

impl StoreLock {
    /// Waits for and takes the lock on `path` (created if missing).
    pub(crate) fn acquire(path: &Path) -> Result<Self, ImageError> {
        let file = File::options().create(true).truncate(false).write(true).open(path).map_err(io_at(path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| ImageError::Io { path: path.to_path_buf(), source: errno.into() })?;
        Ok(Self { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_removes_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let file = dir.path().join("references.json");
        write_atomic(&file, b"one", &tmp).unwrap();
        write_atomic(&file, b"two", &tmp).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        remove_dir_atomically(&tree, &tmp).unwrap();
        assert!(!tree.exists());
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        let _held = StoreLock::acquire(&dir.path().join("lock")).unwrap();
    }
}
