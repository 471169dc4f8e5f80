//! Images for containers, as kubelet gets them: from the node's image
//! store, pulled from a registry when `imagePullPolicy` says so.
//!
//! Policies (Kubernetes' rules; the default is filled in by translation:
//! `Always` for `:latest` or no tag, else `IfNotPresent`):
//! - `Never`: the store's image or an error (`ErrImageNeverPull`);
//! - `IfNotPresent`: the store's image, pulled first if missing;
//! - `Always`: pulled every time a container is created; the registry's
//!   error fails the container even if an older copy is stored.

use driftless_image::{ImageStore, PullOptions};

use crate::podspec::ResolvedImage;

/// The node's image store and how to reach registries.
#[derive(Debug)]
pub struct NodeImages {
    store: ImageStore,
    options: PullOptions,
}

impl NodeImages {
    /// Images from `store`, pulling with `options`.
    pub fn new(store: ImageStore, options: PullOptions) -> Self {
        NodeImages { store, options }
    }

    /// The image for `reference` under `policy`; `Err` carries the words
    /// a user sees in the container's waiting message.
    pub fn image(&self, reference: &str, policy: &str) -> Result<ResolvedImage, String> {
        let local = || self.store.resolve(reference);
        let image = match policy {
            "Never" => local().map_err(|_| format!("image {reference:?} is not present with pull policy of Never"))?,
            "IfNotPresent" => match local() {
                Ok(image) => image,
                Err(_) => self.pull(reference)?,
            },
            _ => self.pull(reference)?,
        };
        Ok(ResolvedImage {
            layers: image.layers,
            entrypoint: image.config.entrypoint,
            cmd: image.config.cmd,
            env: image.config.env,
            working_dir: image.config.working_dir,
        })
    }

    fn pull(&self, reference: &str) -> Result<driftless_image::Image, String> {
        tracing::info!(image = reference, "pulling image");
        let pulled = self.store.pull(reference, &self.options).map_err(|e| e.to_string())?;
        self.store.resolve(&pulled).map_err(|e| e.to_string())
    }
}
