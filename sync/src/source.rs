//! Where manifests come from: a branch of a local repository, read in
//! place, or of a remote one, fetched into a mirror under the data folder.

use std::path::{Path, PathBuf};

use driftless_manifest::{CommitInfo, GitRepo, RawFile};
use git2::Repository;

use crate::SyncError;

/// What to sync from.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// A local repository's folder, or a URL (`https://`, `file://`, or any
    /// URL git understands) to fetch from.
    pub repo: String,
    /// The branch; `None` for a local repository's current branch (`main`
    /// for a remote).
    pub branch: Option<String>,
    /// The folder (or file) inside the repository holding the manifests.
    pub path: String,
    /// Where a remote's mirror lives.
    pub mirror_dir: PathBuf,
}

/// An opened source.
pub struct Source {
    config: SourceConfig,
    /// The repository read from (the user's, or the mirror).
    local: PathBuf,
    branch: String,
    remote: bool,
}

fn is_url(repo: &str) -> bool {
    repo.contains("://") || (repo.contains('@') && repo.contains(':') && !Path::new(repo).exists())
}

impl Source {
    /// Opens the source: checks a local repository, or creates (or reuses)
    /// the mirror of a remote one.
    pub fn open(config: SourceConfig) -> Result<Source, SyncError> {
        if is_url(&config.repo) {
            let local = config.mirror_dir.clone();
            if !local.join("HEAD").exists() {
                std::fs::create_dir_all(&local).map_err(|source| SyncError::Io { path: local.display().to_string(), source })?;
                let repo = Repository::init_bare(&local)?;
                repo.remote("origin", &config.repo)?;
            } else {
                let repo = Repository::open_bare(&local)?;
                repo.remote_set_url("origin", &config.repo)?;
            }
            let branch = config.branch.clone().unwrap_or_else(|| "main".to_owned());
            return Ok(Source { config, local, branch, remote: true });
        }
        let local = PathBuf::from(&config.repo);
        let repo = GitRepo::open(&local)?;
        let branch = match &config.branch {
            Some(branch) => branch.clone(),
            None => {
                let head = repo.repository().find_reference("HEAD")?;
                let target = head.symbolic_target().ok().flatten().unwrap_or("refs/heads/main").to_owned();
                target.strip_prefix("refs/heads/").unwrap_or(&target).to_owned()
            }
        };
        Ok(Source { config, local, branch, remote: false })
    }

    /// The repository read from, where the ledger is written too.
    pub fn repository_path(&self) -> &Path {
        &self.local
    }

    /// The git folder to watch for ref changes (local sources only).
    pub fn git_dir(&self) -> Option<PathBuf> {
        if self.remote {
            return None;
        }
        Repository::open(&self.local).ok().map(|r| r.commondir().to_path_buf())
    }

    /// Whether the source is fetched rather than read in place.
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// The branch watched.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The path inside the repository.
    pub fn path(&self) -> &str {
        &self.config.path
    }

    /// The repository as configured.
    pub fn repo(&self) -> &str {
        &self.config.repo
    }

    fn tracking_ref(&self) -> String {
        if self.remote { format!("refs/remotes/origin/{}", self.branch) } else { format!("refs/heads/{}", self.branch) }
    }

    /// Fetches the branch from a remote (nothing for a local source).
    ///
    /// Through the `git` command rather than libgit2: it speaks every
    /// transport users have set up (https with their credential helpers,
    /// ssh with their keys and known hosts, `file://`), and it keeps a TLS
    /// library out of the daemon, whose memory is measured.
    pub fn fetch(&self) -> Result<(), SyncError> {
        if !self.remote {
            return Ok(());
        }
        let refspec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.branch);
        let output = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&self.local)
            .args(["fetch", "--quiet", "--no-tags", "--prune", "origin", &refspec])
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| SyncError::Io { path: "git fetch".into(), source })?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(SyncError::Fetch { repo: self.config.repo.clone(), message });
        }
        Ok(())
    }

    /// The commit at the head of the branch.
    pub fn head(&self) -> Result<String, SyncError> {
        let repo = Repository::open(&self.local)?;
        let reference =
            repo.find_reference(&self.tracking_ref()).map_err(|_| SyncError::NoBranch { branch: self.branch.clone(), repo: self.config.repo.clone() })?;
        Ok(reference.peel_to_commit()?.id().to_string())
    }

    /// Whether `commit` is `ancestor` or descends from it; false when
    /// `ancestor` is no longer in the repository (rewritten and pruned).
    pub fn descends_from(&self, commit: &str, ancestor: &str) -> Result<bool, SyncError> {
        let repo = Repository::open(&self.local)?;
        let (Ok(commit), Ok(ancestor)) = (git2::Oid::from_str(commit), git2::Oid::from_str(ancestor)) else { return Ok(false) };
        if commit == ancestor {
            return Ok(true);
        }
        if repo.find_commit(ancestor).is_err() {
            return Ok(false);
        }
        Ok(repo.graph_descendant_of(commit, ancestor)?)
    }

    /// The manifest files at `commit`.
    pub fn load(&self, commit: &str) -> Result<(CommitInfo, Vec<RawFile>), SyncError> {
        let repo = GitRepo::open(&self.local)?;
        Ok(repo.load(commit, &self.config.path)?)
    }

    /// A commit's facts.
    pub fn commit(&self, commit: &str) -> Result<CommitInfo, SyncError> {
        Ok(GitRepo::open(&self.local)?.commit(commit)?)
    }
}
