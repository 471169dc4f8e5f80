//! What a pod refers to, as the node asks the control plane for it:
//! images, ConfigMaps, Secrets and claims.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A registry login: user and password.
pub type Credentials = (String, String);

/// An image as the runtime needs it.
#[derive(Clone, Debug, Default)]
pub struct ResolvedImage {
    /// Layer folders, lowest first.
    pub layers: Vec<PathBuf>,
    /// `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// `CMD`.
    pub cmd: Vec<String>,
    /// `NAME=value`.
    pub env: Vec<String>,
    /// `WORKDIR`.
    pub working_dir: Option<String>,
    /// The repository and manifest digest (`imageID`).
    pub id: String,
}

/// What a pod refers to, looked up by the caller.
pub trait Resolve {
    /// The image, honouring the pull policy, pulled with `credentials`
    /// (from the pod's `imagePullSecrets`) when a pull is needed; `Err`
    /// carries the message.
    fn image(&self, reference: &str, pull_policy: &str, credentials: Option<&Credentials>) -> Result<ResolvedImage, String>;
    /// A ConfigMap's data (`binaryData` included).
    fn config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
    /// A Secret's data, decoded.
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
    /// The folder bound to a PersistentVolumeClaim, once it is bound.
    fn claim(&self, namespace: &str, name: &str) -> Option<PathBuf>;
}

/// What getting an image took, for the events kubelet records about it
/// (`Pulled` "already present", `Pulling`, `Pulled` "successfully pulled").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageStep {
    /// The store had it and the policy did not ask for a pull.
    Present,
    /// A pull is starting.
    Pulling,
    /// A pull finished, in this long.
    Pulled(Duration),
}

/// The node's images: from its image store, pulled from a registry when
/// the pull policy says so.
pub trait Images: Send + Sync {
    /// The image for `reference` under `policy`, telling `report` whether
    /// it was present or pulled, and how long the pull took; `Err` carries
    /// the words a user sees in the container's waiting message.
    fn image(&self, reference: &str, policy: &str, credentials: Option<&Credentials>, report: &mut dyn FnMut(ImageStep)) -> Result<ResolvedImage, String>;
}
