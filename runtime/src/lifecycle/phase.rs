//! Restart decisions and the pod phase, as kubelet computes them.

use serde::{Deserialize, Serialize};

/// A pod's `restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Restart whenever the container exits.
    Always,
    /// Restart when it exits with a non-zero code.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// Whether a container that exited with `code` is started again.
    pub fn restarts(self, code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// What the phase computation needs to know of one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Not started yet, and never ran (creating, pulling its image...).
    Waiting,
    /// Running.
    Running,
    /// Exited (or waiting to restart after an exit) with this code.
    Exited(i32),
}

pub use driftless_nodeapi::Phase;

/// The pod phase, with kubelet's rules (`getPhase`): a container waiting
/// to restart after an exit counts as exited, so a crash-looping pod with
/// `restartPolicy: Always` stays Running.
pub fn phase(policy: RestartPolicy, containers: &[Observed]) -> Phase {
    let waiting = containers.iter().filter(|c| matches!(c, Observed::Waiting)).count();
    let running = containers.iter().filter(|c| matches!(c, Observed::Running)).count();
    let stopped = containers.iter().filter(|c| matches!(c, Observed::Exited(_))).count();
    let succeeded = containers.iter().filter(|c| matches!(c, Observed::Exited(0))).count();
    if waiting > 0 || containers.is_empty() {
        Phase::Pending
    } else if running > 0 {
        Phase::Running
    } else if stopped > 0 {
        match policy {
            RestartPolicy::Always => Phase::Running,
            _ if stopped == succeeded => Phase::Succeeded,
            RestartPolicy::Never => Phase::Failed,
            RestartPolicy::OnFailure => Phase::Running,
        }
    } else {
        Phase::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Observed::{Exited, Running, Waiting};

    #[test]
    fn restart_policies() {
        assert!(RestartPolicy::Always.restarts(0));
        assert!(RestartPolicy::OnFailure.restarts(1));
        assert!(!RestartPolicy::OnFailure.restarts(0));
        assert!(!RestartPolicy::Never.restarts(137));
    }

    #[test]
    fn phases_follow_kubelet() {
        use RestartPolicy::*;
        assert_eq!(phase(Always, &[Waiting, Running]), Phase::Pending);
        assert_eq!(phase(Always, &[Running, Exited(1)]), Phase::Running);
        assert_eq!(phase(Always, &[Exited(1)]), Phase::Running, "crash loop");
        assert_eq!(phase(OnFailure, &[Exited(0), Exited(0)]), Phase::Succeeded);
        assert_eq!(phase(OnFailure, &[Exited(0), Exited(2)]), Phase::Running, "will restart the failed one");
        assert_eq!(phase(Never, &[Exited(0), Exited(2)]), Phase::Failed);
        assert_eq!(phase(Never, &[Exited(0)]), Phase::Succeeded);
        assert_eq!(phase(Never, &[]), Phase::Pending);
    }
}
