//! The node's images as the API serves them: the image store, opened for
//! each operation (the store keeps no state in memory).

use std::path::PathBuf;

use driftless_image::{ImageStore, PullOptions};
use serde_json::{Value, json};

/// [`driftless_api::ImageOps`] over the data folder's image store.
pub(crate) struct DaemonImages {
    data_dir: PathBuf,
    insecure: Vec<String>,
}

impl DaemonImages {
    pub(crate) fn new(data_dir: PathBuf, insecure: Vec<String>) -> DaemonImages {
        DaemonImages { data_dir, insecure }
    }

    fn store(&self) -> Result<ImageStore, String> {
        ImageStore::open(&self.data_dir).map_err(|e| e.to_string())
    }
}

impl driftless_api::ImageOps for DaemonImages {
    fn list(&self) -> Result<Value, String> {
        let images = self.store()?.list().map_err(|e| e.to_string())?;
        Ok(json!({"images": images.iter().map(|i| json!({
            "reference": i.reference, "digest": i.manifest_digest, "size": i.size, "created": i.created,
        })).collect::<Vec<_>>()}))
    }

    fn import(&self, path: &str, name: Option<&str>) -> Result<Value, String> {
        let imported = self.store()?.import(path, name).map_err(|e| e.to_string())?;
        Ok(json!({"imported": imported}))
    }

    fn pull(&self, reference: &str, insecure: &[String], username: Option<&str>, password: Option<&str>) -> Result<Value, String> {
        let mut registries = self.insecure.clone();
        registries.extend(insecure.iter().cloned());
        let credentials = username.map(|u| (u.to_owned(), password.unwrap_or("").to_owned()));
        let pulled = self.store()?.pull(reference, &PullOptions { insecure_registries: registries, credentials }).map_err(|e| e.to_string())?;
        Ok(json!({"pulled": pulled}))
    }

    fn remove(&self, reference: &str) -> Result<Value, String> {
        self.store()?.remove(reference).map_err(|e| e.to_string())?;
        Ok(json!({"removed": reference}))
    }
}
