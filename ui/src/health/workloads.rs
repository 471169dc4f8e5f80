//! Health of the workload kinds: Deployment, StatefulSet, DaemonSet,
//! ReplicaSet and Pod, as gitops-engine's `health_deployment.go`,
//! `health_statefulset.go`, `health_daemonset.go`, `health_replicaset.go`
//! and `health_pod.go` define it (the first three borrow kubectl's
//! `rollout status` rules, and so do their messages).
//!
//! Must not touch: anything but the object it is given; the dispatch by
//! kind, the deletion rule and the shared readers are `health.rs`'s.

use serde_json::Value;

use super::{Assessment, Health, condition, int, items, opt_int, text};

/// gitops-engine `health_deployment.go`.
pub(super) fn deployment(object: &Value) -> Assessment {
    if object.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Assessment::new(Health::Suspended, "Deployment is paused");
    }
    // Until the controller has seen the latest spec, its status speaks of an older one.
    if int(object, "/metadata/generation") > int(object, "/status/observedGeneration") {
        return Assessment::new(Health::Progressing, "Waiting for rollout to finish: observed deployment generation less than desired generation");
    }
    let (replicas, updated, available) = (int(object, "/status/replicas"), int(object, "/status/updatedReplicas"), int(object, "/status/availableReplicas"));
    let waiting = |message: String| Assessment::new(Health::Progressing, format!("Waiting for rollout to finish: {message}"));
    if condition(object, "Progressing").is_some_and(|c| text(c, "/reason") == "ProgressDeadlineExceeded") {
        let name = text(object, "/metadata/name");
        return Assessment::new(Health::Degraded, format!("Deployment \"{name}\" exceeded its progress deadline"));
    }
    if let Some(desired) = opt_int(object, "/spec/replicas").filter(|&desired| updated < desired) {
        return waiting(format!("{updated} out of {desired} new replicas have been updated..."));
    }
    if replicas > updated {
        return waiting(format!("{} old replicas are pending termination...", replicas - updated));
    }
    if available < updated {
        return waiting(format!("{available} of {updated} updated replicas are available..."));
    }
    Assessment::new(Health::Healthy, "")
}

/// gitops-engine `health_statefulset.go`.
///
/// A RollingUpdate strategy with a `rollingUpdate` block (the API server
/// adds one, partition 0, to every RollingUpdate StatefulSet) is judged by
/// the pods above the partition alone, and never by the revisions; only a
/// RollingUpdate StatefulSet without the block compares revisions. OnDelete
/// is Healthy once its pods are ready: it updates nothing by itself.
pub(super) fn statefulset(object: &Value) -> Assessment {
    let observed = int(object, "/status/observedGeneration");
    if observed == 0 || int(object, "/metadata/generation") > observed {
        return Assessment::new(Health::Progressing, "Waiting for statefulset spec update to be observed...");
    }
    let replicas = opt_int(object, "/spec/replicas");
    let (ready, updated) = (int(object, "/status/readyReplicas"), int(object, "/status/updatedReplicas"));
    if let Some(replicas) = replicas.filter(|&replicas| ready < replicas) {
        return Assessment::new(Health::Progressing, format!("Waiting for {} pods to be ready...", replicas - ready));
    }
    let strategy = text(object, "/spec/updateStrategy/type");
    if strategy == "RollingUpdate" && object.pointer("/spec/updateStrategy/rollingUpdate").is_some_and(|r| !r.is_null()) {
        let partition = opt_int(object, "/spec/updateStrategy/rollingUpdate/partition");
        if let Some(target) = replicas.zip(partition).map(|(replicas, partition)| replicas - partition).filter(|&target| updated < target) {
            return Assessment::new(
                Health::Progressing,
                format!("Waiting for partitioned roll out to finish: {updated} out of {target} new pods have been updated..."),
            );
        }
        return Assessment::new(Health::Healthy, format!("partitioned roll out complete: {updated} new pods have been updated..."));
    }
    if strategy == "OnDelete" {
        return Assessment::new(Health::Healthy, format!("statefulset has {ready} ready pods"));
    }
    let (current_revision, update_revision) = (text(object, "/status/currentRevision"), text(object, "/status/updateRevision"));
    if update_revision != current_revision {
        return Assessment::new(
            Health::Progressing,
            format!("waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."),
        );
    }
    let current = int(object, "/status/currentReplicas");
    Assessment::new(Health::Healthy, format!("statefulset rolling update complete {current} pods at revision {current_revision}..."))
}

/// gitops-engine `health_daemonset.go`. OnDelete is Healthy with any
/// number of pods updated: they change only when someone deletes them.
pub(super) fn daemonset(object: &Value) -> Assessment {
    if int(object, "/metadata/generation") > int(object, "/status/observedGeneration") {
        return Assessment::new(Health::Progressing, "Waiting for rollout to finish: observed daemon set generation less than desired generation");
    }
    let (desired, updated, available) =
        (int(object, "/status/desiredNumberScheduled"), int(object, "/status/updatedNumberScheduled"), int(object, "/status/numberAvailable"));
    if text(object, "/spec/updateStrategy/type") == "OnDelete" {
        return Assessment::new(Health::Healthy, format!("daemon set {updated} out of {desired} new pods have been updated"));
    }
    let name = text(object, "/metadata/name");
    if updated < desired {
        return Assessment::new(
            Health::Progressing,
            format!("Waiting for daemon set \"{name}\" rollout to finish: {updated} out of {desired} new pods have been updated..."),
        );
    }
    if available < desired {
        return Assessment::new(
            Health::Progressing,
            format!("Waiting for daemon set \"{name}\" rollout to finish: {available} of {desired} updated pods are available..."),
        );
    }
    Assessment::new(Health::Healthy, "")
}

/// gitops-engine `health_replicaset.go`: a ReplicaFailure condition (pods
/// the controller could not create, a quota refusing them) is Degraded.
pub(super) fn replicaset(object: &Value) -> Assessment {
    if int(object, "/metadata/generation") > int(object, "/status/observedGeneration") {
        return Assessment::new(Health::Progressing, "Waiting for rollout to finish: observed replica set generation less than desired generation");
    }
    if let Some(failure) = condition(object, "ReplicaFailure").filter(|c| text(c, "/status") == "True") {
        return Assessment::new(Health::Degraded, text(failure, "/message"));
    }
    let available = int(object, "/status/availableReplicas");
    if let Some(desired) = opt_int(object, "/spec/replicas").filter(|&desired| available < desired) {
        return Assessment::new(Health::Progressing, format!("Waiting for rollout to finish: {available} out of {desired} new replicas are available..."));
    }
    Assessment::new(Health::Healthy, "")
}

/// The annotation that makes Argo CD judge a pod with restart policy
/// OnFailure or Never as a long-running one (gitops-engine `sync/common`).
const IGNORE_RESTART_POLICY: &str = "argocd.argoproj.io/ignore-restart-policy";

/// gitops-engine `health_pod.go`.
///
/// Only a pod that restarts its containers forever is Degraded for a
/// container waiting in an error or back-off (CrashLoopBackOff,
/// ImagePullBackOff, ErrImagePull, CreateContainerConfigError...): a pod
/// that runs to completion may still get past it, so Argo CD leaves it to
/// the phase. For the same reason such a pod is Progressing while it runs.
pub(super) fn pod(object: &Value) -> Assessment {
    let policy = text(object, "/spec/restartPolicy");
    let ignore_policy = object.pointer("/metadata/annotations").and_then(|a| a.get(IGNORE_RESTART_POLICY)).and_then(Value::as_str) == Some("true");
    let long_running = policy == "Always" || ignore_policy;
    let containers = items(object, "/status/containerStatuses");
    if long_running {
        let stuck: Vec<&str> = containers
            .iter()
            .filter(|c| {
                let reason = text(c, "/state/waiting/reason");
                reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff")
            })
            .map(|c| text(c, "/state/waiting/message"))
            .collect();
        if !stuck.is_empty() {
            return Assessment::new(Health::Degraded, stuck.join(", "));
        }
    }
    let message = text(object, "/status/message");
    match text(object, "/status/phase") {
        "Pending" => Assessment::new(Health::Progressing, message),
        "Succeeded" => Assessment::new(Health::Healthy, message),
        "Failed" if !message.is_empty() => Assessment::new(Health::Degraded, message),
        "Failed" => {
            let init = items(object, "/status/initContainerStatuses");
            let reason = init.iter().chain(containers).find_map(failure).unwrap_or_default();
            Assessment::new(Health::Degraded, reason)
        }
        "Running" if long_running => {
            let ready = condition(object, "Ready").is_some_and(|c| text(c, "/status") == "True");
            if ready {
                Assessment::new(Health::Healthy, message)
            } else if containers.iter().any(|c| c.pointer("/lastState/terminated").is_some_and(|t| !t.is_null())) {
                // Not ready and a container has exited before: it is failing, not starting.
                Assessment::new(Health::Degraded, message)
            } else {
                Assessment::new(Health::Progressing, message)
            }
        }
        "Running" if matches!(policy, "OnFailure" | "Never") => Assessment::new(Health::Progressing, message),
        _ => Assessment::new(Health::Unknown, message),
    }
}

/// Why a container of a failed pod failed, as gitops-engine words it: its
/// termination message, else OOMKilled, else a non-zero exit code.
fn failure(container: &Value) -> Option<String> {
    let terminated = container.pointer("/state/terminated").filter(|t| !t.is_null())?;
    let message = text(terminated, "/message");
    if !message.is_empty() {
        return Some(message.to_owned());
    }
    if text(terminated, "/reason") == "OOMKilled" {
        return Some("OOMKilled".to_owned());
    }
    let code = int(terminated, "/exitCode");
    (code != 0).then(|| format!("container \"{}\" failed with exit code {code}", text(container, "/name")))
}
