//! Three nodes and a pure control plane on one machine: each node a
//! network namespace on a LAN the test makes, its agent running inside it.
//! A Deployment spreads over them; its pods reach each other across nodes
//! by pod IP and by Service name; a NodePort answers on every node's
//! address; and when a node loses power its pods are replaced on the
//! others.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::agents::Agent;
use crate::cluster::Cluster;
use crate::netns::Lan;

const TOKENS: &str = "\
0f9e8d7c6b5a49382716051f2e3d4c5b,admin,admin@example.invalid
a1b2c3d4e5f60718293a4b5c6d7e8f90,system:node:node-a,node-a,\"system:nodes\"
b1b2c3d4e5f60718293a4b5c6d7e8f90,system:node:node-b,node-b,\"system:nodes\"
c1b2c3d4e5f60718293a4b5c6d7e8f90,system:node:node-c,node-c,\"system:nodes\"
";

/// busybox's httpd answering `/hostname` with the pod's name, behind a
/// NodePort Service.
const SPREAD: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: spread
spec:
  replicas: 6
  selector:
    matchLabels: {app: spread}
  template:
    metadata:
      labels: {app: spread}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 10}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 10}
      containers:
      - name: httpd
        image: busybox:1.35
        command: [httpd, -f, -p, '8080', -h, /etc]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /hostname, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: spread
spec:
  type: NodePort
  selector: {app: spread}
  ports:
  - {port: 80, targetPort: http}
";

/// A DaemonSet: one pod on every node.
const EVERY_NODE: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: every-node
spec:
  selector:
    matchLabels: {app: every-node}
  template:
    metadata:
      labels: {app: every-node}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: sleep
        image: busybox:1.35
        command: [sleep, '3600']
";

fn ready_nodes(cluster: &Cluster) -> Vec<String> {
    let nodes = cluster.get("/api/v1/nodes");
    nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")))
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The spread pods Ready and not leaving, by node.
fn ready_by_node(cluster: &Cluster) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut by_node: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for pod in cluster.pods() {
        if pod.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("spread")
            && pod.pointer("/metadata/deletionTimestamp").is_none()
            && crate::cluster::is_ready(&pod)
        {
            by_node.entry(pod["spec"]["nodeName"].as_str().unwrap_or("").to_owned()).or_default().push(pod);
        }
    }
    by_node
}

#[test]
fn three_nodes_spread_reach_each_other_and_survive_the_loss_of_one() {
    let mut cluster = Cluster::new(&[("apps/hello.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello}\ndata: {a: b}\n")]);
    let tokens = cluster.dir.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    let lan = Lan::create();
    // Every node's pod CIDR inside one cluster CIDR of this test's own.
    let cluster_cidr = format!("10.{}.0.0/16", 150 + lan.id() % 50);
    let server = format!("{}:{}", lan.host_ip, crate::ports::free_port());
    let tokens = tokens.to_str().unwrap();
    let flags = ["--listen", &server, "--token-file", tokens, "--no-local-node", "--node-monitor-grace-period", "15s", "--cluster-cidr", &cluster_cidr];
    cluster.start_with(&flags);
    let mut agents: Vec<Agent> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let token = format!("{n}1b2c3d4e5f60718293a4b5c6d7e8f90");
            // node-c joins without one: the control plane gives it one.
            let pod_cidr = if *n == "c" { String::new() } else { format!("10.{}.{}.0/24", 150 + lan.id() % 50, i + 1) };
            Agent::new(&cluster, lan.join(), &format!("node-{n}"), &pod_cidr, &token, &["--cluster-cidr", &cluster_cidr])
        })
        .collect();
    for agent in &mut agents {
        agent.start(&cluster, &server);
    }
    cluster.wait_for("three nodes Ready", Duration::from_secs(60), || (ready_nodes(&cluster).len() == 3).then_some(()));
    // node-c was given the first range no node held.
    let cidr_of = |node: &str| cluster.get(&format!("/api/v1/nodes/{node}"))["spec"]["podCIDR"].as_str().unwrap().to_owned();
    let given =
        cluster.wait_for("node-c's pod CIDR", Duration::from_secs(30), || cluster.get("/api/v1/nodes/node-c")["spec"]["podCIDR"].as_str().map(str::to_owned));
    assert_eq!(given, format!("10.{}.0.0/24", 150 + lan.id() % 50));
    let cidrs = [cidr_of("node-a"), cidr_of("node-b"), given];
    // Each node routes the others' pods via their addresses, and the rest
    // of the cluster CIDR nowhere.
    for agent in &agents {
        let routes = agent.node.exec_ok(&["ip", "route", "show"]);
        assert!(routes.contains(&format!("unreachable {cluster_cidr}")), "{routes}");
        for (i, other) in agents.iter().enumerate().filter(|(_, o)| o.node.node_ip != agent.node.node_ip) {
            let wanted = format!("{} via {}", cidrs[i], other.node.node_ip);
            cluster.wait_for(&wanted, Duration::from_secs(15), || agent.node.exec_ok(&["ip", "route", "show"]).contains(&wanted).then_some(()));
        }
    }

    // Six replicas spread two per node.
    cluster.commit(&[("apps/spread.yaml", SPREAD), ("apps/every-node.yaml", EVERY_NODE)], "spread");
    let by_node = cluster.wait_for("six spread pods Ready", Duration::from_secs(90), || {
        let by_node = ready_by_node(&cluster);
        (by_node.values().map(Vec::len).sum::<usize>() == 6).then_some(by_node)
    });
    let counts: Vec<(String, usize)> = by_node.iter().map(|(n, ps)| (n.clone(), ps.len())).collect();
    assert_eq!(counts, [("node-a".to_owned(), 2), ("node-b".to_owned(), 2), ("node-c".to_owned(), 2)]);

    // The DaemonSet runs one pod on each node.
    let daemons = cluster.wait_for("a DaemonSet pod on each node", Duration::from_secs(60), || {
        let mut nodes: Vec<String> = cluster
            .pods()
            .iter()
            .filter(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("every-node") && p["status"]["phase"] == "Running")
            .map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_owned())
            .collect();
        nodes.sort();
        (nodes.len() == 3).then_some(nodes)
    });
    assert_eq!(daemons, ["node-a", "node-b", "node-c"]);

    // A pod on node-a reaches a pod on node-c by its IP, and the Service
    // (busybox's static wget crashes on -T; timeout bounds it instead)
    // by its name, whose answers come from every node.
    let on_a = crate::cluster::name(&by_node["node-a"][0]);
    let on_c = &by_node["node-c"][0];
    let ip_c = on_c["status"]["podIP"].as_str().unwrap();
    let answer = cluster.cli_ok(&["exec", &on_a, "--", "timeout", "5", "wget", "-qO-", &format!("http://{ip_c}:8080/hostname")]);
    assert_eq!(answer.trim(), crate::cluster::name(on_c));
    let names: std::collections::BTreeMap<String, String> =
        by_node.iter().flat_map(|(node, pods)| pods.iter().map(move |p| (crate::cluster::name(p), node.clone()))).collect();
    let mut answered_from = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let answer = cluster.cli_ok(&["exec", &on_a, "--", "timeout", "5", "wget", "-qO-", "http://spread.default.svc.cluster.local/hostname"]);
        answered_from.insert(names.get(answer.trim()).cloned().unwrap_or_else(|| panic!("{answer:?} is not a spread pod")));
        if answered_from.len() == 3 {
            break;
        }
    }
    assert_eq!(answered_from.len(), 3, "the Service answered only from {answered_from:?}");

    // The cluster DNS answers the same on every node: each node's
    // resolver gives its pods the Service's address.
    let service = cluster.get("/api/v1/namespaces/default/services/spread");
    let cluster_ip = service["spec"]["clusterIP"].as_str().unwrap().to_owned();
    for pods in by_node.values() {
        let pod = crate::cluster::name(&pods[0]);
        let answer = cluster.cli_ok(&["exec", &pod, "--", "timeout", "5", "nslookup", "spread.default.svc.cluster.local"]);
        assert!(answer.contains(&format!("Address: {cluster_ip}")), "{pod} on {}: {answer}", pods[0]["spec"]["nodeName"]);
    }

    // The NodePort answers on every node's address, from outside them.
    let node_port = service["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    for agent in &agents {
        let url = format!("http://{}:{node_port}/hostname", agent.node.node_ip);
        let out = std::process::Command::new("curl").args(["-s", "--max-time", "5", &url]).output().unwrap();
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(names.contains_key(&answer), "{url} answered {answer:?}");
    }

    // node-c loses power: NotReady within the grace period (15 s here),
    // and its pods run on the other nodes once their toleration (10 s)
    // has passed.
    agents[2].power_off(&cluster);
    let lost = Instant::now();
    cluster.wait_for("node-c NotReady", Duration::from_secs(45), || (!ready_nodes(&cluster).contains(&"node-c".to_owned())).then_some(()));
    eprintln!("node-c NotReady {:?} after its power went", lost.elapsed());
    let by_node = cluster.wait_for("six spread pods Ready on node-a and node-b", Duration::from_secs(60), || {
        let by_node = ready_by_node(&cluster);
        let whole = by_node.get("node-a").map_or(0, Vec::len) + by_node.get("node-b").map_or(0, Vec::len) == 6;
        whole.then_some(by_node)
    });
    eprintln!("the Deployment whole again {:?} after node-c's power went", lost.elapsed());
    assert_eq!(by_node.get("node-a").map(Vec::len), Some(3));
    assert_eq!(by_node.get("node-b").map(Vec::len), Some(3));

    // Draining node-b: cordoned, its pods evicted and made again on
    // node-a, the one node left that takes pods.
    let out = cluster.cli_ok(&["drain", "node-b"]);
    assert!(out.contains("node/node-b drained"), "{out}");
    let nodes = cluster.cli_ok(&["get", "nodes"]);
    assert!(nodes.lines().any(|l| l.starts_with("node-b ") && l.split_whitespace().nth(1) == Some("Ready,SchedulingDisabled")), "{nodes}");
    let by_node = cluster.wait_for("six spread pods Ready on node-a", Duration::from_secs(60), || {
        let by_node = ready_by_node(&cluster);
        (by_node.get("node-a").map_or(0, Vec::len) == 6 && by_node.len() == 1).then_some(by_node)
    });
    assert_eq!(by_node.len(), 1);
    let out = cluster.cli_ok(&["uncordon", "node-b"]);
    assert!(out.contains("node/node-b uncordoned"), "{out}");
    let nodes = cluster.cli_ok(&["get", "nodes"]);
    assert!(nodes.lines().any(|l| l.starts_with("node-b ") && l.split_whitespace().nth(1) == Some("Ready")), "{nodes}");
}
