//! A Deployment from git: created, reachable at its pods' addresses,
//! scaled up and down by commits, listed as kubectl lists it.

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, http_get, name, pod_ip, web};

const ROLLING: &str = "{type: RollingUpdate}";

#[test]
fn a_deployment_runs_serves_and_scales_with_commits() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", ROLLING))]);
    cluster.start();
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));
    for pod in &pods {
        let body = cluster.wait_for("the pod to answer", Duration::from_secs(5), || http_get(&pod_ip(pod), 8080, "/"));
        assert_eq!(body.trim(), "version 1");
    }
    let table = cluster.cli_ok(&["get", "pods"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(table.lines().filter(|l| l.contains("1/1") && l.contains("Running")).count(), 2, "{table}");
    let deployments = cluster.cli_ok(&["get", "deploy"]);
    assert!(deployments.lines().nth(1).unwrap().split_whitespace().take(4).eq(["web", "2/2", "2", "2"]), "{deployments}");

    // Scale up: the daemon notices the commit by itself.
    let before: Vec<String> = pods.iter().map(name).collect();
    let committed = Instant::now();
    cluster.commit(&[("apps/web.yaml", &web(5, "1", ROLLING))], "web: 5 replicas");
    cluster.wait_for("the scale to be applied", Duration::from_secs(10), || {
        let d = cluster.get("/apis/apps/v1/namespaces/default/deployments/web");
        (d["spec"]["replicas"] == 5).then_some(())
    });
    eprintln!("commit to applied: {:?}", committed.elapsed());
    let pods = cluster.wait_ready("web-", 5, Duration::from_secs(30));
    let names: Vec<String> = pods.iter().map(name).collect();
    assert!(before.iter().all(|b| names.contains(b)), "scaling does not roll the pods that ran: {before:?} {names:?}");
    let sets = cluster.list("/apis/apps/v1/namespaces/default/replicasets");
    assert_eq!(sets.len(), 1, "a scale-only change makes no new ReplicaSet");

    // Scale down.
    cluster.commit(&[("apps/web.yaml", &web(1, "1", ROLLING))], "web: 1 replica");
    cluster.wait_ready("web-", 1, Duration::from_secs(30));
    cluster.wait_for("the others to be gone", Duration::from_secs(30), || (cluster.helpers().len() == 1).then_some(()));

    // The audit trail names every commit.
    let history = cluster.cli_ok(&["history"]);
    assert!(history.contains("web: 1 replica") && history.contains("web: 5 replicas") && history.contains("initial"), "{history}");
    let ledger = cluster.git(&["log", "--format=%s", "refs/driftless/applied"]);
    assert_eq!(ledger.lines().count(), 3, "{ledger}");
    let events = cluster.cli_ok(&["get", "events"]);
    assert!(events.contains("ScalingReplicaSet") && events.contains("Scheduled") && events.contains("Started"), "{events}");
}

/// A Deployment of `sleep` pods: `sleep` is its container's PID 1, which
/// the kernel shields from a SIGTERM it has no handler for, so each pod
/// takes its whole grace period to stop.
fn sleepers(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: sleepers}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: sleepers}}}}
  template:
    metadata: {{labels: {{app: sleepers}}}}
    spec:
      terminationGracePeriodSeconds: 60
      containers:
      - name: c
        image: busybox:1.35
        imagePullPolicy: IfNotPresent
        command: [sleep, '3600']
"
    )
}

/// Ten pods waiting out their grace period at once, more than the
/// daemon's blocking pool has threads, do not hold up another pod's
/// start: each stop waits on a thread of its own.
#[test]
fn pods_waiting_out_their_grace_period_do_not_hold_up_new_ones() {
    let mut cluster = Cluster::new(&[("apps/sleepers.yaml", &sleepers(10))]);
    cluster.start();
    cluster.wait_ready("sleepers-", 10, Duration::from_secs(60));

    let committed = Instant::now();
    cluster.commit(&[("apps/sleepers.yaml", &sleepers(0)), ("apps/web.yaml", &web(1, "1", ROLLING))], "sleepers down, web up");
    let web = cluster.wait_ready("web-", 1, Duration::from_secs(30));
    let took = committed.elapsed();
    let body = cluster.wait_for("the new pod to answer", Duration::from_secs(5), || http_get(&pod_ip(&web[0]), 8080, "/"));
    assert_eq!(body.trim(), "version 1");
    let terminating: Vec<String> =
        cluster.pods().iter().filter(|p| name(p).starts_with("sleepers-") && p.pointer("/metadata/deletionTimestamp").is_some()).map(name).collect();
    assert_eq!(terminating.len(), 10, "the old pods are still in their grace period: {terminating:?}");
    assert!(took < Duration::from_secs(30), "the new pod waited {took:?}, as if for the old pods' grace period");
    eprintln!("commit to the new pod Ready with ten pods stopping: {took:?}");
}
