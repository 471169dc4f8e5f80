//! A CronJob through `driftless up` on real containers: Kubernetes'
//! "Running Automated Tasks with a CronJob" example runs at the next
//! minute, and a daemon killed with SIGKILL right after it made the Job
//! neither makes it again nor loses it when it comes back.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::Cluster;

/// The documentation's CronJob, on the project's busybox.
const HELLO: &str = "\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: \"* * * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.35
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
";

fn jobs(cluster: &Cluster) -> Vec<Value> {
    cluster.list("/apis/batch/v1/namespaces/default/jobs")
}

/// The minute a `hello-<minutes>` Job is named for.
fn minute(job: &Value) -> i64 {
    job["metadata"]["name"].as_str().and_then(|n| n.strip_prefix("hello-")).and_then(|m| m.parse().ok()).unwrap_or(-1)
}

#[test]
fn a_cronjob_runs_each_minute_once_across_a_daemon_kill() {
    let mut cluster = Cluster::new(&[("apps/hello.yaml", HELLO)]);
    let started = jiff::Timestamp::now();
    cluster.start();
    // The next minute comes within 60 s.
    let first = cluster.wait_for("the first Job", Duration::from_secs(75), || jobs(&cluster).into_iter().next());
    // Killed at the due minute, right after it wrote the Job.
    cluster.kill9();
    cluster.start();
    // The restarted daemon sees the Job finish (its pod runs to completion)
    // and records the success on the CronJob: it has looked at the schedule.
    let cron = cluster.wait_for("the success to be recorded", Duration::from_secs(45), || {
        let cron = cluster.get("/apis/batch/v1/namespaces/default/cronjobs/hello");
        cron.pointer("/status/lastSuccessfulTime").is_some().then_some(cron)
    });
    let all = jobs(&cluster);
    let minutes: Vec<i64> = all.iter().map(minute).collect();
    assert_eq!(minutes.iter().filter(|m| **m == minute(&first)).count(), 1, "the due minute ran once: {minutes:?}");
    // No Job for a minute before the first, none twice, none for a minute not yet come.
    let now = jiff::Timestamp::now().as_second() / 60;
    assert!(minutes.iter().all(|m| *m >= minute(&first) && *m <= now && *m > started.as_second() / 60), "{minutes:?}");
    let mut unique = minutes.clone();
    unique.dedup();
    assert_eq!(unique.len(), minutes.len());
    assert_eq!(cron["status"]["lastScheduleTime"].as_str().map(|t| t.parse::<jiff::Timestamp>().unwrap().as_second() / 60), minutes.iter().max().copied());

    // The run's output, and kubectl's columns.
    let pod = cluster
        .pods()
        .into_iter()
        .find(|p| p.pointer("/metadata/labels/job-name").and_then(Value::as_str) == first["metadata"]["name"].as_str())
        .expect("the first Job's pod");
    let logs = cluster.cli_ok(&["logs", &crate::cluster::name(&pod)]);
    assert!(logs.contains("Hello from the Kubernetes cluster"), "{logs}");
    let table = cluster.cli_ok(&["get", "cronjobs"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row[..8], ["hello", "*", "*", "*", "*", "*", "<none>", "False"], "{table}");
}
