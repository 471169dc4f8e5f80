//! Claims bind to the smallest declared volume that fits them, and a pod
//! writes through its claim into that volume's directory.

use std::time::Duration;

use crate::cluster::{Cluster, name};

#[test]
fn a_claim_binds_the_smallest_volume_that_fits_and_a_pod_writes_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small"), dir.path().join("big"));
    let volumes = format!(
        "apiVersion: v1
kind: PersistentVolume
metadata: {{name: huge}}
spec: {{capacity: {{storage: 50Gi}}, accessModes: [ReadWriteOnce], hostPath: {{path: {big}}}, storageClassName: manual}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: small}}
spec: {{capacity: {{storage: 1Gi}}, accessModes: [ReadWriteOnce], hostPath: {{path: {small}}}, storageClassName: manual}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: fits}}
spec: {{capacity: {{storage: 5Gi}}, accessModes: [ReadWriteOnce], hostPath: {{path: {fits}}}, storageClassName: manual}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec: {{storageClassName: manual, accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 2Gi}}}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: writer}}
spec:
  containers:
  - name: c
    image: busybox:1.35
    command: [sh, -c, 'echo written-through-the-claim > /data/proof && exec sleep 600']
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: data}}
",
        big = big.display(),
        small = small.display(),
        fits = dir.path().join("fits").display(),
    );
    let mut cluster = Cluster::new(&[("apps/storage.yaml", &volumes)]);
    cluster.start();
    let claim = cluster.wait_for("the claim to bind", Duration::from_secs(20), || {
        let claim = cluster.try_get("/api/v1/namespaces/default/persistentvolumeclaims/data").ok()?;
        (claim["status"]["phase"] == "Bound").then_some(claim)
    });
    assert_eq!(claim["spec"]["volumeName"], "fits", "the smallest volume with enough room");
    assert_eq!(claim["status"]["capacity"]["storage"], "5Gi");
    let pv = cluster.get("/api/v1/persistentvolumes/fits");
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["claimRef"]["name"], "data");
    assert_eq!(cluster.get("/api/v1/persistentvolumes/small")["status"]["phase"], "Available");
    let proof = dir.path().join("fits/proof");
    cluster.wait_for("the pod's write", Duration::from_secs(30), || std::fs::read_to_string(&proof).ok());
    assert_eq!(std::fs::read_to_string(&proof).unwrap().trim(), "written-through-the-claim");
    let table = cluster.cli_ok(&["get", "pvc"]);
    assert!(table.lines().nth(1).unwrap().split_whitespace().take(4).eq(["data", "Bound", "fits", "5Gi"]), "{table}");
    assert!(cluster.pods().iter().any(|p| name(p) == "writer"));

    // describe in kubectl's layouts, not a YAML dump.
    let claim = cluster.cli_ok(&["describe", "pvc", "data"]);
    for line in ["Status:        Bound", "Volume:        fits", "Capacity:      5Gi", "Access Modes:  RWO", "Used By:       writer"] {
        assert!(claim.lines().any(|l| l == line), "no {line:?} in:\n{claim}");
    }
    let volume = cluster.cli_ok(&["describe", "pv", "fits"]);
    for line in ["Claim:           default/data", "Reclaim Policy:  Retain", "    Type:          HostPath (bare host directory volume)"] {
        assert!(volume.lines().any(|l| l == line), "no {line:?} in:\n{volume}");
    }
}
