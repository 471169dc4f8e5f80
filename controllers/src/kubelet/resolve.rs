//! What a pod refers to, looked up in the store: ConfigMaps, Secrets and
//! claims, and images through the node's image store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use driftless_model::k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret};
use driftless_runtime::images::NodeImages;
use driftless_runtime::podspec::{Resolve, ResolvedImage};
use driftless_store::{Store, StoreExt};

/// The node's [`Resolve`], over the store.
pub struct StoreResolve {
    store: Arc<dyn Store>,
    images: NodeImages,
}

impl StoreResolve {
    /// Resolves objects from `store` and images from `images`.
    pub fn new(store: Arc<dyn Store>, images: NodeImages) -> StoreResolve {
        StoreResolve { store, images }
    }
}

impl Resolve for StoreResolve {
    fn image(&self, reference: &str, pull_policy: &str) -> Result<ResolvedImage, String> {
        self.images.image(reference, pull_policy)
    }

    fn config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let cm = self.store.get_as::<ConfigMap>(namespace, name)?;
        let mut data: BTreeMap<String, Vec<u8>> = cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        Some(data)
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self.store.get_as::<Secret>(namespace, name)?;
        let mut data: BTreeMap<String, Vec<u8>> = secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        data.extend(secret.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
        Some(data)
    }

    fn claim(&self, namespace: &str, name: &str) -> Option<PathBuf> {
        let claim = self.store.get_as::<PersistentVolumeClaim>(namespace, name)?;
        if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
            return None;
        }
        let volume_name = claim.spec.as_ref()?.volume_name.clone()?;
        let volume = self.store.get_as::<PersistentVolume>("", &volume_name)?;
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
