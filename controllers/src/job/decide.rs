//! What a Job needs next, as a pure function of the Job, its pods and the
//! time: the Job controller's rules (Kubernetes 1.33's `syncJob`) with no
//! store, clock or process, so they are tested step by step.
//!
//! Counts come from the pods the Job controls; Driftless never removes a
//! finished pod of a running Job, so no tracking finalizer is needed.

use std::collections::BTreeSet;
use std::time::Duration;

use driftless_model::k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, PodFailurePolicyRule};
use driftless_model::k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use jiff::Timestamp;

use crate::pods;

/// The annotation and label holding an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Kubernetes' Job back-off: 10 s after the first failure, doubling, at
/// most 6 minutes.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

/// How a Job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ending {
    /// `Complete` or `Failed`.
    pub condition: &'static str,
    /// The condition's (and event's) reason.
    pub reason: &'static str,
    /// What happened, in the Job controller's words.
    pub message: String,
}

/// What to do now.
#[derive(Debug, Default)]
pub struct Decision {
    /// Pods to create: for an Indexed Job, each one's index.
    pub create: Vec<Option<i32>>,
    /// Pods to delete (active pods no longer wanted).
    pub delete: Vec<Pod>,
    /// The status to write.
    pub status: JobStatus,
    /// Set when the Job ends in this step.
    pub ended: Option<Ending>,
    /// Set when the Job is suspended (`true`) or resumed (`false`) in this step.
    pub suspended: Option<bool>,
    /// The Job finished and its TTL has run out: remove it.
    pub expired: bool,
    /// Look again after this long (a back-off, deadline or TTL to wait out).
    pub requeue: Option<Duration>,
}

/// Whether the Job has a true `Complete` or `Failed` condition, and when it
/// got it.
pub fn finished(status: &JobStatus) -> Option<(&str, Timestamp)> {
    status.conditions.iter().flatten().find(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True").map(|c| {
        let at = status.completion_time.as_ref().or(c.last_transition_time.as_ref()).map_or(Timestamp::UNIX_EPOCH, |t| t.0);
        (c.type_.as_str(), at)
    })
}

/// The next step of `job`, given the pods it controls.
pub fn decide(job: &Job, owned: &[Pod], now: Timestamp) -> Decision {
    let spec = job.spec.clone().unwrap_or_default();
    let before = job.status.clone().unwrap_or_default();
    let mut decision = Decision { status: before.clone(), ..Decision::default() };
    let active: Vec<&Pod> = owned.iter().filter(|p| pods::is_active(p)).collect();

    if let Some((_, at)) = finished(&before) {
        // Whatever still runs stops; the record stays until the TTL.
        decision.delete = active.into_iter().cloned().collect();
        decision.status.active = Some(0);
        decision.status.ready = Some(0);
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            let due = at.as_second() + i64::from(ttl);
            if now.as_second() >= due {
                decision.expired = true;
            } else {
                decision.requeue = Some(Duration::from_secs((due - now.as_second()) as u64));
            }
        }
        return decision;
    }

    let suspend = spec.suspend == Some(true);
    let start = before.start_time.as_ref().map(|t| t.0).or((!suspend).then_some(now));
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let succeeded: Vec<&Pod> = owned.iter().filter(|p| phase(p) == Some("Succeeded")).collect();
    let failed: Vec<&Pod> = owned.iter().filter(|p| phase(p) == Some("Failed")).collect();

    // Failures: the pod failure policy decides first, then the back-off
    // limit, then the deadline.
    let mut counted_failures: Vec<&Pod> = Vec::new();
    let mut ending = None;
    for pod in &failed {
        match policy_action(&spec, pod) {
            Some((index, "FailJob", message)) => {
                ending.get_or_insert(Ending {
                    condition: "Failed",
                    reason: "PodFailurePolicy",
                    message: format!("{message} matching FailJob rule at index {index}"),
                });
            }
            Some((_, "Ignore", _)) => {}
            _ => counted_failures.push(pod),
        }
    }
    let limit = spec.backoff_limit.unwrap_or(6);
    let on_failure = spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure");
    let restarts: i32 = active.iter().map(|p| restarts(p)).sum();
    let past_limit = if on_failure { if limit == 0 { restarts > 0 } else { restarts >= limit } } else { false };
    if ending.is_none() && (counted_failures.len() > usize::try_from(limit).unwrap_or(0) || past_limit) {
        ending = Some(Ending { condition: "Failed", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit".to_owned() });
    }
    if let (None, Some(deadline), Some(start)) = (&ending, spec.active_deadline_seconds, start) {
        let due = start.as_second().saturating_add(deadline);
        if now.as_second() >= due {
            ending = Some(Ending { condition: "Failed", reason: "DeadlineExceeded", message: "Job was active longer than specified deadline".to_owned() });
        } else {
            decision.requeue = Some(Duration::from_secs((due - now.as_second()) as u64));
        }
    }

    // Successes.
    let completions = spec.completions;
    let done_indexes: BTreeSet<i32> = succeeded.iter().filter_map(|p| index_of(p)).filter(|i| completions.is_some_and(|c| *i < c)).collect();
    let succeeded_count = if indexed { done_indexes.len() } else { succeeded.len() };
    let complete = match completions {
        _ if ending.is_some() => false,
        Some(c) => succeeded_count >= usize::try_from(c).unwrap_or(0),
        // A work queue: done once one pod succeeded and none still runs.
        None => !succeeded.is_empty() && active.is_empty(),
    };
    if complete {
        ending = Some(Ending { condition: "Complete", reason: "Completed", message: "Job completed".to_owned() });
    }

    decision.status.start_time = start.map(Time);
    decision.status.succeeded = Some(i32::try_from(succeeded_count).unwrap_or(i32::MAX));
    decision.status.failed = Some(i32::try_from(counted_failures.len()).unwrap_or(i32::MAX));
    decision.status.terminating =
        Some(i32::try_from(owned.iter().filter(|p| p.metadata.deletion_timestamp.is_some() && !pods::is_terminal(p)).count()).unwrap_or(0));
    if indexed {
        decision.status.completed_indexes = Some(compress(&done_indexes));
    }

    if let Some(end) = &ending {
        decision.delete = active.iter().map(|p| (*p).clone()).collect();
        decision.status.active = Some(0);
        decision.status.ready = Some(0);
        if end.condition == "Complete" {
            decision.status.completion_time = Some(Time(now));
        }
        set_condition(&mut decision.status, end.condition, "True", end.reason, &end.message, now);
        decision.requeue = spec.ttl_seconds_after_finished.map(|ttl| Duration::from_secs(u64::try_from(ttl).unwrap_or(0)));
        decision.ended = ending;
        return decision;
    }

    if suspend {
        decision.delete = active.iter().map(|p| (*p).clone()).collect();
        decision.status.active = Some(0);
        decision.status.ready = Some(0);
        if set_condition(&mut decision.status, "Suspended", "True", "JobSuspended", "Job suspended", now) {
            decision.suspended = Some(true);
        }
        return decision;
    }
    if has_condition(&before, "Suspended", "True") && set_condition(&mut decision.status, "Suspended", "False", "JobResumed", "Job resumed", now) {
        decision.suspended = Some(false);
    }

    let parallelism = usize::try_from(spec.parallelism.unwrap_or(1)).unwrap_or(0);
    let mut keep: Vec<&Pod> = active.clone();
    if indexed {
        // One pod per index still to do, lowest first.
        let total = completions.unwrap_or(0);
        let mut running: BTreeSet<i32> = BTreeSet::new();
        for pod in &active {
            // A second pod for one index (or one out of range) goes.
            match index_of(pod) {
                Some(i) if i < total && !done_indexes.contains(&i) && running.insert(i) => {}
                _ => decision.delete.push((*pod).clone()),
            }
        }
        keep.retain(|p| !decision.delete.iter().any(|d| d.metadata.name == p.metadata.name));
        let todo: Vec<i32> = (0..total).filter(|i| !done_indexes.contains(i) && !running.contains(i)).collect();
        let room = parallelism.saturating_sub(keep.len());
        decision.create = todo.into_iter().take(room).map(Some).collect();
    } else {
        let want = match completions {
            Some(c) => parallelism.min(usize::try_from(c).unwrap_or(0).saturating_sub(succeeded_count)),
            None if !succeeded.is_empty() => 0,
            None => parallelism,
        };
        if keep.len() > want {
            keep.sort_by(|a, b| pods::deletion_order(a, b));
            let excess = keep.len() - want;
            decision.delete.extend(keep.drain(..excess).cloned());
        } else {
            decision.create = vec![None; want - keep.len()];
        }
    }

    // After failures, wait before making more pods.
    if !decision.create.is_empty() && !counted_failures.is_empty() {
        let last = counted_failures.iter().map(|p| finished_at(p)).max().unwrap_or(Timestamp::UNIX_EPOCH);
        let wait = backoff(counted_failures.len());
        let ready_at = last.as_second().saturating_add(wait.as_secs() as i64);
        if now.as_second() < ready_at {
            decision.create.clear();
            let left = Duration::from_secs((ready_at - now.as_second()) as u64);
            decision.requeue = Some(decision.requeue.map_or(left, |r| r.min(left)));
        }
    }
    decision.status.active = Some(i32::try_from(keep.len() + decision.create.len()).unwrap_or(i32::MAX));
    decision.status.ready = Some(i32::try_from(keep.iter().filter(|p| pods::is_ready(p)).count()).unwrap_or(0));
    decision
}

/// The back-off before the pod that follows `failures` failures.
pub fn backoff(failures: usize) -> Duration {
    let exponent = u32::try_from(failures.saturating_sub(1)).unwrap_or(u32::MAX).min(16);
    BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_MAX)
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// The completion index an Indexed Job's pod carries.
pub fn index_of(pod: &Pod) -> Option<i32> {
    pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?.parse().ok()
}

fn restarts(pod: &Pod) -> i32 {
    let status = pod.status.as_ref();
    status.iter().flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten())).map(|c| c.restart_count).sum()
}

/// When a failed pod's last container ended (its creation if none says).
fn finished_at(pod: &Pod) -> Timestamp {
    let statuses = pod.status.iter().flat_map(|s| s.container_statuses.iter().flatten());
    statuses
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0))
        .max()
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The first pod failure policy rule a failed pod matches: its index, its
/// action, and what matched, in the Job controller's words.
fn policy_action<'a>(spec: &'a JobSpec, pod: &Pod) -> Option<(usize, &'a str, String)> {
    let rules: &[PodFailurePolicyRule] = spec.pod_failure_policy.as_ref().map(|p| p.rules.as_slice()).unwrap_or_default();
    let name = format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default());
    let status = pod.status.as_ref()?;
    for (i, rule) in rules.iter().enumerate() {
        if let Some(codes) = &rule.on_exit_codes {
            let containers = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
            let matched = containers.filter(|c| codes.container_name.as_ref().is_none_or(|n| *n == c.name)).find_map(|c| {
                let code = exit_code(c)?;
                let hit = match codes.operator.as_str() {
                    "In" => codes.values.contains(&code),
                    // NotIn never matches a success.
                    _ => code != 0 && !codes.values.contains(&code),
                };
                hit.then(|| format!("Container {} for pod {name} failed with exit code {code}", c.name))
            });
            if let Some(message) = matched {
                return Some((i, rule.action.as_str(), message));
            }
        }
        for pattern in rule.on_pod_conditions.iter().flatten() {
            let matched = status.conditions.iter().flatten().any(|c| c.type_ == pattern.type_ && c.status == pattern.status);
            if matched {
                return Some((i, rule.action.as_str(), format!("Pod {name} has condition {} matching", pattern.type_)));
            }
        }
    }
    None
}

fn exit_code(status: &ContainerStatus) -> Option<i32> {
    status.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

fn has_condition(status: &JobStatus, kind: &str, value: &str) -> bool {
    status.conditions.iter().flatten().any(|c| c.type_ == kind && c.status == value)
}

/// Sets a condition, keeping its times when it does not change; returns
/// whether it changed.
fn set_condition(status: &mut JobStatus, kind: &str, value: &str, reason: &str, message: &str, now: Timestamp) -> bool {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == kind) {
        if c.status == value {
            return false;
        }
        *c = condition(kind, value, reason, message, now);
    } else {
        conditions.push(condition(kind, value, reason, message, now));
    }
    true
}

fn condition(kind: &str, value: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: kind.to_owned(),
        status: value.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// `0-2,4`: indexes as the API server writes `completedIndexes`.
pub fn compress(indexes: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last = iter.next().unwrap_or(last);
        }
        out.push(if first == last { first.to_string() } else { format!("{first}-{last}") });
    }
    out.join(",")
}
