//! Tests of the Job controller on the simulated cluster: completions and
//! parallelism, Indexed Jobs, the back-off limit with its delays, the
//! deadline, the pod failure policy, suspend, and removal after the TTL
//! with a record of the run.

use driftless_model::Kind;
use driftless_model::k8s_openapi::api::batch::v1::Job;
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::{Batch, Op, StoreExt, key_of};
use serde_json::json;

use super::decide::{backoff, compress};
use crate::testing::Sim;

fn job(extra: &str, restart_policy: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata: {{name: pi, namespace: default}}
spec:
{extra}
  template:
    spec:
      restartPolicy: {restart_policy}
      containers: [{{name: pi, image: 'perl:5.34', command: [perl, '-Mbignum=bpi', '-wle', 'print bpi(20)']}}]
"
    )
}

fn active(sim: &Sim) -> Vec<Pod> {
    sim.pods().into_iter().filter(crate::pods::is_active).collect()
}

/// Ends a pod's only container with `code`, as the kubelet reports it.
fn finish(sim: &Sim, pod: &Pod, code: i32) {
    let now = crate::context::rfc3339(sim.ctx.now());
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let status = json!({"phase": phase, "containerStatuses": [{"name": "pi", "ready": false, "restartCount": 0, "image": "perl:5.34", "imageID": "",
        "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "finishedAt": now}}}]});
    sim.store().apply(Batch::one(Op::Status { key: key_of(pod), uid: pod.metadata.uid.clone(), status })).unwrap();
}

fn the_job(sim: &Sim) -> Job {
    sim.store().api::<Job>().get("default", "pi").unwrap()
}

fn condition(job: &Job) -> Option<(String, String)> {
    job.status.as_ref()?.conditions.iter().flatten().find(|c| c.status == "True").map(|c| (c.type_.clone(), c.reason.clone().unwrap_or_default()))
}

#[tokio::test]
async fn runs_completions_with_at_most_parallelism_pods_and_labels_them() {
    let sim = Sim::new();
    sim.apply_yaml(&job("  completions: 3\n  parallelism: 2", "Never"));
    sim.settle().await;
    let running = active(&sim);
    assert_eq!(running.len(), 2);
    let labels = running[0].metadata.labels.clone().unwrap();
    assert_eq!(labels["job-name"], "pi");
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], the_job(&sim).metadata.uid.unwrap());
    assert!(running[0].metadata.name.as_ref().unwrap().starts_with("pi-"));

    for pod in &running {
        finish(&sim, pod, 0);
    }
    sim.settle().await;
    // Two done, one to go: one pod, not two.
    assert_eq!(active(&sim).len(), 1);
    assert_eq!(the_job(&sim).status.unwrap().succeeded, Some(2));
    finish(&sim, &active(&sim)[0], 0);
    sim.settle().await;
    let done = the_job(&sim);
    assert_eq!(condition(&done), Some(("Complete".into(), "Completed".into())));
    let status = done.status.unwrap();
    assert_eq!((status.succeeded, status.active), (Some(3), Some(0)));
    assert!(status.completion_time.is_some() && status.start_time.is_some());
    assert!(active(&sim).is_empty());
}

#[tokio::test]
async fn an_indexed_job_runs_each_index_once() {
    let sim = Sim::new();
    sim.apply_yaml(&job("  completions: 3\n  parallelism: 3\n  completionMode: Indexed", "Never"));
    sim.settle().await;
    let mut indexes: Vec<(i32, String)> = active(&sim)
        .iter()
        .map(|p| {
            let env = p.spec.as_ref().unwrap().containers[0].env.clone().unwrap();
            let value = env.iter().find(|e| e.name == "JOB_COMPLETION_INDEX").unwrap().value.clone().unwrap();
            (super::decide::index_of(p).unwrap(), value)
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, [(0, "0".into()), (1, "1".into()), (2, "2".into())]);
    let one = active(&sim).into_iter().find(|p| super::decide::index_of(p) == Some(1)).unwrap();
    assert_eq!(one.spec.as_ref().unwrap().hostname.as_deref(), Some("pi-1"));
    finish(&sim, &one, 0);
    sim.settle().await;
    assert_eq!(the_job(&sim).status.unwrap().completed_indexes.as_deref(), Some("1"));
    assert_eq!(active(&sim).len(), 2, "index 1 is not run again");
}

#[tokio::test]
async fn failures_back_off_and_the_limit_fails_the_job() {
    let sim = Sim::new();
    sim.apply_yaml(&job("  backoffLimit: 1", "Never"));
    sim.settle().await;
    finish(&sim, &active(&sim)[0], 1);
    sim.settle().await;
    // The first retry waits 10 s.
    assert!(active(&sim).is_empty());
    assert_eq!(the_job(&sim).status.unwrap().failed, Some(1));
    sim.advance(9);
    sim.settle().await;
    assert!(active(&sim).is_empty());
    sim.advance(1);
    sim.settle().await;
    assert_eq!(active(&sim).len(), 1);
    finish(&sim, &active(&sim)[0], 1);
    sim.settle().await;
    assert_eq!(condition(&the_job(&sim)), Some(("Failed".into(), "BackoffLimitExceeded".into())));
    assert_eq!(sim.pods().len(), 2, "no third pod");
    assert_eq!((backoff(1).as_secs(), backoff(2).as_secs(), backoff(6).as_secs(), backoff(60).as_secs()), (10, 20, 320, 360));
}

#[tokio::test]
async fn the_deadline_stops_running_pods() {
    let sim = Sim::new();
    sim.apply_yaml(&job("  activeDeadlineSeconds: 30", "OnFailure"));
    sim.settle().await;
    assert_eq!(active(&sim).len(), 1);
    sim.advance(30);
    sim.settle().await;
    assert_eq!(condition(&the_job(&sim)), Some(("Failed".into(), "DeadlineExceeded".into())));
    assert!(active(&sim).is_empty(), "the running pod is deleted");
}

#[tokio::test]
async fn the_pod_failure_policy_ignores_or_fails_at_once() {
    let policy = "  backoffLimit: 0
  podFailurePolicy:
    rules:
    - {action: Ignore, onExitCodes: {operator: In, values: [137]}}
    - {action: FailJob, onExitCodes: {containerName: pi, operator: In, values: [42]}}";
    let sim = Sim::new();
    sim.apply_yaml(&job(policy, "Never"));
    sim.settle().await;
    finish(&sim, &active(&sim)[0], 137);
    sim.settle().await;
    // Ignored: not counted (the limit is 0) and replaced without back-off.
    assert_eq!(active(&sim).len(), 1);
    assert_eq!(the_job(&sim).status.unwrap().failed, Some(0));
    finish(&sim, &active(&sim)[0], 42);
    sim.settle().await;
    let failed = the_job(&sim);
    assert_eq!(condition(&failed), Some(("Failed".into(), "PodFailurePolicy".into())));
    let message = failed.status.unwrap().conditions.unwrap()[0].message.clone().unwrap();
    assert!(message.contains("failed with exit code 42 matching FailJob rule at index 1"), "{message}");
}

#[tokio::test]
async fn suspending_stops_pods_and_resuming_starts_them() {
    let sim = Sim::new();
    sim.apply_yaml(&job("  suspend: true", "Never"));
    sim.settle().await;
    assert!(active(&sim).is_empty());
    assert_eq!(condition(&the_job(&sim)), Some(("Suspended".into(), "JobSuspended".into())));
    sim.apply_yaml(&job("  suspend: false", "Never"));
    sim.settle().await;
    assert_eq!(active(&sim).len(), 1);
    assert_eq!(condition(&the_job(&sim)), None);
}

#[tokio::test]
async fn a_finished_job_is_removed_after_its_ttl_with_a_record_of_the_run() {
    let sim = Sim::new();
    sim.apply_yaml(&job("  ttlSecondsAfterFinished: 100", "Never"));
    sim.settle().await;
    finish(&sim, &active(&sim)[0], 0);
    sim.settle().await;
    let uid = the_job(&sim).metadata.uid.unwrap();
    sim.advance(99);
    sim.settle().await;
    assert!(sim.store().api::<Job>().get("default", "pi").is_some());
    sim.advance(1);
    sim.settle().await;
    assert!(sim.store().api::<Job>().get("default", "pi").is_none());
    assert!(sim.pods().is_empty(), "its pods went with it");
    let record = sim.store().meta(&driftless_store::records::job_run("default", "pi")).expect("the run is remembered");
    assert_eq!(record["metadata"]["uid"], uid.as_str());
    assert_eq!(record["status"]["succeeded"], 1);
    assert!(sim.store().list(Kind::Job, None).0.is_empty());
}

#[test]
fn indexes_are_written_as_ranges() {
    let set = |v: &[i32]| v.iter().copied().collect();
    assert_eq!(compress(&set(&[0, 1, 2, 4, 6, 7])), "0-2,4,6-7");
    assert_eq!(compress(&set(&[])), "");
}
