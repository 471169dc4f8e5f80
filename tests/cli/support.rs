//! Throwaway repositories and a handle on the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary folder, optionally a git repository, removed on drop.
pub(crate) struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// An empty folder (not a repository).
    pub(crate) fn folder() -> Repo {
        Repo { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// A new git repository on branch `main`.
    pub(crate) fn git() -> Repo {
        let repo = Repo::folder();
        repo.git_cmd(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the folder.
    pub(crate) fn join(&self, path: &str) -> PathBuf {
        self.dir.path().join(path)
    }

    /// Writes a file, creating folders as needed.
    pub(crate) fn write(&self, path: &str, text: &str) -> &Repo {
        let target = self.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
        self
    }

    /// Removes a file.
    pub(crate) fn remove(&self, path: &str) -> &Repo {
        std::fs::remove_file(self.join(path)).unwrap();
        self
    }

    /// Runs `git` in the repository with a fixed identity; panics on failure.
    pub(crate) fn git_cmd(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test Author")
            .env("GIT_COMMITTER_EMAIL", "author@example.invalid")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Stages everything and commits; returns the short id.
    pub(crate) fn commit(&self, message: &str) -> String {
        self.git_cmd(&["add", "-A"]);
        self.git_cmd(&["commit", "-q", "-m", message]);
        self.git_cmd(&["rev-parse", "--short=7", "HEAD"]).trim().to_owned()
    }
}

/// The result of one run of the binary.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn from(out: Output) -> Run {
        Run {
            // A signal (a crash) has no code; make it fail every assertion.
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The stdout lines.
    pub(crate) fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `driftless` with `args` in `dir`.
pub(crate) fn driftless_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .current_dir(dir)
        .env_remove("DRIFTLESS_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("driftless runs");
    Run::from(out)
}

/// The sample Deployment, with a chosen image and replica count.
pub(crate) fn deployment(name: &str, image: &str, replicas: u32) -> String {
    format!(
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
        resources:
          limits: {{cpu: 1000m, memory: 64Mi}}
"
    )
}
