//! `rollout undo`: back to an earlier revision's pod template, as a
//! commit. When the commit that made the current revision touched only
//! this workload's document and reverts cleanly onto the head to exactly
//! the wanted template, the undo is `git revert` of it; otherwise a new
//! commit writes back the template as the wanted revision's commit
//! declared it (format-preserving, like every verb).

use std::path::Path;

use driftless_manifest::GitRepo;
use driftless_model::{Kind, ObjectRef};
use git2::Repository;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::WriteError;
use crate::change::{Loaded, Target, declared, load};
use crate::verb::display;
use crate::yaml::{self, Place};

/// Which revision to go back to, and the commits behind the revisions (the
/// daemon reads them from the workload's ReplicaSets or revisions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    /// The revision to go back to.
    pub revision: i64,
    /// The commit that made the current revision.
    pub current_commit: String,
    /// The commit that declared the wanted revision's template.
    pub target_commit: String,
}

/// The undo's new file text and how to describe it.
pub(crate) struct Prepared {
    pub text: String,
    pub subject: String,
    pub body: Option<String>,
    pub reverts: Option<String>,
}

/// Where a workload with revisions keeps its pod template (the verbs'
/// one table of template places).
fn template_pointer(kind: Kind) -> Result<&'static str, WriteError> {
    match kind {
        Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet => {
            crate::verb::template_pointer(kind).ok_or_else(|| WriteError::Verb(format!("a {} has no pod template", kind.name())))
        }
        other => Err(WriteError::Verb(format!("no rollback has been implemented for {}", other.name()))),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    repository: &Repository,
    git: &GitRepo,
    target: &Target,
    head: &git2::Commit<'_>,
    object: &ObjectRef,
    place: &Place,
    text: &str,
    old: &Value,
    undo: &Undo,
) -> Result<Prepared, WriteError> {
    let pointer = template_pointer(object.kind)?;
    let wanted_commit = repository.revparse_single(&undo.target_commit)?.peel_to_commit()?;
    let wanted_rev = load(git, &wanted_commit.id().to_string(), target)?;
    let (_, _, wanted_object) = declared(&wanted_rev, object, &target.path, &wanted_commit.id().to_string())?;
    let wanted = wanted_object.pointer(pointer).cloned().ok_or_else(|| WriteError::Verb(format!("revision {} declares no template", undo.revision)))?;
    if old.pointer(pointer) == Some(&wanted) {
        return Err(WriteError::NoChange(format!("rollout undo {}: revision {} is the template git declares now", display(object), undo.revision)));
    }
    let description = format!("rollout undo {} to revision {}", display(object), undo.revision);
    if let Some(prepared) = try_revert(repository, git, target, head, object, place, old, undo, pointer, &wanted, &description)? {
        return Ok(prepared);
    }
    let mut new = old.clone();
    if let Some(slot) = new.pointer_mut(pointer) {
        *slot = wanted;
    }
    let short = &wanted_commit.id().to_string()[..7];
    let current = repository.revparse_single(&undo.current_commit).ok().map(|o| o.id().to_string());
    Ok(Prepared {
        text: yaml::edit(text, place, old, &new)?,
        subject: description,
        body: Some(format!("The template is written back as {short} declared it (revision {}).", undo.revision)),
        reverts: current,
    })
}

/// The revert of the commit that made the current revision, when it is
/// clean, touches only this object and gives the wanted template.
#[allow(clippy::too_many_arguments)]
fn try_revert(
    repository: &Repository,
    git: &GitRepo,
    target: &Target,
    head: &git2::Commit<'_>,
    object: &ObjectRef,
    place: &Place,
    old: &Value,
    undo: &Undo,
    pointer: &str,
    wanted: &Value,
    description: &str,
) -> Result<Option<Prepared>, WriteError> {
    let Ok(undone) = repository.revparse_single(&undo.current_commit).and_then(|o| o.peel_to_commit()) else { return Ok(None) };
    if undone.parent_count() != 1 {
        return Ok(None);
    }
    let parent = undone.parent(0)?;
    // The commit touched one file, the one declaring this object...
    let diff = repository.diff_tree_to_tree(Some(&parent.tree()?), Some(&undone.tree()?), None)?;
    let paths: Vec<String> = diff.deltas().filter_map(|d| d.new_file().path().or(d.old_file().path()).map(|p| p.to_string_lossy().into_owned())).collect();
    if paths != [place.file.clone()] {
        return Ok(None);
    }
    // ... and in it only this object.
    let at_parent = load(git, &parent.id().to_string(), target)?;
    let at_undone = load(git, &undone.id().to_string(), target)?;
    if !only_object_changed(&at_parent, &at_undone, object) {
        return Ok(None);
    }
    let mut index = repository.revert_commit(&undone, head, 0, None)?;
    if index.has_conflicts() {
        return Ok(None);
    }
    let tree = repository.find_tree(index.write_tree_to(repository)?)?;
    let Ok(entry) = tree.get_path(Path::new(&place.file)) else { return Ok(None) };
    let blob = repository.find_blob(entry.id())?;
    let Ok(text) = String::from_utf8(blob.content().to_vec()) else { return Ok(None) };
    // The reverted document must be the current one with the wanted
    // template, and nothing else of the file may change.
    let Ok(docs) = driftless_manifest::parse_file(std::sync::Arc::from(place.file.as_str()), &text) else { return Ok(None) };
    let Some(doc) = docs.iter().find(|d| d.origin.index() == place.index && d.origin.prefix() == place.prefix) else { return Ok(None) };
    let mut expected = old.clone();
    if let Some(slot) = expected.pointer_mut(pointer) {
        slot.clone_from(wanted);
    }
    if doc.value != expected {
        return Ok(None);
    }
    let id = undone.id().to_string();
    let summary = String::from_utf8_lossy(undone.summary_bytes().unwrap_or_default()).into_owned();
    Ok(Some(Prepared { text, subject: format!("Revert \"{summary}\""), body: Some(format!("This reverts commit {id}.\n\n{description}")), reverts: Some(id) }))
}

/// Whether the two revisions differ only in `object`.
fn only_object_changed(a: &Loaded, b: &Loaded, object: &ObjectRef) -> bool {
    let others = |l: &Loaded| -> Vec<(ObjectRef, serde_json::Value)> {
        l.report.objects.iter().filter(|(r, _)| *r != object).map(|(r, e)| (r.clone(), e.object.to_value())).collect()
    };
    a.report.is_valid() && b.report.is_valid() && others(a) == others(b)
}
