//! The pod runtime contract, by pod uid.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::k8s_openapi::api::core::v1::Pod;

use crate::{ContainerUsage, NodeUsage, PodStatus, Resolve};

/// What the control plane needs from a node's runtime. Its methods may
/// block (a real node talks netlink and waits for processes): an async
/// caller runs them on a blocking thread.
pub trait PodRuntime {
    /// Runs `pod` (by its `metadata.uid`), or does nothing if it runs.
    /// When it cannot start yet, its status says why (`ErrImagePull`,
    /// `ImagePullBackOff`, `CreateContainerConfigError`...) and the caller
    /// asks again later, after [`NodeError::retry_in`] when given.
    fn run_pod(&self, pod: &Pod, resolve: &dyn Resolve) -> Result<(), NodeError>;
    /// The status of a pod this node runs.
    fn pod_status(&self, uid: &str) -> Option<PodStatus>;
    /// Stops a pod and removes everything it had on the node.
    fn stop_pod(&self, uid: &str) -> Result<(), NodeError>;
    /// The uids of the pods this node runs or is trying to start (an image
    /// to pull, a ConfigMap to appear).
    fn pods(&self) -> Vec<String>;
    /// Rewrites a running pod's ConfigMap, Secret and downward API volumes
    /// from what `resolve` says now (nothing for a pod this node does not
    /// run).
    fn refresh(&self, pod: &Pod, resolve: &dyn Resolve) -> Result<(), NodeError>;
    /// The log file of a container's current instance (or the one before
    /// it), if the node has it.
    fn log_path(&self, uid: &str, container: &str, previous: bool) -> Option<PathBuf>;
    /// A command that runs `args` inside a container's running instance
    /// (on a terminal of its own with `tty`), if it runs. With `tty`, the
    /// command reads the terminal's new sizes from its file descriptor
    /// [`EXEC_RESIZE_FD`] when the spawner maps it there and sets
    /// [`EXEC_RESIZE_ENV`] to its number: one `COLUMNS ROWS` line per
    /// resize.
    fn exec(&self, uid: &str, container: &str, args: &[String], tty: bool) -> Option<std::process::Command>;
    /// Connects to `port` on the pod's own loopback, inside its network
    /// namespace, as kubelet does for port-forward: a server that listens
    /// only on the pod's 127.0.0.1 is reached too.
    fn connect(&self, uid: &str, port: u16) -> std::io::Result<std::net::TcpStream>;
    /// The counters of a pod's running containers now (none for a pod
    /// this node does not run); see [`crate::Metrics`] for rates.
    fn usage(&self, uid: &str) -> Vec<ContainerUsage>;
    /// The whole machine's counters now, if it can read them.
    fn node_usage(&self) -> Option<NodeUsage>;
    /// Has the runtime call `on_change` whenever a pod's status may have
    /// changed, so that the caller reports it then instead of at its next
    /// poll (kubelet's event-driven PLEG, in spirit). One caller; a
    /// runtime that cannot tell never calls it, and the caller polls.
    fn on_status_change(&self, on_change: StatusChanged) {
        let _ = on_change;
    }
}

/// What [`PodRuntime::on_status_change`] calls: cheap and non-blocking
/// (it runs on the runtime's own threads).
pub type StatusChanged = Arc<dyn Fn() + Send + Sync>;

/// The descriptor a terminal exec reads resizes from; see
/// [`PodRuntime::exec`].
pub const EXEC_RESIZE_FD: i32 = 3;
/// The environment variable that tells a terminal exec its resize
/// descriptor is mapped; see [`PodRuntime::exec`].
pub const EXEC_RESIZE_ENV: &str = "DRIFTLESS_RESIZE_FD";

/// A runtime the control plane can share across threads.
pub type SharedRuntime = Arc<dyn PodRuntime + Send + Sync>;

/// Why the node could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The pod has no uid to name it by.
    #[error("pod has no metadata.uid")]
    NoUid,
    /// A pull of this image failed recently; the next try waits.
    #[error("Back-off pulling image {image:?}: {message}")]
    ImagePullBackOff {
        /// The image.
        image: String,
        /// The last pull's error.
        message: String,
        /// When the next pull may be tried.
        retry_in: Duration,
    },
    /// Anything else the node's runtime reports (its own error).
    #[error(transparent)]
    Runtime(Box<dyn std::error::Error + Send + Sync>),
}

impl NodeError {
    /// When the caller should ask again, for errors that pass with time.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            NodeError::ImagePullBackOff { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }
}
