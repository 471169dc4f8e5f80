//! Pods on the node: what the control plane asks for ([`PodRequest`]), the
//! worker that keeps it running ([`worker`]), and what it reports
//! ([`PodStatus`]).
//!
//! The worker applies kubelet's rules from [`crate::lifecycle`]: restarts
//! per `restartPolicy` with crash-loop back-off, startup, liveness and
//! readiness probes with their thresholds, and the pod phase.

mod probe_run;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use crate::bundle::VolumeMount;
use crate::lifecycle::phase::RestartPolicy;
use crate::lifecycle::probe::ProbeSettings;

/// A pod as the runtime runs it; the control plane translates Kubernetes'
/// `PodSpec` into this (images resolved to layers, volumes to folders).
#[derive(Clone, Debug)]
pub struct PodRequest {
    /// Unique on the node; names the pod's folders and containers.
    pub uid: String,
    /// The pod's hostname.
    pub hostname: String,
    /// `restartPolicy`.
    pub restart_policy: RestartPolicy,
    /// The containers, in order.
    pub containers: Vec<ContainerRequest>,
    /// `terminationGracePeriodSeconds`: how long stopping waits after
    /// SIGTERM before SIGKILL.
    pub grace: Duration,
}

/// One container of a pod.
#[derive(Clone, Debug)]
pub struct ContainerRequest {
    /// Its name in the pod.
    pub name: String,
    /// The image's layers, lowest first.
    pub layers: Vec<PathBuf>,
    /// The image's id (`imageID`): repository and manifest digest.
    pub image_id: String,
    /// The command and arguments, already expanded.
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// CPU limit as a CFS quota per period, in microseconds.
    pub cpu_quota: Option<(i64, u64)>,
    /// The user and group to run as.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Mount the root filesystem read-only.
    pub read_only_root: bool,
    /// The capabilities to grant; `None` for the default set.
    pub capabilities: Option<Vec<String>>,
    /// The seccomp profile.
    pub seccomp: crate::seccomp::Seccomp,
    /// `allowPrivilegeEscalation: false`: run with `no_new_privs`.
    pub no_new_privileges: bool,
    /// `privileged: true`: host devices, nothing masked.
    pub privileged: bool,
    /// Volume mounts.
    pub mounts: Vec<VolumeMount>,
    /// `startupProbe`.
    pub startup: Option<Probe>,
    /// `livenessProbe`.
    pub liveness: Option<Probe>,
    /// `readinessProbe`.
    pub readiness: Option<Probe>,
}

/// A probe: what to check and when.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The check.
    pub action: ProbeAction,
    /// Timing and thresholds.
    pub settings: ProbeSettings,
}

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAction {
    /// Run a command in the container; exit 0 passes.
    Exec(Vec<String>),
    /// Open a TCP connection to the port.
    TcpSocket {
        /// Where to connect instead of the pod's address.
        host: Option<String>,
        /// The port.
        port: u16,
    },
    /// GET a path; 200-399 passes.
    HttpGet {
        /// `true` for `scheme: HTTPS` (no certificate check, as kubelet).
        https: bool,
        /// Where to connect instead of the pod's address.
        host: Option<String>,
        /// The port.
        port: u16,
        /// The path (with its query).
        path: String,
        /// `httpHeaders`, in order (a `Host` one sets the Host header).
        headers: Vec<(String, String)>,
    },
    /// The gRPC health checking protocol's `Check`; `SERVING` passes.
    Grpc {
        /// The port.
        port: u16,
        /// The `service` asked about (empty: the server as a whole).
        service: String,
    },
    /// A probe that cannot run (its named port is not one of the
    /// container's): it fails every time with this error, as kubelet's does.
    Unresolvable(String),
}

pub use driftless_nodeapi::{ContainerState, ContainerStatus, PodStatus};
