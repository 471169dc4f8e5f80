//! A full disk: the data folder on a tmpfs of its own, filled by a file
//! while the daemon runs. A commit made meanwhile is applied not at all
//! (never half) and the status says why, or, with the store on etcd, is
//! applied and the pods it adds say why they cannot start; the running pods
//! serve on (one of them writing a log that cannot grow), and everything
//! converges once space returns. Container logs are cut by rotation.

use std::io::Write;
use std::time::Duration;

use crate::cluster::{Cluster, http_get, is_ready, name, pod_ip, web};

const ROLLING: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";

const SETTINGS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue}
";

/// A pod that writes a numbered line every millisecond or so, for ever.
const CHATTY: &str = "apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.35
    command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo \"line $i of a container that never stops talking\"; done']
";

/// Writes zeros into `path` until the file system is full.
fn fill(path: &std::path::Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..4096 {
        if file.write_all(&chunk).is_err() {
            return;
        }
    }
    panic!("the small disk never filled");
}

#[test]
fn a_full_disk_applies_nothing_half_and_everything_once_space_returns() {
    let mut cluster = Cluster::on_small_disk(&[("apps/web.yaml", &web(1, "1", ROLLING)), ("apps/chatty.yaml", CHATTY)], "160m");
    cluster.start();
    let pods = cluster.wait_ready("web-", 1, Duration::from_secs(60));
    let filler = cluster.data.join("filler");
    fill(&filler);

    // A commit while the disk is full: three replicas and a ConfigMap.
    let head = cluster.commit(&[("apps/web.yaml", &web(3, "1", ROLLING)), ("apps/settings.yaml", SETTINGS)], "web to 3 on a full disk");
    if crate::cluster::on_etcd() {
        // The store is elsewhere: the commit is applied, and the new pods
        // cannot be made on this node's disk; they say why.
        let described = cluster.wait_for("a new pod's sandbox failure in its events", Duration::from_secs(30), || {
            let pending = cluster.pods().into_iter().find(|p| name(p).starts_with("web-") && !is_ready(p))?;
            let described = cluster.cli_ok(&["describe", "pod", &name(&pending)]);
            described
                .lines()
                .any(|l| l.contains("Warning") && l.contains("FailedCreatePodSandBox") && l.contains("No space left on device"))
                .then_some(described)
        });
        assert!(described.contains("ContainerCreating"), "{described}");
    } else {
        let status = cluster.wait_for("status to say the store cannot write", Duration::from_secs(30), || {
            let status = cluster.cli_ok(&["status"]);
            status.contains("Store:       cannot write:").then_some(status)
        });
        assert!(status.contains("full"), "{status}");
        // Nothing of it is applied: no ConfigMap, the Deployment as it was.
        assert!(cluster.try_get("/api/v1/namespaces/default/configmaps/settings").is_err(), "nothing applied half");
        let deployment = cluster.get("/apis/apps/v1/namespaces/default/deployments/web");
        assert_eq!(deployment["spec"]["replicas"], 1, "{deployment}");
        assert!(!status.contains(&head[..7]), "the full-disk commit is not running: {status}");
    }
    // The pod that was running serves on; so does the chatty one, though
    // its log cannot grow.
    assert_eq!(http_get(&pod_ip(&pods[0]), 8080, "/").unwrap().trim(), "version 1");
    let chatty = cluster.pods().into_iter().find(|p| name(p) == "chatty").unwrap();
    assert!(is_ready(&chatty), "{chatty}");

    // Space returns: the commit is applied whole, once.
    std::fs::remove_file(&filler).unwrap();
    cluster.wait_ready("web-", 3, Duration::from_secs(60));
    cluster.wait_for("the ConfigMap", Duration::from_secs(30), || cluster.try_get("/api/v1/namespaces/default/configmaps/settings").ok());
    let status = cluster.wait_for("status to run the head, with no store error", Duration::from_secs(30), || {
        let status = cluster.cli_ok(&["status"]);
        (status.contains(&format!("Running:     {}", &head[..7])) && !status.contains("Store:")).then_some(status)
    });
    assert!(!status.contains("Error:"), "{status}");
    let history = cluster.cli_ok(&["history"]);
    assert_eq!(history.lines().filter(|l| l.contains("web to 3 on a full disk")).count(), 1, "applied once: {history}");

    // The chatty container's log is cut by rotation: at most 5 files of
    // about 10 MiB, whatever it writes.
    let uid = chatty.pointer("/metadata/uid").and_then(serde_json::Value::as_str).unwrap().to_owned();
    let logs = cluster.data.join("node");
    let sizes = || -> Vec<u64> {
        let mut sizes = Vec::new();
        let mut pending = vec![logs.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let meta = entry.metadata().unwrap();
                if meta.is_dir() {
                    pending.push(entry.path());
                } else if entry.path().to_string_lossy().contains(&uid) && entry.file_name().to_string_lossy().starts_with("container.log") {
                    sizes.push(meta.len());
                }
            }
        }
        sizes
    };
    cluster.wait_for("the chatty log to rotate past five files", Duration::from_secs(60), || (sizes().len() == 5).then_some(()));
    let sizes = sizes();
    assert!(sizes.iter().all(|s| *s <= 10 << 20), "{sizes:?}");
    assert!(sizes.iter().sum::<u64>() <= 50 << 20, "{sizes:?}");
}
