//! The runtime's view of a pod as the Kubernetes `status` of the Pod, and
//! the events its changes deserve.

use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_nodeapi::{ContainerState, ContainerStatus, PodStatus};
use serde_json::{Value, json};

use crate::events::EventType;

/// The Pod status for `runtime`, keeping from `previous` what only changes
/// on transitions (condition times, start time).
pub fn pod_status(pod: &Pod, runtime: &PodStatus, previous: Option<&Value>, host_ip: &str, now: &str) -> Value {
    let ready = runtime.ready();
    let prior_condition =
        |kind: &str| previous.and_then(|p| p.get("conditions")).and_then(Value::as_array).and_then(|cs| cs.iter().find(|c| c["type"] == kind)).cloned();
    let condition = |kind: &str, status: bool| {
        let status = if status { "True" } else { "False" };
        let since = prior_condition(kind).filter(|c| c["status"] == status).map(|c| c["lastTransitionTime"].clone());
        let mut c = json!({"type": kind, "status": status, "lastTransitionTime": since.unwrap_or_else(|| Value::from(now))});
        if status == "False" && (kind == "Ready" || kind == "ContainersReady") {
            let waiting: Vec<&str> = runtime.containers.iter().filter(|c| !c.ready).map(|c| c.name.as_str()).collect();
            c["reason"] = Value::from("ContainersNotReady");
            c["message"] = Value::from(format!("containers with unready status: [{}]", waiting.join(" ")));
        }
        c
    };
    let scheduled = prior_condition("PodScheduled").unwrap_or_else(|| json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": now}));
    let running = runtime.containers.iter().any(|c| matches!(c.state, ContainerState::Running { .. }));
    let start_time = previous.and_then(|p| p.get("startTime")).cloned().filter(|t| !t.is_null()).unwrap_or_else(|| Value::from(now));
    let specs = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let containers: Vec<Value> = runtime
        .containers
        .iter()
        .map(|c| {
            let image = specs.iter().find(|s| s.name == c.name).and_then(|s| s.image.clone()).unwrap_or_default();
            container_status(c, &image)
        })
        .collect();
    let mut status = json!({
        "phase": runtime.phase,
        "conditions": [
            condition("PodReadyToStartContainers", runtime.pod_ip.is_some()),
            condition("Initialized", true),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            scheduled,
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "containerStatuses": containers,
        "qosClass": qos_class(pod),
    });
    if running || previous.and_then(|p| p.get("startTime")).is_some() {
        status["startTime"] = start_time;
    }
    if let Some(ip) = &runtime.pod_ip {
        status["podIP"] = Value::from(ip.clone());
        status["podIPs"] = json!([{"ip": ip}]);
    }
    status
}

fn container_status(c: &ContainerStatus, image: &str) -> Value {
    let state = match &c.state {
        ContainerState::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if let Some(m) = message {
                w["message"] = Value::from(m.clone());
            }
            json!({"waiting": w})
        }
        ContainerState::Running { started_at } => json!({"running": {"startedAt": started_at}}),
        ContainerState::Terminated { exit_code, reason } => json!({"terminated": {"exitCode": exit_code, "reason": reason}}),
    };
    let mut status = json!({
        "name": c.name,
        "ready": c.ready,
        "restartCount": c.restart_count,
        "image": image,
        "imageID": c.image_id.as_deref().unwrap_or_default(),
        "started": matches!(c.state, ContainerState::Running { .. }),
        "state": state,
    });
    if let Some(id) = &c.container_id {
        // Kubernetes' form: the runtime's name, then its id.
        status["containerID"] = Value::from(format!("driftless://{id}"));
    }
    if let Some((code, reason)) = &c.last_termination {
        status["lastState"] = json!({"terminated": {"exitCode": code, "reason": reason}});
    }
    status
}

/// Guaranteed when every container's limits equal its requests for CPU
/// and memory, BestEffort when none sets any, else Burstable.
fn qos_class(pod: &Pod) -> &'static str {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let resources = c.resources.clone().unwrap_or_default();
        let requests = resources.requests.unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        any |= !requests.is_empty() || !limits.is_empty();
        for resource in ["cpu", "memory"] {
            let limit = limits.get(resource).map(|q| q.0.clone());
            let request = requests.get(resource).map(|q| q.0.clone()).or_else(|| limit.clone());
            guaranteed &= limit.is_some() && limit == request;
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// At most this many `Unhealthy` events per container per status change.
const MAX_PROBE_EVENTS: u64 = 10;

/// The events a change of a pod's runtime status deserves, as kubelet
/// records them. `before` is what this daemon last saw; with none (it has
/// just started and adopted the pod), `stored` is the status an earlier run
/// wrote, so a container that kept running is not reported as started.
pub fn events(pod: &Pod, before: Option<&PodStatus>, stored: Option<&Value>, after: &PodStatus) -> Vec<(EventType, &'static str, String)> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let image_of = |container: &str| {
        let spec = pod.spec.as_ref();
        let all = spec.into_iter().flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers));
        all.into_iter().find(|c| c.name == container).and_then(|c| c.image.clone()).unwrap_or_default()
    };
    let mut out = Vec::new();
    for c in &after.containers {
        let old = before.and_then(|b| b.containers.iter().find(|o| o.name == c.name));
        // One `Unhealthy` per failed probe run since the last look, in the
        // prober's words (the recorder counts repeats). An adopted pod's
        // earlier failures were reported by the daemon that saw them.
        if before.is_some() {
            let new_failures = c.probe_failures.saturating_sub(old.map_or(0, |o| o.probe_failures)).min(MAX_PROBE_EVENTS);
            if let Some(message) = &c.probe_message {
                for _ in 0..new_failures {
                    out.push((EventType::Warning, "Unhealthy", message.clone()));
                }
            }
        }
        let old_state = old.map(|o| &o.state);
        match &c.state {
            ContainerState::Running { started_at } => {
                let seen = match before {
                    Some(_) => matches!(old_state, Some(ContainerState::Running { started_at: s }) if s == started_at),
                    None => stored_started_at(stored, &c.name) == Some(started_at.as_str()),
                };
                let fresh = !seen;
                if fresh {
                    out.push((EventType::Normal, "Created", format!("Created container {}", c.name)));
                    out.push((EventType::Normal, "Started", format!("Started container {}", c.name)));
                }
            }
            ContainerState::Waiting { reason, message } => {
                let changed = !matches!(old_state, Some(ContainerState::Waiting { reason: r, .. }) if r == reason);
                if !changed {
                    continue;
                }
                let message = message.clone().unwrap_or_default();
                match reason.as_str() {
                    "CrashLoopBackOff" => {
                        out.push((EventType::Warning, "BackOff", format!("Back-off restarting failed container {} in pod {pod_name}", c.name)))
                    }
                    // kubelet's image manager's words.
                    "ErrImagePull" => out.push((EventType::Warning, "Failed", format!("Failed to pull image {:?}: {message}", image_of(&c.name)))),
                    "ErrImageNeverPull" => out.push((EventType::Warning, "ErrImageNeverPull", message)),
                    "ImagePullBackOff" => out.push((EventType::Normal, "BackOff", message)),
                    "CreateContainerConfigError" | "CreateContainerError" => out.push((EventType::Warning, "Failed", format!("Error: {message}"))),
                    // The sandbox could not be made; kubelet says so once
                    // per pod, not per container.
                    "ContainerCreating" if !message.is_empty() && !out.iter().any(|(_, r, _)| *r == "FailedCreatePodSandBox") => {
                        out.push((EventType::Warning, "FailedCreatePodSandBox", message))
                    }
                    _ => {}
                }
            }
            ContainerState::Terminated { .. } => {}
        }
    }
    out
}

/// When a stored status says the container `name` has been running since.
fn stored_started_at<'a>(stored: Option<&'a Value>, name: &str) -> Option<&'a str> {
    let statuses = stored?.get("containerStatuses")?.as_array()?;
    statuses.iter().find(|s| s.get("name").and_then(Value::as_str) == Some(name))?.pointer("/state/running/startedAt")?.as_str()
}
