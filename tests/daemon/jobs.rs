//! Jobs through `driftless up` on real containers: pods run to completion
//! with completions and parallelism, the back-off limit, the pod failure
//! policy and the deadline end a Job as Kubernetes ends it, and a Job its
//! TTL removed is not run again by the next commit, while a changed
//! template is a new run that the plan calls a replace.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, name};

/// The Job of Kubernetes' "Running an example Job" page, on busybox.
const PI: &str = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      containers:
      - name: pi
        image: busybox:1.35
        command: [\"sh\", \"-c\", \"echo $((6 * 7))\"]
      restartPolicy: Never
  backoffLimit: 4
";

/// Exits 3 every time; no retry allowed.
const FAILS: &str = "\
apiVersion: batch/v1
kind: Job
metadata: {name: fails}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox:1.35, command: [sh, -c, 'exit 3']}]
";

/// The pod failure policy example: exit code 42 fails the Job at once.
const POLICY: &str = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: job-pod-failure-policy-example
spec:
  completions: 12
  parallelism: 3
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox:1.35
        command: [\"sh\", \"-c\", \"echo 'Hello world!' && sleep 1 && exit 42\"]
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes:
        containerName: main      # optional
        operator: In             # one of: In, NotIn
        values: [42]
";

/// Runs longer than its deadline.
const SLOW: &str = "\
apiVersion: batch/v1
kind: Job
metadata: {name: slow}
spec:
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: OnFailure
      terminationGracePeriodSeconds: 1
      containers: [{name: main, image: busybox:1.35, command: [sleep, '600']}]
";

/// A Job removed `ttl` seconds after it finishes (kept, without one).
fn once(message: &str, ttl: Option<u32>) -> String {
    let ttl = ttl.map(|t| format!("  ttlSecondsAfterFinished: {t}\n")).unwrap_or_default();
    format!(
        "apiVersion: batch/v1
kind: Job
metadata: {{name: once}}
spec:
{ttl}  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: busybox:1.35, command: [echo, '{message}']}}]
"
    )
}

fn job(cluster: &Cluster, name: &str) -> Option<Value> {
    cluster.try_get(&format!("/apis/batch/v1/namespaces/default/jobs/{name}")).ok()
}

/// The true `Complete` or `Failed` condition's type and reason.
fn ended(job: &Value) -> Option<(String, String)> {
    let conditions = job.pointer("/status/conditions")?.as_array()?;
    let c = conditions.iter().find(|c| c["status"] == "True" && (c["type"] == "Complete" || c["type"] == "Failed"))?;
    Some((c["type"].as_str()?.to_owned(), c["reason"].as_str()?.to_owned()))
}

fn wait_ended(cluster: &Cluster, name: &str, timeout: Duration) -> (String, String) {
    cluster.wait_for(&format!("Job {name} to end"), timeout, || ended(&job(cluster, name)?))
}

fn pods_of(cluster: &Cluster, job: &str) -> Vec<Value> {
    cluster.pods().into_iter().filter(|p| p.pointer("/metadata/labels/job-name").and_then(Value::as_str) == Some(job)).collect()
}

fn wait_applied(cluster: &Cluster, head: &str) -> String {
    cluster.wait_for("the commit to apply", Duration::from_secs(20), || {
        let ledger = cluster.git(&["log", "-1", "--format=%B", "refs/driftless/applied"]);
        (ledger.starts_with("applied") && ledger.contains(&format!("Source-Commit: {head}"))).then_some(ledger)
    })
}

#[test]
fn jobs_run_to_completion_end_as_kubernetes_ends_them_and_run_once_per_spec() {
    let files = [("apps/pi.yaml", PI), ("apps/fails.yaml", FAILS), ("apps/policy.yaml", POLICY), ("apps/slow.yaml", SLOW)];
    let mut cluster = Cluster::new(&files);
    let validated = cluster.cli(&["validate", cluster.repo.join("apps").to_str().unwrap()]);
    assert!(validated.status.success(), "{}", String::from_utf8_lossy(&validated.stdout));
    cluster.start();

    // Three completions, never more than two pods at once, real output.
    assert_eq!(wait_ended(&cluster, "pi", Duration::from_secs(60)), ("Complete".to_owned(), "Completed".to_owned()));
    let pi = job(&cluster, "pi").unwrap();
    assert_eq!((pi["status"]["succeeded"].as_i64(), pi["status"]["active"].as_i64()), (Some(3), Some(0)));
    let pods = pods_of(&cluster, "pi");
    assert_eq!(pods.len(), 3, "one pod per completion");
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Succeeded"));
    assert_eq!(cluster.cli_ok(&["logs", &name(&pods[0])]).trim(), "42");
    let table = cluster.cli_ok(&["get", "jobs"]);
    let row = table.lines().find(|l| l.starts_with("pi ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.split_whitespace().collect::<Vec<_>>()[1..3] == ["Complete", "3/3"], "{table}");

    // kubectl's output forms: a JSONPath template, custom columns, sorting.
    let mut names: Vec<String> = pods.iter().map(name).collect();
    names.sort();
    let listed =
        cluster.cli_ok(&["get", "pods", "-l", "job-name=pi", "--sort-by=.metadata.name", "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), names);
    let complete = cluster.cli_ok(&["get", "job", "pi", "-o", "jsonpath={.status.conditions[?(@.type==\"Complete\")].status}"]);
    assert_eq!(complete, "True");
    let columns = cluster.cli_ok(&[
        "get",
        "jobs",
        "pi",
        "-o",
        "custom-columns=NAME:.metadata.name,SUCCEEDED:.status.succeeded,IMAGES:.spec.template.spec.containers[*].image",
    ]);
    assert_eq!(
        columns.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).collect::<Vec<_>>(),
        [["NAME", "SUCCEEDED", "IMAGES"], ["pi", "3", "busybox:1.35"]]
    );

    // backoffLimit 0: one failure ends it.
    assert_eq!(wait_ended(&cluster, "fails", Duration::from_secs(30)), ("Failed".to_owned(), "BackoffLimitExceeded".to_owned()));
    assert_eq!(pods_of(&cluster, "fails").len(), 1);

    // Exit code 42 matches the FailJob rule: no retries despite backoffLimit 6.
    let name = "job-pod-failure-policy-example";
    assert_eq!(wait_ended(&cluster, name, Duration::from_secs(30)), ("Failed".to_owned(), "PodFailurePolicy".to_owned()));
    let message = job(&cluster, name).unwrap()["status"]["conditions"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("failed with exit code 42 matching FailJob rule at index 0"), "{message}");
    assert!(pods_of(&cluster, name).len() <= 3, "no pod after the first failure's verdict");

    // The deadline stops the running pod.
    assert_eq!(wait_ended(&cluster, "slow", Duration::from_secs(20)), ("Failed".to_owned(), "DeadlineExceeded".to_owned()));
    cluster.wait_for("the slow pod to go", Duration::from_secs(20), || pods_of(&cluster, "slow").is_empty().then_some(()));
    let events = cluster.cli_ok(&["get", "events"]);
    assert!(events.contains("DeadlineExceeded") && events.contains("Job was active longer than specified deadline"), "{events}");

    // A Job with a TTL runs, is removed, and is not run again by the next
    // commit; a changed template runs again, as the plan says.
    let head = cluster.commit(&[("apps/once.yaml", &once("first", Some(2)))], "run once");
    wait_applied(&cluster, &head);
    let first = cluster.wait_for("the first run", Duration::from_secs(30), || job(&cluster, "once").filter(|j| ended(j).is_some()));
    cluster.wait_for("the TTL to remove it", Duration::from_secs(20), || job(&cluster, "once").is_none().then_some(()));
    cluster.wait_for("its pod to go", Duration::from_secs(20), || pods_of(&cluster, "once").is_empty().then_some(()));
    let head = cluster.commit(&[("apps/pi.yaml", &PI.replace("backoffLimit: 4", "backoffLimit: 5"))], "unrelated");
    wait_applied(&cluster, &head);
    assert!(job(&cluster, "once").is_none(), "a finished run is not run again");
    let history = cluster.cli_ok(&["history"]);
    assert!(history.contains("Job default/once: Complete (Completed) at "), "the run is shown with the ledger: {history}");
    let repo = cluster.repo.to_str().unwrap();

    let head = cluster.commit(&[("apps/once.yaml", &once("second", None))], "run again");
    let plan = cluster.cli_ok(&["plan", "--repo", repo, "--from", "HEAD~1", "--to", "HEAD", "--path", "apps", "--color", "never"]);
    let line = plan.lines().find(|l| l.contains("Job default/once")).unwrap_or_else(|| panic!("{plan}"));
    assert!(line.contains("replace") && line.contains("spec.template"), "{line}");
    let ledger = wait_applied(&cluster, &head);
    assert!(ledger.contains("Action: replace Job default/once"), "{ledger}");
    let second = cluster.wait_for("the second run", Duration::from_secs(30), || job(&cluster, "once").filter(|j| ended(j).is_some()));
    assert_ne!(first["metadata"]["uid"], second["metadata"]["uid"]);
    let pod = pods_of(&cluster, "once").into_iter().next().expect("the second run's pod");
    assert_eq!(cluster.cli_ok(&["logs", &crate::cluster::name(&pod)]).trim(), "second");

    // A finished pod's log outlives the daemon that ran it: the next one
    // never reruns the pod, yet serves what it wrote.
    cluster.kill9();
    cluster.start();
    assert_eq!(cluster.cli_ok(&["logs", &crate::cluster::name(&pod)]).trim(), "second");
    assert_eq!(cluster.cli_ok(&["logs", &crate::cluster::name(&pods[0])]).trim(), "42");
    let kept = pods_of(&cluster, "once").into_iter().next().expect("the finished pod is kept");
    assert_eq!(kept["status"]["phase"], "Succeeded");
}
