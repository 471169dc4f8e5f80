//! The driver on real repositories made with the `git` command: what the
//! commit holds (diff lines, author, trailers), what the working tree and
//! index look like after, and each refusal.

use std::path::Path;
use std::process::Command;

use driftless_model::{Kind, ObjectRef};

use super::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).env("GIT_AUTHOR_DATE", "2026-12-01T10:00:00Z").output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

const WEB: &str = "\
# The web tier, hand-written.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2   # two is enough
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: \"busybox:1.35\"
          command: [sleep, \"3600\"]
";

fn repo() -> (tempfile::TempDir, Target) {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["config", "user.name", "Ada"]);
    git(dir.path(), &["config", "user.email", "ada@example.invalid"]);
    std::fs::create_dir_all(dir.path().join("apps")).unwrap();
    std::fs::write(dir.path().join("apps/web.yaml"), WEB).unwrap();
    std::fs::write(dir.path().join("apps/config.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"1\"}\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "first"]);
    let target = Target { repo: dir.path().to_path_buf(), branch: "main".into(), path: "apps".into(), remote: None, age_keys: None };
    (dir, target)
}

fn web() -> ObjectRef {
    ObjectRef::new(Kind::Deployment, None, "web")
}

fn request(change: Change) -> Request {
    Request {
        change,
        author: Identity { name: "Grace".into(), email: "grace@example.invalid".into() },
        message: None,
        dry_run: false,
        branch: None,
        trailers: Vec::new(),
    }
}

fn scale(n: i64) -> Change {
    Change::Verb(web(), Verb::Scale { replicas: n, current_replicas: None })
}

#[test]
fn scale_is_one_attributed_commit_touching_one_line() {
    let (dir, target) = repo();
    let written = write(&target, &request(scale(5))).unwrap();
    let id = written.commit.clone().unwrap();
    assert_eq!(git(dir.path(), &["rev-parse", "main"]).trim(), id);
    let diff = git(dir.path(), &["show", "--format=", "-U0", &id]);
    let changed: Vec<&str> = diff.lines().filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")).collect();
    assert_eq!(changed, ["-  replicas: 2   # two is enough", "+  replicas: 5   # two is enough"]);
    assert_eq!(git(dir.path(), &["log", "-1", "--format=%an <%ae>|%cn|%s"]).trim(), "Grace <grace@example.invalid>|Driftless|scale deployment/web to 5");
    let trailers = git(dir.path(), &["log", "-1", "--format=%(trailers:only,unfold)"]);
    assert_eq!(trailers.trim(), "Driftless-Verb: scale\nDriftless-Object: Deployment default/web");
    // The checked-out branch's working tree and index are as `git commit`
    // leaves them.
    assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
    assert!(std::fs::read_to_string(dir.path().join("apps/web.yaml")).unwrap().contains("replicas: 5   # two is enough"));
    assert!(written.plan.contains("deployment") || written.plan.contains("Deployment"), "{}", written.plan);
}

#[test]
fn dry_run_commits_nothing() {
    let (dir, target) = repo();
    let before = git(dir.path(), &["rev-parse", "main"]);
    let written = write(&target, &Request { dry_run: true, ..request(scale(3)) }).unwrap();
    assert!(written.commit.is_none());
    assert!(written.diff.contains("+  replicas: 3   # two is enough"), "{}", written.diff);
    assert_eq!(git(dir.path(), &["rev-parse", "main"]), before);
}

#[test]
fn refusals_commit_nothing() {
    let (dir, target) = repo();
    let before = git(dir.path(), &["rev-parse", "main"]);
    // An invalid result, with the file and line as `validate` prints them.
    let bad = Change::Verb(web(), Verb::SetResources { container: None, limits: vec![("memory".into(), "lots".into())], requests: vec![] });
    let err = write(&target, &request(bad)).unwrap_err();
    assert!(matches!(err, WriteError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("apps/web.yaml:"), "{err}");
    // Not declared.
    let api = Change::Verb(ObjectRef::new(Kind::Deployment, None, "api"), Verb::Scale { replicas: 1, current_replicas: None });
    let err = write(&target, &request(api)).unwrap_err();
    assert_eq!(err.to_string(), format!("deployment/api is not declared in \"apps\" at {}", &before[..7]));
    // Uncommitted changes in the file.
    std::fs::write(dir.path().join("apps/web.yaml"), WEB.replace("two is enough", "edited")).unwrap();
    let err = write(&target, &request(scale(4))).unwrap_err();
    assert_eq!(err.to_string(), "apps/web.yaml has uncommitted changes; commit or stash them first (the change would be written to that file)");
    assert_eq!(git(dir.path(), &["rev-parse", "main"]), before);
    // Another file's uncommitted change is no obstacle, and stays.
    git(dir.path(), &["checkout", "apps/web.yaml"]);
    std::fs::write(dir.path().join("apps/config.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"2\"}\n").unwrap();
    write(&target, &request(scale(4))).unwrap();
    assert_eq!(git(dir.path(), &["status", "--porcelain"]), " M apps/config.yaml\n");
}

/// The second a file or the index was last changed in, as git compares them.
fn second_of(path: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().mtime()
}

/// Waits for the wall clock's next whole second: the race below is about
/// which second things happen in, so the test sets it up at the start of
/// one and commits in the next.
fn next_second() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    std::thread::sleep(std::time::Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()) + 1_000_000));
}

#[test]
fn an_edit_in_the_index_s_own_second_stays_visible_to_git() {
    // git compares times in whole seconds, libgit2 in nanoseconds: an
    // edit of another file in the same second as the index, of the same
    // size, looked committed to `git status` once the verb's commit wrote
    // the index a second later.
    for _attempt in 0..5 {
        next_second();
        let (dir, target) = repo();
        let config = dir.path().join("apps/config.yaml");
        std::fs::write(&config, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"2\"}\n").unwrap();
        let index = dir.path().join(".git/index");
        if second_of(&config) != second_of(&index) {
            continue; // a slow machine crossed a second: not the race; again
        }
        next_second();
        write(&target, &request(scale(4))).unwrap();
        assert!(second_of(&index) > second_of(&config), "the commit wrote the index in a later second");
        assert_eq!(git(dir.path(), &["status", "--porcelain"]), " M apps/config.yaml\n");
        assert!(git(dir.path(), &["diff", "HEAD", "--stat"]).contains("apps/config.yaml"));
        return;
    }
    panic!("could not set up the edit and the index in one second in five attempts");
}

#[test]
fn a_branch_for_review_leaves_the_watched_one_alone() {
    let (dir, target) = repo();
    let before = git(dir.path(), &["rev-parse", "main"]);
    let written = write(&target, &Request { branch: Some("scale-web".into()), message: Some("More web capacity".into()), ..request(scale(6)) }).unwrap();
    assert_eq!(git(dir.path(), &["rev-parse", "main"]), before);
    assert_eq!(git(dir.path(), &["rev-parse", "scale-web"]).trim(), written.commit.unwrap());
    assert_eq!(git(dir.path(), &["log", "-1", "--format=%s", "scale-web"]).trim(), "More web capacity");
    assert!(written.plan_markdown.contains("web"), "{}", written.plan_markdown);
    let err = write(&target, &Request { branch: Some("scale-web".into()), ..request(scale(7)) }).unwrap_err();
    assert_eq!(err.to_string(), "branch scale-web exists already");
}

#[test]
fn undo_reverts_the_commit_that_made_the_revision() {
    let (dir, target) = repo();
    let first = git(dir.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::write(dir.path().join("apps/web.yaml"), WEB.replace("busybox:1.35", "busybox:1.36")).unwrap();
    git(dir.path(), &["commit", "-qam", "web on 1.36"]);
    let second = git(dir.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    // A later scale does not stand in the revert's way.
    write(&target, &request(scale(3))).unwrap();
    let undo = Undo { revision: 1, current_commit: second[..7].to_owned(), target_commit: first[..7].to_owned() };
    let written = write(&target, &request(Change::Undo(web(), undo.clone()))).unwrap();
    assert_eq!(written.reverts.as_deref(), Some(second.as_str()));
    assert_eq!(git(dir.path(), &["log", "-1", "--format=%s"]).trim(), "Revert \"web on 1.36\"");
    let body = git(dir.path(), &["log", "-1", "--format=%b"]);
    assert!(body.contains(&format!("This reverts commit {second}.")), "{body}");
    assert!(body.contains(&format!("Driftless-Reverts: {second}")), "{body}");
    assert_eq!(std::fs::read_to_string(dir.path().join("apps/web.yaml")).unwrap(), WEB.replace("replicas: 2", "replicas: 3"));
    // Undoing again finds nothing to do.
    let err = write(&target, &request(Change::Undo(web(), undo))).unwrap_err();
    assert!(matches!(err, WriteError::NoChange(_)), "{err}");
}

#[test]
fn undo_restores_the_template_when_the_commit_did_more() {
    let (dir, target) = repo();
    let first = git(dir.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::write(dir.path().join("apps/web.yaml"), WEB.replace("busybox:1.35", "busybox:1.36")).unwrap();
    std::fs::write(dir.path().join("apps/config.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"3\"}\n").unwrap();
    git(dir.path(), &["commit", "-qam", "web on 1.36, and settings"]);
    let second = git(dir.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    let undo = Undo { revision: 1, current_commit: second.clone(), target_commit: first.clone() };
    let written = write(&target, &request(Change::Undo(web(), undo))).unwrap();
    assert_eq!(git(dir.path(), &["log", "-1", "--format=%s"]).trim(), "rollout undo deployment/web to revision 1");
    assert_eq!(written.reverts.as_deref(), Some(second.as_str()));
    // Only the template went back; the settings stay.
    assert_eq!(std::fs::read_to_string(dir.path().join("apps/web.yaml")).unwrap(), WEB);
    assert!(std::fs::read_to_string(dir.path().join("apps/config.yaml")).unwrap().contains("\"3\""));
}

#[test]
fn apply_writes_declared_objects_in_place_and_new_ones_in_files_of_their_own() {
    let (dir, target) = repo();
    let settings = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1", "b": "on"}});
    let api = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api", "namespace": "team"}, "data": {"x": "z"}});
    let written = write(&target, &request(Change::Apply { verb: "apply".into(), documents: vec![settings, api] })).unwrap();
    assert_eq!(written.files, ["apps/config.yaml", "apps/team/configmap-api.yaml"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("apps/config.yaml")).unwrap(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"1\", b: \"on\"}\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("apps/team/configmap-api.yaml")).unwrap(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\n  namespace: team\ndata:\n  x: z\n"
    );
    assert_eq!(git(dir.path(), &["log", "-1", "--format=%s"]).trim(), "apply configmap/settings, configmap/api");
    let trailers = git(dir.path(), &["log", "-1", "--format=%(trailers:only,unfold)"]);
    assert_eq!(trailers.trim(), "Driftless-Verb: apply\nDriftless-Object: ConfigMap default/settings\nDriftless-Object: ConfigMap team/api");
    assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
}

#[test]
fn delete_removes_the_document_or_the_file() {
    let (dir, target) = repo();
    let two = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\n# the second\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n";
    std::fs::write(dir.path().join("apps/two.yaml"), two).unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "two"]);
    let cm = |n: &str| ObjectRef::new(Kind::ConfigMap, None, n);
    write(&target, &request(Change::Delete(vec![cm("two")]))).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("apps/two.yaml")).unwrap(), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n");
    write(&target, &request(Change::Delete(vec![cm("one"), cm("settings")]))).unwrap();
    assert!(!dir.path().join("apps/two.yaml").exists() && !dir.path().join("apps/config.yaml").exists());
    assert_eq!(git(dir.path(), &["log", "-1", "--format=%s"]).trim(), "delete configmap/one, configmap/settings");
    assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
    assert_eq!(git(dir.path(), &["ls-files"]), "apps/web.yaml\n");
}

#[test]
fn a_remote_repository_gets_a_push_and_a_moved_branch_a_redo() {
    // The user's repository, a bare remote served over file://, and the
    // daemon's mirror of it (as the sync makes it).
    let (work, _) = repo();
    let root = tempfile::tempdir().unwrap();
    let remote = root.path().join("remote.git");
    let out = Command::new("git").args(["clone", "-q", "--bare"]).arg(work.path()).arg(&remote).output().unwrap();
    assert!(out.status.success());
    let mirror = root.path().join("mirror");
    git(root.path(), &["init", "-q", "--bare", mirror.to_str().unwrap()]);
    let url = format!("file://{}", remote.display());
    git(&mirror, &["remote", "add", "origin", &url]);
    git(&mirror, &["fetch", "-q", "origin", "+refs/heads/main:refs/remotes/origin/main"]);
    let target = Target { repo: mirror.clone(), branch: "main".into(), path: "apps".into(), remote: Some("origin".into()), age_keys: None };

    let written = write(&target, &request(scale(4))).unwrap();
    let id = written.commit.unwrap();
    assert_eq!(git(&remote, &["rev-parse", "main"]).trim(), id, "pushed");
    assert_eq!(git(&mirror, &["rev-parse", "refs/remotes/origin/main"]).trim(), id, "the mirror's head follows");

    // Someone else pushes meanwhile: the verb is redone on their head,
    // never forced over it.
    git(work.path(), &["pull", "-q", &url, "main"]);
    std::fs::write(work.path().join("apps/config.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"5\"}\n").unwrap();
    git(work.path(), &["commit", "-qam", "settings 5"]);
    git(work.path(), &["push", "-q", &url, "main"]);
    let theirs = git(&remote, &["rev-parse", "main"]).trim().to_owned();
    let written = write(&target, &request(scale(6))).unwrap();
    assert_eq!(git(&remote, &["rev-parse", "main~1"]).trim(), theirs, "the verb's commit sits on theirs");
    assert_eq!(git(&remote, &["rev-parse", "main"]).trim(), written.commit.unwrap());
    let text = git(&remote, &["show", "main:apps/web.yaml"]);
    assert!(text.contains("replicas: 6   # two is enough"), "{text}");

    // Someone scales on the remote meanwhile: the redo refuses rather than
    // overwrite their replicas.
    git(work.path(), &["pull", "-q", &url, "main"]);
    std::fs::write(work.path().join("apps/web.yaml"), WEB.replace("replicas: 2", "replicas: 8")).unwrap();
    git(work.path(), &["commit", "-qam", "scale to 8 by hand"]);
    git(work.path(), &["push", "-q", &url, "main"]);
    let err = write(&target, &request(scale(7))).unwrap_err();
    assert!(matches!(err, WriteError::Conflict { ref field, .. } if field == "/spec/replicas"), "{err}");
}

fn edit_of(opened: &crate::Opened, from: &str, to: &str) -> Change {
    assert!(opened.text.contains(from), "{}", opened.text);
    Change::Edit { object: web(), opened: opened.text.clone(), edited: opened.text.replace(from, to) }
}

#[test]
fn edit_commits_the_users_text_verbatim() {
    let (dir, target) = repo();
    let opened = crate::open(&target, &web()).unwrap();
    assert_eq!((opened.file.as_str(), opened.line), ("apps/web.yaml", 2));
    assert!(opened.text.starts_with("apiVersion: apps/v1\n") && opened.text.ends_with("command: [sleep, \"3600\"]\n"), "{}", opened.text);
    let change = edit_of(&opened, "  replicas: 2   # two is enough\n", "  # three for the launch\n  replicas: 3\n");
    let written = write(&target, &request(change)).unwrap();
    let diff = git(dir.path(), &["show", "--format=", "-U0", written.commit.as_deref().unwrap()]);
    let changed: Vec<&str> = diff.lines().filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")).collect();
    assert_eq!(changed, ["-  replicas: 2   # two is enough", "+  # three for the launch", "+  replicas: 3"]);
    assert_eq!(git(dir.path(), &["log", "-1", "--format=%s|%(trailers:key=Driftless-Verb,valueonly)"]).trim(), "edit deployment/web|edit");
    assert!(std::fs::read_to_string(dir.path().join("apps/web.yaml")).unwrap().starts_with("# The web tier, hand-written.\n"));
}

#[test]
fn edit_carries_fields_onto_a_moved_head_and_refuses_the_same_field() {
    let (dir, target) = repo();
    let opened = crate::open(&target, &web()).unwrap();
    // Someone changes the image meanwhile.
    let text = std::fs::read_to_string(dir.path().join("apps/web.yaml")).unwrap().replace("busybox:1.35", "busybox:1.36");
    std::fs::write(dir.path().join("apps/web.yaml"), text).unwrap();
    git(dir.path(), &["commit", "-q", "-am", "newer image"]);
    let written = write(&target, &request(edit_of(&opened, "replicas: 2", "replicas: 4"))).unwrap();
    assert!(written.commit.is_some());
    let now = std::fs::read_to_string(dir.path().join("apps/web.yaml")).unwrap();
    assert!(now.contains("replicas: 4   # two is enough") && now.contains("busybox:1.36"), "{now}");
    // Editing the image from the stale copy is refused: it changed there.
    let error = write(&target, &request(edit_of(&opened, "busybox:1.35", "busybox:1.37"))).unwrap_err();
    assert!(matches!(&error, WriteError::Conflict { field, .. } if field.contains("image")), "{error}");
}

#[test]
fn edit_refuses_a_rename_an_invalid_result_and_an_unchanged_text() {
    let (_dir, target) = repo();
    let opened = crate::open(&target, &web()).unwrap();
    let error = write(&target, &request(edit_of(&opened, "name: web", "name: web2"))).unwrap_err();
    assert!(error.to_string().contains("apply -f"), "{error}");
    let error = write(&target, &request(edit_of(&opened, "replicas: 2", "replicas: many"))).unwrap_err();
    assert!(matches!(&error, WriteError::Invalid { errors } if errors.iter().any(|e| e.contains("apps/web.yaml:7"))), "{error}");
    let error = write(&target, &request(edit_of(&opened, "replicas", "replicas"))).unwrap_err();
    assert!(matches!(error, WriteError::NoChange(_)), "{error}");
}

#[test]
fn rolling_back_to_a_commit_restores_its_manifests_in_one_commit() {
    let (dir, target) = repo();
    let first = git(dir.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::write(dir.path().join("apps/web.yaml"), WEB.replace("busybox:1.35", "busybox:1.36")).unwrap();
    std::fs::write(dir.path().join("apps/extra.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "not a manifest\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "web on 1.36, with extra"]);
    write(&target, &request(scale(3))).unwrap();

    let dry = write(&target, &Request { dry_run: true, ..request(Change::Restore { commit: first[..7].to_owned() }) }).unwrap();
    assert_eq!(dry.commit, None);
    assert!(dry.plan.contains("extra") && dry.diff.contains("-          image: \"busybox:1.36\""), "{}\n{}", dry.plan, dry.diff);

    let written = write(&target, &request(Change::Restore { commit: first[..7].to_owned() })).unwrap();
    assert_eq!(git(dir.path(), &["log", "-1", "--format=%s"]).trim(), format!("Roll back to {} \"first\"", &first[..7]));
    let body = git(dir.path(), &["log", "-1", "--format=%b"]);
    assert!(body.contains("undoing 2 later commits") && body.contains("web on 1.36, with extra") && body.contains("scale deployment/web to 3"), "{body}");
    assert!(body.contains(&format!("Driftless-Restores: {first}")), "{body}");
    // The manifests are the first commit's, byte for byte; the README
    // (not a manifest) and history stay.
    assert_eq!(git(dir.path(), &["diff", "--stat", &first, &written.commit.unwrap(), "--", "apps"]), "");
    assert_eq!(std::fs::read_to_string(dir.path().join("README.md")).unwrap(), "not a manifest\n");

    let again = write(&target, &request(Change::Restore { commit: first.clone() })).unwrap_err();
    assert!(matches!(again, WriteError::NoChange(_)), "{again}");
    let unknown = write(&target, &request(Change::Restore { commit: "0000000".into() })).unwrap_err();
    assert!(unknown.to_string().contains("no commit"), "{unknown}");
    git(dir.path(), &["checkout", "-q", "--orphan", "other"]);
    git(dir.path(), &["commit", "-qm", "elsewhere"]);
    let elsewhere = git(dir.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    git(dir.path(), &["checkout", "-q", "main"]);
    let outside = write(&target, &request(Change::Restore { commit: elsewhere })).unwrap_err();
    assert!(outside.to_string().contains("not in the history of branch main"), "{outside}");
}
