//! A StatefulSet from git: pods start in ordinal order, each after the one
//! before is Ready; scale down removes the highest ordinal first, one at a
//! time; claims outlive their pods and are reattached on scale up.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, is_ready, name};

fn manifests(replicas: u32) -> String {
    format!(
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {{storageclass.kubernetes.io/is-default-class: \"true\"}}
provisioner: driftless.dev/local-path
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  replicas: {replicas}
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:1.35
        command: [httpd, -f, -p, '8080', -h, /data]
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
"
    )
}

fn ordinal(pod: &Value) -> u32 {
    name(pod).trim_start_matches("db-").parse().unwrap()
}

#[test]
fn ordered_start_ordered_scale_down_and_claims_that_come_back() {
    let mut cluster = Cluster::new(&[("apps/db.yaml", &manifests(3))]);
    cluster.start();
    let mut pods: BTreeMap<u32, Value> = BTreeMap::new();
    cluster.watch("/api/v1/namespaces/default/pods", Duration::from_secs(60), |kind, pod| {
        let n = ordinal(pod);
        if kind == "ADDED" {
            for before in 0..n {
                assert!(pods.get(&before).is_some_and(is_ready), "db-{n} was created before db-{before} was ready");
            }
        }
        pods.insert(n, pod.clone());
        (pods.len() == 3 && pods.values().all(is_ready)).then_some(())
    });
    assert_eq!(cluster.cli_ok(&["exec", "db-1", "--", "hostname"]).trim(), "db-1");
    let claims = cluster.list("/api/v1/namespaces/default/persistentvolumeclaims");
    let names: Vec<String> = claims.iter().map(name).collect();
    assert_eq!(names, ["data-db-0", "data-db-1", "data-db-2"]);
    assert!(claims.iter().all(|c| c["status"]["phase"] == "Bound"), "each claim got a provisioned volume");
    cluster.cli_ok(&["exec", "db-1", "--", "sh", "-c", "echo kept > /data/marker"]);

    cluster.commit(&[("apps/db.yaml", &manifests(1))], "db: 1 replica");
    let mut deleted = Vec::new();
    let mut deleting = Vec::new();
    cluster.watch("/api/v1/namespaces/default/pods", Duration::from_secs(60), |kind, pod| {
        let n = ordinal(pod);
        if kind == "DELETED" {
            deleted.push(n);
        } else if pod.pointer("/metadata/deletionTimestamp").is_some() && !deleting.contains(&n) {
            if n == 1 {
                assert!(deleted.contains(&2), "db-1 went before db-2 was gone");
            }
            deleting.push(n);
        }
        (deleted.len() == 2).then_some(())
    });
    assert_eq!(deleted, [2, 1], "the highest ordinal goes first");
    assert_eq!(cluster.list("/api/v1/namespaces/default/persistentvolumeclaims").len(), 3, "claims are kept");

    cluster.commit(&[("apps/db.yaml", &manifests(2))], "db: 2 replicas");
    cluster.wait_ready("db-", 2, Duration::from_secs(60));
    assert_eq!(cluster.cli_ok(&["exec", "db-1", "--", "cat", "/data/marker"]).trim(), "kept", "db-1 got its volume back");
    let table = cluster.cli_ok(&["get", "sts"]);
    assert!(table.lines().nth(1).unwrap().split_whitespace().take(2).eq(["db", "2/2"]), "{table}");
}
