//! Loading from a git revision, read straight from the object database so
//! that no checkout (and no working-tree change) is involved.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use git2::{ErrorCode, ObjectType, Repository, Tree};

use crate::limits::{Budget, MAX_FILE_BYTES, MAX_FOLDER_DEPTH};
use crate::{LoadError, RawFile, is_manifest_name};

/// A git repository manifests are read from.
pub struct GitRepo {
    repo: Repository,
    path: PathBuf,
}

/// The facts about a commit that plans and the audit trail show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The full commit id.
    pub id: String,
    /// The first line of the message.
    pub summary: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// Author time, seconds since the epoch.
    pub time: i64,
    /// The message's `Driftless-*` trailers (`Driftless-Verb: scale`), in
    /// order: what the write path says a commit did.
    pub trailers: Vec<String>,
}

impl CommitInfo {
    /// The id abbreviated to 7 characters, as git shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(7)]
    }
}

impl GitRepo {
    /// Opens the repository at `path` (its work tree or a bare repository).
    /// Parent folders are not searched: the folder named must be the
    /// repository.
    pub fn open(path: &Path) -> Result<GitRepo, LoadError> {
        if !path.exists() {
            return Err(LoadError::NotFound { path: path.to_path_buf() });
        }
        let flags = git2::RepositoryOpenFlags::NO_SEARCH;
        let repo = Repository::open_ext(path, flags, std::iter::empty::<&std::ffi::OsStr>()).map_err(|e| match e.code() {
            ErrorCode::NotFound => LoadError::NotARepository { path: path.to_path_buf() },
            _ => LoadError::Git(e),
        })?;
        Ok(GitRepo { repo, path: path.to_path_buf() })
    }

    /// The underlying repository.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// Resolves a revision (`HEAD~1`, a branch, a tag, an id) to its commit.
    pub fn commit(&self, rev: &str) -> Result<CommitInfo, LoadError> {
        let commit = self.resolve(rev)?;
        let author = commit.author();
        Ok(CommitInfo {
            id: commit.id().to_string(),
            summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned(),
            author: format!("{} <{}>", String::from_utf8_lossy(author.name_bytes()), String::from_utf8_lossy(author.email_bytes())),
            time: author.when().seconds(),
            trailers: String::from_utf8_lossy(commit.message_bytes())
                .lines()
                .filter(|l| l.starts_with("Driftless-") && l.contains(": "))
                .take(16)
                .map(str::to_owned)
                .collect(),
        })
    }

    fn resolve(&self, rev: &str) -> Result<git2::Commit<'_>, LoadError> {
        let not_found = || LoadError::RevisionNotFound { repo: self.path.clone(), rev: rev.to_owned() };
        let object = self.repo.revparse_single(rev).map_err(|e| match e.code() {
            ErrorCode::NotFound | ErrorCode::Ambiguous | ErrorCode::InvalidSpec => not_found(),
            _ if e.class() == git2::ErrorClass::Reference => not_found(),
            _ => LoadError::Git(e),
        })?;
        object.peel_to_commit().map_err(|_| not_found())
    }

    /// Loads the manifests under `path` (a folder or one file, relative to
    /// the repository root; empty or `.` for the whole tree) at `rev`.
    pub fn load(&self, rev: &str, path: &str) -> Result<(CommitInfo, Vec<RawFile>), LoadError> {
        let info = self.commit(rev)?;
        let commit = self.resolve(rev)?;
        let root = commit.tree()?;
        let path = normalize(path);
        let mut files = Vec::new();
        let mut budget = Budget::default();
        if path.is_empty() {
            self.walk(&root, "", &mut files, &mut budget)?;
            return Ok((info, files));
        }
        let missing = || LoadError::PathNotInRevision { path: path.clone(), rev: rev.to_owned(), commit: info.short_id().to_owned() };
        let entry = root.get_path(Path::new(&path)).map_err(|_| missing())?;
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let tree = self.repo.find_tree(entry.id())?;
                self.walk(&tree, &path, &mut files, &mut budget)?;
            }
            Some(ObjectType::Blob) => files.push(self.read(entry.id(), &path, &mut budget)?),
            _ => return Err(missing()),
        }
        Ok((info, files))
    }

    /// The blob `id` as the file `path`, unless it is too large to read
    /// (its size is read from the object's header first).
    fn read(&self, id: git2::Oid, path: &str, budget: &mut Budget) -> Result<RawFile, LoadError> {
        let (size, _) = self.repo.odb()?.read_header(id)?;
        let size = size as u64;
        budget.take(path, size)?;
        if size > MAX_FILE_BYTES {
            return Ok(RawFile::too_large(Arc::from(path), size));
        }
        Ok(RawFile::new(Arc::from(path), self.repo.find_blob(id)?.content().to_vec()))
    }

    fn walk(&self, tree: &Tree<'_>, prefix: &str, files: &mut Vec<RawFile>, budget: &mut Budget) -> Result<(), LoadError> {
        if prefix.split('/').count() > MAX_FOLDER_DEPTH {
            return Err(LoadError::TooLarge { path: prefix.to_owned(), why: format!("folders nested more than {MAX_FOLDER_DEPTH} deep") });
        }
        // Tree entries are sorted by name, which keeps the order stable.
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            match entry.kind() {
                Some(ObjectType::Tree) => self.walk(&self.repo.find_tree(entry.id())?, &path, files, budget)?,
                Some(ObjectType::Blob) if is_manifest_name(&name) => files.push(self.read(entry.id(), &path, budget)?),
                _ => {}
            }
        }
        Ok(())
    }
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    if trimmed == "." { String::new() } else { trimmed.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_all(repo: &Repository, message: &str) {
        let mut index = repo.index().unwrap();
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("Tester", "tester@example.invalid").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<_> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).unwrap();
    }

    #[test]
    fn reads_any_revision_without_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("apps/.hidden")).unwrap();
        std::fs::write(dir.path().join("apps/a.yaml"), "kind: A\n").unwrap();
        std::fs::write(dir.path().join("apps/.hidden/h.yaml"), "kind: H\n").unwrap();
        std::fs::write(dir.path().join("other.yaml"), "kind: O\n").unwrap();
        commit_all(&repo, "first");
        std::fs::write(dir.path().join("apps/b.yaml"), "kind: B\n").unwrap();
        commit_all(&repo, "second");
        // An uncommitted change is never read.
        std::fs::write(dir.path().join("apps/c.yaml"), "kind: C\n").unwrap();

        let git = GitRepo::open(dir.path()).unwrap();
        let (info, files) = git.load("HEAD", "./apps/").unwrap();
        assert_eq!(info.summary, "second");
        let names: Vec<_> = files.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(names, ["apps/a.yaml", "apps/b.yaml"]);
        let (_, files) = git.load("HEAD~1", "apps").unwrap();
        assert_eq!(files.len(), 1);
        let (_, files) = git.load("HEAD", "").unwrap();
        assert_eq!(files.len(), 3);

        let err = git.load("HEAD~5", "apps").err().unwrap();
        assert!(matches!(err, LoadError::RevisionNotFound { .. }), "{err}");
        let err = git.load("HEAD", "nope").err().unwrap();
        assert!(err.to_string().starts_with("path \"nope\" does not exist at revision HEAD ("), "{err}");
    }

    #[test]
    fn a_tree_nested_past_the_bound_is_refused_not_walked_to_the_bottom() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        // 10,000 folders deep, made in the object database (no file system
        // holds such a path).
        let blob = repo.blob(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n").unwrap();
        let mut builder = repo.treebuilder(None).unwrap();
        builder.insert("cm.yaml", blob, 0o100644).unwrap();
        let mut tree = builder.write().unwrap();
        for _ in 0..10_000 {
            let mut builder = repo.treebuilder(None).unwrap();
            builder.insert("d", tree, 0o040000).unwrap();
            tree = builder.write().unwrap();
        }
        let sig = git2::Signature::now("Tester", "tester@example.invalid").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "deep", &repo.find_tree(tree).unwrap(), &[]).unwrap();
        let err = GitRepo::open(dir.path()).unwrap().load("HEAD", "").err().unwrap();
        assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
        assert!(err.to_string().ends_with(": the revision holds folders nested more than 100 deep; refused whole"), "{err}");
    }

    #[test]
    fn plain_folders_are_not_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let err = GitRepo::open(dir.path()).err().unwrap();
        assert!(matches!(err, LoadError::NotARepository { .. }), "{err}");
    }
}
