//! A daemon killed while its commit's transaction is on its way to etcd.
//! etcd is paused (SIGSTOP) before the commit, so the transaction can be
//! neither answered nor refused; the daemon is killed with SIGKILL once it
//! has sent it, and etcd resumed: the transaction may or may not commit,
//! and the daemon cannot know which. Restarted, it finishes the commit
//! either way, applying it exactly once: its pods run once, and the ledger
//! holds the commit once.

use std::process::Command;
use std::time::Duration;

use crate::cluster::{Cluster, on_etcd, versions, web};
use crate::etcd::Etcd;

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Resumes a paused etcd even when the test fails while it is paused.
struct Paused<'a>(&'a Etcd);

impl<'a> Paused<'a> {
    fn pause(etcd: &'a Etcd) -> Paused<'a> {
        signal(etcd.pid(), "STOP");
        Paused(etcd)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        signal(self.0.pid(), "CONT");
    }
}

/// How many batches the sync of `commit` has sent to etcd, by the logs.
fn sent(cluster: &Cluster, commit: &str) -> usize {
    cluster.full_daemon_log().lines().filter(|l| l.contains(&commit[..12]) && l.contains("sending the batch to etcd")).count()
}

#[test]
fn a_daemon_killed_with_its_commits_transaction_in_flight_applies_it_once() {
    if on_etcd() {
        // This test brings its own etcd, to pause it.
        return;
    }
    let etcd = Etcd::start();
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}"))]);
    // The store says when it sends a batch, in the sync's span (which
    // names the commit).
    cluster.log_filter("info,driftless_store=debug,libcgroups=error,libcontainer=error");
    cluster.start_with(&["--store", &etcd.url]);
    cluster.wait_ready("web-", 2, Duration::from_secs(60));
    // Two rounds in which the sync's transaction was caught in flight.
    // When another write was on its way when etcd paused, the sync waits
    // behind it and the daemon steps down (its lease cannot be renewed)
    // before sending: that commit is then applied normally on restart,
    // and the round is tried again with the next one (at most 6 tries).
    let (mut version, mut caught) = (1, 0);
    while caught < 2 {
        version += 1;
        assert!(version <= 7, "the sync's transaction was never caught in flight");
        let paused = Paused::pause(&etcd);
        let commit = cluster.commit(&[("apps/web.yaml", &web(2, &version.to_string(), "{type: RollingUpdate}"))], &format!("web v{version}"));
        let in_flight = cluster.wait_for("the commit's transaction sent, or the daemon stepping down", Duration::from_secs(20), || {
            if sent(&cluster, &commit) > 0 { Some(true) } else { cluster.full_daemon_log().contains("lost leadership; exiting").then_some(false) }
        });
        cluster.kill9();
        drop(paused);
        // Whether etcd committed it, as far as the logs tell: the restarted
        // daemon either finds it applied or applies it.
        let before = sent(&cluster, &commit);
        cluster.start_with(&["--store", &etcd.url]);
        let want = vec![format!("version {version}"); 2];
        cluster.wait_for("the commit's pods", Duration::from_secs(90), || (versions(&cluster) == want).then_some(()));
        cluster.wait_for("the old pods gone", Duration::from_secs(60), || (cluster.pods().len() == 2).then_some(()));
        cluster.wait_for("one container per pod", Duration::from_secs(30), || (cluster.helpers().len() == 2).then_some(()));
        let ledger = cluster.git(&["log", "refs/driftless/applied", "--format=%s"]);
        let applied = ledger.lines().filter(|l| l.starts_with("applied") && l.contains(&commit[..7])).count();
        assert_eq!(applied, 1, "v{version} applied once:\n{ledger}");
        if !in_flight {
            eprintln!("v{version}: another write held the store when etcd paused; trying again");
            // The next round's daemon log is read afresh.
            std::fs::write(cluster.dir.path().join("daemon.log"), "").unwrap();
            continue;
        }
        caught += 1;
        let reapplied = sent(&cluster, &commit) > before;
        eprintln!("v{version}: {}", if reapplied { "etcd had not committed it; applied on restart" } else { "etcd had committed it; finished on restart" });
    }
}
