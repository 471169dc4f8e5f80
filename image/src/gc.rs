//! Garbage collection: deleting the blobs and layers that no reference
//! leads to any more.
//!
//! Owns: deciding what is unreachable and deleting it. Must not touch:
//! anything reachable. If any referenced manifest or config cannot be read,
//! reachability is unknown and nothing is deleted.

use std::collections::BTreeSet;

use crate::ImageError;
use crate::blobs::Blobs;
use crate::layers::Layers;
use crate::references::Table;
use crate::store::read_image;

/// What a collection deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Collected {
    pub(crate) blobs: usize,
    pub(crate) layers: usize,
}

/// Deletes every blob and layer that no manifest in `table` uses.
pub(crate) fn collect(table: &Table, blobs: &Blobs, layers: &Layers) -> Result<Collected, ImageError> {
    let mut keep_blobs = BTreeSet::new();
    let mut keep_layers = BTreeSet::new();
    for digest in table.values() {
        let (manifest, config) = read_image(blobs, digest)?;
        keep_blobs.insert(digest.clone());
        keep_blobs.insert(manifest.config().digest().to_string());
        keep_blobs.extend(manifest.layers().iter().map(|l| l.digest().to_string()));
        keep_layers.extend(config.rootfs().diff_ids().iter().cloned());
    }
    let mut collected = Collected::default();
    for digest in blobs.list()? {
        if !keep_blobs.contains(&digest) {
            blobs.remove(&digest)?;
            collected.blobs += 1;
        }
    }
    for diff_id in layers.list()? {
        if !keep_layers.contains(&diff_id) {
            layers.remove(&diff_id)?;
            collected.layers += 1;
        }
    }
    Ok(collected)
}
