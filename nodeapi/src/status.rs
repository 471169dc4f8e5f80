//! What a node reports about a pod: its phase, address and containers,
//! with Kubernetes' reasons.

use serde::{Deserialize, Serialize};

/// A pod's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Not all containers have started.
    Pending,
    /// Running, or exited and about to be restarted.
    Running,
    /// Every container exited with 0 and none will restart.
    Succeeded,
    /// Every container exited, at least one with an error, and none will
    /// restart.
    Failed,
}

/// A container's state, with Kubernetes' reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerState {
    /// Not running: being created, or backing off before a restart.
    Waiting {
        /// `ContainerCreating`, `CrashLoopBackOff`, `ImagePullBackOff`...
        reason: String,
        /// Why, in words (the registry's error for `ErrImagePull`).
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Running since `started_at`.
    Running {
        /// RFC 3339.
        started_at: String,
    },
    /// Ended and not restarting.
    Terminated {
        /// The exit code.
        exit_code: i32,
        /// `Completed`, `Error`, `OOMKilled`.
        reason: String,
    },
}

/// One container's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// Its name in the pod.
    pub name: String,
    /// What it is doing.
    pub state: ContainerState,
    /// How it last ended, if it ever did.
    pub last_termination: Option<(i32, String)>,
    /// Whether its readiness probe passes (true without one, once running
    /// and past its startup probe).
    pub ready: bool,
    /// How many times it was restarted.
    pub restart_count: u32,
    /// How many of its probes have failed, ever (each failed run counts):
    /// the kubelet records an `Unhealthy` event for each new one.
    pub probe_failures: u64,
    /// The last failed probe, in kubelet's words (`Readiness probe failed:
    /// HTTP probe failed with statuscode: 500`).
    pub probe_message: Option<String>,
    /// The runtime's id of its current instance, once one was created.
    pub container_id: Option<String>,
    /// The image its current instance runs (`imageID`), once created.
    pub image_id: Option<String>,
}

/// A pod's status, as the node last computed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// The phase.
    pub phase: Phase,
    /// The pod's address, once its network is up.
    pub pod_ip: Option<String>,
    /// Every container, in order.
    pub containers: Vec<ContainerStatus>,
}

impl PodStatus {
    /// The `Ready` condition: every container ready.
    pub fn ready(&self) -> bool {
        !self.containers.is_empty() && self.containers.iter().all(|c| c.ready)
    }
}
