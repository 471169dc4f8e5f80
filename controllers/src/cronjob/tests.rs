//! Tests of the CronJob controller on the simulated cluster under its
//! manual clock (which starts on a minute, 2027-01-15T08:00:00Z): one Job
//! per scheduled time however often it reconciles, concurrency policies,
//! the starting deadline, time zones, suspend and the history limits.

use driftless_model::Kind;
use driftless_model::k8s_openapi::api::batch::v1::{CronJob, Job};
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::{Batch, Op, StoreExt, key_of};
use serde_json::json;

use crate::testing::Sim;

fn cron(schedule: &str, extra: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: CronJob
metadata: {{name: hello, namespace: default, creationTimestamp: '2027-01-15T08:00:00Z'}}
spec:
  schedule: '{schedule}'
{extra}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{{name: hello, image: busybox:1.35, command: [sh, -c, 'date; echo Hello from the Kubernetes cluster']}}]
"
    )
}

fn jobs(sim: &Sim) -> Vec<String> {
    let mut names: Vec<String> = sim.store().api::<Job>().list(Some("default")).into_iter().filter_map(|j| j.metadata.name).collect();
    names.sort();
    names
}

/// Ends every running pod of the Jobs successfully.
fn succeed_all(sim: &Sim) {
    for pod in sim.store().api::<Pod>().list(None).into_iter().filter(crate::pods::is_active) {
        let status = json!({"phase": "Succeeded", "containerStatuses": [{"name": "hello", "ready": false, "restartCount": 0, "image": "busybox:1.35", "imageID": "",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        sim.store().apply(Batch::one(Op::Status { key: key_of(&pod), uid: pod.metadata.uid.clone(), status })).unwrap();
    }
}

const MINUTE: i64 = 60;
/// Minutes since the epoch of the clock's start.
const START: i64 = 1_800_000_000 / 60;

#[tokio::test]
async fn each_scheduled_time_runs_once_however_often_it_is_looked_at() {
    let sim = Sim::new();
    sim.apply_yaml(&cron("* * * * *", ""));
    sim.settle().await;
    assert!(jobs(&sim).is_empty(), "nothing is due at creation");
    sim.advance(MINUTE);
    // Many reconciles (and, each step, a new controller, as after a
    // restart) in the due minute: one Job.
    for _ in 0..5 {
        sim.settle().await;
        sim.advance(5);
    }
    assert_eq!(jobs(&sim), [format!("hello-{}", START + 1)]);
    let job = sim.store().api::<Job>().get("default", &format!("hello-{}", START + 1)).unwrap();
    assert_eq!(job.metadata.annotations.unwrap()[super::SCHEDULED_TIMESTAMP], "2027-01-15T08:01:00Z");
    let status = sim.store().api::<CronJob>().get("default", "hello").unwrap().status.unwrap();
    assert_eq!(status.last_schedule_time.unwrap().0.to_string(), "2027-01-15T08:01:00Z");
    assert_eq!(status.active.unwrap().len(), 1);
    sim.advance(MINUTE);
    sim.settle().await;
    assert_eq!(jobs(&sim), [format!("hello-{}", START + 1), format!("hello-{}", START + 2)]);
}

#[tokio::test]
async fn forbid_skips_while_one_runs_and_replace_replaces_it() {
    let sim = Sim::new();
    sim.apply_yaml(&cron("* * * * *", "  concurrencyPolicy: Forbid"));
    sim.advance(MINUTE);
    sim.settle().await;
    sim.advance(MINUTE);
    // Each look at a skipped time records JobAlreadyActive again (as in
    // Kubernetes), so this does not settle: step a few times instead.
    for _ in 0..5 {
        sim.step().await;
    }
    assert_eq!(jobs(&sim), [format!("hello-{}", START + 1)], "the first still runs");

    sim.apply_yaml(&cron("* * * * *", "  concurrencyPolicy: Replace"));
    sim.advance(MINUTE);
    sim.settle().await;
    assert_eq!(jobs(&sim), [format!("hello-{}", START + 3)], "the running one was replaced");
}

#[tokio::test]
async fn a_time_missed_by_more_than_the_starting_deadline_is_skipped() {
    let sim = Sim::new();
    sim.apply_yaml(&cron("*/5 * * * *", "  startingDeadlineSeconds: 10"));
    sim.advance(5 * MINUTE + 30);
    sim.settle().await;
    assert!(jobs(&sim).is_empty(), "08:05 was 30 s ago, the deadline is 10 s");
    sim.advance(5 * MINUTE - 30 + 5);
    sim.settle().await;
    assert_eq!(jobs(&sim), [format!("hello-{}", START + 10)]);
}

#[tokio::test]
async fn the_schedule_is_read_in_its_time_zone_and_suspend_holds_it() {
    let sim = Sim::new();
    // 04:00 in New York is 09:00 UTC in January.
    sim.apply_yaml(&cron("0 4 * * *", "  timeZone: America/New_York\n  suspend: true"));
    sim.advance(60 * MINUTE);
    sim.settle().await;
    assert!(jobs(&sim).is_empty(), "suspended");
    sim.apply_yaml(&cron("0 4 * * *", "  timeZone: America/New_York"));
    sim.settle().await;
    assert_eq!(jobs(&sim), [format!("hello-{}", START + 60)]);
}

#[tokio::test]
async fn finished_jobs_are_kept_to_the_history_limit() {
    let sim = Sim::new();
    sim.apply_yaml(&cron("* * * * *", "  successfulJobsHistoryLimit: 1"));
    for minute in 1..=3 {
        sim.advance(MINUTE);
        sim.settle().await;
        succeed_all(&sim);
        sim.settle().await;
        assert!(jobs(&sim).contains(&format!("hello-{}", START + minute)));
    }
    assert_eq!(jobs(&sim), [format!("hello-{}", START + 3)]);
    let status = sim.store().api::<CronJob>().get("default", "hello").unwrap().status.unwrap();
    assert!(status.last_successful_time.is_some() && status.active.is_none());
    assert_eq!(sim.store().list(Kind::CronJob, None).0.len(), 1);
}
