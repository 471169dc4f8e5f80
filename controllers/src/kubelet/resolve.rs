//! What a pod refers to, looked up in the store: ConfigMaps, Secrets and
//! claims, and images through the node's image store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use driftless_model::k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret};
use driftless_nodeapi::{Credentials, ImageStep, Images, Resolve, ResolvedImage};
use driftless_store::{Store, StoreExt};

/// The node's [`Resolve`], over the store.
pub struct StoreResolve {
    store: Arc<dyn Store>,
    images: Arc<dyn Images>,
}

impl StoreResolve {
    /// Resolves objects from `store` and images from `images`.
    pub fn new(store: Arc<dyn Store>, images: Arc<dyn Images>) -> StoreResolve {
        StoreResolve { store, images }
    }
}

impl Resolve for StoreResolve {
    fn image(&self, reference: &str, pull_policy: &str, credentials: Option<&Credentials>) -> Result<ResolvedImage, String> {
        self.images.image(reference, pull_policy, credentials, &mut |_| {})
    }

    fn config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let cm = self.store.api::<ConfigMap>().get(namespace, name)?;
        let mut data: BTreeMap<String, Vec<u8>> = cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        Some(data)
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self.store.api::<Secret>().get(namespace, name)?;
        let mut data: BTreeMap<String, Vec<u8>> = secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        data.extend(secret.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
        Some(data)
    }

    fn claim(&self, namespace: &str, name: &str) -> Option<PathBuf> {
        let claim = self.store.api::<PersistentVolumeClaim>().get(namespace, name)?;
        if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
            return None;
        }
        let volume_name = claim.spec.as_ref()?.volume_name.clone()?;
        let volume = self.store.api::<PersistentVolume>().get("", &volume_name)?;
        let spec = volume.spec?;
        let path = spec.host_path.map(|h| h.path).or_else(|| spec.local.map(|l| l.path))?;
        let path = PathBuf::from(path);
        // A declared hostPath volume's directory may not exist yet; the
        // node makes it, as a `DirectoryOrCreate` would.
        if !path.exists() {
            std::fs::create_dir_all(&path).ok()?;
        }
        Some(path)
    }
}

/// [`StoreResolve`] for one attempt to start a pod, telling `on_image` what
/// getting each image took, so the kubelet records `Pulling` and `Pulled`
/// about the pod as kubelet does.
pub struct Reporting<'a> {
    inner: &'a StoreResolve,
    on_image: &'a dyn Fn(&str, ImageStep),
}

impl<'a> Reporting<'a> {
    /// `inner`, reporting image steps to `on_image`.
    pub fn new(inner: &'a StoreResolve, on_image: &'a dyn Fn(&str, ImageStep)) -> Reporting<'a> {
        Reporting { inner, on_image }
    }
}

impl Resolve for Reporting<'_> {
    fn image(&self, reference: &str, pull_policy: &str, credentials: Option<&Credentials>) -> Result<ResolvedImage, String> {
        self.inner.images.image(reference, pull_policy, credentials, &mut |step| (self.on_image)(reference, step))
    }

    fn config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.inner.config_map(namespace, name)
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.inner.secret(namespace, name)
    }

    fn claim(&self, namespace: &str, name: &str) -> Option<PathBuf> {
        self.inner.claim(namespace, name)
    }
}

/// The event kubelet records for an image step: reason and message.
pub fn image_event(reference: &str, step: ImageStep) -> (&'static str, String) {
    match step {
        ImageStep::Present => ("Pulled", format!("Container image {reference:?} already present on machine")),
        ImageStep::Pulling => ("Pulling", format!("Pulling image {reference:?}")),
        ImageStep::Pulled(took) => ("Pulled", format!("Successfully pulled image {reference:?} in {:.3}s", took.as_secs_f64())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_events_read_as_kubelet_writes_them() {
        assert_eq!(image_event("busybox:1.35", ImageStep::Present), ("Pulled", "Container image \"busybox:1.35\" already present on machine".to_owned()));
        assert_eq!(image_event("busybox:1.35", ImageStep::Pulling), ("Pulling", "Pulling image \"busybox:1.35\"".to_owned()));
        assert_eq!(
            image_event("busybox:1.35", ImageStep::Pulled(std::time::Duration::from_millis(1234))),
            ("Pulled", "Successfully pulled image \"busybox:1.35\" in 1.234s".to_owned())
        );
    }
}
