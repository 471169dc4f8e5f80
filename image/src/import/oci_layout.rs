//! Importing an OCI image layout: `index.json`, `oci-layout` and
//! `blobs/sha256/...`, as `skopeo copy oci:`, `buildah push oci:` and
//! `images/busybox/build.py` write it.
//!
//! Owns: walking the index (nested indexes included, picking this
//! machine's platform), naming each image from its annotations, and
//! copying its blobs in verified. Must not touch: the references.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex};

use super::{ImportError, Imported, Target, name_image, store_image};
use crate::digest::sha256_hex;
use crate::error::{io_at, json_at, read_json};
use crate::{BlobError, ImageError};

/// The annotation naming an image in a layout: a tag or a full reference.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full reference containerd and Docker add beside a bare-tag REF_NAME.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

const INDEX_TYPES: [&str; 2] = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];
const MANIFEST_TYPES: [&str; 2] = ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];

/// Nested indexes deeper than this are refused rather than followed.
const MAX_DEPTH: usize = 4;

/// Imports every image of the layout in `dir` that runs on this machine.
pub(super) fn import(dir: &Path, origin: &Path, name: Option<&str>, target: &Target<'_>) -> Result<Vec<Imported>, ImageError> {
    let index: ImageIndex = read_json(&dir.join("index.json"), "image index")?;
    let mut found = Vec::new();
    for descriptor in index.manifests() {
        let annotations = descriptor.annotations().clone().unwrap_or_default();
        collect(dir, origin, descriptor, &annotations, 0, &mut found)?;
    }
    if found.is_empty() {
        return Err(ImportError::NoImage { path: origin.to_path_buf(), platform: format!("linux/{}", host_arch()) }.into());
    }
    let copy = |d: &Descriptor| {
        let digest = d.digest().to_string();
        target.blobs.copy_in(&blob_path(dir, &digest)?, &digest, Some(d.size()), origin)
    };
    let mut imported = Vec::new();
    for (descriptor, annotations) in found {
        let digest = descriptor.digest().to_string();
        // Named first, so that a naming mistake costs no unpacking.
        let get = |key: &str| annotations.get(key).map(String::as_str);
        let reference = name_image(get(REF_NAME), get(CONTAINERD_NAME), name, origin, &digest)?;
        let manifest = copy(&descriptor)?;
        let bytes = std::fs::read(&manifest).map_err(io_at(&manifest))?;
        let manifest_digest = store_image(&bytes, origin, target, &copy)?;
        imported.push(Imported { reference, manifest_digest });
    }
    Ok(imported)
}

/// Adds the manifests a descriptor leads to (itself, or those of a nested
/// index) that are for this machine, each with the annotations naming it.
fn collect(
    dir: &Path,
    origin: &Path,
    descriptor: &Descriptor,
    annotations: &HashMap<String, String>,
    depth: usize,
    found: &mut Vec<(Descriptor, HashMap<String, String>)>,
) -> Result<(), ImageError> {
    if !runs_here(descriptor) {
        return Ok(());
    }
    let media_type = descriptor.media_type().to_string();
    if MANIFEST_TYPES.contains(&media_type.as_str()) {
        found.push((descriptor.clone(), annotations.clone()));
    } else if INDEX_TYPES.contains(&media_type.as_str()) {
        if depth >= MAX_DEPTH {
            let reason = format!("image indexes nested more than {MAX_DEPTH} deep");
            return Err(ImportError::Malformed { path: origin.to_path_buf(), reason }.into());
        }
        let bytes = read_verified(dir, origin, descriptor)?;
        let nested: ImageIndex = json_at(origin, "image index", &bytes)?;
        for inner in nested.manifests() {
            // The outer descriptor's name applies unless the inner one has its own.
            let mut names = annotations.clone();
            names.extend(inner.annotations().clone().unwrap_or_default());
            collect(dir, origin, inner, &names, depth + 1, found)?;
        }
    }
    // Anything else (attestations, signatures, artifacts) is not an image.
    Ok(())
}

/// Reads a small blob of the layout, checking it against its descriptor.
fn read_verified(dir: &Path, origin: &Path, descriptor: &Descriptor) -> Result<Vec<u8>, ImageError> {
    let digest = descriptor.digest().to_string();
    let path = blob_path(dir, &digest)?;
    let bytes = std::fs::read(&path).map_err(|_| BlobError::Missing { digest: digest.clone(), origin: origin.to_path_buf() })?;
    let actual = crate::digest::sha256_of(&bytes);
    if actual != digest {
        return Err(BlobError::Corrupt { digest, origin: origin.to_path_buf(), actual }.into());
    }
    Ok(bytes)
}

fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf, BlobError> {
    Ok(dir.join("blobs/sha256").join(sha256_hex(digest)?))
}

/// Whether a descriptor's platform (if it names one) is this machine's.
fn runs_here(descriptor: &Descriptor) -> bool {
    descriptor.platform().as_ref().is_none_or(|p| p.os().to_string() == "linux" && p.architecture().to_string() == host_arch())
}

/// This machine's architecture in OCI's (Go's) spelling.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}
