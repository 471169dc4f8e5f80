//! Node metrics end to end: a pod burning a core and one sleeping, sampled
//! from their cgroups by the real daemon, read through `metrics.k8s.io` by
//! the real `kubectl top` and by `driftless top`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cluster::Cluster;

const PODS: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: burner, labels: {app: burn}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: burn
    image: busybox:1.35
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'while :; do :; done']
---
apiVersion: v1
kind: Pod
metadata: {name: sleeper, labels: {app: sleep}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: nap
    image: busybox:1.35
    imagePullPolicy: IfNotPresent
    command: [sleep, '3600']
";

fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl").arg("--kubeconfig").arg(kubeconfig).arg("--cache-dir").arg(cache).args(args).env_remove("KUBECONFIG").output().unwrap();
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The millicores in a `top` line's column `column` (`873m`).
fn millicores(line: &str, column: usize) -> Option<u64> {
    line.split_whitespace().nth(column)?.strip_suffix('m')?.parse().ok()
}

#[test]
fn top_shows_a_busy_pod_near_one_core_and_an_idle_one_near_none() {
    let port = crate::ports::free_port();
    let mut cluster = Cluster::new(&[("apps/pods.yaml", PODS)]);
    cluster.start_with(&["--listen", &format!("127.0.0.1:{port}"), "--metric-resolution", "1s"]);
    let kubeconfig = cluster.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.cli_ok(&["kubeconfig"])).unwrap();
    let cache = cluster.dir.path().join("kube-cache");

    // The burner has a whole core of this 2-core machine only when other
    // tests leave it one: wait for a window in which it had (0.7 to 1.0
    // cores, with a little for the window's edges).
    let table = cluster.wait_for("a window with the burner near one core", Duration::from_secs(90), || {
        let out = Command::new("kubectl").arg("--kubeconfig").arg(&kubeconfig).arg("--cache-dir").arg(&cache).args(["top", "pods"]).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let burner = text.lines().find(|l| l.starts_with("burner "))?;
        let sleeper = text.lines().find(|l| l.starts_with("sleeper "))?;
        (millicores(burner, 1).is_some_and(|m| (700..=1050).contains(&m)) && millicores(sleeper, 1).is_some_and(|m| m <= 20)).then_some(text)
    });
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "CPU(cores)", "MEMORY(bytes)"], "{table}");

    // A selector, and a line per container.
    let selected = kubectl(&kubeconfig, &cache, &["top", "pods", "-l", "app=sleep", "--no-headers"]);
    assert_eq!(selected.lines().map(|l| l.split_whitespace().next().unwrap()).collect::<Vec<_>>(), ["sleeper"], "{selected}");
    let containers = kubectl(&kubeconfig, &cache, &["top", "pod", "burner", "--containers", "--no-headers"]);
    assert_eq!(containers.split_whitespace().take(2).collect::<Vec<_>>(), ["burner", "burn"], "{containers}");

    // The node: busy by at least the burner, with its share.
    let nodes = kubectl(&kubeconfig, &cache, &["top", "nodes", "--no-headers"]);
    let node = nodes.lines().next().unwrap_or_default();
    assert!(millicores(node, 1).is_some_and(|m| m >= 500), "{nodes}");
    assert!(node.split_whitespace().nth(2).is_some_and(|p| p.ends_with('%')), "{nodes}");

    // driftless top says the same, in the same columns.
    let ours = cluster.cli_ok(&["top", "pods"]);
    let burner = ours.lines().find(|l| l.starts_with("burner ")).unwrap_or_else(|| panic!("{ours}"));
    assert!(millicores(burner, 1).is_some_and(|m| m >= 300), "{ours}");
    assert!(burner.split_whitespace().nth(2).is_some_and(|m| m.ends_with("Mi")), "{ours}");
    let ours = cluster.cli_ok(&["top", "pods", "--containers", "-l", "app=burn"]);
    assert_eq!(ours.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"], "{ours}");
    let ours = cluster.cli_ok(&["top", "nodes"]);
    assert_eq!(ours.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"], "{ours}");
}
