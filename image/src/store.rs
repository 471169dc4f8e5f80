//! The store itself: the folder layout under `<data_dir>/images/` and the
//! operations callers use.
//!
//! Owns: opening the store (and clearing what a crash left in `tmp/`),
//! serializing changes with a lock, and keeping `references.json` in step
//! with what is on disk. Must not touch: mounts or anything outside
//! `<data_dir>/images/`.

use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::blobs::Blobs;
use crate::error::{io_at, json_at};
use crate::fsutil::StoreLock;
use crate::import::{Target, import};
use crate::layers::Layers;
use crate::references::{References, Table};
use crate::space::{FileSystem, Statvfs};
use crate::{Image, ImageConfig, ImageError, ImageSummary, gc, reference};
use std::sync::Arc;

/// A content-addressed image store under `<data_dir>/images/`.
///
/// Reads (`list`, `resolve`) need no lock: `references.json` is replaced
/// atomically and names only complete content. Changes (`import`,
/// `remove`) take an exclusive `flock` on `images/lock`, so processes
/// sharing a data folder take turns.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    tmp: PathBuf,
    blobs: Blobs,
    layers: Layers,
    references: References,
    fs: Arc<dyn FileSystem>,
}

impl ImageStore {
    /// Opens (creating if needed) the store under `<data_dir>/images/`,
    /// and deletes whatever an interrupted import or removal left staged.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self, ImageError> {
        Self::open_on(data_dir, Arc::new(Statvfs))
    }

    /// [`ImageStore::open`], judging free space by `fs` (a fake, in tests
    /// of what a full disk does).
    pub fn open_on(data_dir: impl AsRef<Path>, fs: Arc<dyn FileSystem>) -> Result<Self, ImageError> {
        let root = data_dir.as_ref().join("images");
        let tmp = root.join("tmp");
        for dir in [root.join("blobs/sha256"), root.join("layers/sha256"), tmp.clone()] {
            std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        let store = Self {
            blobs: Blobs::new(root.join("blobs/sha256"), tmp.clone(), fs.clone()),
            layers: Layers::new(root.join("layers/sha256"), tmp.clone(), fs.clone()),
            fs,
            references: References::new(root.join("references.json"), tmp.clone()),
            root,
            tmp,
        };
        // Under the lock, nothing in tmp/ belongs to a live operation.
        let _lock = store.lock()?;
        for entry in std::fs::read_dir(&store.tmp).map_err(io_at(&store.tmp))? {
            let path = entry.map_err(io_at(&store.tmp))?.path();
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.map_err(io_at(&path))?;
        }
        Ok(store)
    }

    /// The store's folder, `<data_dir>/images`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How the store judges free space.
    pub(crate) fn file_system(&self) -> &dyn FileSystem {
        &*self.fs
    }

    /// Imports the images at `path`: an OCI image layout folder, an OCI
    /// layout tar, or a `docker save` tar (either tar may be gzipped).
    /// Returns the normalized references now in the store.
    ///
    /// Naming: a `docker save` image keeps its RepoTags. An OCI layout
    /// names an image by its `org.opencontainers.image.ref.name`
    /// annotation: a full reference is used as is, and a bare tag (`1.35`)
    /// is put in the repository `name` (`busybox` gives
    /// `docker.io/library/busybox:1.35`). An image with no name of its own
    /// is named `name`. A reference that already named another image is
    /// moved to the new one.
    pub fn import(&self, path: impl AsRef<Path>, name: Option<&str>) -> Result<Vec<String>, ImageError> {
        let _lock = self.lock()?;
        let target = Target { blobs: &self.blobs, layers: &self.layers, tmp: &self.tmp, fs: &*self.fs };
        let imported = import(path.as_ref(), name, &target)?;
        let mut table = self.references.load()?;
        let mut moved = false;
        for image in &imported {
            let previous = table.insert(image.reference.clone(), image.manifest_digest.clone());
            moved |= previous.is_some_and(|p| p != image.manifest_digest);
        }
        self.references.save(&table)?;
        if moved {
            self.collect_garbage(&table);
        }
        let mut references: Vec<String> = imported.into_iter().map(|i| i.reference).collect();
        references.dedup();
        Ok(references)
    }

    /// Every reference in the store, sorted.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let mut summaries = Vec::new();
        for (reference, digest) in self.references.load()? {
            let (manifest, config) = read_image(&self.blobs, &digest)?;
            let size = manifest.config().size() + manifest.layers().iter().map(|l| l.size()).sum::<u64>();
            summaries.push(ImageSummary { reference, manifest_digest: digest, size, created: config.created().clone() });
        }
        Ok(summaries)
    }

    /// The image a reference names, with its config and layer folders. A
    /// reference by digest (`busybox@sha256:...`) also finds an image
    /// stored under a tag of the same repository.
    pub fn resolve(&self, reference: &str) -> Result<Image, ImageError> {
        let (reference, digest) = self.lookup(reference)?;
        let (_, config) = read_image(&self.blobs, &digest)?;
        let mut layers = Vec::new();
        for diff_id in config.rootfs().diff_ids() {
            let path = self.layers.path(diff_id)?;
            if !path.is_dir() {
                return Err(ImageError::LayerMissing { reference, diff_id: diff_id.clone(), path });
            }
            layers.push(path);
        }
        Ok(Image { reference, manifest_digest: digest, config: ImageConfig::from_oci(&config), layers })
    }

    /// Removes a reference, then deletes the blobs and layers no remaining
    /// reference uses.
    pub fn remove(&self, reference: &str) -> Result<(), ImageError> {
        let reference = reference::normalize_reference(reference)?;
        let _lock = self.lock()?;
        let mut table = self.references.load()?;
        if table.remove(&reference).is_none() {
            return Err(ImageError::NotFound { reference });
        }
        self.references.save(&table)?;
        self.collect_garbage(&table);
        Ok(())
    }

    /// The normalized reference and manifest digest a reference names.
    fn lookup(&self, reference: &str) -> Result<(String, String), ImageError> {
        let parsed = reference::parse(reference)?;
        let normalized = parsed.whole();
        let table = self.references.load()?;
        if let Some(digest) = table.get(&normalized) {
            return Ok((normalized, digest.clone()));
        }
        // By digest, Docker finds the image whatever tag it is stored under.
        if let (None, Some(wanted)) = (parsed.tag(), parsed.digest()) {
            let repository = format!("{}/{}", parsed.registry(), parsed.repository());
            let same = |r: &str| r.strip_prefix(&repository).is_some_and(|rest| rest.starts_with([':', '@']));
            if table.iter().any(|(r, d)| d == wanted && same(r)) {
                return Ok((normalized, wanted.to_owned()));
            }
        }
        Err(ImageError::NotFound { reference: normalized })
    }

    /// Collects garbage after a change that is already committed: a failure
    /// only leaves unused content behind, so it is logged, not returned.
    fn collect_garbage(&self, table: &Table) {
        match gc::collect(table, &self.blobs, &self.layers) {
            Ok(collected) => {
                tracing::debug!(blobs = collected.blobs, layers = collected.layers, "image store garbage collected")
            }
            Err(error) => tracing::warn!(%error, "image store garbage collection skipped"),
        }
    }

    fn lock(&self) -> Result<StoreLock, ImageError> {
        StoreLock::acquire(&self.root.join("lock"))
    }
}

/// Reads and parses an image's manifest and config from the store.
pub(crate) fn read_image(blobs: &Blobs, digest: &str) -> Result<(ImageManifest, ImageConfiguration), ImageError> {
    let manifest_path = blobs.path(digest)?;
    let manifest: ImageManifest = json_at(&manifest_path, "image manifest", &blobs.read(digest)?)?;
    let config_digest = manifest.config().digest().to_string();
    let config_path = blobs.path(&config_digest)?;
    let config = json_at(&config_path, "image config", &blobs.read(&config_digest)?)?;
    Ok((manifest, config))
}

#[cfg(test)]
mod tests;
