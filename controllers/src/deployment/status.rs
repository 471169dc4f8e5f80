//! A deployment's status: replica counts summed over its ReplicaSets, and
//! the `Available` and `Progressing` conditions, including the progress
//! deadline.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Owned, Rollout, rollout};
use crate::context::rfc3339;

/// The status to write, and when to look again for the progress deadline.
pub(super) fn compute(r: &Rollout<'_>, now: Timestamp) -> (Value, Option<Duration>) {
    let all: Vec<&Owned> = r.all().collect();
    let replicas: i32 = all.iter().map(|o| o.current()).sum();
    let updated = r.new.as_ref().map_or(0, Owned::current);
    let ready: i32 = all.iter().map(|o| o.ready()).sum();
    let available: i32 = all.iter().map(|o| o.available()).sum();
    let unavailable = (r.total_spec() - available).max(0);
    let generation = r.deployment.metadata.generation.unwrap_or(0);
    let old = r.deployment.status.clone().unwrap_or_default();
    let previous: Vec<Value> = r.value.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let find = |t: &str| previous.iter().find(|c| c["type"] == t).cloned();

    let max_unavailable = rollout::max_unavailable(r.replicas, r.unavailable);
    let available_condition = if available >= r.replicas - max_unavailable {
        condition(find("Available"), "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now, false)
    } else {
        condition(find("Available"), "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now, false)
    };

    let new_name = r.new.as_ref().map(|n| n.name().to_owned()).unwrap_or_default();
    let complete = updated == r.replicas && replicas == r.replicas && available == r.replicas;
    let progressed = updated > old.updated_replicas.unwrap_or(0)
        || ready > old.ready_replicas.unwrap_or(0)
        || available > old.available_replicas.unwrap_or(0)
        || replicas < old.replicas.unwrap_or(0) && updated > 0;
    let deadline = r.spec.progress_deadline_seconds.unwrap_or(600);
    let prior = find("Progressing");
    let mut requeue = None;
    let progressing = if r.spec.paused == Some(true) {
        condition(prior, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now, true)
    } else if complete {
        let message = format!("ReplicaSet {new_name:?} has successfully progressed.");
        condition(prior, "Progressing", "True", "NewReplicaSetAvailable", &message, now, false)
    } else if progressed || starts_rollout(prior.as_ref(), &new_name) {
        let message = format!("ReplicaSet {new_name:?} is progressing.");
        requeue = Some(Duration::from_secs(u64::try_from(deadline).unwrap_or(600)));
        condition(prior, "Progressing", "True", "ReplicaSetUpdated", &message, now, true)
    } else {
        // No progress since the last update: timed out once the deadline
        // has passed since then.
        let prior = prior.unwrap_or(Value::Null);
        let since = prior["lastUpdateTime"].as_str().and_then(|t| t.parse::<Timestamp>().ok()).unwrap_or(now);
        let waited = now.as_second() - since.as_second();
        if prior["reason"] == "ProgressDeadlineExceeded" || waited >= i64::from(deadline) {
            let message = format!("ReplicaSet {new_name:?} has timed out progressing.");
            condition(Some(prior), "Progressing", "False", "ProgressDeadlineExceeded", &message, now, false)
        } else {
            requeue = Some(Duration::from_secs(u64::try_from(i64::from(deadline) - waited).unwrap_or(1)));
            prior
        }
    };
    let mut status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
        "conditions": [available_condition, progressing],
    });
    if let Some(count) = old.collision_count {
        status["collisionCount"] = Value::from(count);
    }
    (status, requeue)
}

/// Whether the prior `Progressing` condition belongs to another rollout
/// (none yet, a finished one, a pause, or another ReplicaSet), so the
/// deadline starts now.
fn starts_rollout(prior: Option<&Value>, new_name: &str) -> bool {
    let Some(prior) = prior else { return true };
    let reason = prior["reason"].as_str().unwrap_or("");
    let about_new = prior["message"].as_str().unwrap_or("").contains(&format!("{new_name:?}"));
    matches!(reason, "NewReplicaSetAvailable" | "DeploymentPaused") || !about_new
}

/// A condition, keeping its transition time while its status stays, and
/// its update time unless `touch` says it moved.
fn condition(prior: Option<Value>, kind: &str, status: &str, reason: &str, message: &str, now: Timestamp, touch: bool) -> Value {
    let now = rfc3339(now);
    let (transition, update) = match &prior {
        Some(p) if p["status"] == status => {
            let transition = p["lastTransitionTime"].clone();
            let same = p["reason"] == reason && p["message"] == message;
            let update = if same && !touch { p["lastUpdateTime"].clone() } else { Value::from(now.clone()) };
            (transition, update)
        }
        _ => (Value::from(now.clone()), Value::from(now)),
    };
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": transition, "lastUpdateTime": update,
    })
}

/// Whether a computed status says the progress deadline passed.
pub(super) fn timed_out(status: &Value) -> bool {
    timed_out_value(status.get("conditions"))
}

/// Whether conditions say the progress deadline passed.
pub(super) fn timed_out_value(conditions: Option<&Value>) -> bool {
    conditions.and_then(Value::as_array).is_some_and(|cs| cs.iter().any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded"))
}
