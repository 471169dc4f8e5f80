//! The Job controller: runs a Job's pods to completion (completions,
//! parallelism, Indexed mode), counts failures against `backoffLimit` with
//! Kubernetes' back-off between pods, honours `activeDeadlineSeconds`, the
//! pod failure policy and `suspend`, sets the `Complete`/`Failed`
//! conditions, and removes a finished Job once `ttlSecondsAfterFinished`
//! has passed, leaving a record of the run so the
//! sync loop does not run the same spec again (`driftless_store::records`).
//!
//! The rules are `job/decide.rs`'s pure function; this module reads the
//! store, writes what it decided and records the events.

pub mod decide;

use std::sync::Arc;

use driftless_model::Kind;
use driftless_model::KindOf;
use driftless_model::k8s_openapi::api::batch::v1::Job;
use driftless_model::k8s_openapi::api::core::v1::{EnvVar, Pod};
use driftless_store::{Batch, Key, Op, to_value};

use crate::events::EventType;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError, owner, pods};

/// The labels the API server gives a Job's pods (both spellings).
const JOB_NAME_LABELS: [&str; 2] = ["batch.kubernetes.io/job-name", "job-name"];
const CONTROLLER_UID_LABELS: [&str; 2] = ["batch.kubernetes.io/controller-uid", "controller-uid"];

/// The Job controller.
pub struct JobController {
    ctx: Context,
}

impl JobController {
    /// A Job controller.
    pub fn new(ctx: Context) -> Arc<JobController> {
        Arc::new(JobController { ctx })
    }
}

impl Reconciler for JobController {
    fn name(&self) -> &'static str {
        "job"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::Job).owning(&[Kind::Pod])
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let Some(value) = self.ctx.store.get(key) else { return Ok(Action::AwaitChange) };
        if value.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Action::AwaitChange);
        }
        let job = Job::from_json(&value).map_err(|e| ReconcileError::Malformed(format!("Job: {e}")))?;
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let store = &*self.ctx.store;
        let now = self.ctx.now();
        let owned: Vec<Pod> = store
            .list(Kind::Pod, Some(&key.namespace))
            .0
            .iter()
            .filter(|p| owner::controller_of(p).is_some_and(|c| c.uid == uid))
            .filter_map(|p| Pod::from_json(p).ok())
            .collect();
        let decision = decide::decide(&job, &owned, now);

        if decision.expired {
            // Removed with a record of the run, in one write; the garbage
            // collector removes its pods.
            let mut batch = Batch::one(Op::Delete { key: key.clone(), uid: Some(uid) });
            // Only a Job git declared is remembered: one a controller made
            // (a CronJob's) is simply gone.
            let declared = job.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(driftless_model::annotations::SOURCE_COMMIT));
            if declared {
                batch.set_meta(driftless_store::records::job_run(&key.namespace, &key.name), (*value).clone());
            }
            store.apply(batch)?;
            tracing::info!(job = %key, "removed after ttlSecondsAfterFinished");
            return Ok(Action::AwaitChange);
        }

        let mut batch = Batch::new();
        let mut created = Vec::new();
        for index in &decision.create {
            let pod = pod_for(&job, &key.namespace, *index);
            created.push(pod.metadata.name.clone().unwrap_or_default());
            batch.push(Op::Create(to_value(&pod)));
        }
        let mut deleted = Vec::new();
        for pod in decision.delete.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
            deleted.push(pod.metadata.name.clone().unwrap_or_default());
            batch.push(pods::delete_op(pod, now));
        }
        let status = serde_json::to_value(&decision.status).unwrap_or_default();
        if value.get("status") != Some(&status) {
            batch.push(Op::Status { key: key.clone(), uid: Some(uid), status });
        }
        if !batch.is_empty() {
            store.apply(batch)?;
        }
        pods::record_created_and_deleted(&self.ctx.events, &value, &created, &deleted);
        match decision.suspended {
            Some(true) => self.ctx.events.record(&value, EventType::Normal, "Suspended", "Job suspended"),
            Some(false) => self.ctx.events.record(&value, EventType::Normal, "Resumed", "Job resumed"),
            None => {}
        }
        if let Some(end) = &decision.ended {
            let kind = if end.condition == "Complete" { EventType::Normal } else { EventType::Warning };
            self.ctx.events.record(&value, kind, end.reason, &end.message);
            tracing::info!(job = %key, condition = end.condition, reason = end.reason, "finished");
        }
        Ok(decision.requeue.map_or(Action::AwaitChange, Action::Requeue))
    }
}

/// A pod of `job`, as the Job controller makes one: the template with the
/// Job's labels, named `<job>-<random>` (`<job>-<index>-<random>` with the
/// index's annotation, label, hostname and `JOB_COMPLETION_INDEX` for an
/// Indexed Job).
fn pod_for(job: &Job, namespace: &str, index: Option<i32>) -> Pod {
    let spec = job.spec.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let prefix = index.map_or_else(|| name.clone(), |i| format!("{name}-{i}"));
    let mut pod = pods::from_template(&spec.template, namespace, &prefix, owner::reference(Kind::Job, &job.metadata));
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    for label in JOB_NAME_LABELS {
        labels.insert(label.to_owned(), name.clone());
    }
    for label in CONTROLLER_UID_LABELS {
        labels.insert(label.to_owned(), uid.clone());
    }
    if let Some(i) = index {
        labels.insert(decide::COMPLETION_INDEX.to_owned(), i.to_string());
        pod.metadata.annotations.get_or_insert_with(Default::default).insert(decide::COMPLETION_INDEX.to_owned(), i.to_string());
        if let Some(pod_spec) = &mut pod.spec {
            pod_spec.hostname.get_or_insert_with(|| format!("{name}-{i}"));
            for container in pod_spec.init_containers.iter_mut().flatten().chain(pod_spec.containers.iter_mut()) {
                let env = container.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                    env.push(EnvVar { name: "JOB_COMPLETION_INDEX".to_owned(), value: Some(i.to_string()), value_from: None });
                }
            }
        }
    }
    pod
}

#[cfg(test)]
mod tests;
