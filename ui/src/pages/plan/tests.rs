//! The Plan page on real git repositories (made with the `git` command in
//! a throwaway folder) and an in-memory store.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use driftless_store::{Batch, Op, SqliteStore, Store};
use serde_json::json;

use super::*;

/// A throwaway git repository on branch `main`, removed on drop.
struct Git {
    dir: PathBuf,
}

impl Git {
    fn new() -> Git {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("driftless-ui-plan-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let git = Git { dir };
        git.run(&["init", "-q", "-b", "main"]);
        git
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_AUTHOR_NAME", "Grace")
            .env("GIT_AUTHOR_EMAIL", "grace@example.invalid")
            .env("GIT_COMMITTER_NAME", "Grace")
            .env("GIT_COMMITTER_EMAIL", "grace@example.invalid")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes `apps/web.yaml` and commits it; the commit's short id.
    fn commit_web(&self, image: &str, extra: &str, message: &str) -> String {
        let path = self.dir.join("apps/web.yaml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, deployment(image, extra)).unwrap();
        self.run(&["add", "-A"]);
        self.run(&["commit", "-q", "-m", message]);
        self.run(&["rev-parse", "--short=7", "HEAD"]).trim().to_owned()
    }

    fn repo(&self) -> Repo {
        Repo { path: self.dir.clone(), branch: "main".into(), manifests: "apps".into(), age_keys: None }
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Git {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Deployment `web` on `image`; `extra` is inserted after the image
/// line (its container's next fields).
fn deployment(image: &str, extra: &str) -> String {
    format!(
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: main
        image: {image}
{extra}        resources:
          limits: {{cpu: 1000m, memory: 64Mi}}
"
    )
}

/// A repository whose two commits change the Deployment's image.
fn two_images() -> (Git, String, String) {
    let git = Git::new();
    let first = git.commit_web("busybox:1.35", "", "web on 1.35");
    let second = git.commit_web("busybox:1.36", "", "web on 1.36");
    (git, first, second)
}

fn page(store: &dyn Store, repo: &Repo, from: Option<&str>, to: Option<&str>) -> String {
    render(store, Some(repo), from, to).into_string()
}

#[test]
fn an_image_change_shows_as_an_update_that_rolls_pods() {
    let (git, first, second) = two_images();
    let store = SqliteStore::in_memory();
    let html = page(&store, &git.repo(), Some("HEAD~1"), Some("main"));
    assert!(html.contains(&format!("<code>{first}</code> web on 1.35 → <code>{second}</code> web on 1.36")), "heading: {html}");
    assert!(html.contains("<strong>Driftless plan:</strong> 0 to create, 1 to update (1 rolls pods), 0 to delete"), "{html}");
    assert!(
        html.contains("<td>Deployment</td><td>default</td><td><code>web</code></td><td>update, <strong>rolls pods</strong>: <code>spec.template.spec.containers[0].image</code></td>"),
        "the table row: {html}"
    );
    assert!(html.contains("<details><summary>update Deployment default/web</summary>"), "{html}");
    assert!(html.contains("-      - image: busybox:1.35\n+      - image: busybox:1.36\n"), "the diff: {html}");
    // The markdown to copy, as `driftless plan -o markdown` prints it.
    assert!(html.contains("<textarea readonly") && html.contains("| ✏️ | Deployment | default | `web` | update, **rolls pods**"), "{html}");
    // The form keeps what was planned, and suggests branches and commits.
    assert!(html.contains(r#"name="from" value="HEAD~1""#) && html.contains(r#"name="to" value="main""#), "{html}");
    assert!(html.contains(r#"<option value="main">"#) && html.contains(&format!("{second} web on 1.36</option>")), "{html}");
}

#[test]
fn by_default_the_watched_branch_is_planned_against_what_runs() {
    let (git, _, second) = two_images();
    let store = SqliteStore::in_memory();
    let html = page(&store, &git.repo(), None, Some(""));
    assert!(html.contains(r#"name="from" value="live""#) && html.contains(r#"name="to" value="main""#), "{html}");
    assert!(html.contains(&format!("what runs now (no revision applied yet) → <code>{second}</code>")), "{html}");
    assert!(html.contains("1 to create") && html.contains("<summary>create Deployment default/web</summary>"), "{html}");
}

#[test]
fn an_invalid_revision_is_refused_with_its_errors_at_file_and_line() {
    let (git, _, _) = two_images();
    let bad = git.commit_web("busybox:1.36", "        imagePullPolicy: Sometimes\n", "oops");
    let html = page(&SqliteStore::in_memory(), &git.repo(), Some("HEAD~1"), Some("HEAD"));
    assert!(html.contains(&format!("<code>{bad}</code> is invalid: the daemon would refuse it whole")), "{html}");
    assert!(
        html.contains(
            "<code>apps/web.yaml:16:9: error: Deployment/web: spec.template.spec.containers[0].imagePullPolicy: unsupported value &quot;Sometimes&quot;"
        ),
        "{html}"
    );
    assert!(!html.contains("<textarea"), "no plan: {html}");
}

#[test]
fn html_from_git_and_the_store_is_escaped() {
    let git = Git::new();
    git.commit_web("busybox:1.35", "", "<b>bold</b> & <script>alert(0)</script>");
    // What runs holds a declared object with markup in its names: planning
    // the branch against it deletes it, so the names reach the markdown
    // (a table cell and the summary of its diff).
    let store = SqliteStore::in_memory();
    let mut config = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "<script>alert(1)</script>", "namespace": "<img src=x onerror=alert(2)>", "annotations": {}},
        "data": {"k": "</details><script>alert(3)</script>"},
    });
    config["metadata"]["annotations"][driftless_sync::MANAGED] = json!("0123456 <i>old</i>");
    store.apply(Batch::one(Op::Create(config))).unwrap();
    let html = page(&store, &git.repo(), Some("live"), Some("main"));
    assert!(html.contains("<summary>delete ConfigMap &lt;img src=x onerror=alert(2)&gt;/&lt;script&gt;alert(1)&lt;/script&gt;</summary>"), "{html}");
    assert!(html.contains("<td>&lt;img src=x onerror=alert(2)&gt;</td><td><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></td>"), "{html}");
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;alert(0)&lt;/script&gt;"), "the subject: {html}");
    assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>") && !html.contains("<i>"), "nothing unescaped: {html}");
}

#[test]
fn raw_html_links_and_images_in_markdown_become_text() {
    let html = markdown_html(
        "a <b>b</b> [link](javascript:alert(1)) ![img](http://x/y.png)\n\n<div onclick=x>block</div>\n\n<details><summary><i>x</i></summary>\n\nbody\n\n</details>\n",
    );
    assert_eq!(
        html,
        "<p>a &lt;b&gt;b&lt;/b&gt; link img</p>\n<p>&lt;div onclick=x&gt;block&lt;/div&gt;</p>\n<details><summary>&lt;i&gt;x&lt;/i&gt;</summary>\n<p>body</p>\n</details>\n"
    );
}

#[test]
fn what_is_typed_is_checked_before_git_sees_it() {
    let (git, _, _) = two_images();
    let store = SqliteStore::in_memory();
    let repo = git.repo();
    let long = "a".repeat(201);
    let html = page(&store, &repo, Some(&long), None);
    assert!(html.contains("From is 201 characters long: a revision has at most 200."), "{html}");
    let html = page(&store, &repo, None, Some("main;rm -rf /"));
    assert!(html.contains("To &quot;main;rm -rf /&quot; is not a revision"), "{html}");
    let html = page(&store, &repo, Some("--output=x"), None);
    assert!(html.contains("From &quot;--output=x&quot; is not a revision"), "{html}");
    let html = page(&store, &repo, Some("HEAD"), Some("live"));
    assert!(html.contains("To must be a revision"), "{html}");
    let html = page(&store, &repo, Some("HEAD~1"), Some("no-such-branch"));
    assert!(html.contains("Cannot plan: revision &quot;no-such-branch&quot; not found"), "{html}");
    // Revision suffixes are revisions.
    let html = page(&store, &repo, Some("main~1"), Some("main@{0}"));
    assert!(html.contains("1 to update"), "{html}");
    assert!(git.path().exists());
}

#[test]
fn without_a_repository_there_is_nothing_to_plan() {
    let html = render(&SqliteStore::in_memory(), None, None, None).into_string();
    assert!(html.contains("This daemon syncs no repository"), "{html}");
}
