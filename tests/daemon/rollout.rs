//! Rollouts driven by commits: RollingUpdate within maxSurge and
//! maxUnavailable at every step, Recreate never running both versions, and
//! a broken image that stalls (old pods serving), fails `rollout status`,
//! and is fixed by `git revert`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, http_get, is_ready, name, pod_ip, web};

fn version(pod: &Value) -> Option<u32> {
    let command = pod.pointer("/spec/containers/0/command/2")?.as_str()?;
    let image = pod.pointer("/spec/containers/0/image")?.as_str()?;
    if image != "busybox:1.35" {
        return Some(0);
    }
    command.split("version ").nth(1)?.split_whitespace().next()?.parse().ok()
}

fn active(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
}

#[test]
fn a_rolling_update_never_exceeds_surge_nor_unavailability() {
    let strategy = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(4, "1", strategy))]);
    cluster.start();
    cluster.wait_ready("web-", 4, Duration::from_secs(30));
    cluster.commit(&[("apps/web.yaml", &web(4, "2", strategy))], "web v2");
    let mut pods: BTreeMap<String, Value> = BTreeMap::new();
    let mut rolling = false;
    let mut steps = 0;
    cluster.watch("/api/v1/namespaces/default/pods", Duration::from_secs(90), |kind, pod| {
        if kind == "DELETED" {
            pods.remove(&name(pod));
        } else {
            pods.insert(name(pod), pod.clone());
        }
        rolling |= version(pod) == Some(2);
        if !rolling {
            return None;
        }
        steps += 1;
        let live: Vec<&Value> = pods.values().filter(|p| active(p)).collect();
        let ready = live.iter().filter(|p| is_ready(p)).count();
        assert!(live.len() <= 5, "more than replicas + maxSurge pods: {:?}", live.iter().map(|p| name(p)).collect::<Vec<_>>());
        assert!(ready >= 4, "fewer than replicas - maxUnavailable ready pods ({ready})");
        let done = pods.len() == 4 && pods.values().all(|p| version(p) == Some(2) && is_ready(p));
        done.then_some(())
    });
    assert!(steps > 4, "the rollout went through intermediate steps ({steps} events)");
    let out = cluster.cli(&["rollout", "status", "deployment/web", "--timeout", "30s"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("successfully rolled out"));
    let history = cluster.cli_ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains("initial") && history.contains("web v2"), "the change cause is the commit: {history}");
}

#[test]
fn recreate_stops_every_old_pod_before_starting_new_ones() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: Recreate}"))]);
    cluster.start();
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    cluster.commit(&[("apps/web.yaml", &web(2, "2", "{type: Recreate}"))], "web v2, recreated");
    let mut pods: BTreeMap<String, Value> = BTreeMap::new();
    cluster.watch("/api/v1/namespaces/default/pods", Duration::from_secs(60), |kind, pod| {
        if kind == "DELETED" {
            pods.remove(&name(pod));
        } else {
            pods.insert(name(pod), pod.clone());
        }
        let versions: std::collections::BTreeSet<Option<u32>> = pods.values().map(version).collect();
        assert!(versions.len() <= 1, "old and new pods exist together: {versions:?}");
        (pods.len() == 2 && pods.values().all(|p| version(p) == Some(2) && is_ready(p))).then_some(())
    });
}

#[test]
fn a_broken_rollout_stalls_with_old_pods_serving_and_git_revert_recovers() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(4, "1", "{type: RollingUpdate}"))]);
    cluster.start();
    cluster.wait_ready("web-", 4, Duration::from_secs(30));
    // Nothing listens on this loopback port: the pull fails at once.
    let broken = web(4, "1", "{type: RollingUpdate}").replace("image: busybox:1.35", "image: 127.0.0.1:5999/missing:1");
    cluster.commit(&[("apps/web.yaml", &broken)], "web on an image that does not exist");
    let out = cluster.cli(&["rollout", "status", "deployment/web", "--timeout", "60s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "rollout status fails: {stderr}");
    assert!(stderr.contains("exceeded its progress deadline"), "{stderr}");

    let pods = cluster.pods();
    let serving: Vec<&Value> = pods.iter().filter(|p| version(p) == Some(1) && is_ready(p)).collect();
    assert!(serving.len() >= 3, "replicas - maxUnavailable old pods keep serving: {}", serving.len());
    for pod in &serving {
        assert_eq!(http_get(&pod_ip(pod), 8080, "/").unwrap().trim(), "version 1");
    }
    let stuck = pods.iter().find(|p| version(p) == Some(0)).expect("a new pod exists");
    let reason = stuck.pointer("/status/containerStatuses/0/state/waiting/reason").and_then(Value::as_str).unwrap_or("");
    assert!(reason == "ErrImagePull" || reason == "ImagePullBackOff", "the new pod waits on its image: {reason}");
    let table = cluster.cli_ok(&["get", "pods"]);
    assert!(table.contains("ErrImagePull") || table.contains("ImagePullBackOff"), "{table}");

    cluster.git(&["revert", "--no-edit", "HEAD"]);
    let out = cluster.cli(&["rollout", "status", "deployment/web", "--timeout", "60s"]);
    assert!(
        out.status.success(),
        "the revert rolls back: {}\n{:#}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.get("/apis/apps/v1/namespaces/default/deployments/web")["status"],
        cluster.cli_ok(&["get", "pods", "-o", "wide"]),
        cluster.daemon_log()
    );
    cluster.wait_for("only old-version pods", Duration::from_secs(30), || {
        let pods = cluster.pods();
        (pods.len() == 4 && pods.iter().all(|p| version(p) == Some(1) && is_ready(p))).then_some(())
    });
    let history = cluster.cli_ok(&["history"]);
    assert!(history.contains("Revert \"web on an image that does not exist\""), "{history}");
}
