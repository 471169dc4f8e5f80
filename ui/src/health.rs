//! Health of objects, as Argo CD's health checks define it.
//!
//! Owns: the one assessment of a live object's health ([`assess`]) and the
//! roll-up of several ([`worst`]), following Argo CD's built-in checks rule
//! for rule and message for message: gitops-engine's `pkg/health` (as Argo CD
//! 3 vendors it, `gitops-engine/pkg/health/health_*.go`) for Deployment,
//! StatefulSet, DaemonSet, ReplicaSet, Pod, Service, Ingress,
//! PersistentVolumeClaim, Job and HorizontalPodAutoscaler, and Argo CD's
//! bundled `resource_customizations/batch/CronJob/health.lua` for CronJob.
//! Kinds with no check there are Healthy when present, as Argo CD shows
//! nothing wrong with them. Workload kinds live in `health/workloads.rs`.
//!
//! Must not touch: the store, the pages or any I/O. It reads the object as
//! Kubernetes JSON and nothing else, so a page can assess what it listed.
//!
//! Where this differs from Argo CD, and why:
//! - Argo CD converts the object to its typed Go struct first and answers
//!   Unknown when that fails; the store only holds objects that passed
//!   validation, so here a field that is absent (or of another type) reads
//!   as Go's zero value and the check goes on.
//! - Argo CD skips its "Pending deletion" rule for hooks it still holds with
//!   its hook finalizer, and exempts hook pods from the
//!   `argocd.argoproj.io/ignore-restart-policy` annotation; Driftless has no
//!   sync hooks, so neither exception can arise.

mod workloads;

#[cfg(test)]
mod tests;

use serde_json::Value;

/// How an object is doing, as Argo CD names it.
///
/// The variants are declared from most to least healthy, in Argo CD's own
/// order (gitops-engine `health.go`, `healthOrder`, read by `IsWorse`), so
/// the derived `Ord` is that order and `max` is the worse of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Health {
    /// Working as declared.
    Healthy,
    /// Paused on purpose (a paused Deployment, a suspended Job).
    Suspended,
    /// Not healthy yet, but still on its way there (a rollout, a pending pod).
    Progressing,
    /// Declared in git and absent from the store.
    Missing,
    /// Failed, or cannot get healthy without help (a crash loop, a deadline passed).
    Degraded,
    /// The status cannot be read (a pod in phase Unknown, an unknown claim phase).
    Unknown,
}

impl Health {
    /// Argo CD's name for it: "Healthy", "Progressing"...
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Suspended => "Suspended",
            Health::Progressing => "Progressing",
            Health::Missing => "Missing",
            Health::Degraded => "Degraded",
            Health::Unknown => "Unknown",
        }
    }
}

/// The health of one object and the words that explain it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// How the object is doing.
    pub health: Health,
    /// Argo CD's message for it, often empty (a Healthy Deployment says nothing).
    pub message: String,
}

impl Assessment {
    fn new(health: Health, message: impl Into<String>) -> Self {
        Assessment { health, message: message.into() }
    }
}

/// The health of one object of kind `kind` ("Deployment").
///
/// `object` is the live object as Kubernetes JSON (metadata, spec, status),
/// or `None` when git declares it and nothing runs (Missing).
pub fn assess(kind: &str, object: Option<&Value>) -> Assessment {
    let Some(object) = object else {
        return Assessment::new(Health::Missing, "");
    };
    // Argo CD asks this before any kind's own check: an object on its way out
    // is neither healthy nor failed, whatever its status still says.
    if object.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return Assessment::new(Health::Progressing, "Pending deletion");
    }
    match kind {
        "Deployment" => workloads::deployment(object),
        "StatefulSet" => workloads::statefulset(object),
        "DaemonSet" => workloads::daemonset(object),
        "ReplicaSet" => workloads::replicaset(object),
        "Pod" => workloads::pod(object),
        "Service" => service(object),
        "Ingress" => ingress(object),
        "PersistentVolumeClaim" => pvc(object),
        "Job" => job(object),
        "CronJob" => cronjob(object),
        "HorizontalPodAutoscaler" => hpa(object),
        // Argo CD has no check for these (ConfigMap, Secret, Namespace...):
        // it shows no health, and nothing in them can be unhealthy.
        _ => Assessment::new(Health::Healthy, ""),
    }
}

/// The worst of several healths, in Argo CD's order (`IsWorse`):
/// Healthy < Suspended < Progressing < Missing < Degraded < Unknown.
///
/// Healthy when there are none, as Argo CD starts an application's roll-up
/// from Healthy. Which objects to feed it is the caller's choice: Argo CD 3
/// leaves Missing objects out of an application's roll-up (OutOfSync says
/// they are missing already) and calls the application Missing only when
/// none of its objects exists.
pub fn worst(healths: impl IntoIterator<Item = Health>) -> Health {
    healths.into_iter().max().unwrap_or(Health::Healthy)
}

// === Reading Kubernetes JSON as Go's typed structs would ===

/// An integer field, or Go's zero value when it is absent.
fn int(object: &Value, pointer: &str) -> i64 {
    opt_int(object, pointer).unwrap_or(0)
}

/// An integer field that Kubernetes keeps as a pointer (`spec.replicas`):
/// absent is not zero, and the checks skip what it would decide.
fn opt_int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

/// A string field, or "" when it is absent.
fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The elements of an array field; none when it is absent.
fn items<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The first of `status.conditions` of type `kind`, as gitops-engine's
/// `get…Condition` helpers find it.
fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    items(object, "/status/conditions").iter().find(|c| text(c, "/type") == kind)
}

// === Service, Ingress, PersistentVolumeClaim ===

/// gitops-engine `health_service.go`: only a LoadBalancer waits, for an
/// address in `status.loadBalancer.ingress`.
fn service(object: &Value) -> Assessment {
    if text(object, "/spec/type") == "LoadBalancer" && items(object, "/status/loadBalancer/ingress").is_empty() {
        return Assessment::new(Health::Progressing, "");
    }
    Assessment::new(Health::Healthy, "")
}

/// gitops-engine `health_ingress.go`: healthy once the Ingress controller
/// has reported an address (the daemon reports the node's), whatever the
/// entry holds.
fn ingress(object: &Value) -> Assessment {
    if items(object, "/status/loadBalancer/ingress").is_empty() {
        return Assessment::new(Health::Progressing, "");
    }
    Assessment::new(Health::Healthy, "")
}

/// gitops-engine `health_pvc.go`: the claim's phase alone.
fn pvc(object: &Value) -> Assessment {
    let health = match text(object, "/status/phase") {
        "Lost" => Health::Degraded,
        "Pending" => Health::Progressing,
        "Bound" => Health::Healthy,
        _ => Health::Unknown,
    };
    Assessment::new(health, "")
}

// === Job, CronJob ===

/// gitops-engine `health_job.go` (Argo CD 3's copy, which gives a suspended
/// Job the Suspended condition's message).
///
/// Any Complete, Failed or Suspended condition ends the Job's progress
/// whatever its status; only the Suspended one is read for True. So a Job
/// resumed after a suspension (Suspended=False) reads Healthy while it runs,
/// as it does in Argo CD.
fn job(object: &Value) -> Assessment {
    let (mut failed, mut complete, mut suspended) = (false, false, false);
    let (mut fail_message, mut message) = ("", "");
    for condition in items(object, "/status/conditions") {
        match text(condition, "/type") {
            "Failed" => {
                failed = true;
                complete = true;
                fail_message = text(condition, "/message");
            }
            "Complete" => {
                complete = true;
                message = text(condition, "/message");
            }
            "Suspended" => {
                complete = true;
                message = text(condition, "/message");
                suspended |= text(condition, "/status") == "True";
            }
            _ => {}
        }
    }
    match () {
        () if !complete => Assessment::new(Health::Progressing, message),
        () if failed => Assessment::new(Health::Degraded, fail_message),
        () if suspended => Assessment::new(Health::Suspended, message),
        () => Assessment::new(Health::Healthy, message),
    }
}

/// Argo CD's bundled `resource_customizations/batch/CronJob/health.lua`.
///
/// A suspended CronJob is Healthy, not Suspended: Argo CD changed that on
/// purpose (argo-cd#24428) and its message still says so. The times are
/// compared as text, as the Lua check does; RFC 3339 times in UTC sort so.
fn cronjob(object: &Value) -> Assessment {
    if object.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Assessment::new(Health::Healthy, "CronJob is Suspended");
    }
    if object.get("status").is_none_or(Value::is_null) {
        return Assessment::new(Health::Progressing, "Waiting for CronJob");
    }
    let Some(scheduled) = object.pointer("/status/lastScheduleTime").and_then(Value::as_str) else {
        // Nothing in the status tells a missed run from one not due yet.
        return Assessment::new(Health::Healthy, "CronJob has not been scheduled yet");
    };
    let Some(succeeded) = object.pointer("/status/lastSuccessfulTime").and_then(Value::as_str) else {
        return Assessment::new(Health::Healthy, "The CronJob never completed successfully. It may not be healthy");
    };
    if !items(object, "/status/active").is_empty() {
        return Assessment::new(Health::Healthy, "The job is running. Its last execution may not have been successful");
    }
    if succeeded < scheduled {
        return Assessment::new(Health::Degraded, "CronJob has not completed its last execution successfully");
    }
    Assessment::new(Health::Healthy, "CronJob has completed its last execution successfully")
}

// === HorizontalPodAutoscaler ===

/// What Argo CD says of an HPA none of whose conditions decides.
const WAITING_TO_AUTOSCALE: &str = "Waiting to Autoscale";

/// The condition reasons gitops-engine's `health_hpa.go` calls Degraded,
/// by condition type: the controller cannot read or set the target's scale,
/// or cannot compute a metric.
const HPA_DEGRADED: &[(&str, &str)] = &[
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "FailedGetObjectMetric"),
    ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"),
    ("ScalingActive", "FailedComputeMetricsReplicas"),
    ("ScalingActive", "InvalidSelector"),
];

/// The annotation in which `autoscaling/v1` shows an HPA's conditions.
const HPA_V1_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";

/// gitops-engine `health_hpa.go`. An `autoscaling/v1` object carries its
/// conditions in an annotation (how the API server shows v2 conditions
/// through v1); every later version in `status.conditions`.
fn hpa(object: &Value) -> Assessment {
    if text(object, "/apiVersion") == "autoscaling/v1" {
        let Some(annotation) = object.pointer("/metadata/annotations").and_then(|a| a.get(HPA_V1_CONDITIONS)).and_then(Value::as_str) else {
            return Assessment::new(Health::Progressing, WAITING_TO_AUTOSCALE);
        };
        // `null` is no conditions to Go's decoder, as is an empty list.
        return match serde_json::from_str::<Option<Vec<Value>>>(annotation) {
            Ok(conditions) => hpa_conditions(conditions.as_deref().unwrap_or_default()),
            Err(error) => Assessment::new(Health::Unknown, format!("failed to convert conditions annotation to typed: {error}")),
        };
    }
    hpa_conditions(items(object, "/status/conditions"))
}

/// Any Degraded reason wins over any healthy condition, wherever each is in
/// the list (Argo CD 3 looks for the one, then the other); a healthy one is
/// AbleToScale or ScalingLimited being True.
fn hpa_conditions(conditions: &[Value]) -> Assessment {
    if let Some(degraded) = conditions.iter().find(|c| HPA_DEGRADED.contains(&(text(c, "/type"), text(c, "/reason")))) {
        return Assessment::new(Health::Degraded, text(degraded, "/message"));
    }
    let healthy = |c: &&Value| matches!(text(c, "/type"), "AbleToScale" | "ScalingLimited") && text(c, "/status") == "True";
    if let Some(healthy) = conditions.iter().find(healthy) {
        return Assessment::new(Health::Healthy, text(healthy, "/message"));
    }
    Assessment::new(Health::Progressing, WAITING_TO_AUTOSCALE)
}
