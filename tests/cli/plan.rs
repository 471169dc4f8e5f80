//! `driftless plan`.

use crate::support::{Repo, deployment, driftless_in};

fn app_repo() -> Repo {
    let repo = Repo::git();
    repo.write("apps/web.yaml", &deployment("web", "busybox:1.35", 2))
        .write("apps/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {greeting: hello}\n")
        .write("apps/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2, user: admin}\n");
    repo.commit("first");
    repo
}

#[test]
fn scaling_does_not_roll_and_an_image_change_does() {
    let repo = app_repo();
    repo.write("apps/web.yaml", &deployment("web", "busybox:1.35", 5));
    let scaled = repo.commit("scale web to 5");
    let run = driftless_in(repo.path(), &["plan", "--from", "HEAD~1", "--to", "HEAD", "--path", "apps"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&format!("to {scaled} \"scale web to 5\"")), "{run:?}");
    assert!(run.stdout.contains("Plan: 0 to create, 1 to update, 0 to delete\n"), "{run:?}");
    assert!(run.stdout.contains("~ Deployment default/web (update, scales)\n    spec.replicas: 2 → 5\n"), "{run:?}");

    repo.write("apps/web.yaml", &deployment("web", "busybox:1.36", 5));
    repo.commit("web on 1.36");
    let run = driftless_in(repo.path(), &["plan", "--from", "HEAD~1", "--path", "apps"]);
    assert!(run.stdout.contains("Plan: 0 to create, 1 to update (1 rolls pods), 0 to delete"), "{run:?}");
    assert!(run.stdout.contains("    spec.template.spec.containers[0].image: \"busybox:1.35\" → \"busybox:1.36\"\n"), "{run:?}");
    assert!(run.stdout.contains("  -      - image: busybox:1.35\n  +      - image: busybox:1.36\n"), "{run:?}");
}

#[test]
fn equal_meaning_is_no_change() {
    let repo = app_repo();
    // Reordered keys, spelled-out defaults and an equal quantity.
    let same = deployment("web", "busybox:1.35", 2)
        .replace("cpu: 1000m", "cpu: \"1\"")
        .replace("spec:\n  replicas: 2", "spec:\n  revisionHistoryLimit: 10\n  replicas: 2\n  strategy: {type: RollingUpdate}");
    repo.write("apps/web.yaml", &same);
    repo.commit("cosmetic");
    let run = driftless_in(repo.path(), &["plan", "--from", "HEAD~1", "--path", "apps"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.ends_with("No changes.\n"), "{run:?}");
}

#[test]
fn markdown_between_branches_for_a_pull_request() {
    let repo = app_repo();
    repo.git_cmd(&["checkout", "-q", "-b", "feature"]);
    repo.remove("apps/config.yaml")
        .write("apps/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n")
        .write("apps/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: correct-horse, user: admin}\n");
    repo.commit("feature: service, rotate password, drop config");
    let run = driftless_in(repo.path(), &["plan", "--from", "main", "--to", "feature", "--path", "apps", "-o", "markdown"]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = &run.stdout;
    assert!(out.contains("**Driftless plan:** 1 to create, 1 to update, 1 to delete"), "{out}");
    assert!(out.contains("| ➕ | Service | default | `web` | create |"), "{out}");
    assert!(out.contains("| ✏️ | Secret | default | `db` | update, **in place**: `data.password` |"), "{out}");
    assert!(out.contains("| 🗑️ | ConfigMap | default | `web` | delete |"), "{out}");
    assert!(out.contains("<details><summary>create Service default/web</summary>"), "{out}");
    for secret in ["hunter2", "correct-horse", "aHVudGVyMg", "Y29ycmVjdC1ob3JzZQ", "YWRtaW4"] {
        assert!(!out.contains(secret), "secret value {secret} leaked:\n{out}");
    }
    assert!(out.contains("(redacted, changed)"), "{out}");
}

#[test]
fn json_plan_for_tools() {
    let repo = app_repo();
    repo.write("apps/web.yaml", &deployment("web", "busybox:1.36", 2));
    repo.commit("bump");
    let run = driftless_in(repo.path(), &["plan", "--from", "HEAD~1", "--path", "apps", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["summary"]["update"], 1);
    assert_eq!(json["summary"]["rolls_pods"], 1);
    assert_eq!(json["actions"][0]["action"], "update");
    assert_eq!(json["actions"][0]["effect"], "rolls-pods");
    assert_eq!(json["actions"][0]["fields"][0]["path"], "spec.template.spec.containers[0].image");
    assert_eq!(json["to"]["summary"], "bump");
}

#[test]
fn an_invalid_target_is_refused_with_its_errors() {
    let repo = app_repo();
    repo.write(
        "apps/web.yaml",
        &deployment("web", "busybox:1.35", 2).replace("image: busybox:1.35", "image: busybox:1.35\n        imagePullPolicy: Sometimes"),
    );
    let bad = repo.commit("oops");
    let run = driftless_in(repo.path(), &["plan", "--from", "HEAD~1", "--path", "apps"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains(&format!("{bad} (oops) is invalid: the daemon would refuse it whole")), "{run:?}");
    assert!(
        run.stdout.contains("apps/web.yaml:16:9: error: Deployment/web: spec.template.spec.containers[0].imagePullPolicy: unsupported value \"Sometimes\""),
        "{run:?}"
    );
    let run = driftless_in(repo.path(), &["plan", "--from", "HEAD~1", "--path", "apps", "-o", "markdown"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("**Driftless plan:** ❌"), "{run:?}");
}

#[test]
fn missing_revisions_and_non_repositories_exit_2() {
    let repo = app_repo();
    let run = driftless_in(repo.path(), &["plan", "--from", "no-such-branch", "--path", "apps"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("revision \"no-such-branch\" not found"), "{run:?}");
    let folder = Repo::folder();
    let run = driftless_in(folder.path(), &["plan", "--from", "HEAD~1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not a git repository"), "{run:?}");
}
