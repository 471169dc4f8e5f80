//! "Roll back to here": one commit that makes the manifests under the
//! watched path what an earlier commit of the branch declared, byte for
//! byte, undoing every later change to them at once (the dashboard's
//! History button, `driftless rollback REV`). It is `git revert` of the
//! whole range, squashed: the later commits stay in history and the new
//! commit names each one it undoes.
//!
//! Must not touch: files outside the watched path, or files under it that
//! are not manifests (a README beside them is left as the head has it).

use driftless_manifest::GitRepo;
use git2::{Oid, Repository};

use crate::WriteError;
use crate::change::{Edits, Loaded, Target};

/// How many undone commits the message lists by name.
const LISTED: usize = 20;

/// The edits restoring `commit`'s manifests onto `head`.
pub(crate) fn prepare(
    repository: &Repository,
    git: &GitRepo,
    target: &Target,
    head: &git2::Commit<'_>,
    before: &Loaded,
    commit: &str,
) -> Result<Edits, WriteError> {
    let wanted =
        repository.revparse_single(commit).and_then(|o| o.peel_to_commit()).map_err(|_| WriteError::Verb(format!("no commit {commit:?} in the repository")))?;
    let id = short(wanted.id());
    if wanted.id() == head.id() {
        return Err(WriteError::NoChange(format!("{id} is the branch's head")));
    }
    if !repository.graph_descendant_of(head.id(), wanted.id())? {
        return Err(WriteError::Verb(format!("{id} is not in the history of branch {}: roll back only to a commit it holds", target.branch)));
    }
    let (_, files) = git.load(&wanted.id().to_string(), &target.path)?;
    let subject = format!("Roll back to {id} \"{}\"", subject_of(&wanted));
    let mut edits = Edits::new(subject, "rollback", Vec::new());
    for file in &files {
        let text = String::from_utf8(file.bytes.clone()).map_err(|_| WriteError::NotInPlace {
            file: file.path.to_string(),
            line: 1,
            why: "the file is not UTF-8".into(),
        })?;
        let now = before.files.iter().find(|f| f.path == file.path);
        if now.is_none_or(|f| f.bytes != file.bytes) {
            edits.set(before, &file.path, Some(text));
        }
    }
    for file in &before.files {
        if !files.iter().any(|f| f.path == file.path) {
            edits.set(before, &file.path, None);
        }
    }
    let undone = undone(repository, head.id(), wanted.id())?;
    if edits.is_empty() {
        return Err(WriteError::NoChange(format!("the manifests at {id} are the head's")));
    }
    let mut body = format!(
        "This restores {} as commit {} declared it, undoing {} later commit{}:\n",
        shown_path(&target.path),
        wanted.id(),
        undone.len(),
        if undone.len() == 1 { "" } else { "s" }
    );
    for (id, summary) in undone.iter().take(LISTED) {
        body.push_str(&format!("\n  {} {summary}", short(*id)));
    }
    if undone.len() > LISTED {
        body.push_str(&format!("\n  ... and {} more", undone.len() - LISTED));
    }
    edits.body = Some(body);
    edits.restores = Some(wanted.id().to_string());
    Ok(edits)
}

fn shown_path(path: &str) -> String {
    match path.trim_matches('/') {
        "" => "the manifests".to_owned(),
        path => format!("the manifests under {path}"),
    }
}

/// A commit's first line, as `git log --format=%s` shows it.
fn subject_of(commit: &git2::Commit<'_>) -> String {
    String::from_utf8_lossy(commit.message_bytes()).lines().next().unwrap_or_default().to_owned()
}

fn short(id: Oid) -> String {
    id.to_string()[..7].to_owned()
}

/// The commits after `from` up to `head`, newest first.
fn undone(repository: &Repository, head: Oid, from: Oid) -> Result<Vec<(Oid, String)>, WriteError> {
    let mut walk = repository.revwalk()?;
    walk.push(head)?;
    walk.hide(from)?;
    let mut out = Vec::new();
    for id in walk {
        let id = id?;
        let commit = repository.find_commit(id)?;
        out.push((id, subject_of(&commit)));
    }
    Ok(out)
}
