//! The CronJob controller: makes a Job from `jobTemplate` at each time the
//! schedule (in `timeZone`) fires, as Kubernetes' controller does: the most
//! recent missed time only, not earlier than `startingDeadlineSeconds`,
//! `concurrencyPolicy` (Allow, Forbid, Replace), `suspend`, and the
//! finished Jobs kept to `successfulJobsHistoryLimit` and
//! `failedJobsHistoryLimit`.
//!
//! A Job is named `<cronjob>-<minutes since the epoch of its time>` and is
//! written in one store batch with the `lastScheduleTime` that records it,
//! so a daemon killed at the due minute neither loses the run nor runs it
//! twice when it comes back.

use std::sync::Arc;
use std::time::Duration;

use driftless_model::Kind;
use driftless_model::KindOf;
use driftless_model::cron::Schedule;
use driftless_model::k8s_openapi::api::batch::v1::{CronJob, Job};
use driftless_model::k8s_openapi::api::core::v1::ObjectReference;
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use driftless_store::{Batch, Key, Op, StoreExt, to_value};
use jiff::Timestamp;

use crate::events::EventType;
use crate::job::decide::finished;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError, owner};

/// The annotation on each Job with the time it was scheduled for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// How many missed times make Kubernetes' `TooManyMissedTimes` warning.
const TOO_MANY_MISSED: usize = 100;

/// The controller.
pub struct CronJobController {
    ctx: Context,
}

impl CronJobController {
    /// A CronJob controller.
    pub fn new(ctx: Context) -> Arc<CronJobController> {
        Arc::new(CronJobController { ctx })
    }
}

/// The Job name for a time: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cron_job: &str, scheduled: Timestamp) -> String {
    format!("{cron_job}-{}", scheduled.as_second().div_euclid(60))
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some(Kind::Job.api_version().to_owned()),
        kind: Some(Kind::Job.name().to_owned()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        ..Default::default()
    }
}

/// When a finished Job finished.
fn finished_at(job: &Job) -> Timestamp {
    job.status.as_ref().and_then(finished).map_or(Timestamp::UNIX_EPOCH, |(_, at)| at)
}

impl Reconciler for CronJobController {
    fn name(&self) -> &'static str {
        "cronjob"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::CronJob).owning(&[Kind::Job])
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let Some(value) = self.ctx.store.get(key) else { return Ok(Action::AwaitChange) };
        if value.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Action::AwaitChange);
        }
        let cron = CronJob::from_json(&value).map_err(|e| ReconcileError::Malformed(format!("CronJob: {e}")))?;
        let spec = cron.spec.clone().unwrap_or_default();
        let uid = cron.metadata.uid.clone().unwrap_or_default();
        let store = &*self.ctx.store;
        let now = self.ctx.now();
        let schedule = match Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
            Ok(schedule) => schedule,
            Err(error) => {
                self.ctx.events.record(&value, EventType::Warning, "UnparseableSchedule", &format!("unparseable schedule: {error}"));
                return Ok(Action::AwaitChange);
            }
        };

        let mut jobs: Vec<Job> = store
            .api::<Job>()
            .list(Some(&key.namespace))
            .into_iter()
            .filter(|j| owner::controller_of_meta(&j.metadata).is_some_and(|o| o.uid == uid))
            .collect();
        let mut batch = Batch::new();
        let mut events: Vec<(EventType, &'static str, String)> = Vec::new();
        let mut status = cron.status.clone().unwrap_or_default();
        let previously_active: Vec<String> = status.active.iter().flatten().filter_map(|r| r.name.clone()).collect();

        // Finished Jobs: seen once, then kept to the history limits.
        let (mut done, active): (Vec<Job>, Vec<Job>) = jobs.drain(..).partition(|j| j.status.as_ref().and_then(finished).is_some());
        for job in &done {
            let name = job.metadata.name.clone().unwrap_or_default();
            if previously_active.contains(&name) {
                let outcome = job.status.as_ref().and_then(finished).map(|(c, _)| c.to_owned()).unwrap_or_default();
                events.push((EventType::Normal, "SawCompletedJob", format!("Saw completed job: {name}, condition: {outcome}")));
            }
        }
        if let Some(last) = done.iter().filter(|j| j.status.as_ref().and_then(finished).is_some_and(|(c, _)| c == "Complete")).map(finished_at).max()
            && status.last_successful_time.as_ref().is_none_or(|t| t.0 < last)
        {
            status.last_successful_time = Some(Time(last));
        }
        done.sort_by_key(finished_at);
        for (condition, limit) in [("Complete", spec.successful_jobs_history_limit.unwrap_or(3)), ("Failed", spec.failed_jobs_history_limit.unwrap_or(1))] {
            let of_kind: Vec<&Job> = done.iter().filter(|j| j.status.as_ref().and_then(finished).is_some_and(|(c, _)| c == condition)).collect();
            let excess = of_kind.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
            for job in of_kind.into_iter().take(excess) {
                batch.push(Op::Delete { key: driftless_store::key_of(job), uid: job.metadata.uid.clone() });
                events.push((EventType::Normal, "SuccessfulDelete", format!("Deleted job {}", job.metadata.name.clone().unwrap_or_default())));
            }
        }
        let mut running: Vec<&Job> = active.iter().collect();

        // The most recent time the schedule fired that has not run yet.
        let created = cron.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
        let mut earliest = status.last_schedule_time.as_ref().map_or(created, |t| t.0);
        if let Some(deadline) = spec.starting_deadline_seconds {
            earliest = earliest.max(Timestamp::from_second(now.as_second().saturating_sub(deadline)).unwrap_or(earliest));
        }
        let due = schedule.last_at_or_before(now).filter(|t| *t > earliest);
        let next = schedule.next_after(now);
        let mut new_job = None;
        if let (Some(scheduled), false) = (due, spec.suspend == Some(true)) {
            let missed =
                std::iter::successors(schedule.next_after(earliest), |t| schedule.next_after(*t)).take_while(|t| *t <= now).take(TOO_MANY_MISSED + 1).count();
            if missed > TOO_MANY_MISSED {
                events.push((
                    EventType::Warning,
                    "TooManyMissedTimes",
                    "too many missed start times: more than 100. Set or decrease .spec.startingDeadlineSeconds or check clock skew".to_owned(),
                ));
            }
            let name = job_name(&key.name, scheduled);
            let exists = store.get(&Key::new(Kind::Job, key.namespace.clone(), name.clone())).is_some();
            let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
            if exists {
                // Made already (by a daemon that then stopped): record it.
                status.last_schedule_time = Some(Time(scheduled));
            } else if policy == "Forbid" && !running.is_empty() {
                events.push((
                    EventType::Normal,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid".to_owned(),
                ));
            } else {
                if policy == "Replace" {
                    for job in running.drain(..) {
                        batch.push(Op::Delete { key: driftless_store::key_of(job), uid: job.metadata.uid.clone() });
                        events.push((EventType::Normal, "SuccessfulDelete", format!("Deleted job {}", job.metadata.name.clone().unwrap_or_default())));
                    }
                }
                let template = spec.job_template.clone();
                let meta = template.metadata.unwrap_or_default();
                let mut annotations = meta.annotations.unwrap_or_default();
                annotations.insert(SCHEDULED_TIMESTAMP.to_owned(), crate::context::rfc3339(scheduled));
                let job = Job {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(key.namespace.clone()),
                        labels: meta.labels,
                        annotations: Some(annotations),
                        owner_references: Some(vec![owner::reference(Kind::CronJob, &cron.metadata)]),
                        ..Default::default()
                    },
                    spec: template.spec,
                    status: None,
                };
                batch.push(Op::Create(to_value(&job)));
                status.last_schedule_time = Some(Time(scheduled));
                events.push((EventType::Normal, "SuccessfulCreate", format!("Created job {name}")));
                new_job = Some(name);
            }
        }

        // The Job and the time it records go in one write.
        let mut refs: Vec<ObjectReference> = running.iter().map(|j| reference(j)).collect();
        if let Some(name) = &new_job {
            refs.push(ObjectReference {
                api_version: Some(Kind::Job.api_version().to_owned()),
                kind: Some(Kind::Job.name().to_owned()),
                name: Some(name.clone()),
                namespace: Some(key.namespace.clone()),
                ..Default::default()
            });
        }
        status.active = (!refs.is_empty()).then_some(refs);
        let status = serde_json::to_value(&status).unwrap_or_default();
        if value.get("status") != Some(&status) {
            batch.push(Op::Status { key: key.clone(), uid: Some(uid), status });
        }
        if !batch.is_empty() {
            store.apply(batch)?;
        }
        for (kind, reason, message) in &events {
            self.ctx.events.record(&value, *kind, reason, message);
        }
        if let Some(name) = &new_job {
            tracing::info!(cronjob = %key, job = %name, "scheduled");
        }
        // Wake at the next time the schedule fires (and a little after, so
        // the clock has passed it).
        Ok(next.map_or(Action::AwaitChange, |t| {
            let wait = t.as_millisecond().saturating_sub(now.as_millisecond()).max(0);
            Action::Requeue(Duration::from_millis(u64::try_from(wait).unwrap_or(0) + 50))
        }))
    }
}

#[cfg(test)]
mod tests;
