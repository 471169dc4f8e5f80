//! A node agent (`driftless agent`) joining the control plane over HTTPS
//! with a node token, from a network namespace of its own (as another
//! machine would): it registers its Node, renews its Lease, and runs the
//! pods bound to it, which the control plane sees Running at the agent's
//! addresses; a node token writes nothing else. Killed, its node is
//! marked Unknown and tainted unreachable within the grace period, and the
//! pods bound to it are evicted once their toleration runs out and
//! replaced by their controllers; back, it is Ready and untainted, stops
//! the evicted pod and runs its replacement.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use driftless_api::client::Endpoint;
use driftless_api::{Client, ClientError};
use serde_json::{Value, json};

use crate::cluster::{Cluster, binary, web};
use crate::netns::{Lan, NodeNamespace};

const NODE_TOKEN: &str = "6b1e0c3f9a2d4e8b7c5a1f0e3d2c9b8a";
const TOKENS: &str = "\
# token,user,uid,\"groups\"
0f9e8d7c6b5a49382716051f2e3d4c5b,admin,admin@example.invalid
6b1e0c3f9a2d4e8b7c5a1f0e3d2c9b8a,system:node:node-2,node-2,\"system:nodes\"
";

/// busybox's httpd serving the container's `/etc`: `/hostname` answers
/// the pod's name.
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
      terminationGracePeriodSeconds: 2
      containers:
      - name: httpd
        image: busybox:1.35
        command: [sh, -c, 'echo serving on 8080; exec httpd -f -p 8080 -h /etc']
";

/// A StatefulSet pinned to node-2: at most one `db-0` exists, whatever
/// happens to the node.
const DB: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  replicas: 1
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-2}
      terminationGracePeriodSeconds: 2
      containers:
      - name: sleep
        image: busybox:1.35
        command: [sleep, '3600']
";

/// `db-0` as stored.
fn db0(cluster: &Cluster) -> Option<Value> {
    cluster.try_get("/api/v1/namespaces/default/pods/db-0").ok()
}

/// A node's agent, in its namespace, with a data folder of its own.
pub(crate) struct Agent {
    child: Option<Child>,
    data: std::path::PathBuf,
    /// Its node's namespace.
    pub(crate) node: NodeNamespace,
    name: String,
    pod_cidr: String,
    token: String,
    extra: Vec<String>,
    /// Run as `driftless agent` rather than the node binary
    /// `driftless-agent`.
    subcommand: bool,
}

impl Agent {
    /// The agent of node `name`, its images imported; not started.
    pub(crate) fn new(cluster: &Cluster, node: NodeNamespace, name: &str, pod_cidr: &str, token: &str, extra: &[&str]) -> Agent {
        let data = cluster.dir.path().join(format!("agent-{name}"));
        let out = std::process::Command::new(binary())
            .args(["image", "import"])
            .arg(crate::images::busybox_layout())
            .args(["--name", "busybox", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "image import: {}", String::from_utf8_lossy(&out.stderr));
        Agent {
            child: None,
            data,
            node,
            name: name.to_owned(),
            pod_cidr: pod_cidr.to_owned(),
            token: token.to_owned(),
            extra: extra.iter().map(|e| (*e).to_owned()).collect(),
            subcommand: false,
        }
    }

    /// Runs as `driftless agent`, the subcommand of the one binary, rather
    /// than the node binary the other tests run.
    pub(crate) fn run_as_subcommand(mut self) -> Agent {
        self.subcommand = true;
        self
    }

    /// The pod CIDR it was given.
    pub(crate) fn pod_cidr(&self) -> &str {
        &self.pod_cidr
    }

    fn log(&self) -> std::path::PathBuf {
        self.data.with_file_name(format!("agent-{}.log", self.name))
    }

    /// Starts it against the API at `server` (`host:port`).
    pub(crate) fn start(&mut self, cluster: &Cluster, server: &str) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).unwrap();
        let dns = cluster.service_cidr.replace(".0/24", ".10");
        let mut command = if self.subcommand {
            let mut command = self.node.command(binary());
            command.arg("agent");
            command
        } else {
            self.node.command(env!("CARGO_BIN_EXE_driftless-agent"))
        };
        let child = command
            .args(["--server", &format!("https://{server}"), "--token", &self.token, "--certificate-authority"])
            .arg(cluster.data.join("pki/ca.crt"))
            .args(["--node-name", &self.name, "--node-ip", &self.node.node_ip])
            // None: the control plane gives one.
            .args(if self.pod_cidr.is_empty() { vec![] } else { vec!["--pod-cidr", &self.pod_cidr] })
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--bridge", "dlagent0", "--service-cidr", &cluster.service_cidr, "--cluster-dns", &dns])
            .args(["--cgroup-root", &format!("{}-{}", cluster.cgroup_root, self.name), "--dns-upstream", "none"])
            .args(&self.extra)
            .env("DRIFTLESS_LOG", "info,libcgroups=error,libcontainer=error")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL, as a crash would; its pods run on.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// As a power loss: the agent, every process of its pods (their
    /// helpers, and what runs in its cgroups) killed at once, and its node
    /// off the network.
    pub(crate) fn power_off(&mut self, cluster: &Cluster) {
        self.kill();
        let needle = self.data.display().to_string();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        let root = format!("{}-{}", cluster.cgroup_root, self.name);
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            kill_cgroup(&hierarchy.path().join(root.trim_start_matches('/')));
        }
        let _ = std::process::Command::new("ip").args(["link", "set", &self.node.host_link, "down"]).status();
    }
}

/// Kills every process in the cgroup at `dir` and beneath it.
fn kill_cgroup(dir: &std::path::Path) {
    for pid in std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines() {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    for child in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if child.path().is_dir() {
            kill_cgroup(&child.path());
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            eprintln!("--- the log of {}'s agent ---\n{log}", self.name);
        }
        if self.data.join("config.json").exists() {
            let out = self.node.command(binary()).args(["reset", "--purge", "--data-dir"]).arg(&self.data).output().unwrap();
            if !out.status.success() {
                eprintln!("driftless reset of {}'s agent: {}", self.name, String::from_utf8_lossy(&out.stderr));
            }
        }
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

/// The pinned pod of `uid` (any, if none given) Running with an address.
fn running_pinned(cluster: &Cluster, not_uid: Option<&str>) -> Option<Value> {
    cluster.pods().into_iter().find(|p| {
        p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("pinned")
            && not_uid.is_none_or(|uid| p["metadata"]["uid"] != uid)
            && p.pointer("/metadata/deletionTimestamp").is_none()
            && p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
            && p.pointer("/status/podIP").and_then(Value::as_str).is_some()
    })
}

/// What the pod's httpd answers for `/hostname`, asked from inside the
/// agent's node.
fn hostname_of(agent: &Agent, pod: &Value) -> String {
    let ip = pod["status"]["podIP"].as_str().unwrap();
    let out = agent.node.command("curl").args(["-s", "--max-time", "5", &format!("http://{ip}:8080/hostname")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn an_agent_runs_its_pods_and_its_node_turns_unknown_when_it_stops() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1, "1", "{type: RollingUpdate}"))]);
    let tokens = cluster.dir.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    let lan = Lan::create();
    let mut agent = Agent::new(&cluster, lan.join(), "node-2", &format!("10.247.{}.0/24", lan.id()), NODE_TOKEN, &[]).run_as_subcommand();
    // The API listens on the host's address on the LAN.
    let server = format!("{}:{}", lan.host_ip, crate::ports::free_port());
    cluster.start_with(&[
        "--listen",
        &server,
        "--token-file",
        tokens.to_str().unwrap(),
        "--node-monitor-grace-period",
        "15s",
        "--default-unreachable-toleration-seconds",
        "5",
    ]);
    cluster.wait_ready("web-", 1, Duration::from_secs(30));

    agent.start(&cluster, &server);
    cluster.wait_for("node-2 Ready", Duration::from_secs(30), || (ready(&cluster).as_deref() == Some("True")).then_some(()));
    // The Lease follows the Node within a heartbeat.
    let lease = cluster
        .wait_for("node-2's Lease", Duration::from_secs(15), || cluster.try_get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-2").ok());
    assert_eq!(lease["spec"]["holderIdentity"], "node-2");
    let nodes = cluster.cli_ok(&["get", "nodes"]);
    assert!(nodes.lines().any(|l| l.starts_with("node-2 ") && l.split_whitespace().nth(1) == Some("Ready")), "{nodes}");
    let node = cluster.get("/api/v1/nodes/node-2");
    assert_eq!(node["status"]["addresses"][0]["address"], agent.node.node_ip.as_str());

    // A Deployment pinned to node-2 runs there: Running at an address of
    // the agent's pod CIDR, on the agent's node address, and its httpd
    // answers inside that node.
    cluster.commit(&[("apps/pinned.yaml", PINNED), ("apps/db.yaml", DB)], "pinned to node-2");
    let first = cluster.wait_for("the pinned pod Running on node-2", Duration::from_secs(60), || running_pinned(&cluster, None));
    let db = cluster.wait_for("db-0 Running on node-2", Duration::from_secs(60), || {
        db0(&cluster).filter(|p| p["status"]["phase"] == "Running" && p["spec"]["nodeName"] == "node-2")
    });
    let db_uid = db["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(first["spec"]["nodeName"], "node-2");
    assert_eq!(first["status"]["hostIP"], agent.node.node_ip.as_str());
    let prefix = agent.pod_cidr().trim_end_matches("0/24").to_owned();
    assert!(first["status"]["podIP"].as_str().unwrap().starts_with(&prefix), "{} is not in {}", first["status"]["podIP"], agent.pod_cidr());
    let first_name = first["metadata"]["name"].as_str().unwrap().to_owned();
    let first_uid = first["metadata"]["uid"].as_str().unwrap().to_owned();
    cluster.wait_for("the pinned pod's httpd", Duration::from_secs(15), || (hostname_of(&agent, &first) == first_name).then_some(()));
    // Its logs and exec, asked of the control plane, come from the agent.
    let logs = cluster.cli_ok(&["logs", &first_name]);
    assert_eq!(logs.trim(), "serving on 8080");
    let hostname = cluster.cli_ok(&["exec", &first_name, "--", "cat", "/etc/hostname"]);
    assert_eq!(hostname.trim(), first_name);
    let events = cluster.get("/api/v1/namespaces/default/events");
    let started = events["items"].as_array().unwrap().iter().find(|e| e["reason"] == "Started" && e["involvedObject"]["uid"] == first_uid.as_str());
    assert!(started.is_some_and(|e| e["source"]["host"] == "node-2"), "the agent posts its pods' events: {events}");

    // A node token writes its own Node, Lease and pods, and nothing else.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let as_node = Client::new(Endpoint::Https { address: server.clone(), token: Some(NODE_TOKEN.into()), ca: cluster.data.join("pki/ca.crt") });
    let other = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-3"}});
    let refused = runtime.block_on(as_node.put("/api/v1/nodes/node-3", &other)).unwrap_err();
    assert!(matches!(refused, ClientError::Status { code: 403, .. }), "{refused}");
    let commit = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}});
    let refused = runtime.block_on(as_node.post("/api/v1/namespaces/default/configmaps", &commit)).unwrap_err();
    assert!(matches!(refused, ClientError::Status { code: 403, .. }), "{refused}");
    let web_pod = cluster.pods().into_iter().find(|p| crate::cluster::name(p).starts_with("web-")).unwrap();
    let path = format!("/api/v1/namespaces/default/pods/{}/status", crate::cluster::name(&web_pod));
    let refused = runtime.block_on(as_node.put(&path, &web_pod)).unwrap_err();
    assert!(matches!(refused, ClientError::Status { code: 403, .. }), "node-2 wrote the status of a pod of node-1: {refused}");
    let refused = runtime.block_on(as_node.delete(&format!("/api/v1/namespaces/default/pods/{}", crate::cluster::name(&web_pod)))).unwrap_err();
    assert!(matches!(refused, ClientError::Status { code: 403, .. }), "node-2 removed a pod of node-1: {refused}");

    // The agent dies: within the grace period (15 s) and a monitor period
    // (5 s) of its last heartbeat, its node is Unknown and unreachable (a
    // few seconds more allowed for a busy machine).
    agent.kill();
    let killed = Instant::now();
    cluster.wait_for("node-2 Unknown", Duration::from_secs(40), || (ready(&cluster).as_deref() == Some("Unknown")).then_some(()));
    let noticed = killed.elapsed();
    eprintln!("node-2 Unknown {noticed:?} after its agent was killed");
    assert!(noticed <= Duration::from_secs(25), "{noticed:?}");
    assert_eq!(taints(&cluster), ["node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"]);
    let nodes = cluster.cli_ok(&["get", "nodes"]);
    assert!(nodes.lines().any(|l| l.starts_with("node-2 ") && l.split_whitespace().nth(1) == Some("NotReady")), "{nodes}");

    // Its pod does not tolerate that for more than the default (5 s here):
    // it is evicted (Terminating, as no kubelet is there to finish it),
    // and its ReplicaSet makes another, which no Ready node can take (it
    // is pinned), so it waits unbound.
    cluster.wait_for("the pinned pod evicted", Duration::from_secs(20), || {
        let pods = cluster.pods();
        let old = pods.iter().find(|p| p["metadata"]["uid"] == first_uid.as_str());
        let evicted = old.is_none_or(|p| p.pointer("/metadata/deletionTimestamp").is_some());
        let replacement =
            pods.iter().find(|p| p["metadata"]["uid"] != first_uid.as_str() && p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("pinned"));
        (evicted && replacement.is_some_and(|p| p.pointer("/spec/nodeName").is_none())).then_some(())
    });
    let events = cluster.get("/api/v1/namespaces/default/events");
    assert!(
        events["items"].as_array().unwrap().iter().any(|e| e["reason"] == "TaintManagerEviction" && e["involvedObject"]["uid"] == first_uid.as_str()),
        "{events}"
    );
    // db-0 was evicted too, but no other db-0 is made while it may still
    // run: it stays Terminating on the unreachable node.
    let db = db0(&cluster).expect("db-0 is kept while its node may run it");
    assert_eq!(db["metadata"]["uid"], db_uid.as_str());
    assert!(db.pointer("/metadata/deletionTimestamp").is_some(), "{db}");

    // Back: Ready and untainted; it stops the evicted pod and removes it,
    // and runs the replacement, which is bound to it now.
    agent.start(&cluster, &server);
    cluster.wait_for("node-2 Ready again", Duration::from_secs(30), || (ready(&cluster).as_deref() == Some("True")).then_some(()));
    cluster.wait_for("node-2 untainted", Duration::from_secs(15), || taints(&cluster).is_empty().then_some(()));
    let second = cluster.wait_for("the replacement Running on node-2", Duration::from_secs(60), || running_pinned(&cluster, Some(&first_uid)));
    assert_eq!(second["spec"]["nodeName"], "node-2");
    cluster.wait_for("the evicted pod removed", Duration::from_secs(30), || {
        cluster.pods().iter().all(|p| p["metadata"]["uid"] != first_uid.as_str()).then_some(())
    });
    let second_name = second["metadata"]["name"].as_str().unwrap().to_owned();
    cluster.wait_for("the replacement's httpd", Duration::from_secs(15), || (hostname_of(&agent, &second) == second_name).then_some(()));
    let pinned = cluster.pods().into_iter().filter(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("pinned")).count();
    assert_eq!(pinned, 1);
    // The agent stopped the old db-0 and removed it; its StatefulSet made
    // db-0 anew, which runs there.
    cluster.wait_for("a new db-0 Running on node-2", Duration::from_secs(60), || {
        db0(&cluster).filter(|p| p["metadata"]["uid"] != db_uid.as_str() && p["status"]["phase"] == "Running" && p["spec"]["nodeName"] == "node-2")
    });

    // Gone for good: the operator deletes the Node. Its pods are removed
    // at once (nothing the cluster knows can run them), so db-0 is made
    // again, and waits unbound (it is pinned to the deleted node); the
    // node's Lease goes with its Node.
    agent.kill();
    let db_uid = db0(&cluster).unwrap()["metadata"]["uid"].as_str().unwrap().to_owned();
    let out = cluster.cli_ok(&["delete", "node", "node-2"]);
    assert!(out.contains("deleted"), "{out}");
    cluster.wait_for("db-0 made again, unbound", Duration::from_secs(30), || {
        db0(&cluster).filter(|p| p["metadata"]["uid"] != db_uid.as_str() && p.pointer("/spec/nodeName").is_none())
    });
    cluster.wait_for("no pod bound to node-2", Duration::from_secs(30), || {
        cluster.pods().iter().all(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) != Some("node-2")).then_some(())
    });
    cluster.wait_for("node-2's Lease removed", Duration::from_secs(30), || {
        cluster.try_get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-2").is_err().then_some(())
    });
}
