//! git going wrong under a running daemon: a remote that cannot be reached,
//! a branch deleted, an object corrupted, a force-push that rewrites the
//! applied commit. Each is reported, the last good revision keeps running,
//! and a force-push is applied as a new head with the rewrite in the ledger.

use std::time::Duration;

use crate::cluster::{Cluster, http_get, pod_ip, web};

const ROLLING: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";

/// The daemon's status, as `driftless status` prints it.
fn status(cluster: &Cluster) -> String {
    cluster.cli_ok(&["status"])
}

fn serves(cluster: &Cluster, version: &str) -> bool {
    let pods = cluster.pods();
    !pods.is_empty() && pods.iter().all(|p| http_get(&pod_ip(p), 8080, "/").is_some_and(|body| body.trim() == format!("version {version}")))
}

/// A daemon syncing a remote (a bare clone served as `file://`) of a
/// repository with one web pod, that pod Ready; the remote's folder and URL.
fn on_a_remote() -> (Cluster, tempfile::TempDir, String) {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1, "1", ROLLING))]);
    let served = tempfile::tempdir().unwrap();
    let bare = served.path().join("team.git");
    let out = std::process::Command::new("git").args(["clone", "-q", "--bare"]).arg(&cluster.repo).arg(&bare).output().unwrap();
    assert!(out.status.success());
    let url = format!("file://{}", bare.display());
    cluster.start_from(&url, &["--branch", "main"]);
    cluster.wait_ready("web-", 1, Duration::from_secs(30));
    (cluster, served, url)
}

#[test]
fn a_remote_that_goes_away_or_loses_its_branch_is_reported_and_the_last_good_revision_runs() {
    let (cluster, served, _) = on_a_remote();
    let bare = served.path().join("team.git");

    // Unreachable: the remote's folder is gone.
    let away = served.path().join("away.git");
    std::fs::rename(&bare, &away).unwrap();
    let reported = cluster.wait_for("the fetch failure in status", Duration::from_secs(30), || {
        let status = status(&cluster);
        status.contains("Error:").then_some(status)
    });
    assert!(reported.contains("team.git"), "the remote is named: {reported}");
    assert!(serves(&cluster, "1"), "the last good revision runs on");
    std::fs::rename(&away, &bare).unwrap();
    cluster.wait_for("the error cleared", Duration::from_secs(30), || (!status(&cluster).contains("Error:")).then_some(()));

    // The branch deleted on the remote: reported, and nothing deleted.
    let remote = |args: &[&str]| cluster.git(&[&["--git-dir", bare.to_str().unwrap()][..], args].concat());
    let main = remote(&["rev-parse", "main"]).trim().to_owned();
    remote(&["update-ref", "-d", "refs/heads/main"]);
    let reported = cluster.wait_for("the missing branch in status", Duration::from_secs(30), || {
        let status = status(&cluster);
        status.contains("Error:").then_some(status)
    });
    assert!(reported.contains("main"), "{reported}");
    assert!(serves(&cluster, "1"), "a deleted branch deletes nothing");
    remote(&["update-ref", "refs/heads/main", &main]);
    cluster.wait_for("the error cleared", Duration::from_secs(30), || (!status(&cluster).contains("Error:")).then_some(()));
    assert!(serves(&cluster, "1"));
}

#[test]
fn a_force_push_is_applied_as_a_new_head_and_the_ledger_notes_the_rewrite() {
    // Kept for the test's life: the remote the daemon fetches from.
    let (cluster, _served, url) = on_a_remote();
    let initial = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();
    cluster.git(&["remote", "add", "origin", &url]);

    // v2 pushed and applied.
    let v2 = cluster.commit(&[("apps/web.yaml", &web(1, "2", ROLLING))], "web v2");
    cluster.git(&["push", "-q", "origin", "main"]);
    cluster.wait_for("v2 served", Duration::from_secs(30), || serves(&cluster, "2").then_some(()));

    // History rewritten: v2 dropped, v3 made on the initial commit, forced.
    cluster.git(&["reset", "-q", "--hard", &initial]);
    let v3 = cluster.commit(&[("apps/web.yaml", &web(1, "3", ROLLING))], "web v3, v2 never happened");
    cluster.git(&["push", "-q", "--force", "origin", "main"]);
    cluster.wait_for("v3 served", Duration::from_secs(30), || serves(&cluster, "3").then_some(()));

    // The ledger: v3 applied once, with the rewrite named.
    // A remote's ledger is kept in the daemon's mirror of it.
    let ledger_dir = cluster.data.join("source");
    let ledger = cluster.wait_for("the ledger entry of v3", Duration::from_secs(30), || {
        let out =
            std::process::Command::new("git").arg("--git-dir").arg(&ledger_dir).args(["log", "-1", "--format=%B", "refs/driftless/applied"]).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains(&v3[..7]).then_some(text)
    });
    assert!(ledger.contains(&format!("Driftless-Rewrite: {} (web v2) is no longer on main", &v2[..7])), "{ledger}");
    let events = cluster.cli_ok(&["get", "events"]);
    assert!(events.contains("BranchRewritten"), "{events}");
}

#[test]
fn a_corrupt_object_is_reported_and_the_last_good_revision_runs() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1, "1", ROLLING))]);
    cluster.start();
    cluster.wait_ready("web-", 1, Duration::from_secs(30));

    // A commit whose new file's blob is then damaged on disk.
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: corrupt-me}\n";
    cluster.write("apps/settings.yaml", settings);
    let blob = cluster.git(&["hash-object", "-w", "apps/settings.yaml"]).trim().to_owned();
    let object = cluster.repo.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    let original = std::fs::read(&object).unwrap();
    let mut permissions = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false, reason = "the test damages the object on purpose")]
    permissions.set_readonly(false);
    std::fs::set_permissions(&object, permissions.clone()).unwrap();
    // The commit is made off the branch and the object damaged before the
    // branch moves: the daemon must never see the commit whole.
    cluster.git(&["add", "apps/settings.yaml"]);
    let tree = cluster.git(&["write-tree"]).trim().to_owned();
    let commit = cluster.git(&["commit-tree", &tree, "-p", "HEAD", "-m", "settings"]).trim().to_owned();
    std::fs::write(&object, b"this is not a zlib stream").unwrap();
    cluster.git(&["update-ref", "HEAD", &commit]);

    let reported = cluster.wait_for("the corrupt object in status", Duration::from_secs(30), || {
        let status = status(&cluster);
        status.contains("Error:").then_some(status)
    });
    assert!(reported.contains("cannot read commit") && reported.contains("the repository is damaged"), "{reported}");
    assert!(serves(&cluster, "1"), "the last good revision runs on");
    assert!(cluster.try_get("/api/v1/namespaces/default/configmaps/settings").is_err());

    // Repaired (the object restored): the commit is applied.
    std::fs::write(&object, &original).unwrap();
    cluster.wait_for("the ConfigMap", Duration::from_secs(30), || cluster.try_get("/api/v1/namespaces/default/configmaps/settings").ok());
    cluster.wait_for("the error cleared", Duration::from_secs(30), || (!status(&cluster).contains("Error:")).then_some(()));
}
