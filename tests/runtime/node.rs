//! The node facade the control plane calls: a Kubernetes Pod in, a pod
//! served on its own address out, and nothing left after it stops.

use std::time::{Duration, Instant};

use driftless_image::{ImageStore, PullOptions};
use driftless_runtime::images::NodeImages;
use driftless_runtime::lifecycle::phase::Phase;
use driftless_runtime::node::{Node as RuntimeNode, NodeConfig, PodRuntime};
use driftless_runtime::pod::ContainerState;
use driftless_runtime::podspec::{NodeSettings, Resolve, ResolvedImage};

use crate::Node;
use crate::worker::StoreResolver;

/// Stops every pod and deletes the bridge, even when the test fails.
struct Teardown<'a>(&'a RuntimeNode);

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        for uid in self.0.pods() {
            let _ = self.0.stop_pod(&uid);
        }
        let _ = self.0.delete_bridge();
    }
}

#[test]
fn runs_a_kubernetes_pod_on_its_own_address_and_removes_it_all() {
    let test = Node::new("node");
    let id = std::process::id();
    let config = node_config(&test, id);
    let node = RuntimeNode::new(config.clone()).unwrap();
    let _teardown = Teardown(&node);
    // Both ranges are kept on the machine before any pod runs.
    assert!(driftless_runtime::network::route_exists(config.pod_cidr, &config.bridge).unwrap());
    let routes = std::process::Command::new("ip").args(["route", "show", "table", "local"]).output().unwrap();
    let service = config.service_cidr.unwrap();
    assert!(String::from_utf8_lossy(&routes.stdout).contains(&format!("local {service} dev lo")), "{routes:?}");

    let store = ImageStore::open(test.dir.path().join("images")).unwrap();
    store.import(crate::images::busybox_layout(), Some("busybox")).unwrap();
    let resolver = StoreResolver { store: &store, config: [("index.html".to_owned(), b"<p>served by driftless</p>\n".to_vec())].into() };
    let manifest = "\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, uid: 3f1c0a5e-web}
spec:
  # httpd as PID 1 ignores SIGTERM: stopping waits out the grace period.
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.35
    imagePullPolicy: Never
    command: [httpd, -f, -p, '8080', -h, /www]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
    volumeMounts: [{name: www, mountPath: /www}]
  volumes:
  - {name: www, configMap: {name: web-config}}
";
    let value: serde_json::Value = serde_yaml_ng::from_str(manifest).unwrap();
    let driftless_model::Object::Pod(pod) = driftless_model::Object::parse(&value).unwrap() else { unreachable!() };
    node.run_pod(&pod, &resolver).unwrap();
    node.run_pod(&pod, &resolver).unwrap();
    assert_eq!(node.pods(), ["3f1c0a5e-web"], "running a pod twice runs it once");

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = node.pod_status("3f1c0a5e-web").unwrap();
        if status.ready() {
            break status;
        }
        assert!(Instant::now() < deadline, "never ready: {status:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let ip: std::net::Ipv4Addr = status.pod_ip.as_deref().unwrap().parse().unwrap();
    assert!(config.pod_cidr.contains(&ip));
    let body = ureq_get(&format!("http://{ip}:8080/"));
    assert_eq!(body, "<p>served by driftless</p>\n");

    // A service address is the host's own: a connection to a port nobody
    // serves is refused here, not sent off the machine.
    let service_ip = std::net::SocketAddr::from((service.hosts().nth(9).unwrap(), 9));
    let refused = std::net::TcpStream::connect_timeout(&service_ip, Duration::from_secs(2)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");

    node.stop_pod("3f1c0a5e-web").unwrap();
    assert!(node.pods().is_empty());
    let host_veth = driftless_runtime::network::PodInterface::host_name("3f1c0a5e-web");
    assert!(!std::path::Path::new("/sys/class/net").join(&host_veth).exists(), "its veth pair {host_veth} is gone");
    assert!(node.layout().list().unwrap().is_empty(), "no container is left");
    assert!(!test.dir.path().join("data/pods/3f1c0a5e-web").exists(), "the pod's folder is gone");
    assert!(!test.dir.path().join("run/pods/3f1c0a5e-web").exists(), "and its volatile one");
    let addresses = std::fs::read_dir(test.dir.path().join("data/ipam")).unwrap().flatten();
    let held: Vec<_> = addresses.filter(|e| e.file_name().to_string_lossy().parse::<std::net::Ipv4Addr>().is_ok()).collect();
    assert!(held.is_empty(), "its address is released: {held:?}");
}

#[test]
fn a_restarted_node_adopts_its_pods_and_removes_the_ones_not_asked_for() {
    let test = Node::new("adopt");
    let config = node_config(&test, std::process::id() + 13);
    let store = ImageStore::open(test.dir.path().join("images")).unwrap();
    store.import(crate::images::busybox_layout(), Some("busybox")).unwrap();
    let resolver = StoreResolver { store: &store, config: [("index.html".to_owned(), b"adopted\n".to_vec())].into() };
    let pod = |name: &str| {
        let manifest = format!(
            "\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, uid: 51ab-{name}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: httpd
    image: busybox:1.35
    imagePullPolicy: Never
    command: [httpd, -f, -p, '8080', -h, /www]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
    volumeMounts: [{{name: www, mountPath: /www}}]
  volumes:
  - {{name: www, configMap: {{name: web-config}}}}
"
        );
        let value: serde_json::Value = serde_yaml_ng::from_str(&manifest).unwrap();
        let driftless_model::Object::Pod(pod) = driftless_model::Object::parse(&value).unwrap() else { unreachable!() };
        pod
    };
    let ready = |node: &RuntimeNode, uid: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = node.pod_status(uid).unwrap();
            if status.ready() {
                return status;
            }
            assert!(Instant::now() < deadline, "never ready: {status:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let running = |node: &RuntimeNode| -> Vec<String> {
        let list = node.layout().list().unwrap().into_iter();
        list.filter(|(_, o)| *o == driftless_runtime::Observed::Running).map(|(id, _)| id).collect()
    };

    // A daemon runs two pods, then exits without stopping them.
    let first = RuntimeNode::new(config.clone()).unwrap();
    let (kept, dropped) = (pod("kept"), pod("dropped"));
    first.run_pod(&kept, &resolver).unwrap();
    first.run_pod(&dropped, &resolver).unwrap();
    let ip = ready(&first, "51ab-kept").pod_ip.unwrap();
    ready(&first, "51ab-dropped");
    let before = running(&first);
    assert_eq!(before.len(), 2, "{before:?}");
    first.abandon();
    assert_eq!(ureq_get(&format!("http://{ip}:8080/")), "adopted\n", "pods outlive the daemon");

    // The next daemon finds both, adopts the one still wanted and removes the other.
    let second = RuntimeNode::new(config.clone()).unwrap();
    let _teardown = Teardown(&second);
    assert_eq!(second.pods(), ["51ab-dropped", "51ab-kept"]);
    second.run_pod(&kept, &resolver).unwrap();
    second.stop_pod("51ab-dropped").unwrap();
    let status = ready(&second, "51ab-kept");
    assert_eq!(status.pod_ip.as_deref(), Some(ip.as_str()), "same address");
    assert_eq!(status.containers[0].restart_count, 0, "the same container, not a restart: {status:?}");
    let after = running(&second);
    assert_eq!(after, [before.iter().find(|id| id.contains("kept")).unwrap().clone()], "no duplicate, nothing of the dropped pod");
    assert_eq!(ureq_get(&format!("http://{ip}:8080/")), "adopted\n");
    assert_eq!(second.pods(), ["51ab-kept"]);
    assert!(!test.dir.path().join("data/pods/51ab-dropped").exists());
    assert!(!test.dir.path().join("run/pods/51ab-dropped").exists());
    assert!(second.pod_status("51ab-dropped").is_none());

    // The restarted daemon's fork server began beside the adopted pod: the
    // helper of a pod started now has that pod's mounts in its table no
    // more than the host's other mounts of pods.
    second.run_pod(&pod("late"), &resolver).unwrap();
    ready(&second, "51ab-late");
    let late = running(&second).into_iter().find(|id| id.contains("late")).unwrap();
    let Ok(Some(driftless_runtime::status::Status::Running { shim_pid, .. })) = second.layout().status(&late) else { panic!("{late} is not running") };
    let (helper, host) = (std::fs::read_to_string(format!("/proc/{shim_pid}/mountinfo")).unwrap(), std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    let count = |table: &str, uid: &str| table.lines().filter(|line| line.contains(&format!("/{uid}"))).count();
    assert_eq!((count(&host, "51ab-kept"), count(&helper, "51ab-kept")), (4, 0), "the adopted pod's mounts:\n{helper}");
    assert_eq!(count(&helper, "51ab-late"), 4, "its own root and namespace files:\n{helper}");
}

#[test]
fn pods_started_side_by_side_each_run_once_on_an_address_of_their_own() {
    let test = Node::new("side");
    let config = node_config(&test, std::process::id() + 29);
    let store = ImageStore::open(test.dir.path().join("images")).unwrap();
    store.import(crate::images::busybox_layout(), Some("busybox")).unwrap();
    let resolver = StoreResolver { store: &store, config: Default::default() };
    let node = RuntimeNode::new(config).unwrap();
    let _teardown = Teardown(&node);
    let pods: Vec<_> = (0..6)
        .map(|i| {
            let manifest = format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: default, uid: 5de-p{i}}}\n\
                 spec: {{terminationGracePeriodSeconds: 0, containers: [{{name: c, image: busybox:1.35, imagePullPolicy: Never, command: [sleep, '600']}}]}}\n"
            );
            let value: serde_json::Value = serde_yaml_ng::from_str(&manifest).unwrap();
            let driftless_model::Object::Pod(pod) = driftless_model::Object::parse(&value).unwrap() else { unreachable!() };
            pod
        })
        .collect();

    // Every pod asked for twice at once, all pods at once: the kubelet's
    // reconciles run side by side, and a pod's start is not serialized
    // behind another's.
    std::thread::scope(|scope| {
        for pod in pods.iter().chain(&pods) {
            let (node, resolver) = (&node, &resolver);
            scope.spawn(move || node.run_pod(pod, resolver).unwrap());
        }
    });
    let uids: Vec<String> = (0..6).map(|i| format!("5de-p{i}")).collect();
    assert_eq!(node.pods(), uids);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut addresses: Vec<String> = uids
        .iter()
        .map(|uid| {
            loop {
                let status = node.pod_status(uid).unwrap();
                if status.phase == Phase::Running {
                    break status.pod_ip.unwrap();
                }
                assert!(Instant::now() < deadline, "{uid} never ran: {status:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 6, "an address of its own each: {addresses:?}");
    let containers = node.layout().list().unwrap();
    assert_eq!(containers.len(), 6, "one container each: {containers:?}");
    let held = std::fs::read_dir(test.dir.path().join("data/ipam")).unwrap().flatten();
    assert_eq!(held.filter(|e| e.file_name().to_string_lossy().parse::<std::net::Ipv4Addr>().is_ok()).count(), 6, "one address held each");

    // The host's mount table holds every pod's four mounts (its root and
    // three namespace files); each helper's holds its own pod's alone, so
    // what libcontainer reads at a start does not grow with the node's pods.
    let mounts_of = |table: &str, uid: &str| table.lines().filter(|line| line.contains(&format!("/{uid}"))).count();
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for (id, _) in &containers {
        let uid = uids.iter().find(|uid| id.starts_with(&format!("{uid}-"))).unwrap();
        assert_eq!(mounts_of(&host, uid), 4, "{uid} in the host's table:\n{host}");
        let Ok(Some(driftless_runtime::status::Status::Running { shim_pid, .. })) = node.layout().status(id) else { panic!("{id} is not running") };
        let helper = std::fs::read_to_string(format!("/proc/{shim_pid}/mountinfo")).unwrap();
        for other in &uids {
            let expected = if other == uid { 4 } else { 0 };
            assert_eq!(mounts_of(&helper, other), expected, "{other} in the table of {id}'s helper:\n{helper}");
        }
    }

    // So does a command run in a pod (`kubectl exec`), once it has entered:
    // its helper joins the pod's helper's table, then the container's.
    let (id, _) = &containers[0];
    let uid = uids.iter().find(|uid| id.starts_with(&format!("{uid}-"))).unwrap();
    let mut exec = node.layout().exec(id, &["sleep".into(), "30".into()]).spawn().unwrap();
    let exec_table = || std::fs::read_to_string(format!("/proc/{}/mountinfo", exec.id())).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while uids.iter().any(|other| other != uid && mounts_of(&exec_table(), other) > 0) {
        assert!(Instant::now() < deadline, "the exec of {id} still reads the other pods' mounts:\n{}", exec_table());
        std::thread::sleep(Duration::from_millis(20));
    }
    exec.kill().unwrap();
    exec.wait().unwrap();
}

fn node_config(test: &Node, id: u32) -> NodeConfig {
    NodeConfig {
        cluster_cidr: None,
        data_dir: test.dir.path().join("data"),
        run_dir: test.dir.path().join("run"),
        shim: env!("CARGO_BIN_EXE_driftless-shim").into(),
        bridge: format!("dln{}", id % 100_000),
        pod_cidr: format!("10.244.{}.0/24", 100 + id % 50).parse().unwrap(),
        cgroup_root: format!("/{}", test.cgroup_parent),
        settings: NodeSettings::default(),
        pull_backoff: driftless_runtime::node::PULL_BACKOFF,
        service_cidr: Some(format!("10.97.{}.0/24", id % 200).parse().unwrap()),
    }
}

/// Images from a real registry; nothing else to resolve.
struct Registry(NodeImages);

impl Resolve for Registry {
    fn image(
        &self,
        reference: &str,
        policy: &str,
        credentials: Option<&driftless_runtime::podspec::pull_secrets::Credentials>,
    ) -> Result<ResolvedImage, String> {
        self.0.image(reference, policy, credentials)
    }
    fn config_map(&self, _: &str, _: &str) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
        None
    }
    fn secret(&self, _: &str, _: &str) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
        None
    }
    fn claim(&self, _: &str, _: &str) -> Option<std::path::PathBuf> {
        None
    }
}

#[test]
fn a_failed_pull_backs_off_and_the_pod_starts_once_the_registry_serves() {
    let test = Node::new("pull");
    let id = std::process::id() + 7;
    let config = NodeConfig { pull_backoff: (Duration::from_millis(300), Duration::from_secs(2)), ..node_config(&test, id) };
    let node = RuntimeNode::new(config).unwrap();
    let _teardown = Teardown(&node);

    // Nothing listens on the port yet: the pull fails with the client's words.
    let port = crate::ports::free_port();
    let host = format!("127.0.0.1:{port}");
    let options = PullOptions { insecure_registries: vec![host.clone()], credentials: Some(("puller".into(), "pull-pass".into())) };
    let resolver = Registry(NodeImages::new(ImageStore::open(test.dir.path().join("images")).unwrap(), options));
    let manifest = format!(
        "\
apiVersion: v1
kind: Pod
metadata: {{name: pulled, namespace: default, uid: 9d2e-pulled}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {host}/library/busybox:1.35
    imagePullPolicy: IfNotPresent
    command: [sleep, '600']
"
    );
    let value: serde_json::Value = serde_yaml_ng::from_str(&manifest).unwrap();
    let driftless_model::Object::Pod(pod) = driftless_model::Object::parse(&value).unwrap() else { unreachable!() };
    let waiting = |node: &RuntimeNode| match &node.pod_status("9d2e-pulled").unwrap().containers[0].state {
        ContainerState::Waiting { reason, message } => (reason.clone(), message.clone().unwrap_or_default()),
        other => panic!("not waiting: {other:?}"),
    };

    let error = node.run_pod(&pod, &resolver).unwrap_err();
    assert!(error.to_string().contains(&host), "{error}");
    let (reason, message) = waiting(&node);
    assert_eq!(reason, "ErrImagePull", "{message}");
    assert!(message.contains(&host), "{message}");
    assert_eq!(node.pod_status("9d2e-pulled").unwrap().phase, Phase::Pending);

    // Asked again at once: no new pull, ImagePullBackOff until the delay passes.
    let error = node.run_pod(&pod, &resolver).unwrap_err();
    let retry_in = error.retry_in().unwrap_or_else(|| panic!("not a back-off: {error}"));
    assert!(retry_in <= Duration::from_millis(300), "{retry_in:?}");
    let (reason, message) = waiting(&node);
    assert_eq!(reason, "ImagePullBackOff");
    assert!(message.starts_with(&format!("Back-off pulling image \"{host}/library/busybox:1.35\"")), "{message}");

    // The registry comes up: the next try after the back-off pulls and runs it.
    let registry = crate::registry::Registry::start_on(port, "puller", "pull-pass");
    registry.push_busybox("puller", "pull-pass");
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(error) = node.run_pod(&pod, &resolver) {
        assert!(Instant::now() < deadline, "never started: {error}");
        std::thread::sleep(error.retry_in().unwrap_or(Duration::from_millis(50)));
    }
    loop {
        let status = node.pod_status("9d2e-pulled").unwrap();
        if matches!(status.containers[0].state, ContainerState::Running { .. }) {
            break;
        }
        assert!(Instant::now() < deadline, "never running: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    node.stop_pod("9d2e-pulled").unwrap();
    assert!(node.pods().is_empty());
}

fn ureq_get(url: &str) -> String {
    let mut response = ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response.body_mut().read_to_string().unwrap()
}

/// A pod from `manifest`, its uid given there.
fn pod_of(manifest: &str) -> driftless_model::k8s_openapi::api::core::v1::Pod {
    let value: serde_json::Value = serde_yaml_ng::from_str(manifest).unwrap();
    let driftless_model::Object::Pod(pod) = driftless_model::Object::parse(&value).unwrap() else { unreachable!() };
    *pod
}

#[test]
fn a_container_s_first_instruction_finds_the_pod_s_network_in_place() {
    // As after kubelet's CNI call: the user's process starts with `eth0`
    // addressed and the default route in place, never before (a node that
    // made the interface while creating the container would have to hold
    // the start until then).
    let test = Node::new("gate");
    let config = node_config(&test, std::process::id() + 41);
    let store = ImageStore::open(test.dir.path().join("images")).unwrap();
    store.import(crate::images::busybox_layout(), Some("busybox")).unwrap();
    let resolver = StoreResolver { store: &store, config: Default::default() };
    let node = RuntimeNode::new(config.clone()).unwrap();
    let _teardown = Teardown(&node);
    let gateway = config.pod_cidr.hosts().next().unwrap();
    for i in 0..5 {
        let uid = format!("9a7e-net{i}");
        let pod = pod_of(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: net{i}, namespace: default, uid: {uid}}}\n\
             spec: {{terminationGracePeriodSeconds: 0, containers: [{{name: c, image: busybox:1.35, imagePullPolicy: Never, \
             command: [sh, -c, 'ip -4 -o addr show dev eth0; ip route show default; sleep 600']}}]}}\n"
        ));
        node.run_pod(&pod, &resolver).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (ip, log) = loop {
            let status = node.pod_status(&uid).unwrap();
            let log = node.log_path(&uid, "c", false).and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
            if let Some(ip) = status.pod_ip.clone().filter(|_| log.contains("default")) {
                break (ip, log);
            }
            assert!(Instant::now() < deadline, "no route printed: {status:?}\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(log.contains(&format!("inet {ip}/24")), "eth0 had no address at the start: {log}");
        assert!(log.contains(&format!("default via {gateway}")), "no default route at the start: {log}");
        node.stop_pod(&uid).unwrap();
    }
}

#[test]
fn a_pod_whose_interface_cannot_be_made_waits_with_nothing_left_running() {
    let test = Node::new("nonet");
    let config = node_config(&test, std::process::id() + 43);
    let store = ImageStore::open(test.dir.path().join("images")).unwrap();
    store.import(crate::images::busybox_layout(), Some("busybox")).unwrap();
    let resolver = StoreResolver { store: &store, config: Default::default() };
    let node = RuntimeNode::new(config.clone()).unwrap();
    let _teardown = Teardown(&node);
    // The bridge gone from under the node: netlink refuses the pod's pair.
    let deleted = std::process::Command::new("ip").args(["link", "del", &config.bridge]).status().unwrap();
    assert!(deleted.success());
    let uid = "4b1d-nonet";
    let pod = pod_of(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: nonet, namespace: default, uid: {uid}}}\n\
         spec: {{terminationGracePeriodSeconds: 0, containers: [{{name: c, image: busybox:1.35, imagePullPolicy: Never, command: [sleep, '600']}}]}}\n"
    ));
    let error = node.run_pod(&pod, &resolver).unwrap_err();
    let status = node.pod_status(uid).unwrap();
    assert_eq!(status.phase, Phase::Pending, "{error}");
    match &status.containers[0].state {
        ContainerState::Waiting { reason, message } => {
            assert_eq!(reason, "ContainerCreating");
            assert!(message.as_deref().unwrap_or_default().starts_with("Failed to create pod sandbox: "), "{message:?}");
        }
        other => panic!("not waiting: {other:?}"),
    }
    // The container made meanwhile never ran and is gone, its helper too.
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(!ps.lines().any(|l| l.contains(uid)), "something of the pod still runs:\n{ps}");
    assert!(node.layout().list().unwrap().is_empty(), "containers left: {:?}", node.layout().list());
    let held = std::fs::read_dir(test.dir.path().join("data/ipam")).unwrap().flatten();
    assert_eq!(held.filter(|e| e.file_name().to_string_lossy().parse::<std::net::Ipv4Addr>().is_ok()).count(), 0, "its address was kept");
    for hierarchy in ["memory", "pids", "cpu"] {
        let dir = std::path::Path::new("/sys/fs/cgroup").join(hierarchy).join(&test.cgroup_parent).join(uid);
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    node.stop_pod(uid).unwrap();
    assert!(node.pods().is_empty());
}
