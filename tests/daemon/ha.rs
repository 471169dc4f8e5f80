//! A highly available control plane: three `driftless up` instances of
//! one machine's node, each with a data folder of its own, sharing a
//! 3-member etcd and the node's folder. One is elected and runs
//! everything; the others serve the API from the store and stand by.
//! Killed with SIGKILL during a rollout, the leader is replaced within
//! 15 s, the new leader adopts the node's containers, and the rollout
//! completes with no pod duplicated and each commit in the ledger once.
//! Then one etcd member of three is killed, and nothing stops.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, on_etcd, versions, web};
use crate::etcd::EtcdCluster;

/// A standby instance and its log.
struct Instance {
    data: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Instance {
    fn start(cluster: &Cluster, data: PathBuf, etcd: &str) -> Instance {
        std::fs::create_dir_all(&data).unwrap();
        let log = data.with_extension("log");
        let file = std::fs::File::create(&log).unwrap();
        let repo = cluster.repo.to_string_lossy().into_owned();
        let node = cluster.data.to_string_lossy().into_owned();
        let child = cluster
            .up_command(&repo, &data, &["--store", etcd, "--node-dir", &node])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Instance { data, child: Some(child), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn leads(&self) -> bool {
        self.log().contains("leading: every store write is fenced")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix_term(&child);
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn nix_term(child: &Child) -> std::io::Result<()> {
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().map(|_| ())
}

fn socket_of(data: &Path) -> PathBuf {
    data.join(driftless_api::SOCKET)
}

#[test]
fn a_killed_leader_is_replaced_and_its_rollout_finishes_once() {
    if on_etcd() {
        // This test brings its own etcd cluster.
        return;
    }
    let etcd = EtcdCluster::start();
    let url = etcd.url();
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}"))]);
    cluster.start_with(&["--store", &url]);
    cluster.wait_ready("web-", 2, Duration::from_secs(60));
    let standbys: Vec<Instance> = ["b", "c"].iter().map(|n| Instance::start(&cluster, cluster.dir.path().join(n), &url)).collect();
    for standby in &standbys {
        cluster.wait_for("a standby's API", Duration::from_secs(30), || socket_of(&standby.data).exists().then_some(()));
        assert!(!standby.leads(), "only one leader: {}", standby.log());
    }
    // A standby serves what the store holds.
    let from_standby = crate::cluster::Cluster::cli_on(&standbys[0].data, &["get", "pods"]);
    assert!(from_standby.contains("web-"), "{from_standby}");

    // A rollout, and the leader killed in the middle of it.
    let second = cluster.commit(&[("apps/web.yaml", &web(2, "2", "{type: RollingUpdate}"))], "web v2");
    cluster.wait_for("the rollout to start", Duration::from_secs(30), || {
        cluster.pods().iter().any(|p| p.pointer("/metadata/labels/pod-template-hash").is_some() && !versions(&cluster).is_empty()).then_some(())
    });
    cluster.kill9();
    let killed = Instant::now();
    let leader = loop {
        if let Some(found) = standbys.iter().find(|s| s.leads()) {
            break found;
        }
        assert!(killed.elapsed() < Duration::from_secs(15), "no new leader within 15 s:\n{}\n{}", standbys[0].log(), standbys[1].log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let failover = killed.elapsed();
    eprintln!("failover: a new leader {failover:?} after the kill");
    assert_eq!(standbys.iter().filter(|s| s.leads()).count(), 1, "one leader");
    cluster.use_api_of(&leader.data);
    // Elected, it sets the node up, then serves the whole API.
    cluster.wait_for("the new leader's API", Duration::from_secs(30), || cluster.try_get("/api/v1/namespaces/default/pods").ok().map(|_| ()));

    cluster.wait_for("version 2 on both pods", Duration::from_secs(90), || (versions(&cluster) == ["version 2", "version 2"]).then_some(()));
    cluster.wait_for("the old pods gone", Duration::from_secs(60), || (cluster.pods().len() == 2).then_some(()));
    // No pod twice: one container per pod runs on the machine.
    cluster.wait_for("one container per pod", Duration::from_secs(30), || (cluster.helpers().len() == 2).then_some(()));
    let ledger = cluster.git(&["log", "refs/driftless/applied", "--format=%s"]);
    let applied_second = ledger.lines().filter(|l| l.contains(&second[..7]) && l.starts_with("applied")).count();
    assert_eq!(applied_second, 1, "the commit is applied once:\n{ledger}");

    // One etcd member of three killed: nothing stops. The leader keeps
    // leading, the other instance keeps standing by, and the next commit
    // rolls out. (Which member varies between runs: the clients' streams
    // sit on any of them.)
    let mut etcd = etcd;
    let member = std::process::id() as usize % 3;
    etcd.kill(member);
    eprintln!("killed etcd member {member}");
    let third = cluster.commit(&[("apps/web.yaml", &web(2, "3", "{type: RollingUpdate}"))], "web v3");
    cluster.wait_for("version 3 on both pods", Duration::from_secs(90), || (versions(&cluster) == ["version 3", "version 3"]).then_some(()));
    cluster.wait_for("the old pods gone", Duration::from_secs(60), || (cluster.pods().len() == 2).then_some(()));
    for instance in &standbys {
        let log = instance.log();
        assert!(!log.contains("lost leadership"), "an instance stopped after losing one etcd member:\n{log}");
    }
    assert!(leader.leads() && standbys.iter().filter(|s| s.leads()).count() == 1);
    let ledger = cluster.git(&["log", "refs/driftless/applied", "--format=%s"]);
    let applied_third = ledger.lines().filter(|l| l.contains(&third[..7]) && l.starts_with("applied")).count();
    assert_eq!(applied_third, 1, "the commit is applied once:\n{ledger}");
    drop(standbys);
    drop(etcd);
}
