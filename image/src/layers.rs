//! The layer folder, `layers/sha256/<diff_id hex>/`: each layer unpacked
//! once, shared by every image that has it, ready to be an overlayfs
//! lowerdir as it is.
//!
//! Owns: staging, verifying and publishing layer folders, and deleting
//! them. Must not touch: blobs (it only reads the one it unpacks) and
//! mounts.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::sha256_hex;
use crate::error::io_at;
use crate::fsutil::{remove_dir_atomically, rename_durably};
use crate::space::FileSystem;
use crate::unpack::unpack_layer;
use crate::{BlobError, ImageError};
use std::sync::Arc;

/// The layer folder of a store.
#[derive(Debug, Clone)]
pub(crate) struct Layers {
    dir: PathBuf,
    tmp: PathBuf,
    fs: Arc<dyn FileSystem>,
}

impl Layers {
    /// The layer folder `dir`, staging in `tmp` (same file system).
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf, fs: Arc<dyn FileSystem>) -> Self {
        Self { dir, tmp, fs }
    }

    /// Where the layer of `diff_id` is or would be.
    pub(crate) fn path(&self, diff_id: &str) -> Result<PathBuf, BlobError> {
        Ok(self.dir.join(sha256_hex(diff_id)?))
    }

    /// Unpacks the layer blob at `blob` unless the layer is already there,
    /// and returns its folder. The layer is unpacked into `tmp/`, checked
    /// against `diff_id`, synced to disk and only then renamed into place,
    /// so a folder under its final name is always whole. `name` names the
    /// layer in errors.
    pub(crate) fn ensure(&self, diff_id: &str, blob: &Path, name: &str) -> Result<PathBuf, ImageError> {
        let dest = self.path(diff_id)?;
        if dest.exists() {
            return Ok(dest);
        }
        // Dropped on any error below, which deletes the partial layer.
        let staging = tempfile::Builder::new().prefix("layer-").tempdir_in(&self.tmp).map_err(io_at(&self.tmp))?;
        unpack_layer(blob, staging.path(), diff_id, name, &*self.fs)?;
        // The temporary folder is private; the root of a container's file
        // system must be traversable by its (possibly non-root) user.
        let root = staging.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).map_err(io_at(root))?;
        // One syncfs makes every unpacked file durable before the rename
        // publishes them; fsyncing each file would cost a syscall apiece.
        let handle = File::open(root).map_err(io_at(root))?;
        nix::unistd::syncfs(handle.as_raw_fd()).map_err(|e| ImageError::Io { path: root.to_path_buf(), source: e.into() })?;
        rename_durably(&staging.keep(), &dest)?;
        Ok(dest)
    }

    /// The diff_ids of every layer in the folder.
    pub(crate) fn list(&self) -> Result<Vec<String>, ImageError> {
        let mut diff_ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_at(&self.dir))? {
            let entry = entry.map_err(io_at(&self.dir))?;
            diff_ids.push(format!("sha256:{}", entry.file_name().to_string_lossy()));
        }
        diff_ids.sort();
        Ok(diff_ids)
    }

    /// Deletes a layer folder, never leaving part of it under its name.
    pub(crate) fn remove(&self, diff_id: &str) -> Result<(), ImageError> {
        let path = self.path(diff_id)?;
        if !path.exists() {
            return Ok(());
        }
        remove_dir_atomically(&path, &self.tmp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_of;
    use crate::testutil::{base_layer, gzip};

    #[test]
    fn publishes_whole_layers_only() {
        let dir = tempfile::tempdir().unwrap();
        let (layers_dir, tmp) = (dir.path().join("layers"), dir.path().join("tmp"));
        std::fs::create_dir_all(&layers_dir).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        let layers = Layers::new(layers_dir, tmp.clone(), Arc::new(crate::Statvfs));
        let tar = base_layer();
        let blob = dir.path().join("blob");
        std::fs::write(&blob, gzip(&tar)).unwrap();

        let wrong = sha256_of(b"not this layer");
        assert!(layers.ensure(&wrong, &blob, "sha256:blob").is_err());
        assert!(!layers.path(&wrong).unwrap().exists());
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the partial layer is gone");

        let diff_id = sha256_of(&tar);
        let path = layers.ensure(&diff_id, &blob, "sha256:blob").unwrap();
        assert!(path.join("bin/sh").is_file());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(layers.list().unwrap(), [diff_id.as_str()]);
        layers.remove(&diff_id).unwrap();
        assert!(layers.list().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }
}
