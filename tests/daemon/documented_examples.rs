//! Manifests in the style of Kubernetes' documentation (flow style,
//! trailing commas, comments) that an earlier version refused, misread or
//! accepted only for the node to refuse, taken through `driftless up`.

use std::time::Duration;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use crate::cluster::Cluster;
use crate::ingress::{app, get};

/// A running `driftless port-forward` (or `kubectl port-forward`),
/// stopped on drop.
pub(crate) struct Forward {
    child: Child,
    /// Its first line (`Forwarding from 127.0.0.1:PORT -> REMOTE`).
    pub(crate) line: String,
    /// The local port it listens on.
    pub(crate) port: u16,
}

impl Forward {
    fn start(cluster: &Cluster, args: &[&str]) -> Forward {
        let mut command = Command::new(crate::cluster::binary());
        command.args(args).env("DRIFTLESS_DATA_DIR", &cluster.data);
        Forward::spawn(command)
    }

    /// Runs `command` (a port-forward) until its first line.
    pub(crate) fn spawn(mut command: Command) -> Forward {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim().to_owned();
        // Keep reading its output ("Handling connection for ..."): like
        // kubectl, it dies of SIGPIPE if its reader goes away.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let port = line.strip_prefix("Forwarding from 127.0.0.1:").and_then(|r| r.split(' ').next()).and_then(|p| p.parse().ok()).unwrap_or(0);
        Forward { child, line, port }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HorizontalPodAutoscaler walkthrough's object, in autoscaling/v1.
/// The ConfigMap example of Kubernetes' documentation ("ConfigMaps",
/// concepts/configuration/configmap), as a user would save it.
pub(crate) const GAME_DEMO: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: game-demo
data:
  # property-like keys; each key maps to a simple value
  player_initial_lives: "3"
  ui_properties_file_name: "user-interface.properties"

  # file-like keys
  game.properties: |
    enemy.types=aliens,monsters
    player.maximum-lives=5
  user-interface.properties: |
    color.good=purple
    color.bad=yellow
    allow.textmode=true
"#;

const HPA_V1: &str = "\
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: a
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: a,}
  minReplicas: 1
  maxReplicas: 10
  targetCPUUtilizationPercentage: 50
";

/// go-yaml's `\'` escape, which kubectl accepts.
const CONFIG: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: greeting}
data:
  message: \"it\\'s here\"   # kubectl reads \\' as '
";

/// A resource backend beside a service backend, as in the Ingress docs.
const INGRESS: &str = "\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ingress-resource-backend
spec:
  rules:
    - host: assets.example.test
      http:
        paths:
          - path: /icons
            pathType: ImplementationSpecific
            backend:
              resource: {apiGroup: k8s.example.com, kind: StorageBucket, name: icon-assets}
    - host: a.example.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}
";

/// The seccomp tutorial's audit pod: its Localhost profile cannot load here.
const AUDIT_POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: audit-pod
  labels:
    app: audit-pod
spec:
  securityContext:
    seccompProfile:
      type: Localhost
      localhostProfile: profiles/audit.json
  containers:
  - name: test-container
    image: busybox:1.35
    args: [sleep, '600']
";

#[test]
fn documented_manifests_run_as_the_api_server_reads_them() {
    let mut cluster = Cluster::new(&[("apps/a.yaml", &app("a")), ("apps/hpa.yaml", HPA_V1), ("apps/config.yaml", CONFIG), ("apps/ingress.yaml", INGRESS)]);
    let validated = cluster.cli(&["validate", cluster.repo.join("apps").to_str().unwrap()]);
    let report = String::from_utf8_lossy(&validated.stdout).into_owned() + &String::from_utf8_lossy(&validated.stderr);
    assert!(validated.status.success(), "{report}");
    assert!(report.contains("apps/ingress.yaml:13:") && report.contains("not served by Driftless"), "the resource backend is a warning: {report}");

    cluster.start();
    let pod = cluster.wait_ready("a-", 1, Duration::from_secs(30)).remove(0);

    // autoscaling/v1 is stored and served as v2, converted as the API server converts it.
    let hpa = cluster.get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/a");
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"], serde_json::json!({"type": "Utilization", "averageUtilization": 50}), "{hpa:#}");
    let table = cluster.cli_ok(&["get", "hpa"]);
    assert!(table.lines().any(|l| l.starts_with("a ") && l.contains("Deployment/a")), "{table}");

    let config = cluster.get("/api/v1/namespaces/default/configmaps/greeting");
    assert_eq!(config["data"]["message"], "it's here");

    // The service path is served; the resource backend's path is not.
    let http = cluster.ingress_http.clone();
    cluster.wait_for("the Ingress to route", Duration::from_secs(15), || (get(&http, "a.example.test", "/") == Some((200, "a".to_owned()))).then_some(()));
    assert_eq!(get(&http, "assets.example.test", "/icons").unwrap().0, 404);

    // port-forward to the Service: its port 80 is the pod's named port http (8080).
    let forward = Forward::start(&cluster, &["port-forward", "svc/svc-a", ":80"]);
    assert!(forward.line.ends_with(" -> 8080"), "{}", forward.line);
    assert_eq!(crate::cluster::try_http_get("127.0.0.1", forward.port, "/").as_deref().map(str::trim), Ok("a"));
    drop(forward);
    let pod_name = crate::cluster::name(&pod);
    let forward = Forward::start(&cluster, &["port-forward", &format!("pod/{pod_name}"), ":8080"]);
    assert_eq!(crate::cluster::try_http_get("127.0.0.1", forward.port, "/").as_deref().map(str::trim), Ok("a"));
    drop(forward);
    let wrong = cluster.cli(&["port-forward", "svc/svc-a", ":81"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("Service svc-a does not have a service port 81"), "{wrong:?}");

    // `describe svc` in kubectl's layout: the named target port and the
    // ready pod's address behind the port.
    let endpoints = cluster.cli_ok(&["describe", "endpoints", "svc-a"]);
    assert!(
        endpoints.contains(&format!("  Addresses:          {}\n", crate::cluster::pod_ip(&pod)))
            && endpoints.lines().any(|l| l.split_whitespace().eq(["web", "8080", "TCP"])),
        "{endpoints}"
    );
    let described = cluster.cli_ok(&["describe", "svc", "svc-a"]);
    let ip = crate::cluster::pod_ip(&pod);
    for line in ["Selector:     app=a", "Type:         ClusterIP", "Port:         web  80/TCP", "TargetPort:   http/TCP", &format!("Endpoints:    {ip}:8080")] {
        assert!(described.lines().any(|l| l == line), "no {line:?} in:\n{described}");
    }

    // A Localhost seccomp profile is refused whole, at its line; what runs keeps running.
    cluster.commit(&[("apps/audit.yaml", AUDIT_POD)], "audit pod");
    let status = cluster.wait_for("the refusal", Duration::from_secs(10), || {
        let out = cluster.cli_ok(&["status"]);
        out.contains("Refused:").then_some(out)
    });
    assert!(status.contains("apps/audit.yaml:10:") && status.contains("Localhost"), "{status}");
    assert!(cluster.try_get("/api/v1/namespaces/default/pods/audit-pod").is_err(), "the pod was never created");
    let now = cluster.get(&format!("/api/v1/namespaces/default/pods/{}", crate::cluster::name(&pod)));
    assert_eq!(now["metadata"]["uid"], pod["metadata"]["uid"]);
}

/// "Configure a Pod to Use a Projected Volume for Storage" and the
/// downward API's `resourceFieldRef` pages, in one pod.
const ALL_IN_ONE: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: mysecret
type: Opaque
stringData:
  username: admin
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: myconfigmap
data:
  config: 'log: debug'
---
apiVersion: v1
kind: Pod
metadata:
  name: volume-test
  labels: {zone: us-est-coast, cluster: test-cluster1}
spec:
  containers:
  - name: container-test
    image: busybox:1.35
    command: [\"sleep\", \"3600\"]
    resources:
      limits: {cpu: 250m, memory: 64Mi}
    env:
      - name: MY_CPU_LIMIT
        valueFrom:
          resourceFieldRef:
            containerName: container-test
            resource: limits.cpu
            divisor: 1m
      - name: MY_MEM_REQUEST
        valueFrom:
          resourceFieldRef: {resource: requests.memory, divisor: 1Mi}
    volumeMounts:
    - name: all-in-one
      mountPath: \"/projected-volume\"
      readOnly: true
  volumes:
  - name: all-in-one
    projected:
      sources:
      - secret:
          name: mysecret
          items:
            - key: username
              path: my-group/my-username
      - downwardAPI:
          items:
            - path: \"labels\"
              fieldRef:
                fieldPath: metadata.labels
            - path: \"cpu_limit\"
              resourceFieldRef:
                containerName: container-test
                resource: limits.cpu
                divisor: 1m
      - configMap:
          name: myconfigmap
          items:
            - key: config
              path: my-group/my-config
";

/// Two containers: `logs` and `exec` pick as kubectl does.
const PAIR: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: pair}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: app, image: busybox:1.35, command: [sh, -c, 'echo app; exec sleep 3600']}
  - {name: sidecar, image: busybox:1.35, command: [sh, -c, 'echo sidecar; exec sleep 3600']}
---
apiVersion: v1
kind: Pod
metadata:
  name: chosen
  annotations: {kubectl.kubernetes.io/default-container: sidecar}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: app, image: busybox:1.35, command: [sh, -c, 'echo app; exec sleep 3600']}
  - {name: sidecar, image: busybox:1.35, command: [sh, -c, 'echo sidecar; exec sleep 3600']}
";

/// Probes that cannot pass: a port name the container does not have (which
/// `validate` warns about), and a page that is not there.
const PROBED: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox:1.35
    command: [httpd, -f, -p, '8080', -h, /etc]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: metrics}, periodSeconds: 1}
  - name: side
    image: busybox:1.35
    command: [httpd, -f, -p, '9090', -h, /etc]
    readinessProbe:
      httpGet:
        path: /missing
        port: 9090
        httpHeaders: [{name: X-Probe, value: driftless}]
      periodSeconds: 1
";

#[test]
fn a_projected_volume_gathers_secret_config_and_downward_files() {
    let mut cluster = Cluster::new(&[("apps/pod.yaml", ALL_IN_ONE), ("apps/pair.yaml", PAIR), ("apps/probed.yaml", PROBED)]);
    cluster.start();
    cluster.wait_ready("volume-test", 1, Duration::from_secs(30));
    let cat = |path: &str| cluster.cli_ok(&["exec", "volume-test", "--", "cat", &format!("/projected-volume/{path}")]);
    assert_eq!(cat("my-group/my-username"), "admin");
    assert_eq!(cat("my-group/my-config"), "log: debug");
    assert_eq!(cat("labels"), "cluster=\"test-cluster1\"\nzone=\"us-est-coast\"");
    assert_eq!(cat("cpu_limit"), "250");
    let env = cluster.cli_ok(&["exec", "volume-test", "--", "env"]);
    assert!(env.lines().any(|l| l == "MY_CPU_LIMIT=250"), "{env}");
    // Requests default to the limits, as the API server defaults them.
    assert!(env.lines().any(|l| l == "MY_MEM_REQUEST=64"), "{env}");

    // The first container, with kubectl's note; or the annotated one, quietly.
    cluster.wait_ready("pair", 1, Duration::from_secs(30));
    cluster.wait_ready("chosen", 1, Duration::from_secs(30));
    let logs = cluster.cli(&["logs", "pair"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout).trim(), "app");
    assert_eq!(String::from_utf8_lossy(&logs.stderr).trim(), "Defaulted container \"app\" out of: app, sidecar");
    let logs = cluster.cli(&["logs", "chosen"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout).trim(), "sidecar");
    assert!(logs.stderr.is_empty(), "{}", String::from_utf8_lossy(&logs.stderr));
    assert_eq!(cluster.cli_ok(&["exec", "chosen", "--", "hostname"]).trim(), "chosen");
    assert_eq!(cluster.cli_ok(&["logs", "pair", "-c", "sidecar"]).trim(), "sidecar");

    // Probes that cannot pass keep the pod out of service, and say why.
    let described = cluster.wait_for("the probes' events", Duration::from_secs(30), || {
        let text = cluster.cli_ok(&["describe", "pod", "probed"]);
        (text.contains("Readiness probe errored and resulted in unknown state: strconv.Atoi: parsing \"metrics\": invalid syntax")
            && text.contains("Readiness probe failed: HTTP probe failed with statuscode: 404"))
        .then_some(text)
    });
    let pod = cluster.get("/api/v1/namespaces/default/pods/probed");
    assert!(!crate::cluster::is_ready(&pod), "{described}");
}
