//! Recovery: a pod deleted is replaced by its owner, a container killed
//! behind the daemon's back is restarted, and a daemon killed with SIGKILL
//! mid-rollout comes back to finish it without duplicate or orphaned
//! containers, and adopts what kept running without recording a start.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, is_ready, name, web};

const ROLLING: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}";

#[test]
fn deleted_pods_are_replaced_and_killed_containers_restart() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", ROLLING))]);
    cluster.start();
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let victim = name(&pods[0]);
    let out = cluster.cli_ok(&["delete", "pod", &victim]);
    assert!(out.contains("deleted"), "{out}");
    cluster.wait_for("a replacement", Duration::from_secs(30), || {
        let pods = cluster.pods();
        (pods.len() == 2 && pods.iter().all(is_ready) && !pods.iter().any(|p| name(p) == victim)).then_some(())
    });
    // Declared objects are deleted by a commit; a dry run makes none.
    let head = cluster.git(&["rev-parse", "HEAD"]);
    let dry = cluster.cli_ok(&["delete", "deployment", "web", "--dry-run"]);
    assert!(dry.contains("-kind: Deployment") || dry.contains("deleted"), "{dry}");
    assert_eq!(cluster.git(&["rev-parse", "HEAD"]), head, "a dry run commits nothing");

    // Kill the container's processes behind the daemon's back.
    let pod = cluster.pods().remove(0);
    let pid = pid_of(&cluster, &pod);
    nix_kill(pid);
    cluster.wait_for("the restart", Duration::from_secs(30), || {
        let p = cluster.get(&format!("/api/v1/namespaces/default/pods/{}", name(&pod)));
        let restarts = p.pointer("/status/containerStatuses/0/restartCount").and_then(Value::as_i64).unwrap_or(0);
        (restarts >= 1 && is_ready(&p)).then_some(())
    });
    let previous = cluster.cli(&["logs", &name(&pod), "--previous"]);
    assert!(previous.status.success(), "the previous instance's log is kept: {}", String::from_utf8_lossy(&previous.stderr));
}

/// The pid (on the host) of a pod's container init, from its helper.
fn pid_of(cluster: &Cluster, pod: &Value) -> i32 {
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap().to_owned();
    let helper = cluster.helpers().into_iter().find(|h| h.contains(&uid)).expect("the pod's helper runs");
    let pid = helper.split_whitespace().skip_while(|w| *w != "--pid").nth(1).unwrap();
    pid.parse().unwrap()
}

fn nix_kill(pid: i32) {
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_daemon_killed_mid_rollout_finishes_it_without_duplicates() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(4, "1", ROLLING))]);
    cluster.start();
    cluster.wait_ready("web-", 4, Duration::from_secs(30));
    cluster.commit(&[("apps/web.yaml", &web(4, "2", ROLLING))], "web v2");
    // Kill it as soon as the rollout has started.
    cluster
        .wait_for("the rollout to start", Duration::from_secs(20), || (cluster.list("/apis/apps/v1/namespaces/default/replicasets").len() == 2).then_some(()));
    cluster.kill9();
    cluster.start();
    cluster.wait_for("the rollout to finish", Duration::from_secs(90), || {
        let pods = cluster.pods();
        let done = pods.len() == 4
            && pods.iter().all(|p| is_ready(p) && p.pointer("/spec/containers/0/command/2").and_then(Value::as_str).is_some_and(|c| c.contains("version 2")));
        done.then_some(())
    });
    // Exactly one running container per pod, and none for pods that are gone.
    cluster.wait_for("old containers to be gone", Duration::from_secs(30), || {
        let pods = cluster.pods();
        let helpers = cluster.helpers();
        let each_once = pods.iter().all(|p| {
            let uid = p.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("-");
            helpers.iter().filter(|h| h.contains(uid)).count() == 1
        });
        (each_once && helpers.len() == pods.len()).then_some(())
    });
    let history = cluster.cli_ok(&["history"]);
    assert_eq!(history.lines().filter(|l| l.contains("web v2")).count(), 1, "the commit was applied once: {history}");
}

/// How many times the pod's events say `reason` (repeats raise a count).
fn event_count(cluster: &Cluster, pod: &str, reason: &str) -> i64 {
    let events = cluster.list("/api/v1/namespaces/default/events");
    events
        .iter()
        .filter(|e| e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(pod) && e["reason"] == reason)
        .map(|e| e["count"].as_i64().unwrap_or(1))
        .sum()
}

#[test]
fn a_restarted_daemon_adopts_running_containers_without_recording_a_start() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1, "1", ROLLING))]);
    cluster.start();
    let pod = name(&cluster.wait_ready("web-", 1, Duration::from_secs(30))[0]);
    let pid = pid_of(&cluster, &cluster.get(&format!("/api/v1/namespaces/default/pods/{pod}")));
    assert_eq!((event_count(&cluster, &pod, "Created"), event_count(&cluster, &pod, "Started")), (1, 1));

    cluster.kill9();
    cluster.start();
    // A second pod started after the restart: by the time it is ready, the
    // new daemon has adopted and reported the first one.
    cluster.commit(&[("apps/web.yaml", &web(2, "1", ROLLING))], "web: 2 replicas");
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let second = pods.iter().map(name).find(|n| *n != pod).unwrap();
    cluster.wait_for("the second pod's start to be recorded", Duration::from_secs(10), || (event_count(&cluster, &second, "Started") == 1).then_some(()));

    let now = cluster.get(&format!("/api/v1/namespaces/default/pods/{pod}"));
    assert_eq!(pid_of(&cluster, &now), pid, "the container kept running");
    assert_eq!(now.pointer("/status/containerStatuses/0/restartCount"), Some(&serde_json::json!(0)));
    assert_eq!((event_count(&cluster, &pod, "Created"), event_count(&cluster, &pod, "Started")), (1, 1), "adopting is not starting");
}
