//! The HorizontalPodAutoscaler end to end: pods burning CPU scale their
//! Deployment up, idle ones let it come back down after the window, the
//! count never leaves [min, max], and git's declared count does not fight
//! the HPA's until the HPA is removed.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::Cluster;

/// Pods that burn a core for their first 12 seconds, then sleep: load
/// that starts with each pod and ends by itself.
fn web(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: busybox:1.35
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'end=$(($(date +%s)+12)); while [ $(date +%s) -lt $end ]; do :; done; exec sleep 3600']
        resources: {{requests: {{cpu: 100m}}}}
"
    )
}

/// The HPA of the walkthrough in Kubernetes' documentation (50 % CPU),
/// at most 2 pods, and a 3 s scale-down window so the test need not wait
/// the default 5 minutes.
const HPA: &str = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 3}
";

fn replicas(cluster: &Cluster) -> i64 {
    cluster.get("/apis/apps/v1/namespaces/default/deployments/web")["spec"]["replicas"].as_i64().unwrap_or(-1)
}

fn applied(cluster: &Cluster) -> String {
    cluster.get("/driftless/v1/status").pointer("/sync/applied/id").and_then(Value::as_str).unwrap_or_default().to_owned()
}

#[test]
fn an_hpa_scales_on_cpu_and_owns_replicas_without_fighting_git() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1)), ("apps/hpa.yaml", HPA)]);
    cluster.start_with(&["--metric-resolution", "1s", "--horizontal-pod-autoscaler-sync-period", "1s"]);
    cluster.wait_for("the first sync", Duration::from_secs(20), || cluster.try_get("/apis/apps/v1/namespaces/default/deployments/web").ok());

    // Up: the first pod burns a core against a 100m request (1000 %).
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while replicas(&cluster) < 2 {
        seen.insert(replicas(&cluster));
        assert!(Instant::now() < deadline, "no scale up; {}", cluster.diagnose());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Right after the scale, an evaluation may find no metrics yet (the
    // new pod has none and the window restarted), as upstream's does for
    // unready pods; the condition is read until it settles.
    let active = |hpa: &Value| {
        let conditions = hpa.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        conditions.iter().find(|c| c["type"] == "ScalingActive").map(|c| c["reason"].as_str().unwrap_or_default().to_owned())
    };
    let path = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web";
    cluster.wait_for("the HPA's metrics valid after the scale", Duration::from_secs(30), || {
        (active(&cluster.get(path)).as_deref() == Some("ValidMetricFound")).then_some(())
    });
    let table = cluster.cli_ok(&["get", "hpa"]);
    let row = table.lines().find(|l| l.starts_with("web ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("Deployment/web") && row.contains("cpu: ") && row.contains("%/50%"), "{table}");
    let events = cluster.cli_ok(&["describe", "hpa", "web"]);
    assert!(
        events.contains("SuccessfulRescale") && events.contains("New size: 2; reason: cpu resource utilization (percentage of request) above target"),
        "{events}"
    );

    // Down: the load ends by itself; after the 3 s window the HPA goes back
    // to its minimum, never above its maximum on the way.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = replicas(&cluster);
        seen.insert(now);
        if now == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no scale down; {}", cluster.diagnose());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(seen.iter().all(|r| (1..=2).contains(r)), "the count left [1, 2]: {seen:?}");
    let described = cluster.cli_ok(&["describe", "hpa", "web"]);
    assert!(described.contains("New size: 1; reason: All metrics below target"), "{described}");
    // describe as kubectl lays it out: each metric against its target, the
    // bounds, the behavior, the pods, the conditions with their messages.
    for expected in [
        "Reference:",
        "Deployment/web",
        "resource cpu on pods  (as a percentage of request):",
        "/ 50%",
        "Min replicas:",
        "Max replicas:",
        "Behavior:\n  Scale Down:\n    Stabilization Window: 3 seconds",
        "Deployment pods:",
        "ScalingActive",
        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
    ] {
        assert!(described.contains(expected), "{expected:?} in {described}");
    }
    // Each rescale is in the history, as a status change beside the syncs.
    let history = cluster.cli_ok(&["history"]);
    assert!(history.contains("autoscaled") && history.contains("Deployment/web 1 → 2") && history.contains("Deployment/web 2 → 1"), "{history}");

    // Git declares 5: the HPA owns the count, so nothing changes.
    let commit = cluster.commit(&[("apps/web.yaml", &web(5))], "web: 5 replicas");
    cluster.wait_for("the commit to be applied", Duration::from_secs(20), || (applied(&cluster) == commit).then_some(()));
    assert_eq!(replicas(&cluster), 1, "a commit of the declared count must not move an HPA's target");
    let planned = cluster.cli_ok(&["plan", "--repo", cluster.repo.to_str().unwrap(), "--path", "apps", "--from", "HEAD~1"]);
    assert!(planned.contains("owned by HPA web"), "{planned}");

    // A template change (still declaring 5) rolls out at the HPA's count:
    // a new ReplicaSet, and the count never jumps to git's 5.
    let changed = web(5).replace("        resources:", "        env: [{name: VERSION, value: \"2\"}]\n        resources:");
    let commit = cluster.commit(&[("apps/web.yaml", &changed)], "web: version 2");
    cluster.wait_for("the rollout at the HPA's count", Duration::from_secs(60), || {
        let now = replicas(&cluster);
        assert!((1..=2).contains(&now), "the count left [1, 2] during the rollout: {now}");
        let sets = cluster.list("/apis/apps/v1/namespaces/default/replicasets");
        let rolled = applied(&cluster) == commit
            && sets.iter().any(|rs| rs.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0) >= 1 && rs.to_string().contains("VERSION"));
        rolled.then_some(())
    });

    // The HPA removed: git's count is the count again.
    cluster.git(&["rm", "-q", "apps/hpa.yaml"]);
    cluster.git(&["commit", "-q", "-m", "no autoscaling"]);
    cluster.wait_for("git's count", Duration::from_secs(20), || (replicas(&cluster) == 5).then_some(()));
}

/// Pods that hold 30 MiB in memory (a tmpfs file, charged to their
/// cgroup) against a 20 MiB request.
const HOLDER: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: holder}
spec:
  replicas: 1
  selector: {matchLabels: {app: holder}}
  template:
    metadata: {labels: {app: holder}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: busybox:1.35
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'head -c 31457280 /dev/zero > /dev/shm/held; exec sleep 3600']
        resources: {requests: {memory: 20Mi}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: holder}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: holder}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: ContainerResource
    containerResource:
      name: memory
      container: app
      target: {type: Utilization, averageUtilization: 50}
";

#[test]
fn a_container_memory_target_scales_on_its_working_set() {
    let mut cluster = Cluster::new(&[("apps/holder.yaml", HOLDER)]);
    cluster.start_with(&["--metric-resolution", "1s", "--horizontal-pod-autoscaler-sync-period", "1s"]);
    let path = "/apis/apps/v1/namespaces/default/deployments/holder";
    cluster.wait_for("the first sync", Duration::from_secs(20), || cluster.try_get(path).ok());
    // 30 MiB held against 20 MiB requested: 150 % of a 50 % target.
    cluster.wait_for("a scale up on memory", Duration::from_secs(60), || (cluster.get(path)["spec"]["replicas"] == 2).then_some(()));
    // The HPA writes the scale, then its own status (as upstream's does):
    // the status is read until it has caught up.
    let hpa_path = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/holder";
    let utilization = |hpa: &Value| hpa.pointer("/status/currentMetrics/0/containerResource/current/averageUtilization").and_then(Value::as_i64);
    let hpa = cluster.wait_for("the HPA's status after the scale", Duration::from_secs(30), || {
        let hpa = cluster.get(hpa_path);
        utilization(&hpa).is_some().then_some(hpa)
    });
    let current = utilization(&hpa).unwrap_or_else(|| panic!("{hpa}"));
    assert!(current >= 140, "30 MiB of 20 MiB requested: {hpa}");
    let described = cluster.cli_ok(&["describe", "hpa", "holder"]);
    assert!(described.contains("New size: 2; reason: memory container resource utilization (percentage of request) above target"), "{described}");
    assert!(described.contains("resource memory of container \"app\" on pods  (as a percentage of request):"), "{described}");
    let top = cluster.cli_ok(&["top", "pods", "--containers", "-l", "app=holder"]);
    let mebibytes: Vec<u64> = top.lines().skip(1).filter_map(|l| l.split_whitespace().nth(3)?.strip_suffix("Mi")?.parse().ok()).collect();
    assert!(!mebibytes.is_empty() && mebibytes.iter().any(|m| *m >= 29), "{top}");
}
