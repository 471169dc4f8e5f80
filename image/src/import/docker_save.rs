//! Importing a `docker save` archive: `manifest.json` lists each image's
//! config file, RepoTags and layer tars (uncompressed, named by path
//! rather than digest; Docker 25+ points them into `blobs/sha256/`).
//!
//! Owns: turning such an image into an OCI one (its config as is, its
//! layers as blobs under their digests, and a manifest the store writes)
//! so the rest of the store sees only OCI images. Must not touch: the
//! references.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::{ImportError, Imported, Target, file_in, store_image};
use crate::error::{io_at, read_json};
use crate::{ImageError, reference};

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Imports every image `manifest.json` in `dir` lists, under its RepoTags,
/// or under `name` when it has none.
pub(super) fn import(dir: &Path, origin: &Path, name: Option<&str>, target: &Target<'_>) -> Result<Vec<Imported>, ImageError> {
    let entries: Vec<Entry> = read_json(&dir.join("manifest.json"), "docker save manifest")?;
    let mut imported = Vec::new();
    for entry in entries {
        let config_path = file_in(dir, &entry.config, origin)?;
        let config = std::fs::read(&config_path).map_err(io_at(&config_path))?;
        let config_digest = target.blobs.put(&config)?;
        let tags = entry.repo_tags.unwrap_or_default();
        let references: Vec<String> = match (tags.is_empty(), name) {
            (false, _) => tags.iter().map(|t| reference::normalize_reference(t)).collect::<Result<_, _>>()?,
            (true, Some(name)) => vec![reference::normalize_reference(name)?],
            (true, None) => {
                return Err(ImportError::Unnamed { path: origin.to_path_buf(), digest: config_digest }.into());
            }
        };
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let path = file_in(dir, layer, origin)?;
            let (digest, size) = target.blobs.copy_in_unnamed(&path, origin)?;
            let media_type = if is_gzip(&path)? { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" };
            layers.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
        }
        // serde_json sorts object keys, so the same image always gets the
        // same manifest, and re-importing it changes nothing.
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).expect("a JSON value always serializes");
        let fetch = |d: &oci_spec::image::Descriptor| Ok(target.blobs.path(d.digest().as_ref())?);
        let manifest_digest = store_image(&bytes, origin, target, &fetch)?;
        imported.extend(references.into_iter().map(|reference| Imported { reference, manifest_digest: manifest_digest.clone() }));
    }
    Ok(imported)
}

fn is_gzip(path: &Path) -> Result<bool, ImageError> {
    let mut magic = [0u8; 2];
    let mut file = std::fs::File::open(path).map_err(io_at(path))?;
    let n = file.read(&mut magic).map_err(io_at(path))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}
