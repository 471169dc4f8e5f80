//! The pod worker on real containers: readiness that follows a probe, and
//! a container whose liveness fails, restarted with kubelet's back-off.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use driftless_image::ImageStore;
use driftless_runtime::Sandbox;
use driftless_runtime::lifecycle::phase::{Phase, RestartPolicy};
use driftless_runtime::lifecycle::probe::ProbeSettings;
use driftless_runtime::network::{Bridge, PodInterface, route_exists};
use driftless_runtime::pod::worker::{self, Placement};
use driftless_runtime::pod::{ContainerRequest, ContainerState, PodRequest, Probe, ProbeAction};

use crate::pod::{Netlink, PodCleanup};
use crate::{DEADLINE, Node};

fn fast(failure_threshold: u32) -> ProbeSettings {
    ProbeSettings { period: Duration::from_millis(200), failure_threshold, ..Default::default() }
}

fn wait_for(what: &str, status: impl Fn() -> String, mut check: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {}", status());
        std::thread::sleep(Duration::from_millis(20));
    }
    Instant::now()
}

#[test]
fn readiness_follows_the_probe_and_failed_liveness_restarts_with_back_off() {
    let node = Node::new("worker");
    let (bridge_name, cidr, ipam) = crate::pod::own_network(&node, "w", 150);
    let sandbox_dir = node.dir.path().join("pods/pod-w/ns");
    let _cleanup = PodCleanup {
        node: &node,
        containers: vec![],
        sandbox: Sandbox::at(&sandbox_dir),
        host_veth: PodInterface::host_name("default/pod-w"),
        bridge: bridge_name.clone(),
    };
    let net = Netlink::new();
    let bridge = net.run(Bridge::ensure(&net.handle, &bridge_name, cidr, ipam.gateway())).unwrap();
    assert!(route_exists(cidr, &bridge_name).unwrap(), "{cidr} is not routed to {bridge_name}");
    let sandbox = Sandbox::create(&sandbox_dir, "pod-w").unwrap();
    let ip = ipam.allocate("default/pod-w").unwrap();
    net.run(PodInterface::attach(&bridge, &sandbox.namespace("net"), "default/pod-w", ip)).unwrap();

    let store = ImageStore::open(node.dir.path().join("data")).unwrap();
    store.import(crate::images::busybox_layout(), Some("busybox")).unwrap();
    let image = store.resolve("busybox:1.35").unwrap();
    let layers = image.layers.clone();
    let container = |name: &str, script: &str| ContainerRequest {
        name: name.into(),
        layers: layers.clone(),
        image_id: image.id(),
        args: vec!["sh".into(), "-c".into(), script.into()],
        // The image's environment, as a pod gets it (busybox links live in
        // /bin, /sbin, /usr/bin and /usr/sbin).
        env: image.config.env.clone(),
        cwd: "/".into(),
        memory_limit: None,
        cpu_quota: None,
        uid: 0,
        gid: 0,
        read_only_root: false,
        capabilities: None,
        seccomp: Default::default(),
        no_new_privileges: false,
        privileged: false,
        mounts: vec![],
        startup: None,
        liveness: None,
        readiness: None,
    };
    let mut web = container("web", "exec httpd -f -p 8080 -h /www");
    web.readiness = Some(Probe { action: ProbeAction::Exec(vec!["test".into(), "-f".into(), "/tmp/ready".into()]), settings: fast(1) });
    web.liveness = Some(Probe { action: ProbeAction::HttpGet { https: false, host: None, port: 8080, path: "/".into(), headers: vec![] }, settings: fast(3) });
    let mut crasher = container("crasher", "exec sleep 600");
    crasher.liveness = Some(Probe { action: ProbeAction::TcpSocket { host: None, port: 9999 }, settings: fast(1) });
    let request = PodRequest {
        uid: "pod-w".into(),
        hostname: "pod-w".into(),
        restart_policy: RestartPolicy::Always,
        containers: vec![web, crasher],
        grace: Duration::from_secs(2),
    };
    let placement = Placement { sandbox: sandbox_dir.clone(), ip: Some(IpAddr::V4(ip)), cgroup_parent: format!("/{}/pod-w", node.cgroup_parent) };
    // The pod worker's task runs on a runtime as the node's does.
    let tasks = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let pod = worker::start(tasks.handle(), node.layout.clone(), placement, request, Default::default());

    // Without a readiness probe, ready the moment it runs: no status
    // shows it running and not ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    let crasher = loop {
        let status = pod.status();
        if matches!(status.containers[1].state, ContainerState::Running { .. }) {
            break status.containers[1].clone();
        }
        assert!(Instant::now() < deadline, "crasher never ran: {status:?}");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(crasher.ready, "running and not ready: {crasher:?}");

    // Running, but not ready until its readiness probe passes.
    wait_for("web running", || format!("{:?}", pod.status()), || matches!(pod.status().containers[0].state, ContainerState::Running { .. }));
    assert!(!pod.status().containers[0].ready);
    assert_eq!(pod.status().phase, Phase::Running);
    let web_id = |instance: u32| format!("pod-w-web-{instance}");
    let exec = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        node.layout.exec(&web_id(0), &args).status().unwrap()
    };
    assert!(exec(&["touch", "/tmp/ready"]).success());
    wait_for("web ready", || format!("{:?}", pod.status()), || pod.status().containers[0].ready);
    assert!(exec(&["rm", "/tmp/ready"]).success());
    wait_for("web not ready", || format!("{:?}", pod.status()), || !pod.status().containers[0].ready);
    assert_eq!(pod.status().containers[0].restart_count, 0, "readiness never restarts");

    // Liveness fails at once: killed and restarted at once the first time,
    // then after kubelet's 10 s back-off, shown as CrashLoopBackOff.
    let first = wait_for("first restart", || format!("{:?}", pod.status()), || pod.status().containers[1].restart_count >= 1);
    let mut saw_backoff = false;
    let second = wait_for(
        "second restart",
        || format!("{:?}", pod.status()),
        || {
            let status = pod.status();
            saw_backoff |= status.containers[1].state == ContainerState::Waiting { reason: "CrashLoopBackOff".into(), message: None };
            status.containers[1].restart_count >= 2
        },
    );
    let gap = second.duration_since(first);
    assert!(gap >= Duration::from_secs(9), "second restart came after {gap:?}, not after the 10 s back-off");
    assert!(gap < Duration::from_secs(20), "{gap:?}");
    assert!(saw_backoff, "CrashLoopBackOff was never reported");
    let last = pod.status().containers[1].last_termination.clone().unwrap();
    assert_eq!(last, (137, "Error".to_owned()));
    // The previous instance's log is kept; older ones are not.
    let kept: Vec<String> = node.layout.list().unwrap().into_iter().map(|(id, _)| id).filter(|id| id.contains("crasher")).collect();
    assert_eq!(kept.len(), 2, "current and previous instance: {kept:?}");
    assert_eq!(pod.status().phase, Phase::Running);

    pod.stop();
    let left = node.layout.list().unwrap();
    assert!(left.is_empty(), "stopping the pod removes its containers: {left:?}");
    let _ = DEADLINE;
}

/// A resolver over a real image store and in-memory ConfigMaps.
pub(crate) struct StoreResolver<'a> {
    pub(crate) store: &'a ImageStore,
    pub(crate) config: std::collections::BTreeMap<String, Vec<u8>>,
}

impl driftless_runtime::podspec::Resolve for StoreResolver<'_> {
    fn image(
        &self,
        reference: &str,
        _policy: &str,
        _: Option<&driftless_runtime::podspec::pull_secrets::Credentials>,
    ) -> Result<driftless_runtime::podspec::ResolvedImage, String> {
        let image = self.store.resolve(reference).map_err(|e| e.to_string())?;
        Ok(driftless_runtime::podspec::ResolvedImage {
            id: image.id(),
            layers: image.layers,
            entrypoint: image.config.entrypoint,
            cmd: image.config.cmd,
            env: image.config.env,
            working_dir: image.config.working_dir,
        })
    }
    fn config_map(&self, _ns: &str, name: &str) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
        (name == "web-config").then(|| self.config.clone())
    }
    fn secret(&self, _ns: &str, _name: &str) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
        None
    }
    fn claim(&self, _ns: &str, _name: &str) -> Option<std::path::PathBuf> {
        None
    }
}

#[test]
fn a_kubernetes_pod_manifest_runs_with_its_environment_files_and_dns_settings() {
    let node = Node::new("podspec");
    let store = ImageStore::open(node.dir.path().join("data")).unwrap();
    store.import(crate::images::busybox_layout(), Some("busybox")).unwrap();
    let manifest = "\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
  - name: main
    image: busybox:1.35
    imagePullPolicy: Never
    command: [sh, -c, 'echo greeting=$GREETING; cat /etc/app/index.html; cat /etc/resolv.conf; hostname; echo $(GREETING)-expanded']
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: web-config, key: greeting}}
    volumeMounts: [{name: www, mountPath: /etc/app}]
  volumes:
  - {name: www, configMap: {name: web-config}}
  restartPolicy: Never
";
    let value: serde_json::Value = serde_yaml_ng::from_str(manifest).unwrap();
    let driftless_model::Object::Pod(pod) = driftless_model::Object::parse(&value).unwrap() else { unreachable!() };
    let resolver = StoreResolver {
        store: &store,
        config: [("greeting".to_owned(), b"hello".to_vec()), ("index.html".to_owned(), b"<p>from a configmap</p>\n".to_vec())].into(),
    };
    let pod_dir = node.dir.path().join("pods/web");
    let identity = driftless_runtime::podspec::PodIdentity { uid: "pod-spec".into(), ip: None };
    let request =
        driftless_runtime::podspec::translate(&pod, &identity, &driftless_runtime::podspec::PodDirs::under(&pod_dir), &Default::default(), &resolver).unwrap();

    let sandbox_dir = pod_dir.join("ns");
    let sandbox = Sandbox::create(&sandbox_dir, &request.hostname).unwrap();
    struct RemoveSandbox(Sandbox);
    impl Drop for RemoveSandbox {
        fn drop(&mut self) {
            let _ = self.0.remove();
        }
    }
    let _sandbox = RemoveSandbox(sandbox);
    let placement = Placement { sandbox: sandbox_dir, ip: None, cgroup_parent: format!("/{}/pod-spec", node.cgroup_parent) };
    // The pod worker's task runs on a runtime as the node's does.
    let tasks = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let pod = worker::start(tasks.handle(), node.layout.clone(), placement, request, Default::default());
    wait_for("the pod to finish", || format!("{:?}", pod.status()), || pod.status().phase == Phase::Succeeded);
    let log = std::fs::read_to_string(node.dir.path().join("node/containers/pod-spec-main-0/container.log")).unwrap_or_default();
    let out: Vec<&str> = log.lines().filter_map(|l| l.splitn(4, ' ').nth(3)).collect();
    assert_eq!(
        out,
        [
            "greeting=hello",
            "<p>from a configmap</p>",
            "nameserver 10.96.0.10",
            "search shop.svc.cluster.local svc.cluster.local cluster.local",
            "options ndots:5",
            "web",
            "hello-expanded",
        ],
        "{log}"
    );
    assert_eq!(pod.status().containers[0].state, ContainerState::Terminated { exit_code: 0, reason: "Completed".into() });
    pod.stop();
    assert!(node.layout.list().unwrap().is_empty(), "stopping the pod removes its containers and logs");
}
