//! Changes Kubernetes cannot make in place, reviewed and applied: for each
//! one, `driftless plan` on the commit says exactly what the running
//! daemon then does with it (refuses it at the same lines, or replaces the
//! object), and a refused commit harms nothing that runs.

use std::time::Duration;

use crate::cluster::{Cluster, name, web};

const STORAGE: &str = "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
provisioner: driftless.dev/local-path
reclaimPolicy: Delete
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  storageClassName: fast
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 2Gi
";

/// A volume nothing claims (its class is one no claim asks for).
const VOLUME: &str = "apiVersion: v1
kind: PersistentVolume
metadata:
  name: archive
spec:
  storageClassName: manual
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath:
    path: /srv/archive
";

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: frozen
immutable: true
data:
  level: info
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
type: Opaque
stringData:
  password: hunter2
";

const DB: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: busybox:1.35
        command: [sleep, '3600']
";

const SOLO: &str = "apiVersion: v1
kind: Pod
metadata:
  name: solo
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.35
    command: [sleep, '3600']
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
";

/// The error lines of a refusal as `driftless plan` prints them.
fn plan_errors(cluster: &Cluster) -> Vec<String> {
    let repo = cluster.repo.to_str().unwrap();
    let out = cluster.cli(&["plan", "--repo", repo, "--from", "HEAD~1", "--to", "HEAD", "--path", "apps"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "the plan refuses the commit: {text}");
    assert!(text.contains("changes fields Kubernetes cannot change in place"), "{text}");
    text.lines().filter(|l| l.contains(": error: ")).map(str::to_owned).collect()
}

/// The error lines the daemon recorded for the commit at HEAD.
fn daemon_errors(cluster: &Cluster, head: &str) -> Vec<String> {
    cluster.wait_for("the daemon's refusal", Duration::from_secs(20), || {
        let ledger = cluster.git(&["log", "-1", "--format=%B", "refs/driftless/applied"]);
        let refused = ledger.starts_with("refused") && ledger.contains(&format!("Source-Commit: {head}"));
        refused.then(|| ledger.lines().filter_map(|l| l.strip_prefix("Error: ")).map(str::to_owned).collect())
    })
}

/// Commits a change the API server would refuse, checks that the plan
/// and the daemon refuse it alike, then reverts it.
fn refused_alike(cluster: &Cluster, file: &str, text: &str, message: &str, expected: &[&str]) {
    let head = cluster.commit(&[(file, text)], message);
    let planned = plan_errors(cluster);
    let applied = daemon_errors(cluster, &head);
    assert_eq!(planned, applied, "the plan and the daemon disagree on {message:?}");
    for want in expected {
        assert!(planned.iter().any(|e| e.contains(want)), "{message:?}: no error with {want:?} in {planned:#?}");
    }
    cluster.git(&["revert", "--no-edit", "HEAD"]);
    let reverted = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();
    cluster.wait_for("the revert", Duration::from_secs(20), || {
        let ledger = cluster.git(&["log", "-1", "--format=%B", "refs/driftless/applied"]);
        (ledger.starts_with("applied") && ledger.contains(&format!("Source-Commit: {reverted}"))).then_some(())
    });
}

/// The plan's heading for one object, as `driftless plan` prints it.
fn planned(cluster: &Cluster, object: &str) -> String {
    let repo = cluster.repo.to_str().unwrap();
    let text = cluster.cli_ok(&["plan", "--repo", repo, "--from", "HEAD~1", "--to", "HEAD", "--path", "apps", "--color", "never"]);
    text.lines().find(|l| l.contains(object)).unwrap_or_else(|| panic!("{object} is not in the plan: {text}")).to_owned()
}

#[test]
fn immutable_fields_are_refused_by_the_plan_and_the_daemon_alike_and_replacements_are_made() {
    let mut cluster = Cluster::new(&[
        ("apps/web.yaml", &web(1, "1", "{type: RollingUpdate}")),
        ("apps/storage.yaml", STORAGE),
        ("apps/config.yaml", CONFIG),
        ("apps/db.yaml", DB),
        ("apps/solo.yaml", SOLO),
        ("apps/svc.yaml", SERVICE),
        ("apps/volume.yaml", VOLUME),
    ]);
    cluster.start();
    cluster.wait_ready("web-", 1, Duration::from_secs(60));
    cluster.wait_ready("db-0", 1, Duration::from_secs(60));
    let solo = cluster.wait_ready("solo", 1, Duration::from_secs(60));
    let web_before: Vec<String> = cluster.pods().iter().map(name).filter(|n| n.starts_with("web-")).collect();

    // A Deployment's selector (its template's labels follow, so the
    // manifest itself is valid).
    let relabelled = web(1, "1", "{type: RollingUpdate}").replace("{app: web}", "{app: web, tier: front}");
    refused_alike(&cluster, "apps/web.yaml", &relabelled, "relabel web", &["apps/web.yaml:8:3:", "Deployment/web: spec.selector: field is immutable"]);
    // A StatefulSet's service name.
    refused_alike(
        &cluster,
        "apps/db.yaml",
        &DB.replace("serviceName: db", "serviceName: db2"),
        "rename db's service",
        &["apps/db.yaml:6:", "StatefulSet/db: spec.serviceName: updates to statefulset spec for fields other than"],
    );
    // A claim's access modes, and shrinking it.
    refused_alike(
        &cluster,
        "apps/storage.yaml",
        &STORAGE.replace("[ReadWriteOnce]", "[ReadWriteMany]"),
        "share data",
        &["PersistentVolumeClaim/data: spec.accessModes: spec is immutable after creation"],
    );
    refused_alike(
        &cluster,
        "apps/storage.yaml",
        &STORAGE.replace("storage: 2Gi", "storage: 1Gi"),
        "shrink data",
        &["PersistentVolumeClaim/data: spec.resources.requests.storage: field can not be less than previous value"],
    );
    // A volume's source; its reclaim policy may change.
    refused_alike(
        &cluster,
        "apps/volume.yaml",
        &VOLUME.replace("/srv/archive", "/srv/archive2"),
        "move the archive",
        &["apps/volume.yaml:10:3:", "PersistentVolume/archive: spec.hostPath: spec.persistentvolumesource is immutable after creation"],
    );
    // A StorageClass's provisioner.
    refused_alike(
        &cluster,
        "apps/storage.yaml",
        &STORAGE.replace("provisioner: driftless.dev/local-path", "provisioner: example.com/nfs"),
        "move fast",
        &["apps/storage.yaml:5:", "StorageClass/fast: provisioner: updates to provisioner are forbidden."],
    );
    // An immutable ConfigMap's data, and a Secret's type.
    refused_alike(
        &cluster,
        "apps/config.yaml",
        &CONFIG.replace("level: info", "level: debug"),
        "debug logs",
        &["apps/config.yaml:6:", "ConfigMap/frozen: data: field is immutable when `immutable` is set"],
    );
    refused_alike(
        &cluster,
        "apps/config.yaml",
        &CONFIG.replace("type: Opaque", "type: example.com/creds"),
        "retype creds",
        &["Secret/creds: type: field is immutable"],
    );
    // Nothing of any of it touched what runs.
    let web_after: Vec<String> = cluster.pods().iter().map(name).filter(|n| n.starts_with("web-")).collect();
    assert_eq!(web_before, web_after);

    // Growing the claim, and a volume's reclaim policy, change in place.
    cluster.commit(&[("apps/volume.yaml", &VOLUME.replace("Retain", "Delete"))], "let the archive go");
    assert!(planned(&cluster, "PersistentVolume archive").contains("(update, in place)"));
    cluster.wait_for("the new policy", Duration::from_secs(20), || {
        let volume = cluster.get("/api/v1/persistentvolumes/archive");
        (volume.pointer("/spec/persistentVolumeReclaimPolicy").and_then(|s| s.as_str()) == Some("Delete")).then_some(())
    });
    cluster.commit(&[("apps/storage.yaml", &STORAGE.replace("storage: 2Gi", "storage: 3Gi"))], "grow data");
    assert!(planned(&cluster, "PersistentVolumeClaim default/data").contains("(update, in place)"));
    cluster.wait_for("the claim to grow", Duration::from_secs(20), || {
        let claim = cluster.get("/api/v1/namespaces/default/persistentvolumeclaims/data");
        (claim.pointer("/spec/resources/requests/storage").and_then(|s| s.as_str()) == Some("3Gi")).then_some(())
    });

    // A pod's spec and a Service's address change by replacement, as the
    // plan says.
    let solo_uid = solo[0]["metadata"]["uid"].as_str().unwrap().to_owned();
    let service_uid = cluster.get("/api/v1/namespaces/default/services/web")["metadata"]["uid"].as_str().unwrap().to_owned();
    cluster.commit(
        &[("apps/solo.yaml", &SOLO.replace("'3600'", "'3601'")), ("apps/svc.yaml", &SERVICE.replace("spec:\n", "spec:\n  clusterIP: None\n"))],
        "replace",
    );
    assert!(planned(&cluster, "Pod default/solo").contains("(replace: a pod's spec cannot change in place"));
    assert!(planned(&cluster, "Service default/web").contains("(replace: spec.clusterIP cannot change in place (an allocated address → None)"));
    cluster.wait_for("the new pod", Duration::from_secs(60), || {
        let pod = cluster.try_get("/api/v1/namespaces/default/pods/solo").ok()?;
        (pod["metadata"]["uid"].as_str() != Some(&solo_uid) && pod.pointer("/status/phase").and_then(|p| p.as_str()) == Some("Running")).then_some(())
    });
    let service = cluster.get("/api/v1/namespaces/default/services/web");
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_ne!(service["metadata"]["uid"].as_str(), Some(service_uid.as_str()));
    let ledger = cluster.git(&["log", "-1", "--format=%B", "refs/driftless/applied"]);
    assert!(ledger.contains("Action: replace Pod default/solo (replaces)") && ledger.contains("Action: replace Service default/web (replaces)"), "{ledger}");
}
