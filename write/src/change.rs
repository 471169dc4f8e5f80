//! One verb, start to end: find the document that declares the object at
//! the branch's head, make the new text, validate the new revision whole
//! with the daemon's pipeline, plan it with the daemon's change engine,
//! and commit it (or, for `--dry-run`, only say what it would do). A
//! branch that moves meanwhile is read again and the edit redone on its
//! new head.

use std::path::PathBuf;
use std::sync::Arc;

use driftless_diff::{Plan, Revision, render};
use driftless_manifest::{GitRepo, RawFile};
use driftless_model::{Object, ObjectRef};
use driftless_validate::Report;
use git2::Repository;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::WriteError;
use crate::commit::{self, Identity};
use crate::undo::{self, Undo};
use crate::verb::{self, Verb};
use crate::yaml::{self, Place};

/// The repository a daemon watches.
#[derive(Clone, Debug)]
pub struct Target {
    /// The repository (a work tree or bare).
    pub repo: PathBuf,
    /// The watched branch.
    pub branch: String,
    /// The folder (or file) holding the manifests.
    pub path: String,
}

/// What to change.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// An imperative verb.
    Verb(Verb),
    /// `rollout undo`.
    Undo(Undo),
}

/// One verb on one object, by one person.
#[derive(Clone, Debug)]
pub struct Request {
    /// The object git declares.
    pub object: ObjectRef,
    /// The change.
    pub change: Change,
    /// The author.
    pub author: Identity,
    /// `-m`: the commit's subject instead of the verb's own words.
    pub message: Option<String>,
    /// Say what would change; commit nothing.
    pub dry_run: bool,
    /// Commit on this new branch from the watched one, for review.
    pub branch: Option<String>,
}

/// What a verb did (or, dry, would do).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Written {
    /// The new commit; `None` for a dry run.
    pub commit: Option<String>,
    /// The branch it is on.
    pub branch: String,
    /// The commit message.
    pub message: String,
    /// The file changed, relative to the repository root.
    pub file: String,
    /// The file's change, as `git diff` shows it.
    pub diff: String,
    /// The plan, as `driftless plan` prints it.
    pub plan: String,
    /// The plan in markdown, for a pull request.
    pub plan_markdown: String,
    /// The commit a revert undid.
    pub reverts: Option<String>,
}

/// Trailer names every verb's commit carries.
pub const VERB_TRAILER: &str = "Driftless-Verb";
/// The object a verb changed.
pub const OBJECT_TRAILER: &str = "Driftless-Object";
/// The commit an undo reverted.
pub const REVERTS_TRAILER: &str = "Driftless-Reverts";

/// How `Driftless-Object:` names an object: `Deployment default/web`.
pub fn object_trailer(object: &ObjectRef) -> String {
    object.to_string()
}

fn objects(report: &Report) -> impl Iterator<Item = (&ObjectRef, &Object)> {
    report.objects.iter().map(|(r, e)| (r, &e.object))
}

/// A revision's manifest files and what validation made of them.
pub(crate) struct Loaded {
    pub files: Vec<RawFile>,
    pub report: Report,
}

/// Loads and validates `rev` as the sync loop does.
pub(crate) fn load(repo: &GitRepo, rev: &str, path: &str) -> Result<Loaded, WriteError> {
    let (_, files) = repo.load(rev, path)?;
    let report = driftless_validate::validate(files.iter().cloned().map(RawFile::parse));
    Ok(Loaded { files, report })
}

/// Where `object` is declared in `loaded`, the file's text and the value
/// as written.
pub(crate) fn declared(loaded: &Loaded, object: &ObjectRef, path: &str, commit: &str) -> Result<(Place, String, Value), WriteError> {
    let not_declared = || WriteError::NotDeclared { object: verb::display(object), path: path.to_owned(), commit: commit[..commit.len().min(7)].to_owned() };
    let entry = loaded.report.objects.get(object).ok_or_else(not_declared)?;
    let origin = &entry.origin;
    let place = Place { file: origin.file().to_string(), index: origin.index(), prefix: origin.prefix().to_owned() };
    let raw = loaded.files.iter().find(|f| *f.path == *place.file).ok_or_else(not_declared)?;
    let text =
        String::from_utf8(raw.bytes.clone()).map_err(|_| WriteError::NotInPlace { file: place.file.clone(), line: 1, why: "the file is not UTF-8".into() })?;
    let docs = driftless_manifest::parse_file(Arc::from(place.file.as_str()), &text).map_err(|e| WriteError::NotInPlace {
        file: place.file.clone(),
        line: e.pos.line as usize,
        why: e.message,
    })?;
    let doc = docs.into_iter().find(|d| d.origin.index() == place.index && d.origin.prefix() == place.prefix).ok_or_else(not_declared)?;
    Ok((place, text, doc.value))
}

fn message(subject: &str, request: &Request, verb_name: &str, reverts: Option<&str>, body: Option<&str>) -> String {
    let mut out = match &request.message {
        Some(m) => format!("{}\n\n{subject}\n", m.trim()),
        None => format!("{subject}\n"),
    };
    if let Some(body) = body {
        out.push_str(&format!("\n{body}\n"));
    }
    out.push_str(&format!("\n{VERB_TRAILER}: {verb_name}\n{OBJECT_TRAILER}: {}\n", object_trailer(&request.object)));
    if let Some(reverts) = reverts {
        out.push_str(&format!("{REVERTS_TRAILER}: {reverts}\n"));
    }
    out
}

/// The unified diff of one file, as `git diff` prints it.
fn unified(file: &str, before: &str, after: &str) -> String {
    let diff = similar::TextDiff::from_lines(before, after);
    let body = diff.unified_diff().context_radius(3).header(&format!("a/{file}"), &format!("b/{file}")).to_string();
    format!("diff --git a/{file} b/{file}\n{body}")
}

/// Carries out `request` on `target`.
pub fn write(target: &Target, request: &Request) -> Result<Written, WriteError> {
    let span = tracing::info_span!("write", object = %verb::display(&request.object), branch = %target.branch);
    let _entered = span.enter();
    let repository = Repository::open(&target.repo)?;
    let git = GitRepo::open(&target.repo)?;
    for _attempt in 0..5 {
        let head = repository.find_reference(&format!("refs/heads/{}", target.branch))?.peel_to_commit()?;
        let head_id = head.id().to_string();
        let before = load(&git, &head_id, &target.path)?;
        let (place, text, old) = declared(&before, &request.object, &target.path, &head_id)?;
        let (new_text, subject, verb_name, reverts, body) = match &request.change {
            Change::Verb(verb) => {
                let mut new = old.clone();
                verb.apply(request.object.kind, &mut new)?;
                if new == old {
                    return Err(WriteError::NoChange(verb.subject(&request.object)));
                }
                (yaml::edit(&text, &place, &old, &new)?, verb.subject(&request.object), verb.name(), None, None)
            }
            Change::Undo(undo) => {
                let made = undo::prepare(&repository, &git, target, &head, &request.object, &place, &text, &old, undo)?;
                (made.text, made.subject, "rollout-undo", made.reverts, made.body)
            }
        };
        let mut files = before.files.clone();
        if let Some(file) = files.iter_mut().find(|f| *f.path == *place.file) {
            file.bytes = new_text.as_bytes().to_vec();
        }
        let after = driftless_validate::validate(files.into_iter().map(RawFile::parse));
        if !after.is_valid() {
            return Err(WriteError::Invalid { errors: after.errors().map(ToString::to_string).collect() });
        }
        let plan: Plan = driftless_diff::plan(objects(&after), &Revision::new(objects(&before.report)));
        if !plan.is_applicable() {
            let errors = plan.refused.iter().map(|r| after.error_at(&r.object, &r.pointer, &r.message).to_string()).collect();
            return Err(WriteError::Invalid { errors });
        }
        let message = message(&subject, request, verb_name, reverts.as_deref(), body.as_deref());
        let branch = request.branch.clone().unwrap_or_else(|| target.branch.clone());
        let mut written = Written {
            commit: None,
            branch: branch.clone(),
            message: message.clone(),
            file: place.file.clone(),
            diff: unified(&place.file, &text, &new_text),
            plan: render::text(&plan, false),
            plan_markdown: render::markdown(&plan),
            reverts: reverts.clone(),
        };
        if request.dry_run {
            return Ok(written);
        }
        if request.branch.is_none() {
            commit::check_clean(&repository, &target.branch, &place.file)?;
        }
        let tree = commit::tree_with(&repository, &head.tree()?, &place.file, new_text.as_bytes())?;
        let id = commit::commit_object(&repository, &head, tree, &request.author, &message)?;
        let first_line = message.lines().next().unwrap_or_default();
        if let Some(new_branch) = &request.branch {
            commit::create_branch(&repository, new_branch, id, first_line)?;
        } else if !commit::advance(&repository, &target.branch, head.id(), id, first_line, &[(&place.file, new_text.as_bytes())])? {
            tracing::info!("the branch moved; redoing the edit on its new head");
            continue;
        }
        tracing::info!(commit = %id, file = %place.file, "committed");
        written.commit = Some(id.to_string());
        return Ok(written);
    }
    Err(WriteError::Raced(target.branch.clone()))
}

#[cfg(test)]
mod tests;
