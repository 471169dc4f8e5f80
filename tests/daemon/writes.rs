//! The write path end to end: each verb the CLI takes becomes one commit
//! on the watched branch (the diff touching only its lines, the caller as
//! author, Driftless as committer, trailers), which the daemon applies to
//! real containers; refusals commit nothing; undo reverts the commit that
//! made a broken revision.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, name, web};
use crate::documented_examples::GAME_DEMO;

const ROLLING: &str = "{type: RollingUpdate}";
const AUTHOR: &str = "Grace Hopper <grace@example.invalid>";

/// The hand-written file the verbs edit: a comment, flow and block styles.
fn file() -> String {
    format!("# The web tier. Keep the comments!\n{}", web(2, "1", ROLLING).replace("  replicas: 2\n", "  replicas: 2 # by hand\n"))
}

/// The lines a commit adds and removes, without the diff's headers.
fn changed_lines(cluster: &Cluster, commit: &str) -> Vec<String> {
    cluster
        .git(&["show", "--format=", "-U0", commit])
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .map(str::to_owned)
        .collect()
}

fn verb(cluster: &Cluster, args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--author", AUTHOR]);
    cluster.cli_ok(&all)
}

fn refused(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.cli(args);
    assert_eq!(out.status.code(), Some(1), "driftless {args:?} should be refused: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

fn head(cluster: &Cluster) -> String {
    cluster.git(&["rev-parse", "HEAD"]).trim().to_owned()
}

fn deployment(cluster: &Cluster) -> Value {
    cluster.get("/apis/apps/v1/namespaces/default/deployments/web")
}

#[test]
fn verbs_become_attributed_commits_that_run() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &file())]);
    cluster.start();
    cluster.wait_ready("web-", 2, Duration::from_secs(30));

    // scale: one line changes, comment kept; the caller is the author.
    let out = verb(&cluster, &["scale", "deploy/web", "--replicas", "3"]);
    assert!(out.starts_with("deployment.apps/web scaled\n"), "{out}");
    assert!(out.contains(": scale deployment/web to 3 (applied)"), "{out}");
    let commit = head(&cluster);
    assert_eq!(changed_lines(&cluster, &commit), ["-  replicas: 2 # by hand", "+  replicas: 3 # by hand"]);
    let log = cluster.git(&["log", "-1", "--format=%an <%ae>|%cn|%s"]);
    assert_eq!(log.trim(), format!("{AUTHOR}|Driftless|scale deployment/web to 3"));
    let trailers = cluster.git(&["log", "-1", "--format=%(trailers:only,unfold)"]);
    assert_eq!(trailers.trim(), "Driftless-Verb: scale\nDriftless-Object: Deployment default/web");
    assert_eq!(cluster.git(&["status", "--porcelain"]), "", "the working tree is left as git commit leaves it");
    cluster.wait_ready("web-", 3, Duration::from_secs(30));

    // set image: a new revision on real containers (the same image under
    // a second name, so nothing is pulled).
    let layout = crate::images::busybox_layout();
    cluster.cli_ok(&["image", "import", layout.to_str().unwrap(), "--name", "localhost/busybox"]);
    verb(&cluster, &["set", "image", "deployment/web", "httpd=localhost/busybox:1.35"]);
    assert_eq!(changed_lines(&cluster, &head(&cluster)), ["-        image: busybox:1.35", "+        image: localhost/busybox:1.35"]);
    cluster.wait_for("pods on the new image", Duration::from_secs(60), || {
        let pods = cluster.pods();
        let on_new = pods
            .iter()
            .filter(|p| p.pointer("/spec/containers/0/image").and_then(Value::as_str) == Some("localhost/busybox:1.35") && crate::cluster::is_ready(p));
        (on_new.count() == 3 && pods.len() == 3).then_some(())
    });

    // set env and label, each one commit.
    verb(&cluster, &["set", "env", "deploy/web", "GREETING=hello world"]);
    let lines = changed_lines(&cluster, &head(&cluster));
    assert_eq!(lines, ["+        env:", "+        - name: GREETING", "+          value: hello world"], "{lines:?}");
    verb(&cluster, &["label", "deploy/web", "tier=front"]);
    cluster.wait_for("the label", Duration::from_secs(10), || (deployment(&cluster).pointer("/metadata/labels/tier") == Some(&"front".into())).then_some(()));

    // rollout undo: the env commit reverted by git itself.
    let env_commit = cluster.git(&["rev-parse", "HEAD~1"]).trim().to_owned();
    let out = verb(&cluster, &["rollout", "undo", "deploy/web"]);
    assert!(out.starts_with("deployment.apps/web rolled back\n"), "{out}");
    let subject = cluster.git(&["log", "-1", "--format=%s"]);
    assert_eq!(subject.trim(), "Revert \"set env deployment/web GREETING=hello world\"");
    let body = cluster.git(&["log", "-1", "--format=%b"]);
    assert!(body.contains(&format!("Driftless-Reverts: {env_commit}")) && body.contains("Driftless-Verb: rollout-undo"), "{body}");
    cluster.wait_for("the env to be gone from the running pods", Duration::from_secs(60), || {
        let pods = cluster.pods();
        let plain = pods.iter().filter(|p| p.pointer("/spec/containers/0/env").is_none() && crate::cluster::is_ready(p)).count();
        (plain == 3 && pods.len() == 3).then_some(())
    });
    assert_eq!(deployment(&cluster).pointer("/metadata/labels/tier"), Some(&"front".into()), "the undo kept the later label");

    // pause and resume edit spec.paused; restart rolls the pods.
    verb(&cluster, &["rollout", "pause", "deploy/web"]);
    assert_eq!(changed_lines(&cluster, &head(&cluster)), ["+  paused: true"]);
    verb(&cluster, &["rollout", "resume", "deploy/web"]);
    assert_eq!(changed_lines(&cluster, &head(&cluster)), ["-  paused: true"]);
    let before: Vec<String> = cluster.pods().iter().map(name).collect();
    verb(&cluster, &["rollout", "restart", "deploy/web"]);
    cluster.wait_for("restarted pods", Duration::from_secs(60), || {
        let pods = cluster.pods();
        let fresh = pods.iter().filter(|p| !before.contains(&name(p)) && crate::cluster::is_ready(p)).count();
        (fresh == 3 && pods.len() == 3).then_some(())
    });

    // Dry runs and review branches leave the watched branch alone.
    let at = head(&cluster);
    let out = verb(&cluster, &["scale", "deploy/web", "--replicas", "9", "--dry-run"]);
    assert!(out.contains("+  replicas: 9 # by hand"), "{out}");
    let out = verb(&cluster, &["scale", "deploy/web", "--replicas", "4", "--branch", "more-web", "-m", "More web capacity"]);
    assert!(out.contains("on branch more-web"), "{out}");
    assert_eq!(head(&cluster), at);
    assert_eq!(cluster.git(&["log", "-1", "--format=%s", "more-web"]).trim(), "More web capacity");

    // Refusals commit nothing and say why.
    let pod = name(&cluster.pods()[0]);
    let err = refused(&cluster, &["scale", &format!("pod/{pod}"), "--replicas", "2"]);
    assert!(err.contains(&format!("pod/{pod} is made by replicaset/")) && err.contains("made by deployment/web: change that instead"), "{err}");
    let err = refused(&cluster, &["set", "resources", "deploy/web", "--limits=memory=lots"]);
    assert!(err.contains("apps/web.yaml:") && err.contains("nothing was committed"), "{err}");
    cluster.write("apps/web.yaml", &file().replace("by hand", "uncommitted"));
    let err = refused(&cluster, &["scale", "deploy/web", "--replicas", "1"]);
    assert!(err.contains("apps/web.yaml has uncommitted changes"), "{err}");
    cluster.git(&["checkout", "apps/web.yaml"]);
    assert_eq!(head(&cluster), at);

    // The audit trail shows who did what.
    let history = cluster.cli_ok(&["history", "--verbose"]);
    assert!(history.contains("scale deployment/web to 3") && history.contains("Grace Hopper"), "{history}");
    assert!(history.contains("    Driftless-Verb: scale\n    Driftless-Object: Deployment default/web"), "{history}");
    assert!(history.contains("    Driftless-Verb: rollout-undo") && history.contains(&format!("    Driftless-Reverts: {env_commit}")), "{history}");
    let ledger = cluster.git(&["log", "-1", "--format=%B", "--grep", "scale deployment/web to 3", "refs/driftless/applied"]);
    assert!(ledger.contains("Driftless-Verb: scale"), "{ledger}");
}

#[test]
fn undo_rolls_back_a_broken_image() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &file())]);
    cluster.start();
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let good: Vec<String> = cluster.pods().iter().map(name).collect();
    // An image nobody serves (a closed loopback port): the rollout stalls.
    verb(&cluster, &["set", "image", "deploy/web", "httpd=127.0.0.1:9/none/broken:1"]);
    let broken = head(&cluster);
    cluster.wait_for("the rollout to fail", Duration::from_secs(60), || {
        let conditions = deployment(&cluster).pointer("/status/conditions").cloned().unwrap_or_default();
        conditions.as_array().into_iter().flatten().any(|c| c["reason"] == "ProgressDeadlineExceeded").then_some(())
    });
    let status = cluster.cli(&["rollout", "status", "deploy/web", "--timeout", "5s"]);
    assert_eq!(status.status.code(), Some(1));

    let out = verb(&cluster, &["rollout", "undo", "deploy/web"]);
    assert!(out.contains("(applied)"), "{out}");
    let body = cluster.git(&["log", "-1", "--format=%B"]);
    assert!(body.contains(&format!("This reverts commit {broken}.")) && body.contains("rollout undo deployment/web to revision 1"), "{body}");
    assert_eq!(cluster.git(&["show", "HEAD:apps/web.yaml"]), file(), "the revert restores the file byte for byte");
    cluster.wait_for("the broken pods to go", Duration::from_secs(60), || {
        let pods = cluster.pods();
        (pods.len() == 2 && pods.iter().all(|p| good.contains(&name(p)) && crate::cluster::is_ready(p))).then_some(())
    });
    let status = cluster.cli_ok(&["rollout", "status", "deploy/web", "--timeout", "30s"]);
    assert!(status.contains("successfully rolled out"), "{status}");

    // `rollback REV`: the manifests as a commit declared them, in one
    // commit naming what it undoes; a dry run commits nothing first.
    let before = head(&cluster);
    let out = verb(&cluster, &["rollback", &broken, "--dry-run"]);
    assert!(out.contains("(dry run: nothing committed)") && out.contains("rolls pods"), "{out}");
    assert_eq!(head(&cluster), before);
    let out = verb(&cluster, &["rollback", &broken[..7]]);
    assert!(out.contains("(applied)"), "{out}");
    let body = cluster.git(&["log", "-1", "--format=%an|%s%n%b"]);
    assert!(body.starts_with(&format!("Grace Hopper|Roll back to {}", &broken[..7])) && body.contains(&format!("Driftless-Restores: {broken}")), "{body}");
    assert_eq!(cluster.git(&["diff", &broken, "HEAD", "--", "apps"]), "", "the manifests are that commit's");
    let out = refused(&cluster, &["rollback", "0000000"]);
    assert!(out.contains("no commit"), "{out}");
}

#[test]
fn apply_create_autoscale_and_delete_write_the_repository() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &file())]);
    cluster.start();
    cluster.wait_ready("web-", 2, Duration::from_secs(30));

    // apply -f: a new object gets a file of its own, a declared one is
    // edited in place; one commit for both.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("game.yaml"), GAME_DEMO).unwrap();
    std::fs::write(dir.path().join("web.yaml"), web(1, "1", ROLLING)).unwrap();
    let out = verb(&cluster, &["apply", "-f", dir.path().to_str().unwrap()]);
    assert!(out.contains("configmap/game-demo configured") && out.contains("deployment.apps/web configured") && out.contains("(applied)"), "{out}");
    assert_eq!(cluster.git(&["show", "HEAD:apps/default/configmap-game-demo.yaml"]).lines().next(), Some("apiVersion: v1"));
    assert_eq!(
        changed_lines(&cluster, "HEAD").iter().filter(|l| l.contains("replicas")).collect::<Vec<_>>(),
        ["-  replicas: 2 # by hand", "+  replicas: 1 # by hand"]
    );
    let cm = cluster.get("/api/v1/namespaces/default/configmaps/game-demo");
    assert_eq!(cm.pointer("/data/game.properties").and_then(Value::as_str), Some("enemy.types=aliens,monsters\nplayer.maximum-lives=5\n"));
    cluster.wait_ready("web-", 1, Duration::from_secs(30));

    // create writes a new object.
    verb(&cluster, &["create", "configmap", "settings", "--from-literal", "mode=fast", "--from-literal", "level=3"]);
    assert_eq!(
        cluster.git(&["show", "HEAD:apps/default/configmap-settings.yaml"]),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  level: \"3\"\n  mode: fast\n"
    );

    // edit: the editor (here a script, as $EDITOR may be) changes the
    // document; what it saves, comment and all, is the commit.
    let editor = "sed -i -e 's/^  replicas: 1 # by hand$/  # two again, edited\\n  replicas: 2/'";
    let out = cluster.cli_with(&["edit", "deploy/web", "--author", AUTHOR], &[("EDITOR", editor)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("deployment.apps/web edited") && stdout.contains("(applied)"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(changed_lines(&cluster, "HEAD"), ["-  replicas: 1 # by hand", "+  # two again, edited", "+  replicas: 2"]);
    assert_eq!(cluster.git(&["log", "-1", "--format=%s|%an"]).trim(), "edit deployment/web|Grace Hopper");
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    // An invalid edit reopens with the reason; saved unchanged, it gives
    // up, commits nothing and keeps a copy.
    let at = cluster.git(&["rev-parse", "HEAD"]);
    let editor = "sed -i -e 's/^  replicas: 2$/  replicas: many/'";
    let out = cluster.cli_with(&["edit", "deploy/web"], &[("EDITOR", editor)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("apps/web.yaml:") && stderr.contains("A copy of your changes has been stored"), "{stderr}");
    // The copy is the user's (kubectl keeps its own in /tmp too); the test
    // reads it and removes it.
    let kept = stderr.split("stored to \"").nth(1).and_then(|rest| rest.split('"').next()).expect("the copy's path");
    assert!(std::fs::read_to_string(kept).unwrap().contains("replicas: many"));
    std::fs::remove_file(kept).unwrap();
    assert_eq!(cluster.git(&["rev-parse", "HEAD"]), at);
    let out = cluster.cli_with(&["edit", "deploy/web"], &[("EDITOR", "true")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Edit cancelled, no changes made."));

    // autoscale writes a new object too; from then on the HPA owns the
    // Deployment's replicas.
    verb(&cluster, &["autoscale", "deployment/web", "--min", "1", "--max", "3", "--cpu-percent", "80"]);
    cluster
        .wait_for("the autoscaler", Duration::from_secs(10), || cluster.try_get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web").ok());

    // delete: the document goes from git, then from the store.
    let out = verb(&cluster, &["delete", "configmap/settings"]);
    assert!(out.contains("configmap/settings deleted") && out.contains("(applied)"), "{out}");
    assert!(cluster.try_get("/api/v1/namespaces/default/configmaps/settings").is_err());
    assert_eq!(cluster.git(&["log", "-1", "--format=%s|%an"]).trim(), "delete configmap/settings|Grace Hopper");
    let files = cluster.git(&["ls-files"]);
    assert!(!files.contains("configmap-settings.yaml"), "{files}");
}

/// `web` opted in to automatic rollback.
fn rolling_back(file: &str) -> String {
    file.replace("metadata:\n  name: web\n", "metadata:\n  name: web\n  annotations: {driftless.dev/rollback: on-failure}\n")
}

/// A second Deployment, `bad`, opted in, whose first image never starts.
fn bad(image: &str) -> String {
    web(1, "1", ROLLING)
        .replace("name: web", "name: bad")
        .replace("app: web", "app: bad")
        .replace("metadata:\n  name: bad\n", "metadata:\n  name: bad\n  annotations: {driftless.dev/rollback: on-failure}\n")
        .replace("image: busybox:1.35", &format!("image: {image}"))
}

/// Subjects of the commits after `since`, newest first.
fn subjects_since(cluster: &Cluster, since: &str) -> Vec<String> {
    cluster.git(&["log", "--format=%s|%an", &format!("{since}..HEAD")]).lines().map(str::to_owned).collect()
}

#[test]
fn a_failed_rollout_is_rolled_back_once_by_the_daemon_and_never_in_a_loop() {
    const BROKEN: &str = "127.0.0.1:9/none/broken:1";
    const ALSO_BROKEN: &str = "127.0.0.1:9/none/broken:2";
    let good = rolling_back(&file());
    let mut cluster = Cluster::new(&[("apps/web.yaml", &good), ("apps/bad.yaml", &bad(BROKEN))]);
    cluster.start();
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let first = head(&cluster);

    // `bad` never ran: nothing earlier to go back to, which is said once.
    cluster.wait_for("the refusal for bad", Duration::from_secs(60), || {
        let status = cluster.cli_ok(&["status"]);
        status.contains("deployment/bad").then_some(status)
    });

    // A user pushes a broken image for web: the daemon reverts it, once.
    let broken = cluster.commit(&[("apps/web.yaml", &good.replace("image: busybox:1.35", &format!("image: {BROKEN}")))], "web: new image");
    let short = &broken[..7];
    let rollback = cluster.wait_for("the automatic rollback", Duration::from_secs(90), || {
        let subjects = subjects_since(&cluster, &broken);
        subjects
            .iter()
            .any(|s| s.starts_with("Roll back deployment/web"))
            .then(|| cluster.git(&["log", "-1", "--format=%H", "--grep", "Roll back deployment/web"]))
    });
    let rollback = rollback.trim();
    let message = cluster.git(&["log", "-1", "--format=%an|%cn|%B", rollback]);
    assert!(message.starts_with(&format!("Driftless|Driftless|Roll back deployment/web: {short} failed\n")), "{message}");
    assert!(message.contains(&format!("This reverts commit {broken}.")), "{message}");
    assert!(message.contains(&format!("Driftless-Rollback: {short} (ProgressDeadlineExceeded")), "{message}");
    assert_eq!(cluster.git(&["show", &format!("{rollback}:apps/web.yaml")]), good, "the revert restores the file byte for byte");
    cluster.wait_for("web healthy again", Duration::from_secs(60), || {
        let pods = cluster.pods();
        let web: Vec<&Value> = pods.iter().filter(|p| name(p).starts_with("web-")).collect();
        (web.len() == 2 && web.iter().all(|p| crate::cluster::is_ready(p) && p.pointer("/spec/containers/0/image") == Some(&"busybox:1.35".into())))
            .then_some(())
    });
    let status = cluster.cli_ok(&["rollout", "status", "deploy/web", "--timeout", "30s"]);
    assert!(status.contains("successfully rolled out"), "{status}");

    // bad: a second broken image is rolled back to the first broken one,
    // which fails too; that rollback is not rolled back (no loop).
    let also = cluster.commit(&[("apps/bad.yaml", &bad(ALSO_BROKEN))], "bad: another image");
    let refused = cluster.wait_for("the loop to be refused", Duration::from_secs(120), || {
        let status = cluster.cli_ok(&["status"]);
        status.lines().find(|l| l.contains("deployment/bad") && l.contains("is itself a rollback")).map(str::to_owned)
    });
    let subjects = subjects_since(&cluster, &also);
    assert_eq!(subjects, [format!("Roll back deployment/bad: {} failed|Driftless", &also[..7])], "one rollback, no loop: {refused}");
    let events = cluster.get("/api/v1/namespaces/default/events");
    let reasons: Vec<(String, String)> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e.pointer("/involvedObject/name").and_then(Value::as_str).unwrap_or("").to_owned(), e["reason"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(reasons.contains(&("web".into(), "RolledBack".into())), "{reasons:?}");
    assert!(reasons.contains(&("bad".into(), "RolledBack".into())) && reasons.contains(&("bad".into(), "RollbackRefused".into())), "{reasons:?}");
    // The web rollback happened once, whatever came after.
    let all = subjects_since(&cluster, &first);
    assert_eq!(all.iter().filter(|s| s.starts_with("Roll back deployment/web")).count(), 1, "{all:?}");
    let history = cluster.cli_ok(&["history"]);
    assert!(history.contains("Roll back deployment/web"), "{history}");
}

/// `git daemon` serving a folder of bare repositories on 127.0.0.1, push
/// allowed; stopped when dropped.
struct GitDaemon {
    child: std::process::Child,
    port: u16,
}

impl GitDaemon {
    fn serve(base: &std::path::Path) -> GitDaemon {
        let port = crate::ports::free_port();
        let child = std::process::Command::new("git")
            .args(["daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let daemon = GitDaemon { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "git daemon did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_remote_served_by_git_daemon_gets_pushes_redone_on_a_moved_branch_and_never_forced() {
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: slow}\n";
    let mut cluster = Cluster::new(&[("apps/web.yaml", &file()), ("apps/config.yaml", config)]);
    let served = tempfile::tempdir().unwrap();
    let bare = served.path().join("team.git");
    let out = std::process::Command::new("git").args(["clone", "-q", "--bare"]).arg(&cluster.repo).arg(&bare).output().unwrap();
    assert!(out.status.success());
    let git_daemon = GitDaemon::serve(served.path());
    let url = format!("git://127.0.0.1:{}/team.git", git_daemon.port);
    // The mirror fetches only when asked, so the remote moving is unseen
    // until a push is refused.
    cluster.start_from(&url, &["--branch", "main", "--interval", "1h"]);
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let remote = |args: &[&str]| cluster.git(&[&["--git-dir", bare.to_str().unwrap()][..], args].concat());

    // A verb's commit is pushed and applied.
    let out = verb(&cluster, &["scale", "deploy/web", "--replicas", "3"]);
    assert!(out.contains("(applied)"), "{out}");
    assert_eq!(remote(&["log", "-1", "--format=%s|%an|%cn", "main"]).trim(), format!("scale deployment/web to 3|Grace Hopper|Driftless"));
    cluster.wait_ready("web-", 3, Duration::from_secs(30));

    // Someone else pushes another file: the verb's push is refused, the
    // edit redone on the new head, and pushed on top (no force).
    let clone = served.path().join("clone");
    let work = |args: &[&str]| cluster.git(&[&["-C", clone.to_str().unwrap()][..], args].concat());
    cluster.git(&["clone", "-q", &url, clone.to_str().unwrap()]);
    std::fs::write(clone.join("apps/config.yaml"), config.replace("slow", "fast")).unwrap();
    work(&["commit", "-q", "-am", "settings: fast"]);
    work(&["push", "-q", "origin", "main"]);
    let theirs = work(&["rev-parse", "HEAD"]).trim().to_owned();
    let out = verb(&cluster, &["scale", "deploy/web", "--replicas", "2"]);
    assert!(out.contains("(applied)"), "{out}");
    assert_eq!(remote(&["log", "-2", "--format=%s", "main"]), "scale deployment/web to 2\nsettings: fast\n");
    assert_eq!(remote(&["rev-parse", "main~1"]).trim(), theirs, "their commit is kept under ours");
    cluster.wait_for("their settings applied too", Duration::from_secs(10), || {
        (cluster.get("/api/v1/namespaces/default/configmaps/settings").pointer("/data/mode") == Some(&"fast".into())).then_some(())
    });

    // Someone else changes the very field: the verb is refused, the remote
    // keeps their commit.
    work(&["pull", "-q", "origin", "main"]);
    let text = std::fs::read_to_string(clone.join("apps/web.yaml")).unwrap().replace("replicas: 2 # by hand", "replicas: 4 # by hand");
    std::fs::write(clone.join("apps/web.yaml"), text).unwrap();
    work(&["commit", "-q", "-am", "web: 4"]);
    work(&["push", "-q", "origin", "main"]);
    let theirs = work(&["rev-parse", "HEAD"]);
    let err = refused(&cluster, &["scale", "deploy/web", "--replicas", "1"]);
    assert!(err.contains("/spec/replicas was changed meanwhile"), "{err}");
    assert_eq!(remote(&["rev-parse", "main"]), theirs);
    drop(git_daemon);
}

#[test]
fn undo_of_a_statefulset_reverts_the_commit_behind_its_revision() {
    let set = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.35
        command: [sleep, '3600']
";
    let mut cluster = Cluster::new(&[("apps/db.yaml", set)]);
    cluster.start();
    cluster.wait_ready("db-", 1, Duration::from_secs(30));
    let env = |cluster: &Cluster| cluster.pods().first().and_then(|p| p.pointer("/spec/containers/0/env").cloned());
    verb(&cluster, &["set", "env", "statefulset/db", "MODE=new"]);
    let changed = head(&cluster);
    cluster.wait_for("the pod with the env", Duration::from_secs(60), || {
        (env(&cluster).is_some() && cluster.pods().iter().all(crate::cluster::is_ready)).then_some(())
    });
    let history = cluster.cli_ok(&["rollout", "history", "statefulset/db"]);
    assert!(history.contains(&changed[..7]), "{history}");

    let out = verb(&cluster, &["rollout", "undo", "statefulset/db"]);
    assert!(out.starts_with("statefulset.apps/db rolled back\n") && out.contains("(applied)"), "{out}");
    let body = cluster.git(&["log", "-1", "--format=%B"]);
    assert!(body.contains(&format!("This reverts commit {changed}.")) && body.contains("rollout undo statefulset/db to revision 1"), "{body}");
    assert_eq!(cluster.git(&["show", "HEAD:apps/db.yaml"]), set);
    cluster.wait_for("the pod without the env", Duration::from_secs(60), || {
        (env(&cluster).is_none() && cluster.pods().len() == 1 && cluster.pods().iter().all(crate::cluster::is_ready)).then_some(())
    });
}

#[test]
fn with_rollback_branch_the_rollback_waits_on_a_branch_for_review() {
    // Every workload, annotated or not, with --rollback-on-failure.
    let mut cluster = Cluster::new(&[("apps/web.yaml", &file())]);
    cluster.start_with(&["--rollback-on-failure", "--rollback-branch", "review"]);
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let broken = cluster.commit(&[("apps/web.yaml", &file().replace("image: busybox:1.35", "image: 127.0.0.1:9/none/broken:1"))], "web: new image");
    let branch = format!("review/deployment-web-{}", &broken[..7]);
    let tip = cluster.wait_for("the review branch", Duration::from_secs(90), || {
        let out = std::process::Command::new("git").args(["rev-parse", "--verify", "-q", &branch]).current_dir(&cluster.repo).output().unwrap();
        out.status.success().then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
    });
    assert_eq!(cluster.git(&["show", &format!("{tip}:apps/web.yaml")]), file(), "the branch holds the revert");
    assert_eq!(cluster.git(&["rev-parse", &format!("{tip}~1")]).trim(), broken, "branched from the failed head");
    assert_eq!(head(&cluster), broken, "the watched branch is left to the reviewer");
    let status = cluster.cli_ok(&["status"]);
    assert!(status.contains(&format!("deployment/web {} failed (ProgressDeadlineExceeded", &broken[..7])) && status.contains(&branch), "{status}");
}
