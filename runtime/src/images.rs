//! Images for containers, as kubelet gets them: from the node's image
//! store, pulled from a registry when `imagePullPolicy` says so.
//!
//! Policies (Kubernetes' rules; the default is filled in by translation:
//! `Always` for `:latest` or no tag, else `IfNotPresent`):
//! - `Never`: the store's image or an error (`ErrImageNeverPull`);
//! - `IfNotPresent`: the store's image, pulled first if missing;
//! - `Always`: pulled every time a container is created; the registry's
//!   error fails the container even if an older copy is stored.

use std::time::Instant;

use driftless_image::{ImageStore, PullOptions};

use driftless_nodeapi::{Credentials, Images, ResolvedImage};

pub use driftless_nodeapi::ImageStep;

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
    pub fn image(&self, reference: &str, policy: &str, credentials: Option<&Credentials>) -> Result<ResolvedImage, String> {
        self.image_reporting(reference, policy, credentials, &mut |_| {})
    }

    /// [`NodeImages::image`], telling `report` whether it was present or
    /// pulled, and how long the pull took.
    pub fn image_reporting(
        &self,
        reference: &str,
        policy: &str,
        credentials: Option<&Credentials>,
        report: &mut dyn FnMut(ImageStep),
    ) -> Result<ResolvedImage, String> {
        let local = || self.store.resolve(reference);
        let image = match policy {
            "Never" => {
                let image = local().map_err(|_| format!("image {reference:?} is not present with pull policy of Never"))?;
                report(ImageStep::Present);
                image
            }
            "IfNotPresent" => match local() {
                Ok(image) => {
                    report(ImageStep::Present);
                    image
                }
                Err(_) => self.pull(reference, credentials, report)?,
            },
            _ => self.pull(reference, credentials, report)?,
        };
        Ok(ResolvedImage {
            id: image.id(),
            layers: image.layers,
            entrypoint: image.config.entrypoint,
            cmd: image.config.cmd,
            env: image.config.env,
            working_dir: image.config.working_dir,
        })
    }

    fn pull(&self, reference: &str, credentials: Option<&Credentials>, report: &mut dyn FnMut(ImageStep)) -> Result<driftless_image::Image, String> {
        tracing::info!(image = reference, authenticated = credentials.is_some(), "pulling image");
        report(ImageStep::Pulling);
        let started = Instant::now();
        // The pod's pull Secret, else the node's own login.
        let options = match credentials {
            Some(login) => PullOptions { credentials: Some(login.clone()), ..self.options.clone() },
            None => self.options.clone(),
        };
        let image = self.store.pull(reference, &options).and_then(|pulled| self.store.resolve(&pulled)).map_err(|e| e.to_string());
        let metrics = driftless_telemetry::metrics();
        metrics.image_pull_duration.observe(started.elapsed().as_secs_f64());
        let result = if image.is_ok() { "pulled" } else { "failed" };
        metrics.image_pulls.get_or_create(&driftless_telemetry::ResultLabel { result }).inc();
        let image = image?;
        report(ImageStep::Pulled(started.elapsed()));
        Ok(image)
    }
}

impl Images for NodeImages {
    fn image(&self, reference: &str, policy: &str, credentials: Option<&Credentials>, report: &mut dyn FnMut(ImageStep)) -> Result<ResolvedImage, String> {
        self.image_reporting(reference, policy, credentials, report)
    }
}
