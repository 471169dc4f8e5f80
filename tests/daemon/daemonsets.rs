//! DaemonSets through `driftless up` on real containers: the documented
//! example runs one pod on the node, a node selector that matches no node
//! runs none, a template change rolls out with `rollout status` and
//! `rollout history` as kubectl shows them, and `get` takes the forms
//! kubectl users type (`ds/NAME`, several, `all`, `--show-labels`).

use std::time::Duration;

use serde_json::Value;

use crate::cluster::Cluster;

/// Kubernetes' DaemonSet page example, on busybox.
fn fluentd(message: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd-elasticsearch
  namespace: kube-system
  labels:
    k8s-app: fluentd-logging
spec:
  selector:
    matchLabels:
      name: fluentd-elasticsearch
  template:
    metadata:
      labels:
        name: fluentd-elasticsearch
    spec:
      tolerations:
      # these tolerations are to have the daemonset runnable on control plane nodes
      # remove them if your control plane nodes should not run pods
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      - key: node-role.kubernetes.io/master
        operator: Exists
        effect: NoSchedule
      containers:
      - name: fluentd-elasticsearch
        image: busybox:1.35
        command: [sh, -c, 'echo {message}; exec sleep 3600']
        resources:
          limits:
            memory: 200Mi
          requests:
            cpu: 100m
            memory: 200Mi
      terminationGracePeriodSeconds: 1
"
    )
}

/// Asks for a label no node has.
const NOWHERE: &str = "\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: gpu-agent}
spec:
  selector: {matchLabels: {app: gpu-agent}}
  template:
    metadata: {labels: {app: gpu-agent}}
    spec:
      nodeSelector: {accelerator: nvidia-tesla-p100}
      containers: [{name: agent, image: busybox:1.35, command: [sleep, '3600']}]
";

fn daemon_pods(cluster: &Cluster) -> Vec<Value> {
    cluster
        .list("/api/v1/namespaces/kube-system/pods")
        .into_iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none() && p["metadata"]["labels"]["name"] == "fluentd-elasticsearch")
        .collect()
}

#[test]
fn a_daemonset_runs_one_pod_per_eligible_node_and_rolls_out_changes() {
    let mut cluster = Cluster::new(&[("apps/fluentd.yaml", &fluentd("v1")), ("apps/nowhere.yaml", NOWHERE)]);
    cluster.start();
    let first = cluster.wait_for("the daemon pod", Duration::from_secs(30), || {
        let pods = daemon_pods(&cluster);
        (pods.len() == 1 && crate::cluster::is_ready(&pods[0])).then(|| pods[0].clone())
    });
    let node = cluster.list("/api/v1/nodes")[0]["metadata"]["name"].as_str().unwrap().to_owned();
    assert_eq!(first["spec"]["nodeName"].as_str(), Some(node.as_str()));
    let name = crate::cluster::name(&first);
    assert_eq!(cluster.cli_ok(&["logs", "-n", "kube-system", &name]).trim(), "v1");

    let table = cluster.cli_ok(&["get", "ds", "-A"]);
    let row =
        |name: &str| table.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{table}")).split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(row("fluentd-elasticsearch")[2..7], ["1", "1", "1", "1", "1"], "{table}");
    // No node has the label: nothing to run, nothing pending.
    assert_eq!(row("gpu-agent")[2..7], ["0", "0", "0", "0", "0"], "{table}");
    assert!(cluster.pods().iter().all(|p| p["metadata"]["labels"]["app"] != "gpu-agent"));

    // The forms kubectl users type: kind/name, several at once, `all`, labels.
    let one = cluster.cli_ok(&["get", "ds/fluentd-elasticsearch", "-n", "kube-system", "--show-labels"]);
    assert!(one.lines().next().unwrap().ends_with("LABELS"), "{one}");
    assert!(one.lines().nth(1).unwrap().starts_with("fluentd-elasticsearch ") && one.contains("k8s-app=fluentd-logging"), "{one}");
    let all = cluster.cli_ok(&["get", "all", "-n", "kube-system"]);
    assert!(all.contains(&format!("pod/{name} ")) && all.contains("daemonset.apps/fluentd-elasticsearch "), "{all}");
    let described = cluster.cli_ok(&["describe", "pods", "-n", "kube-system", "-l", "name=fluentd-elasticsearch"]);
    assert!(described.contains(&format!("Name:         {name}\n")) && described.contains("Controlled By:  DaemonSet/fluentd-elasticsearch"), "{described}");
    let every = cluster.cli_ok(&["describe", "pods", "-n", "kube-system"]);
    assert_eq!(every.matches("\nNamespace:    kube-system\n").count(), 1, "{every}");
    let mixed = cluster.cli(&["get", "ds/gpu-agent", "pods/nope"]);
    let (out, err) = (String::from_utf8_lossy(&mixed.stdout), String::from_utf8_lossy(&mixed.stderr));
    assert_eq!(mixed.status.code(), Some(1));
    assert!(out.contains("daemonset.apps/gpu-agent ") && err.contains("pods \"nope\" not found"), "{out}{err}");

    cluster.commit(&[("apps/fluentd.yaml", &fluentd("v2"))], "fluentd v2");
    let status = cluster.cli(&["rollout", "status", "-n", "kube-system", "daemonset/fluentd-elasticsearch", "--timeout", "60s"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.status.success() && text.contains("daemon set \"fluentd-elasticsearch\" successfully rolled out"), "{text}");
    let pods = daemon_pods(&cluster);
    assert_eq!(pods.len(), 1);
    assert_ne!(crate::cluster::name(&pods[0]), name, "the pod was replaced");
    assert_eq!(cluster.cli_ok(&["logs", "-n", "kube-system", &crate::cluster::name(&pods[0])]).trim(), "v2");
    let history = cluster.cli_ok(&["rollout", "history", "-n", "kube-system", "ds/fluentd-elasticsearch"]);
    let revisions: Vec<&str> = history.lines().skip(2).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
}
