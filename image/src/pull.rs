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
//!
//! A registry is not trusted to behave: a manifest is read up to 4 MiB (as
//! the distribution registry caps what it accepts), a blob up to the size
//! its descriptor gives, and a blob that would leave the disk under the
//! reserve kept for running pods ([`crate::space`]) is refused before it
//! is fetched. Every digest is checked on import, as for any layout.

use std::io::Write;
use std::path::Path;

use futures_util::StreamExt;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::digest::sha256_hex;
use crate::space::{Guard, GuardError, guard_error};
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
            // A registry that stops sending (or sends a byte a minute)
            // fails the pull instead of holding it forever.
            read_timeout: Some(IDLE_TIMEOUT),
            connect_timeout: Some(CONNECT_TIMEOUT),
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
        let http = reqwest::Client::builder().read_timeout(IDLE_TIMEOUT).connect_timeout(CONNECT_TIMEOUT).build().map_err(|e| pull_error(e.to_string()))?;
        let registry = Registry { client: &client, auth: &auth, options, http };
        let mut guard = Guard::new(self.file_system(), staging.path()).map_err(|e| guard_error(e, &format!("to pull {normalized}")))?;
        runtime.block_on(fetch(&registry, &parsed, staging.path(), &normalized, &mut guard, progress)).map_err(|e| match e {
            Fetch::Registry(message) => pull_error(message),
            Fetch::Space(error, what) => guard_error(error, &what),
        })?;
        let imported = self.import(staging.path(), None)?;
        imported.into_iter().next().ok_or_else(|| pull_error("the registry returned no image".into()))
    }
}

/// The largest manifest read: the distribution registry refuses to store
/// a larger one.
const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// How long a registry may go without sending a byte.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One registry, as a pull talks to it.
struct Registry<'a> {
    client: &'a Client,
    auth: &'a RegistryAuth,
    options: &'a PullOptions,
    /// For manifests, read in bounded chunks.
    http: reqwest::Client,
}

/// Why a fetch stopped: the registry's doing, or the disk's.
enum Fetch {
    Registry(String),
    Space(GuardError, String),
}

impl From<String> for Fetch {
    fn from(message: String) -> Self {
        Fetch::Registry(message)
    }
}

impl From<&str> for Fetch {
    fn from(message: &str) -> Self {
        Fetch::Registry(message.to_owned())
    }
}

impl Registry<'_> {
    /// The manifest `reference` names, with its digest: GET
    /// `/v2/<repository>/manifests/<tag or digest>` as the distribution
    /// specification gives it, authorized as oci-client negotiated
    /// (`token`: bearer; else the basic credentials, if any).
    async fn manifest(&self, reference: &Reference, token: Option<&str>) -> Result<(Vec<u8>, String), String> {
        let registry = reference.resolve_registry();
        let scheme = if self.options.insecure_registries.iter().any(|r| r == registry) { "http" } else { "https" };
        let target = reference.digest().or(reference.tag()).unwrap_or("latest");
        let url = format!("{scheme}://{registry}/v2/{}/manifests/{target}", reference.repository());
        let mut request = self.http.get(&url).header(reqwest::header::ACCEPT, ACCEPTED.join(", "));
        request = match (token, &self.options.credentials) {
            (Some(token), _) => request.bearer_auth(token),
            (None, Some((user, password))) => request.basic_auth(user, Some(password)),
            (None, None) => request,
        };
        let mut response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let header_digest = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if response.content_length().is_some_and(|n| n > MAX_MANIFEST_BYTES as u64) {
            return Err(format!("{url}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(format!("{url}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(refusal(&url, status, &body));
        }
        let digest = format!("sha256:{:x}", Sha256::digest(&body));
        // What was asked for by digest must hash to it; a digest the
        // registry announces must be the content's.
        if let Some(expected) = reference.digest().or(header_digest.as_deref()).filter(|d| *d != digest) {
            return Err(format!("manifest digest {digest} does not match {expected}"));
        }
        Ok((body, digest))
    }
}

/// A registry's refusal in its own words: the distribution specification's
/// error envelope (`{"errors": [{"code", "message"}]}`) when it sent one.
fn refusal(url: &str, status: reqwest::StatusCode, body: &[u8]) -> String {
    let envelope: Option<Value> = serde_json::from_slice(body).ok();
    let errors: Vec<String> = envelope
        .iter()
        .flat_map(|e| e["errors"].as_array().into_iter().flatten())
        .map(|e| format!("{} ({})", e["message"].as_str().unwrap_or_default(), e["code"].as_str().unwrap_or_default()))
        .collect();
    let said = if errors.is_empty() { String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned() } else { errors.join("; ") };
    let what = match status.as_u16() {
        401 | 403 => "not authorized",
        404 => "not found",
        _ => status.canonical_reason().unwrap_or("refused"),
    };
    format!("{what}: {url} answered {status}: {said}")
}

/// Fetches the image into an OCI layout at `dir`.
async fn fetch(
    registry: &Registry<'_>,
    reference: &Reference,
    dir: &Path,
    name: &str,
    guard: &mut Guard<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(), Fetch> {
    let text = |e: oci_client::errors::OciDistributionError| e.to_string();
    let (client, auth) = (registry.client, registry.auth);
    // Negotiate first (a bearer token, or basic credentials when the
    // registry asks for those); the blob and manifest calls reuse it.
    let token = client.auth(reference, auth, oci_client::RegistryOperation::Pull).await.map_err(text)?;
    let (mut bytes, mut digest) = registry.manifest(reference, token.as_deref()).await?;
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
        (bytes, digest) = registry.manifest(&reference.clone_with_digest(chosen), token.as_deref()).await?;
        manifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| e.to_string())?;
    let write_blob = |digest: &str, data: &[u8]| -> Result<(), String> {
        let hex = sha256_hex(digest).map_err(|e| e.to_string())?;
        std::fs::write(blobs.join(hex), data).map_err(|e| e.to_string())
    };
    let manifest_digest = digest;
    write_blob(&manifest_digest, &bytes)?;
    let descriptors: Vec<&Value> = std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().into_iter().flatten()).collect();
    for (i, descriptor) in descriptors.iter().enumerate() {
        let digest = descriptor["digest"].as_str().ok_or("a descriptor has no digest")?;
        // Checked before it names a file: `sha256:../../x` must not.
        let hex = sha256_hex(digest).map_err(|e| e.to_string())?;
        let total = descriptor["size"].as_u64().ok_or_else(|| format!("the descriptor of {digest} has no size"))?;
        guard.fits(total).map_err(|e| Fetch::Space(e, format!("to pull {name}: its blob {digest} has {total} bytes")))?;
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
            report.done += chunk.len() as u64;
            if report.done > total {
                // An endless or oversized body: the descriptor's size is
                // the most a correct registry sends.
                return Err(format!("{digest}: the registry sent more than the {total} bytes the manifest gives").into());
            }
            file.write_all(&chunk).map_err(|e| e.to_string())?;
            guard.wrote(chunk.len() as u64).map_err(|e| Fetch::Space(e, format!("to pull {name} further")))?;
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
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| e.to_string().into())
}
