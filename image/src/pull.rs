//! Pulling from a registry over the OCI distribution API (`oci-client`).
//!
//! A pull fetches the manifest (choosing linux/amd64 from an index), the
//! config and the layers, lays them out as an OCI image layout in the
//! store's staging folder, and imports that like any other layout, so a
//! pulled image gets exactly the same verification (every digest) and
//! unpacking as an imported one.
//!
//! Blobs stream to files as they arrive (an image need not fit in memory),
//! and the caller hears of every chunk ([`Progress`]), so a long pull can
//! show how far it is.

use std::io::Write;
use std::path::Path;

use futures_util::StreamExt;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{ImageError, ImageStore};

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Registries (`host:port`) spoken to over plain HTTP; only those
    /// configured here, never by default.
    pub insecure_registries: Vec<String>,
    /// Basic credentials (user, password); anonymous when `None`. Bearer
    /// tokens are negotiated from these as the registry asks.
    pub credentials: Option<(String, String)>,
}

/// How far a pull is: reported after every chunk of a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Which blob (the config is 1; layers follow), and how many there are.
    pub blob: usize,
    /// See `blob`.
    pub blobs: usize,
    /// The blob's digest.
    pub digest: String,
    /// Bytes of this blob received so far.
    pub done: u64,
    /// Its size, from the manifest.
    pub total: u64,
}

const ACCEPTED: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

impl ImageStore {
    /// Pulls `reference` (normalized as Docker does) into the store and
    /// returns its normalized reference. Blocks: async callers run it on a
    /// blocking thread.
    pub fn pull(&self, reference: &str, options: &PullOptions) -> Result<String, ImageError> {
        self.pull_with_progress(reference, options, &mut |_| {})
    }

    /// [`ImageStore::pull`], telling `progress` how far it is.
    pub fn pull_with_progress(&self, reference: &str, options: &PullOptions, progress: &mut dyn FnMut(&Progress)) -> Result<String, ImageError> {
        let normalized = crate::normalize_reference(reference)?;
        let pull_error = |message: String| ImageError::Pull { reference: normalized.clone(), message };
        let parsed: Reference = normalized.parse().map_err(|e: oci_client::ParseError| pull_error(e.to_string()))?;
        let config = ClientConfig {
            protocol: if options.insecure_registries.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(options.insecure_registries.clone())
            },
            ..Default::default()
        };
        // TLS on ring, as everywhere in the daemon (the ingress serves with
        // it): installed as the process's provider once, whoever is first.
        // aws-lc-rs, reqwest's default, is a large C build for no gain here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(config);
        let auth = match &options.credentials {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| pull_error(e.to_string()))?;
        let staging = tempfile::tempdir_in(self.root()).map_err(|e| pull_error(e.to_string()))?;
        runtime.block_on(fetch(&client, &parsed, &auth, staging.path(), &normalized, progress)).map_err(pull_error)?;
        let imported = self.import(staging.path(), None)?;
        imported.into_iter().next().ok_or_else(|| pull_error("the registry returned no image".into()))
    }
}

/// Fetches the image into an OCI layout at `dir`.
async fn fetch(client: &Client, reference: &Reference, auth: &RegistryAuth, dir: &Path, name: &str, progress: &mut dyn FnMut(&Progress)) -> Result<(), String> {
    let text = |e: oci_client::errors::OciDistributionError| e.to_string();
    // Negotiate first (a bearer token, or basic credentials when the
    // registry asks for those); the blob and manifest calls reuse it.
    client.auth(reference, auth, oci_client::RegistryOperation::Pull).await.map_err(text)?;
    let (mut bytes, mut digest) = client.pull_manifest_raw(reference, auth, ACCEPTED).await.map_err(text)?;
    let mut manifest: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if manifest.get("manifests").is_some() {
        // An index: take the linux/amd64 image, as the node runs amd64.
        let chosen = manifest["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64")
            .and_then(|m| m["digest"].as_str())
            .ok_or("the image index has no linux/amd64 image")?
            .to_owned();
        (bytes, digest) = client.pull_manifest_raw(&reference.clone_with_digest(chosen), auth, ACCEPTED).await.map_err(text)?;
        manifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| e.to_string())?;
    let write_blob = |digest: &str, data: &[u8]| -> Result<(), String> {
        let hex = digest.strip_prefix("sha256:").ok_or_else(|| format!("unsupported digest {digest}"))?;
        std::fs::write(blobs.join(hex), data).map_err(|e| e.to_string())
    };
    let manifest_digest = format!("sha256:{:x}", Sha256::digest(&bytes));
    if manifest_digest != digest && !digest.is_empty() {
        return Err(format!("manifest digest {manifest_digest} does not match {digest} from the registry"));
    }
    write_blob(&manifest_digest, &bytes)?;
    let descriptors: Vec<&Value> = std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().into_iter().flatten()).collect();
    for (i, descriptor) in descriptors.iter().enumerate() {
        let digest = descriptor["digest"].as_str().ok_or("a descriptor has no digest")?;
        let hex = digest.strip_prefix("sha256:").ok_or_else(|| format!("unsupported digest {digest}"))?;
        let total = descriptor["size"].as_u64().unwrap_or_default();
        let layer = oci_client::manifest::OciDescriptor {
            digest: digest.to_owned(),
            media_type: descriptor["mediaType"].as_str().unwrap_or_default().to_owned(),
            size: total as i64,
            ..Default::default()
        };
        let mut stream = client.pull_blob_stream(reference, &layer).await.map_err(text)?;
        let mut file = std::io::BufWriter::new(std::fs::File::create(blobs.join(hex)).map_err(|e| e.to_string())?);
        let mut report = Progress { blob: i + 1, blobs: descriptors.len(), digest: digest.to_owned(), done: 0, total };
        progress(&report);
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| format!("{digest}: {e}"))?;
            file.write_all(&chunk).map_err(|e| e.to_string())?;
            report.done += chunk.len() as u64;
            progress(&report);
        }
        file.flush().map_err(|e| e.to_string())?;
    }
    let media_type = manifest["mediaType"].as_str().unwrap_or(ACCEPTED[0]).to_owned();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": manifest_digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| e.to_string())
}
