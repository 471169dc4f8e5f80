//! The node facade the control plane calls: a Kubernetes Pod in, a pod
//! served on its own address out, and nothing left after it stops.

use std::time::{Duration, Instant};

use driftless_image::ImageStore;
use driftless_runtime::node::{Node as RuntimeNode, NodeConfig, PodRuntime};
use driftless_runtime::podspec::NodeSettings;

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
    let config = NodeConfig {
        data_dir: test.dir.path().join("data"),
        shim: env!("CARGO_BIN_EXE_driftless-shim").into(),
        bridge: format!("dln{}", id % 100_000),
        pod_cidr: format!("10.244.{}.0/24", 100 + id % 50).parse().unwrap(),
        cgroup_root: format!("/{}", test.cgroup_parent),
        settings: NodeSettings::default(),
    };
    let node = RuntimeNode::new(config.clone()).unwrap();
    let _teardown = Teardown(&node);
    assert!(driftless_runtime::network::route_exists(config.pod_cidr, &config.bridge).unwrap());

    let store = ImageStore::open(test.dir.path().join("images")).unwrap();
    store.import(crate::images::busybox_layout(), Some("busybox")).unwrap();
    let resolver = StoreResolver {
        store: &store,
        config: [("index.html".to_owned(), b"<p>served by driftless</p>\n".to_vec())].into(),
    };
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

    node.stop_pod("3f1c0a5e-web").unwrap();
    assert!(node.pods().is_empty());
    assert!(node.layout().list().unwrap().is_empty(), "no container is left");
    assert!(!test.dir.path().join("data/pods/3f1c0a5e-web").exists(), "the pod's folder is gone");
    assert!(std::fs::read_dir(test.dir.path().join("data/ipam")).unwrap().next().is_none(), "its address is released");
}

fn ureq_get(url: &str) -> String {
    let mut response = ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response.body_mut().read_to_string().unwrap()
}
