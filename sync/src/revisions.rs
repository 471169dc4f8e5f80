//! Planning a revision of the repository against another, or against what
//! runs: the one place `driftless plan`, `driftless diff` and the
//! dashboard's Plan page get their answer from, so that the three say the
//! same thing about the same commit.
//!
//! Owns: loading a revision's manifests from the object database (SOPS
//! files opened with the caller's keyring) and validating them with the
//! pipeline the sync loop applies with; the verdict on a revision planned
//! against a base ([`judge`]: the plan, or why the daemon would refuse the
//! revision whole: its own errors, or changes Kubernetes cannot make in
//! place, placed at their file and line); and the revisions a user may
//! pick from ([`choices`]).
//!
//! Must not touch: the store (a live side is a [`Live`] the caller hands
//! in), the ledger, or any ref, index or work tree: it only reads commits.
//! What a change does is `driftless_diff::plan`'s decision alone.

use std::path::Path;

use driftless_diff::{Live, Plan, Revision};
use driftless_manifest::{CommitInfo, GitRepo};
use driftless_model::{Object, ObjectRef};
use driftless_secrets::Keyring;
use driftless_validate::{Diagnostic, Report};

/// A revision that could not be read at all (as opposed to one that is
/// invalid, which is a [`Verdict`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevisionError {
    /// The repository, the revision or the path inside it is missing.
    #[error(transparent)]
    Load(#[from] driftless_manifest::LoadError),
    /// Git failed listing branches or commits.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// The age identities could not be read.
    #[error("age identities: {0}")]
    Secrets(#[source] driftless_secrets::SecretsError),
}

/// One revision, loaded and validated.
#[derive(Debug)]
pub struct Loaded {
    /// Its commit.
    pub commit: CommitInfo,
    /// Its validation: findings at file and line, and the valid objects.
    pub report: Report,
}

impl Loaded {
    /// Its valid objects, by identity.
    pub fn objects(&self) -> impl Iterator<Item = (&ObjectRef, &Object)> {
        self.report.objects.iter().map(|(object_ref, entry)| (object_ref, &entry.object))
    }
}

/// What the daemon would do with a revision.
#[derive(Debug)]
pub enum Verdict {
    /// Apply this plan (empty when nothing changes).
    Apply(Plan),
    /// Refuse it whole: it is invalid (its report's diagnostics say where).
    Invalid,
    /// Refuse it whole: it changes fields Kubernetes cannot change in place.
    NotApplicable {
        /// The plan, whose `refused` lists those changes.
        plan: Plan,
        /// Each refused change, placed where the revision writes the field.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Two revisions planned one against the other.
#[derive(Debug)]
pub struct Planned {
    /// The revision planned from. Its invalid objects, if any, are left out
    /// of the base: they never ran.
    pub from: Loaded,
    /// The revision planned to.
    pub to: Loaded,
    /// What changing from one to the other does, or why it is refused.
    pub verdict: Verdict,
}

/// The keyring SOPS files are opened with: the age identities in `keys`
/// (or SOPS's own environment variables), as the sync loop reads them; an
/// empty one without `keys`, so that encrypted files are reported, not
/// opened.
pub fn keyring(keys: Option<&Path>) -> Result<Keyring, RevisionError> {
    match keys {
        Some(keys) => Keyring::from_env_or(keys).map_err(RevisionError::Secrets),
        None => Ok(Keyring::default()),
    }
}

/// Loads the manifests under `path` (empty for the whole tree) at `rev` of
/// the repository at `repo`, and validates them.
pub fn load(repo: &Path, rev: &str, path: &str, keyring: &Keyring) -> Result<Loaded, RevisionError> {
    let (commit, files) = GitRepo::open(repo)?.load(rev, path)?;
    // The files are dropped as soon as they are judged: the report keeps
    // only positions and typed objects.
    let report = driftless_validate::validate_files(files, &|file| driftless_secrets::open(file, keyring));
    Ok(Loaded { commit, report })
}

/// The verdict on `to` planned against `base`: the same engine and rules
/// whether the base is another revision or what runs.
pub fn judge(to: &Report, base: &dyn Live) -> Verdict {
    if !to.is_valid() {
        return Verdict::Invalid;
    }
    let plan = driftless_diff::plan(to.objects.iter().map(|(object_ref, entry)| (object_ref, &entry.object)), base);
    if plan.is_applicable() {
        return Verdict::Apply(plan);
    }
    let diagnostics = plan.refused.iter().map(|r| to.error_at(&r.object, &r.pointer, &r.message)).collect();
    Verdict::NotApplicable { plan, diagnostics }
}

/// Plans revision `to` against revision `from` of the repository at `repo`
/// (manifests under `path`). When both fail to load, the error is
/// `from`'s.
pub fn plan(repo: &Path, path: &str, from: &str, to: &str, keyring: &Keyring) -> Result<Planned, RevisionError> {
    // The two revisions are independent: judge them side by side, one
    // repository handle each (libgit2 handles are not shared across threads).
    let (from, to) = std::thread::scope(|scope| {
        let from = scope.spawn(|| load(repo, from, path, keyring));
        let to = load(repo, to, path, keyring);
        let from = from.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok::<_, RevisionError>((from?, to?))
    })?;
    let verdict = judge(&to.report, &Revision::new(from.objects()));
    Ok(Planned { from, to, verdict })
}

/// The revisions offered to pick from.
#[derive(Clone, Debug, Default)]
pub struct Choices {
    /// The revision naming the watched branch here: the branch itself in
    /// a local repository, `origin/<branch>` in the daemon's mirror of a
    /// remote one.
    pub watched: String,
    /// Every branch, local and remote-tracking, by name.
    pub branches: Vec<String>,
    /// The newest commits of the watched branch, newest first.
    pub recent: Vec<CommitInfo>,
}

/// The branches of the repository at `repo` and the newest `limit` commits
/// of `branch` (none when the branch is missing: planning it then names
/// it as not found).
pub fn choices(repo: &Path, branch: &str, limit: usize) -> Result<Choices, RevisionError> {
    let git = GitRepo::open(repo)?;
    let repository = git.repository();
    let mut branches = Vec::new();
    for entry in repository.branches(None)? {
        let (found, _) = entry?;
        if let Some(name) = found.name()?
            && !name.ends_with("/HEAD")
        {
            branches.push(name.to_owned());
        }
    }
    branches.sort();
    let tracking = format!("origin/{branch}");
    let watched = if branches.iter().any(|b| b == branch) || !branches.contains(&tracking) { branch.to_owned() } else { tracking };
    let mut recent = Vec::new();
    if let Ok(head) = repository.revparse_single(&watched).and_then(|object| object.peel_to_commit()) {
        let mut walk = repository.revwalk()?;
        walk.push(head.id())?;
        for id in walk.take(limit) {
            recent.push(git.commit(&id?.to_string())?);
        }
    }
    Ok(Choices { watched, branches, recent })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn commit(dir: &Path, app: &str, message: &str) {
        let text = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector:\n    matchLabels: {{app: {app}}}\n  template:\n    metadata:\n      labels: {{app: {app}}}\n    spec:\n      containers: [{{name: main, image: busybox}}]\n"
        );
        std::fs::create_dir_all(dir.join("apps")).unwrap();
        std::fs::write(dir.join("apps/web.yaml"), text).unwrap();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", message]);
    }

    #[test]
    fn a_change_kubernetes_refuses_is_placed_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        commit(dir.path(), "web", "web");
        commit(dir.path(), "web2", "new selector");
        let keyring = keyring(None).unwrap();
        let planned = plan(dir.path(), "apps", "HEAD~1", "HEAD", &keyring).unwrap();
        assert_eq!((planned.from.commit.summary.as_str(), planned.to.commit.summary.as_str()), ("web", "new selector"));
        let Verdict::NotApplicable { plan: refused, diagnostics } = planned.verdict else { panic!("{:?}", planned.verdict) };
        assert_eq!(refused.refused.len(), 1);
        let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["apps/web.yaml:5:3: error: Deployment/web: spec.selector: field is immutable"]);

        let planned = plan(dir.path(), "apps", "HEAD", "HEAD", &keyring).unwrap();
        assert!(matches!(&planned.verdict, Verdict::Apply(plan) if plan.is_empty()), "{:?}", planned.verdict);
        let error = plan(dir.path(), "apps", "nope", "HEAD", &keyring).unwrap_err();
        assert!(error.to_string().starts_with("revision \"nope\" not found"), "{error}");
    }

    #[test]
    fn a_mirror_names_the_watched_branch_as_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let (source, mirror) = (dir.path().join("source"), dir.path().join("mirror"));
        std::fs::create_dir_all(&source).unwrap();
        git(&source, &["init", "-q"]);
        commit(&source, "web", "first");
        commit(&source, "web2", "second");
        git(&source, &["branch", "feature"]);
        let local = choices(&source, "main", 1).unwrap();
        assert_eq!((local.watched.as_str(), local.branches.clone()), ("main", vec!["feature".to_owned(), "main".to_owned()]));
        assert_eq!(local.recent.iter().map(|c| c.summary.as_str()).collect::<Vec<_>>(), ["second"]);

        // As the sync loop's mirror of a remote holds it.
        git(dir.path(), &["init", "-q", "--bare", "mirror"]);
        git(&mirror, &["fetch", "-q", source.to_str().unwrap(), "+refs/heads/main:refs/remotes/origin/main"]);
        let fetched = choices(&mirror, "main", 20).unwrap();
        assert_eq!((fetched.watched.as_str(), fetched.branches), ("origin/main", vec!["origin/main".to_owned()]));
        assert_eq!(fetched.recent.iter().map(|c| c.summary.as_str()).collect::<Vec<_>>(), ["second", "first"]);
        assert_eq!(load(&mirror, &fetched.watched, "apps", &Keyring::default()).unwrap().commit.summary, "second");
    }
}
