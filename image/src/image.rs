//! What the store tells its callers about an image: a summary for
//! listings, and for a runtime the config and the layer folders.
//!
//! Must not touch: the disk; these are plain values built by the store.

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

/// One reference in the store, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The normalized reference (`docker.io/library/busybox:1.35`).
    pub reference: String,
    /// The manifest digest it names (`sha256:...`).
    pub manifest_digest: String,
    /// Bytes of the image's config and layer blobs as stored (compressed
    /// layers count compressed), the size a registry would report.
    pub size: u64,
    /// When the image was built, as its config says (RFC 3339), if it does.
    pub created: Option<String>,
}

/// The process defaults an image's config sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// The command prefix (`ENTRYPOINT`); empty when unset.
    pub entrypoint: Vec<String>,
    /// The default arguments, or command when there is no entrypoint
    /// (`CMD`); empty when unset.
    pub cmd: Vec<String>,
    /// `NAME=value` entries, in order.
    pub env: Vec<String>,
    /// The working folder, if set.
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, if set.
    pub user: Option<String>,
    /// Ports as `port/proto` (`8080/tcp`), sorted.
    pub exposed_ports: Vec<String>,
    /// The CPU architecture the image is for (`amd64`).
    pub architecture: String,
    /// The operating system the image is for (`linux`).
    pub os: String,
}

impl ImageConfig {
    pub(crate) fn from_oci(config: &ImageConfiguration) -> Self {
        let process = config.config().clone().unwrap_or_default();
        let mut exposed_ports = process.exposed_ports().clone().unwrap_or_default();
        exposed_ports.sort();
        Self {
            entrypoint: process.entrypoint().clone().unwrap_or_default(),
            cmd: process.cmd().clone().unwrap_or_default(),
            env: process.env().clone().unwrap_or_default(),
            working_dir: process.working_dir().clone().filter(|d| !d.is_empty()),
            user: process.user().clone().filter(|u| !u.is_empty()),
            exposed_ports,
            architecture: config.architecture().to_string(),
            os: config.os().to_string(),
        }
    }
}

/// An image ready to run: what [`crate::ImageStore::resolve`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The normalized reference it was resolved from.
    pub reference: String,
    /// The manifest digest (`sha256:...`).
    pub manifest_digest: String,
    /// The process defaults.
    pub config: ImageConfig,
    /// The unpacked layer folders, lowest first. Overlayfs lists lowerdirs
    /// top first, so a mount reverses this order.
    pub layers: Vec<PathBuf>,
}

impl Image {
    /// The image's id as Kubernetes reports it in a container's
    /// `imageID`: the repository and the manifest digest
    /// (`docker.io/library/busybox@sha256:...`), which names these exact
    /// bytes whatever tag they were found by.
    pub fn id(&self) -> String {
        let reference = self.reference.split('@').next().unwrap_or_default();
        // A tag follows the last `:` after the last `/` (a registry's
        // port comes before it).
        let name_start = reference.rfind('/').map_or(0, |i| i + 1);
        let repository = match reference[name_start..].rfind(':') {
            Some(colon) => &reference[..name_start + colon],
            None => reference,
        };
        format!("{repository}@{}", self.manifest_digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(reference: &str) -> Image {
        Image { reference: reference.into(), manifest_digest: "sha256:ab".into(), config: ImageConfig::default(), layers: vec![] }
    }

    #[test]
    fn an_id_is_the_repository_at_the_manifest_digest() {
        assert_eq!(image("docker.io/library/busybox:1.35").id(), "docker.io/library/busybox@sha256:ab");
        assert_eq!(image("127.0.0.1:5000/team/web:v2").id(), "127.0.0.1:5000/team/web@sha256:ab");
        assert_eq!(image("127.0.0.1:5000/web").id(), "127.0.0.1:5000/web@sha256:ab");
        assert_eq!(image("docker.io/library/busybox@sha256:ab").id(), "docker.io/library/busybox@sha256:ab");
    }
}
