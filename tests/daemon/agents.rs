//! A node agent (`driftless agent`) joining the control plane over HTTPS
//! with a node token: it registers its Node and renews its Lease; a node
//! token writes nothing else. Killed, its node is marked Unknown and
//! tainted unreachable by the node lifecycle within the grace period, and
//! the pods bound to it are evicted once their toleration runs out and
//! replaced by their controllers; back, it is Ready and untainted.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftless_api::client::Endpoint;
use driftless_api::{Client, ClientError};
use serde_json::{Value, json};

use crate::cluster::{Cluster, binary, web};

const NODE_TOKEN: &str = "6b1e0c3f9a2d4e8b7c5a1f0e3d2c9b8a";
const TOKENS: &str = "\
# token,user,uid,\"groups\"
0f9e8d7c6b5a49382716051f2e3d4c5b,admin,admin@example.invalid
6b1e0c3f9a2d4e8b7c5a1f0e3d2c9b8a,system:node:node-2,node-2,\"system:nodes\"
";

const PINNED: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: pinned
spec:
  replicas: 1
  selector:
    matchLabels: {app: pinned}
  template:
    metadata:
      labels: {app: pinned}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-2}
      containers:
      - name: sleep
        image: busybox:1.35
        command: [sleep, '3600']
";

/// The agent of node-2, killed when dropped.
struct Agent(Child);

impl Agent {
    fn start(cluster: &Cluster, address: &str) -> Agent {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(cluster.dir.path().join("agent.log")).unwrap();
        let child = Command::new(binary())
            .args(["agent", "--server", &format!("https://{address}"), "--token", NODE_TOKEN, "--certificate-authority"])
            .arg(cluster.data.join("pki/ca.crt"))
            .args(["--node-name", "node-2", "--pod-cidr", "10.244.77.0/24", "--node-ip", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent(child)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ready(cluster: &Cluster) -> Option<String> {
    let node = cluster.try_get("/api/v1/nodes/node-2").ok()?;
    node.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == "Ready").and_then(|c| c["status"].as_str()).map(str::to_owned)
}

fn taints(cluster: &Cluster) -> Vec<String> {
    let node = cluster.get("/api/v1/nodes/node-2");
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|ts| ts.iter().map(|t| format!("{}:{}", t["key"].as_str().unwrap_or(""), t["effect"].as_str().unwrap_or(""))).collect())
        .unwrap_or_default()
}

#[test]
fn an_agent_joins_and_its_node_turns_unknown_when_it_stops() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1, "1", "{type: RollingUpdate}"))]);
    let tokens = cluster.dir.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    let address = format!("127.0.0.1:{}", crate::etcd::free_port());
    cluster.start_with(&[
        "--listen",
        &address,
        "--token-file",
        tokens.to_str().unwrap(),
        "--node-monitor-grace-period",
        "15s",
        "--default-unreachable-toleration-seconds",
        "5",
    ]);
    cluster.wait_ready("web-", 1, Duration::from_secs(30));

    let agent = Agent::start(&cluster, &address);
    cluster.wait_for("node-2 Ready", Duration::from_secs(30), || (ready(&cluster).as_deref() == Some("True")).then_some(()));
    let lease = cluster.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-2");
    assert_eq!(lease["spec"]["holderIdentity"], "node-2");
    let nodes = cluster.cli_ok(&["get", "nodes"]);
    assert!(nodes.lines().any(|l| l.starts_with("node-2 ") && l.split_whitespace().nth(1) == Some("Ready")), "{nodes}");

    // A Deployment pinned to node-2: its pod is bound there (and waits, as
    // this agent does not run pods yet).
    cluster.commit(&[("apps/pinned.yaml", PINNED)], "pinned to node-2");
    let bound = cluster.wait_for("the pinned pod bound to node-2", Duration::from_secs(30), || {
        cluster.pods().into_iter().find(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some("node-2"))
    });
    let bound_uid = bound["metadata"]["uid"].as_str().unwrap().to_owned();

    // A node token writes its own Node and Lease, and nothing else.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let as_node = Client::new(Endpoint::Https { address: address.clone(), token: Some(NODE_TOKEN.into()), ca: cluster.data.join("pki/ca.crt") });
    let other = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-3"}});
    let refused = runtime.block_on(as_node.put("/api/v1/nodes/node-3", &other)).unwrap_err();
    assert!(matches!(refused, ClientError::Status { code: 403, .. }), "{refused}");
    let commit = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}});
    let refused = runtime.block_on(as_node.post("/api/v1/namespaces/default/configmaps", &commit)).unwrap_err();
    assert!(matches!(refused, ClientError::Status { code: 403, .. }), "{refused}");

    // The agent dies: within the grace period (15 s) and a monitor period
    // (5 s) of its last heartbeat, its node is Unknown and unreachable (a
    // few seconds more allowed for a busy machine).
    drop(agent);
    let killed = Instant::now();
    cluster.wait_for("node-2 Unknown", Duration::from_secs(40), || (ready(&cluster).as_deref() == Some("Unknown")).then_some(()));
    let noticed = killed.elapsed();
    eprintln!("node-2 Unknown {noticed:?} after its agent was killed");
    assert!(noticed <= Duration::from_secs(25), "{noticed:?}");
    assert_eq!(taints(&cluster), ["node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"]);
    let nodes = cluster.cli_ok(&["get", "nodes"]);
    assert!(nodes.lines().any(|l| l.starts_with("node-2 ") && l.split_whitespace().nth(1) == Some("NotReady")), "{nodes}");
    assert_eq!(ready(&cluster).as_deref(), Some("Unknown"));

    // Its pod does not tolerate that for more than the default (5 s here):
    // it is evicted, and its ReplicaSet makes another, which no Ready node
    // can take (it is pinned), so it waits unbound.
    cluster.wait_for("the pinned pod evicted", Duration::from_secs(20), || {
        let pods = cluster.pods();
        let old = pods.iter().find(|p| p["metadata"]["uid"] == bound_uid.as_str());
        let evicted = old.is_none_or(|p| p.pointer("/metadata/deletionTimestamp").is_some());
        let replacement =
            pods.iter().find(|p| p["metadata"]["uid"] != bound_uid.as_str() && p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("pinned"));
        (evicted && replacement.is_some_and(|p| p.pointer("/spec/nodeName").is_none())).then_some(())
    });
    let events = cluster.get("/api/v1/namespaces/default/events");
    assert!(
        events["items"].as_array().unwrap().iter().any(|e| e["reason"] == "TaintManagerEviction" && e["involvedObject"]["uid"] == bound_uid.as_str()),
        "{events}"
    );

    // Back: Ready, and the taints go.
    let _agent = Agent::start(&cluster, &address);
    cluster.wait_for("node-2 Ready again", Duration::from_secs(30), || (ready(&cluster).as_deref() == Some("True")).then_some(()));
    cluster.wait_for("node-2 untainted", Duration::from_secs(15), || taints(&cluster).is_empty().then_some(()));
}
