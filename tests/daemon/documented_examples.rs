//! Manifests in the style of Kubernetes' documentation (flow style,
//! trailing commas, comments) that an earlier version refused, misread or
//! accepted only for the node to refuse, taken through `driftless up`.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::ingress::{app, get};

/// The HorizontalPodAutoscaler walkthrough's object, in autoscaling/v1.
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
