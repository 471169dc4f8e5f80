//! Bringing images into the store from an OCI image layout (a folder or a
//! tar) or a `docker save` archive.
//!
//! Owns: recognizing the input, naming what it holds, and storing each
//! image's blobs and layers (verified) before the store records its
//! references. Must not touch: `references.json`, which
//! [`crate::ImageStore`] updates once everything here succeeded.

mod docker_save;
mod oci_layout;

use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use crate::blobs::Blobs;
use crate::error::{io_at, json_at, read_json};
use crate::layers::Layers;
use crate::unpack::{entry_components, resolve, unpack_archive};
use crate::{ImageError, reference};

/// An input that is not an image the store can read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Neither `index.json` nor `manifest.json` is at the top.
    #[error("{}: not an OCI image layout or docker save archive (no index.json or manifest.json)", path.display())]
    NotAnImage {
        /// The input.
        path: PathBuf,
    },
    /// No image in the input is for this machine's platform.
    #[error("{}: no image for {platform} in it", path.display())]
    NoImage {
        /// The input.
        path: PathBuf,
        /// This machine's platform (`linux/amd64`).
        platform: String,
    },
    /// An image carries no name and the caller gave none.
    #[error("{}: image {digest} has no name; give one (like busybox:1.35)", path.display())]
    Unnamed {
        /// The input.
        path: PathBuf,
        /// The image's manifest digest.
        digest: String,
    },
    /// The layout names an image by a bare tag and the caller gave no
    /// repository to put it in.
    #[error("{}: image is tagged {tag:?} without a repository; give a repository name (like busybox)", path.display())]
    TagOnly {
        /// The input.
        path: PathBuf,
        /// The tag.
        tag: String,
    },
    /// The caller's name has a tag or digest, and so does the layout.
    #[error("name {name:?} has a tag or digest, but the layout tags its image {tag:?}; give a repository name only")]
    NameHasVersion {
        /// The name given.
        name: String,
        /// The layout's tag.
        tag: String,
    },
    /// Two different images in the input get the same reference.
    #[error("{}: two different images are both named {reference:?}", path.display())]
    DuplicateName {
        /// The input.
        path: PathBuf,
        /// The reference.
        reference: String,
    },
    /// The manifest and the config disagree on the number of layers.
    #[error("{}: image {digest} has {layers} layers but its config lists {diff_ids} diff_ids", path.display())]
    LayerCount {
        /// The input.
        path: PathBuf,
        /// The manifest digest.
        digest: String,
        /// Layers in the manifest.
        layers: usize,
        /// diff_ids in the config.
        diff_ids: usize,
    },
    /// Something in the input is malformed in a way JSON parsing does not
    /// catch (a path leading out of the archive, a missing field).
    #[error("{}: {reason}", path.display())]
    Malformed {
        /// The input.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// An image found in the input and stored: its reference and manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Imported {
    pub(crate) reference: String,
    pub(crate) manifest_digest: String,
}

/// Where imported content goes.
pub(crate) struct Target<'a> {
    pub(crate) blobs: &'a Blobs,
    pub(crate) layers: &'a Layers,
    pub(crate) tmp: &'a Path,
    pub(crate) fs: &'a dyn crate::space::FileSystem,
}

/// Imports every image at `path` (folder or tar, gzip or not). `name` names
/// images the input leaves unnamed, or completes a bare tag (see
/// [`crate::ImageStore::import`]).
pub(crate) fn import(path: &Path, name: Option<&str>, target: &Target<'_>) -> Result<Vec<Imported>, ImageError> {
    let meta = std::fs::metadata(path).map_err(io_at(path))?;
    if meta.is_dir() {
        return import_folder(path, path, name, target);
    }
    // Dropped at the end, which deletes the unpacked archive.
    let staging = tempfile::Builder::new().prefix("archive-").tempdir_in(target.tmp).map_err(io_at(target.tmp))?;
    unpack_archive(path, staging.path(), target.fs)?;
    import_folder(staging.path(), path, name, target)
}

fn import_folder(dir: &Path, origin: &Path, name: Option<&str>, target: &Target<'_>) -> Result<Vec<Imported>, ImageError> {
    // `docker save` from Docker 25 on writes an OCI layout too; its
    // manifest.json is preferred because RepoTags are full references.
    let imported = if dir.join("manifest.json").is_file() {
        docker_save::import(dir, origin, name, target)?
    } else if dir.join("index.json").is_file() {
        oci_layout::import(dir, origin, name, target)?
    } else {
        return Err(ImportError::NotAnImage { path: origin.to_path_buf() }.into());
    };
    for (i, image) in imported.iter().enumerate() {
        if imported[..i].iter().any(|o| o.reference == image.reference && o.manifest_digest != image.manifest_digest) {
            return Err(ImportError::DuplicateName { path: origin.to_path_buf(), reference: image.reference.clone() }.into());
        }
    }
    Ok(imported)
}

/// Stores the image a manifest describes: its config and layer blobs
/// (through `fetch`, which returns a blob's path in the store, copying it
/// in if needed), each layer unpacked and checked, and then the manifest
/// itself. Returns the manifest digest.
fn store_image(
    manifest_bytes: &[u8],
    origin: &Path,
    target: &Target<'_>,
    fetch: &dyn Fn(&Descriptor) -> Result<PathBuf, ImageError>,
) -> Result<String, ImageError> {
    let manifest: ImageManifest = json_at(origin, "image manifest", manifest_bytes)?;
    let config: ImageConfiguration = read_json(&fetch(manifest.config())?, "image config")?;
    let diff_ids = config.rootfs().diff_ids();
    let digest = crate::digest::sha256_of(manifest_bytes);
    if diff_ids.len() != manifest.layers().len() {
        let (layers, diff_ids) = (manifest.layers().len(), diff_ids.len());
        return Err(ImportError::LayerCount { path: origin.to_path_buf(), digest, layers, diff_ids }.into());
    }
    for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let blob = fetch(layer)?;
        target.layers.ensure(diff_id, &blob, &format!("{} in {}", layer.digest(), origin.display()))?;
    }
    target.blobs.put(manifest_bytes)
}

/// A file named inside an image archive (`Config`, `Layers` of
/// manifest.json), checked to stay inside it even through symlinks.
fn file_in(dir: &Path, name: &str, origin: &Path) -> Result<PathBuf, ImageError> {
    let malformed = |reason: &str| ImportError::Malformed { path: origin.to_path_buf(), reason: format!("refusing file {name:?}: {reason}") };
    let parts = entry_components(Path::new(name)).map_err(malformed)?;
    Ok(resolve(dir, &parts, true).map_err(malformed)?)
}

/// Names an image from the layout's annotations and the caller's name.
fn name_image(ref_name: Option<&str>, full_name: Option<&str>, name: Option<&str>, origin: &Path, digest: &str) -> Result<String, ImageError> {
    let reference = match (ref_name, name) {
        (Some(tag), Some(name)) if reference::is_bare_tag(tag) => {
            if reference::names_version(name) {
                return Err(ImportError::NameHasVersion { name: name.to_owned(), tag: tag.to_owned() }.into());
            }
            format!("{name}:{tag}")
        }
        (Some(tag), None) if reference::is_bare_tag(tag) => match full_name {
            Some(full) => full.to_owned(),
            None => return Err(ImportError::TagOnly { path: origin.to_path_buf(), tag: tag.to_owned() }.into()),
        },
        (Some(full), _) => full.to_owned(),
        (None, Some(name)) => name.to_owned(),
        (None, None) => match full_name {
            Some(full) => full.to_owned(),
            None => return Err(ImportError::Unnamed { path: origin.to_path_buf(), digest: digest.to_owned() }.into()),
        },
    };
    Ok(reference::normalize_reference(&reference)?)
}
