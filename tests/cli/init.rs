//! `driftless init`.

use crate::support::{Repo, driftless_in};

#[test]
fn init_creates_a_committed_valid_repository() {
    let work = Repo::folder();
    let run = driftless_in(work.path(), &["init", "myrepo"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("Initialized a Driftless GitOps repository in myrepo (commit "), "{run:?}");

    let repo = work.join("myrepo");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(&repo).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(git(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "main");
    assert_eq!(git(&["log", "--format=%s"]).trim(), "Initial commit from driftless init");
    assert_eq!(git(&["status", "--porcelain"]), "", "the template is committed whole");
    let files = git(&["ls-files"]);
    for expected in ["README.md", "apps/hello/configmap.yaml", "apps/hello/deployment.yaml", "apps/hello/service.yaml"] {
        assert!(files.lines().any(|f| f == expected), "{expected} missing from {files}");
    }

    let run = driftless_in(work.path(), &["validate", "myrepo/apps"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "3 resources in 3 files: 3 valid, 0 invalid\n"), "{run:?}");
    let run = driftless_in(work.path(), &["validate", "--repo", "myrepo", "--path", "apps"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn init_refuses_a_folder_that_is_not_empty() {
    let work = Repo::folder();
    work.write("taken/file.txt", "mine");
    let run = driftless_in(work.path(), &["init", "taken"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr, "driftless: error: taken: folder is not empty\n");
    assert_eq!(std::fs::read_to_string(work.join("taken/file.txt")).unwrap(), "mine");
}
