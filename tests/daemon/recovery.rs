//! Recovery: a pod deleted is replaced by its owner, a container killed
//! behind the daemon's back is restarted, and a daemon killed with SIGKILL
//! mid-rollout comes back to finish it without duplicate or orphaned
//! containers, and adopts what kept running without recording a start. A
//! damaged store is refused with the pods left running, and rebuilt from
//! git on request.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, http_get, is_ready, name, pod_ip, web};

const ROLLING: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}";

#[test]
fn deleted_pods_are_replaced_and_killed_containers_restart() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", ROLLING))]);
    cluster.start();
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let victim = name(&pods[0]);
    let out = cluster.cli_ok(&["delete", "pod", &victim]);
    assert!(out.contains("deleted"), "{out}");
    cluster.wait_for("a replacement", Duration::from_secs(30), || {
        let pods = cluster.pods();
        (pods.len() == 2 && pods.iter().all(is_ready) && !pods.iter().any(|p| name(p) == victim)).then_some(())
    });
    // Declared objects are deleted by a commit; a dry run makes none.
    let head = cluster.git(&["rev-parse", "HEAD"]);
    let dry = cluster.cli_ok(&["delete", "deployment", "web", "--dry-run"]);
    assert!(dry.contains("-kind: Deployment") || dry.contains("deleted"), "{dry}");
    assert_eq!(cluster.git(&["rev-parse", "HEAD"]), head, "a dry run commits nothing");

    // Kill the container's processes behind the daemon's back.
    let pod = cluster.pods().remove(0);
    let pid = pid_of(&cluster, &pod);
    nix_kill(pid);
    cluster.wait_for("the restart", Duration::from_secs(30), || {
        let p = cluster.get(&format!("/api/v1/namespaces/default/pods/{}", name(&pod)));
        let restarts = p.pointer("/status/containerStatuses/0/restartCount").and_then(Value::as_i64).unwrap_or(0);
        (restarts >= 1 && is_ready(&p)).then_some(())
    });
    let previous = cluster.cli(&["logs", &name(&pod), "--previous"]);
    assert!(previous.status.success(), "the previous instance's log is kept: {}", String::from_utf8_lossy(&previous.stderr));
}

#[test]
fn a_killed_helper_ends_its_container_and_the_pod_restarts_it() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", ROLLING))]);
    cluster.start();
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let pod = &pods[0];
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap().to_owned();
    let init = pid_of(&cluster, pod);
    // The helper (the reaper watching the container), not the container:
    // what a stray `kill -9` or an OOM kill of the helper does.
    let helper = helper_pid(&cluster, &uid);
    nix_kill(helper);
    let restarted = cluster.wait_for("the container ended and started again", Duration::from_secs(30), || {
        let p = cluster.get(&format!("/api/v1/namespaces/default/pods/{}", name(pod)));
        let restarts = p.pointer("/status/containerStatuses/0/restartCount").and_then(Value::as_i64).unwrap_or(0);
        (restarts >= 1 && is_ready(&p)).then_some(p)
    });
    // Ended as containerd ends a task whose shim died: SIGKILL, 137.
    assert_eq!(restarted.pointer("/status/containerStatuses/0/lastState/terminated/exitCode").and_then(Value::as_i64), Some(137), "{restarted}");
    cluster.wait_for("the old container's init killed", Duration::from_secs(10), || {
        let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'))).then_some(())
    });
    // One helper per pod again, and nothing of the old container left.
    cluster.wait_for("one helper per pod", Duration::from_secs(30), || {
        let helpers = cluster.helpers();
        (helpers.len() == 2 && helpers.iter().filter(|h| h.contains(&uid)).count() == 1).then_some(())
    });
    assert_eq!(http_get(&pod_ip(&restarted), 8080, "/").unwrap().trim(), "version 1");
}

/// The pid of the helper watching a pod's container.
fn helper_pid(cluster: &Cluster, uid: &str) -> i32 {
    let needle = cluster.data.join("node").display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && cmdline.contains("--log") && cmdline.contains(uid) {
            return pid;
        }
    }
    panic!("no helper for {uid}");
}

/// The pid (on the host) of a pod's container init, from its helper.
fn pid_of(cluster: &Cluster, pod: &Value) -> i32 {
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap().to_owned();
    let helper = cluster.helpers().into_iter().find(|h| h.contains(&uid)).expect("the pod's helper runs");
    let pid = helper.split_whitespace().skip_while(|w| *w != "--pid").nth(1).unwrap();
    pid.parse().unwrap()
}

fn nix_kill(pid: i32) {
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_daemon_killed_mid_rollout_finishes_it_without_duplicates() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(4, "1", ROLLING))]);
    cluster.start();
    cluster.wait_ready("web-", 4, Duration::from_secs(30));
    cluster.commit(&[("apps/web.yaml", &web(4, "2", ROLLING))], "web v2");
    // Kill it as soon as the rollout has started.
    cluster
        .wait_for("the rollout to start", Duration::from_secs(20), || (cluster.list("/apis/apps/v1/namespaces/default/replicasets").len() == 2).then_some(()));
    cluster.kill9();
    cluster.start();
    cluster.wait_for("the rollout to finish", Duration::from_secs(90), || {
        let pods = cluster.pods();
        let done = pods.len() == 4
            && pods.iter().all(|p| is_ready(p) && p.pointer("/spec/containers/0/command/2").and_then(Value::as_str).is_some_and(|c| c.contains("version 2")));
        done.then_some(())
    });
    // Exactly one running container per pod, and none for pods that are gone.
    cluster.wait_for("old containers to be gone", Duration::from_secs(30), || {
        let pods = cluster.pods();
        let helpers = cluster.helpers();
        let each_once = pods.iter().all(|p| {
            let uid = p.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("-");
            helpers.iter().filter(|h| h.contains(uid)).count() == 1
        });
        (each_once && helpers.len() == pods.len()).then_some(())
    });
    let history = cluster.cli_ok(&["history"]);
    assert_eq!(history.lines().filter(|l| l.contains("web v2")).count(), 1, "the commit was applied once: {history}");
}

/// How many times the pod's events say `reason` (repeats raise a count).
fn event_count(cluster: &Cluster, pod: &str, reason: &str) -> i64 {
    let events = cluster.list("/api/v1/namespaces/default/events");
    events
        .iter()
        .filter(|e| e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(pod) && e["reason"] == reason)
        .map(|e| e["count"].as_i64().unwrap_or(1))
        .sum()
}

#[test]
fn a_restarted_daemon_adopts_running_containers_without_recording_a_start() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1, "1", ROLLING))]);
    cluster.start();
    let pod = name(&cluster.wait_ready("web-", 1, Duration::from_secs(30))[0]);
    let pid = pid_of(&cluster, &cluster.get(&format!("/api/v1/namespaces/default/pods/{pod}")));
    assert_eq!((event_count(&cluster, &pod, "Created"), event_count(&cluster, &pod, "Started")), (1, 1));

    cluster.kill9();
    cluster.start();
    // A second pod started after the restart: by the time it is ready, the
    // new daemon has adopted and reported the first one.
    cluster.commit(&[("apps/web.yaml", &web(2, "1", ROLLING))], "web: 2 replicas");
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let second = pods.iter().map(name).find(|n| *n != pod).unwrap();
    cluster.wait_for("the second pod's start to be recorded", Duration::from_secs(10), || (event_count(&cluster, &second, "Started") == 1).then_some(()));

    let now = cluster.get(&format!("/api/v1/namespaces/default/pods/{pod}"));
    assert_eq!(pid_of(&cluster, &now), pid, "the container kept running");
    assert_eq!(now.pointer("/status/containerStatuses/0/restartCount"), Some(&serde_json::json!(0)));
    assert_eq!((event_count(&cluster, &pod, "Created"), event_count(&cluster, &pod, "Started")), (1, 1), "adopting is not starting");
}

#[test]
fn a_daemon_stopped_with_sigterm_exits_cleanly_and_leaves_its_pods_to_the_next() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1, "1", ROLLING))]);
    cluster.start();
    let pod = name(&cluster.wait_ready("web-", 1, Duration::from_secs(30))[0]);
    let pid = pid_of(&cluster, &cluster.get(&format!("/api/v1/namespaces/default/pods/{pod}")));

    // What `systemctl stop` does: the daemon exits 0, pods keep running.
    let status = cluster.terminate();
    assert!(status.success(), "{status:?}\n{}", cluster.daemon_log());
    assert!(!cluster.daemon_log().contains("panicked"), "{}", cluster.daemon_log());
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the pod's container outlives the daemon");

    cluster.start();
    let now = cluster.wait_ready("web-", 1, Duration::from_secs(30)).remove(0);
    assert_eq!(name(&now), pod);
    assert_eq!(pid_of(&cluster, &now), pid, "adopted, not started again");
}

/// Runs `driftless up` expecting it to refuse: its exit code and output,
/// killed if it is still running after 30 s.
fn up_refused(cluster: &Cluster) -> (Option<i32>, String) {
    let repo = cluster.repo.to_string_lossy().into_owned();
    let mut child = cluster.up_command(&repo, &cluster.data, &[]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn serving(pods: &[Value]) -> Vec<String> {
    pods.iter().map(|p| http_get(&pod_ip(p), 8080, "/").unwrap_or_default().trim().to_owned()).collect()
}

#[test]
fn a_damaged_store_is_refused_untouched_and_rebuilt_from_git_on_request() {
    if crate::cluster::on_etcd() {
        return; // The embedded store's own damage; etcd keeps its own log.
    }
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", ROLLING))]);
    cluster.start();
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(60));
    cluster.kill9();
    let store = cluster.data.join("store.db");
    assert!(cluster.data.join("store.db-wal").exists(), "a killed daemon leaves its log");

    // The log that held the last acknowledged changes is lost.
    std::fs::remove_file(cluster.data.join("store.db-wal")).unwrap();
    let (code, output) = up_refused(&cluster);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("write-ahead log") && output.contains("is gone") && output.contains("--rebuild-store"), "{output}");
    assert_eq!(serving(&pods), ["version 1", "version 1"], "the running pods are untouched");

    // Overwritten with other bytes: refused the same way.
    std::fs::write(&store, vec![0x5a; 256 << 10]).unwrap();
    let (code, output) = up_refused(&cluster);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("store.db: file is not a database") && output.contains("nothing was started"), "{output}");
    assert_eq!(serving(&pods), ["version 1", "version 1"]);

    // Recovery: the damaged files kept aside, the store rebuilt from git,
    // the pods found running replaced once, nothing left twice.
    cluster.start_with(&["--rebuild-store"]);
    let rebuilt = cluster.wait_ready("web-", 2, Duration::from_secs(60));
    assert_eq!(serving(&rebuilt), ["version 1", "version 1"]);
    let kept: Vec<String> =
        std::fs::read_dir(&cluster.data).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".damaged-")).collect();
    assert!(kept.iter().any(|n| n.starts_with("store.db.damaged-")), "{kept:?}");
    cluster.wait_for("one container per pod", Duration::from_secs(30), || {
        let helpers = cluster.helpers();
        let pods = cluster.pods();
        (helpers.len() == 2 && pods.iter().all(|p| helpers.iter().any(|h| h.contains(p.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("-")))))
            .then_some(())
    });
    // The ledger says the head was applied again because the store was
    // rebuilt, not as a second sync of the same commit.
    // (Written to git just after the store, so waited for.)
    cluster.wait_for("the rebuild's ledger entry", Duration::from_secs(30), || {
        let ledger = cluster.git(&["log", "-1", "--format=%B", "refs/driftless/applied"]);
        (ledger.contains("Driftless-Store: rebuilt from git") && ledger.contains("(the last: applied ")).then_some(())
    });
    // And it opens again after a crash, with its log.
    cluster.kill9();
    cluster.start();
    cluster.wait_ready("web-", 2, Duration::from_secs(60));
}
