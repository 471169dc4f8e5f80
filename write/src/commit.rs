//! Committing one changed file on a branch, as `git commit` would: a new
//! commit on the branch's head through the object database, the branch
//! moved only if nobody moved it meanwhile, and, when that branch is
//! checked out, the file and the index updated so `git status` stays
//! clean.
//!
//! Must not touch: any other file of the working tree, or a file with
//! uncommitted changes (the verb refuses instead).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use git2::{ErrorCode, Oid, Repository, Signature, Status};

use crate::WriteError;

/// Who a commit is by.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The name.
    pub name: String,
    /// The email.
    pub email: String,
}

impl Identity {
    /// The committer of every verb's commit.
    pub fn driftless() -> Identity {
        Identity { name: "Driftless".into(), email: "driftless@localhost".into() }
    }

    pub(crate) fn signature(&self) -> Result<Signature<'static>, WriteError> {
        Ok(Signature::now(&self.name, &self.email)?)
    }
}

/// The branch checked out in the repository's working tree, if it is
/// `branch`: then the working tree is kept in step.
fn checked_out(repo: &Repository, branch: &str) -> bool {
    if repo.is_bare() {
        return false;
    }
    let Ok(head) = repo.find_reference("HEAD") else { return false };
    head.symbolic_target().ok().flatten() == Some(format!("refs/heads/{branch}").as_str())
}

/// Refuses when `file` differs from the head in the index or the working
/// tree of a checked-out `branch`.
pub(crate) fn check_clean(repo: &Repository, branch: &str, file: &str) -> Result<(), WriteError> {
    if !checked_out(repo, branch) {
        return Ok(());
    }
    let status = match repo.status_file(Path::new(file)) {
        Ok(status) => status,
        // Neither in the head, the index nor the working tree: a new file.
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(()),
        Err(_) => Status::CURRENT,
    };
    if status.is_empty() || status == Status::CURRENT || status == Status::IGNORED {
        return Ok(());
    }
    Err(WriteError::Dirty { file: file.to_owned() })
}

/// One file of a commit: its new bytes, or `None` when it goes.
pub(crate) type FileChange<'a> = (&'a str, Option<&'a [u8]>);

/// The tree of `base` with each file changed (modes kept).
pub(crate) fn tree_with(repo: &Repository, base: &git2::Tree<'_>, files: &[FileChange<'_>]) -> Result<Oid, WriteError> {
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (file, bytes) in files {
        match bytes {
            Some(bytes) => {
                let blob = repo.blob(bytes)?;
                let mode = base.get_path(Path::new(file)).map(|e| e.filemode()).unwrap_or(0o100_644);
                let mode = if mode == 0o100_755 { git2::FileMode::BlobExecutable } else { git2::FileMode::Blob };
                update.upsert(file, blob, mode);
            }
            None => {
                update.remove(file);
            }
        }
    }
    Ok(update.create_updated(repo, base)?)
}

/// Makes the commit object (on no ref yet).
pub(crate) fn commit_object(repo: &Repository, parent: &git2::Commit<'_>, tree: Oid, author: &Identity, message: &str) -> Result<Oid, WriteError> {
    let tree = repo.find_tree(tree)?;
    Ok(repo.commit(None, &author.signature()?, &Identity::driftless().signature()?, message, &tree, &[parent])?)
}

/// Moves `branch` from `from` to `to`; `Ok(false)` when someone moved it
/// first. A checked-out branch gets `files` written and staged.
pub(crate) fn advance(repo: &Repository, branch: &str, from: Oid, to: Oid, subject: &str, files: &[FileChange<'_>]) -> Result<bool, WriteError> {
    let name = format!("refs/heads/{branch}");
    let checked_out = checked_out(repo, branch);
    if checked_out {
        for (file, _) in files {
            check_clean(repo, branch, file)?;
        }
    }
    match repo.reference_matching(&name, to, true, from, &format!("driftless: {subject}")) {
        Ok(_) => {}
        Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Locked) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    if checked_out {
        update_work_tree(repo, files)?;
    }
    Ok(true)
}

/// Creates `branch` at `to`; refuses when it exists.
pub(crate) fn create_branch(repo: &Repository, branch: &str, to: Oid, subject: &str) -> Result<(), WriteError> {
    let name = format!("refs/heads/{branch}");
    match repo.reference(&name, to, false, &format!("driftless: {subject}")) {
        Ok(_) => Ok(()),
        Err(e) if e.code() == ErrorCode::Exists => Err(WriteError::BranchExists(branch.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Writes the committed files into the working tree and the index, as
/// `git commit` leaves them, keeping each file's and the index's owner
/// (the daemon runs as root; the repository is usually a user's).
fn update_work_tree(repo: &Repository, files: &[FileChange<'_>]) -> Result<(), WriteError> {
    let Some(workdir) = repo.workdir() else { return Ok(()) };
    let io = |e: std::io::Error| WriteError::Git(git2::Error::from_str(&e.to_string()));
    let index_path = repo.path().join("index");
    let index_meta = std::fs::metadata(&index_path).ok();
    let index_owner = index_meta.as_ref().map(|m| (m.uid(), m.gid()));
    let mut index = repo.index()?;
    for (file, bytes) in files {
        let path = workdir.join(file);
        let Some(bytes) = bytes else {
            if path.exists() {
                std::fs::remove_file(&path).map_err(io)?;
            }
            index.remove_path(Path::new(file))?;
            continue;
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // A new file belongs to whoever owns the repository.
        let owner = std::fs::metadata(&path).or_else(|_| std::fs::metadata(workdir)).ok().map(|m| (m.uid(), m.gid()));
        // A sibling then a rename: a reader never sees half a file.
        let staged = path.with_file_name(format!(".{}.driftless", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
        std::fs::write(&staged, bytes).map_err(io)?;
        if let Ok(meta) = std::fs::metadata(&path) {
            std::fs::set_permissions(&staged, meta.permissions()).map_err(io)?;
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&staged, Some(uid), Some(gid)).map_err(io)?;
        }
        std::fs::rename(&staged, &path).map_err(io)?;
        index.add_path(Path::new(file))?;
    }
    if let Some(meta) = &index_meta {
        smudge_racily_clean(&mut index, meta.mtime(), files)?;
    }
    index.write()?;
    if let Some((uid, gid)) = index_owner {
        let _ = std::os::unix::fs::chown(&index_path, Some(uid), Some(gid));
    }
    Ok(())
}

/// Keeps git from trusting an entry it could not trust before.
///
/// git (the command, built without `USE_NSEC`) compares a file's times
/// with its index entry's in whole seconds; libgit2 in nanoseconds. An
/// entry from the same second as the index it was read from is "racily
/// clean" to git: the file may have changed later in that second, so git
/// compares its content. Once libgit2 writes the index in a later second,
/// git would trust that entry's times and miss such a change (a user's
/// edit of another file, of the same size, in that second: seen as a test
/// that failed 1 run in 200). Such entries get size 0, as git gives them
/// when it writes an index itself, so that git compares their content
/// once more. The files this commit wrote are left as `add_path` made them.
fn smudge_racily_clean(index: &mut git2::Index, index_second: i64, written: &[FileChange<'_>]) -> Result<(), git2::Error> {
    let racy: Vec<git2::IndexEntry> = index
        .iter()
        .filter(|entry| i64::from(entry.mtime.seconds()) >= index_second && entry.file_size != 0)
        .filter(|entry| !written.iter().any(|(file, _)| file.as_bytes() == entry.path.as_slice()))
        .collect();
    for mut entry in racy {
        entry.file_size = 0;
        index.add(&entry)?;
    }
    Ok(())
}

fn git(repo: &Path, args: &[&str]) -> Result<std::process::Output, WriteError> {
    std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| WriteError::Push { remote: repo.display().to_string(), message: e.to_string() })
}

/// Pushes `id` to the remote's `branch` with the `git` command (the
/// transports and credentials the user set up, as the sync's fetch uses),
/// never forced. `Ok(false)` when the remote branch moved (or, for a new
/// branch, when it exists).
pub(crate) fn push(repo: &Path, remote: &str, id: Oid, branch: &str, new_branch: bool) -> Result<bool, WriteError> {
    let refspec = format!("{id}:refs/heads/{branch}");
    let out = git(repo, &["push", "--porcelain", remote, &refspec])?;
    if out.status.success() {
        return Ok(true);
    }
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if said.contains("[rejected]") || said.contains("non-fast-forward") || said.contains("fetch first") {
        if new_branch {
            return Err(WriteError::BranchExists(branch.to_owned()));
        }
        return Ok(false);
    }
    Err(WriteError::Push { remote: remote.to_owned(), message: said.trim().to_owned() })
}

/// Fetches the remote's `branch` into `refs/remotes/<remote>/<branch>`.
pub(crate) fn fetch(repo: &Path, remote: &str, branch: &str) -> Result<(), WriteError> {
    let refspec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
    let out = git(repo, &["fetch", "--quiet", "--no-tags", remote, &refspec])?;
    if !out.status.success() {
        return Err(WriteError::Push { remote: remote.to_owned(), message: String::from_utf8_lossy(&out.stderr).trim().to_owned() });
    }
    Ok(())
}
