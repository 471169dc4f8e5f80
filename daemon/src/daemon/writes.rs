//! The daemon's side of the write path: a verb request from the API
//! becomes a commit on the watched branch (`driftless-write`), after the
//! checks only the running system can make (is the object derived, and
//! from what; which commits made a Deployment's revisions), and is then
//! synced at once so the caller hears what it did.
//!
//! Must not touch: the store (the sync loop applies the commit like any
//! other) or any branch but the watched one and a review branch asked for.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use driftless_api::{WriteFailure, WriteOps};
use driftless_model::annotations::{CHANGE_CAUSE, REVISION_COMMIT, SOURCE_COMMIT};
use driftless_model::{Kind, ObjectRef};
use driftless_store::{Key, Store};
use driftless_sync::{Reply, Trigger};
use driftless_write::{Change, Identity, Request, Target, Undo, Verb, WriteError, Writer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A verb request as the CLI (and later kubectl's writes) sends it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireRequest {
    /// The kind's name (`Deployment`); empty for `apply` and `delete`,
    /// whose objects are in the change.
    #[serde(default)]
    pub kind: String,
    /// The namespace (default `default`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// What to do.
    pub change: WireChange,
    /// The author of the commit.
    pub author: Identity,
    /// The commit's subject instead of the verb's words.
    #[serde(default)]
    pub message: Option<String>,
    /// Commit nothing; say what would change.
    #[serde(default)]
    pub dry_run: bool,
    /// Commit on a new branch for review instead.
    #[serde(default)]
    pub branch: Option<String>,
}

/// The change asked for; `undo` names a revision, the daemon finds its
/// commits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireChange {
    /// An imperative verb.
    Verb(Verb),
    /// `rollout undo [--to-revision N]`.
    Undo {
        /// The revision; the one before the current when `None`.
        #[serde(default)]
        to_revision: Option<i64>,
    },
    /// `apply -f`, `create`, `autoscale`: objects written as given.
    Apply {
        /// The command (`apply`, `create`, `autoscale`).
        verb: String,
        /// The objects.
        documents: Vec<Value>,
    },
    /// `edit`, first step: the object's document as git holds it (a read;
    /// nothing is written).
    Open,
    /// A patch kubectl sent; `kubectl rollout undo`'s patch of the pod
    /// template becomes the undo of that revision.
    Patch {
        /// How to read it.
        patch_type: driftless_write::merge::PatchType,
        /// The patch.
        patch: Value,
        /// What sent it (`kubectl label`).
        command: String,
    },
    /// `edit`: the document as opened and as saved.
    Edit {
        /// As opened.
        opened: String,
        /// As saved.
        edited: String,
    },
    /// "Roll back to here" (`driftless rollback REV`, the dashboard's
    /// History): the manifests as that commit declared them.
    Restore {
        /// The commit.
        commit: String,
    },
    /// `delete`: declared objects removed from git.
    Delete {
        /// `(kind, namespace, name)` of each.
        objects: Vec<(String, String, String)>,
    },
}

/// The write path over the watched repository.
pub(crate) struct DaemonWrites {
    pub writer: Writer,
    pub store: Arc<dyn Store>,
    pub sync: Sender<Trigger>,
}

fn refused(error: WriteError) -> WriteFailure {
    match error {
        WriteError::NotDeclared { .. } => WriteFailure::NotFound(error.to_string()),
        WriteError::Raced(_) | WriteError::Push { .. } | WriteError::Conflict { .. } => WriteFailure::Conflict(error.to_string()),
        WriteError::Git(_) | WriteError::Load(_) => WriteFailure::Internal(error.to_string()),
        _ => WriteFailure::Refused(error.to_string()),
    }
}

fn annotation<'v>(object: &'v Value, name: &str) -> Option<&'v str> {
    object.pointer("/metadata/annotations").and_then(|a| a.get(name)).and_then(Value::as_str)
}

impl DaemonWrites {
    /// The declared object that (through its controllers) made `object`,
    /// when `object` itself is not declared.
    fn declared_owner(&self, object: &ObjectRef) -> Option<String> {
        let namespace = object.namespace.clone().unwrap_or_default();
        let mut current = self.store.get(&Key::new(object.kind, namespace.clone(), object.name.clone()))?;
        if annotation(&current, SOURCE_COMMIT).is_some() {
            return None;
        }
        let mut chain = Vec::new();
        for _ in 0..4 {
            let owner = current.pointer("/metadata/ownerReferences").and_then(Value::as_array)?.iter().find(|o| o["controller"] == true)?.clone();
            let kind = Kind::from_name(owner["kind"].as_str()?)?;
            let name = owner["name"].as_str()?.to_owned();
            chain.push(format!("{}/{}", kind.name().to_ascii_lowercase(), name));
            let name = name.clone();
            current = self.store.get(&Key::new(kind, namespace.clone(), name))?;
            if annotation(&current, SOURCE_COMMIT).is_some() {
                return Some(chain.join(", made by "));
            }
        }
        None
    }

    /// A workload's revisions, oldest first, with the commit behind each:
    /// a Deployment's ReplicaSets, a StatefulSet's or DaemonSet's
    /// ControllerRevisions.
    fn revisions(&self, object: &ObjectRef) -> Result<Vec<(i64, Option<String>)>, WriteFailure> {
        let namespace = object.namespace.as_deref();
        let kind = object.kind;
        let resource = kind.name().to_ascii_lowercase();
        let workload = self
            .store
            .get(&Key::new(kind, namespace.unwrap_or_default(), object.name.clone()))
            .ok_or_else(|| WriteFailure::NotFound(format!("{resource}s.apps \"{}\" not found (not applied yet?)", object.name)))?;
        let uid = workload.pointer("/metadata/uid").cloned().unwrap_or_default();
        let history = match kind {
            Kind::Deployment => Kind::ReplicaSet,
            Kind::StatefulSet | Kind::DaemonSet => Kind::ControllerRevision,
            other => return Err(WriteFailure::Refused(format!("{} has no rollout history to undo", other.name()))),
        };
        let mut revisions: Vec<(i64, Option<String>)> = self
            .store
            .list(history, namespace)
            .0
            .iter()
            .filter(|r| r.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|os| os.iter().any(|o| o["uid"] == uid)))
            .map(|r| {
                let revision = match history {
                    Kind::ReplicaSet => annotation(r, "deployment.kubernetes.io/revision").and_then(|n| n.parse().ok()).unwrap_or(0),
                    _ => r["revision"].as_i64().unwrap_or(0),
                };
                let commit = annotation(r, REVISION_COMMIT)
                    .or_else(|| {
                        annotation(r, CHANGE_CAUSE)
                            .and_then(|c| c.split_whitespace().next())
                            .filter(|c| c.len() >= 7 && c.chars().all(|ch| ch.is_ascii_hexdigit()))
                    })
                    .map(str::to_owned);
                (revision, commit)
            })
            .collect();
        revisions.sort();
        Ok(revisions)
    }

    /// The revision whose pod template `kubectl rollout undo` writes back
    /// (its patch of `spec.template`), if the patch is that.
    fn undo_by_template(&self, object: &ObjectRef, command: &str, patch: &Value) -> Result<Option<i64>, WriteFailure> {
        if !command.starts_with("kubectl rollout") || !matches!(object.kind, Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet) {
            return Ok(None);
        }
        // An undo replaces the whole template: a JSON patch of it (a
        // Deployment's), or a strategic merge patch marked `$patch: replace`
        // (a ControllerRevision's data). `rollout restart` only merges an
        // annotation into it.
        let template = match patch {
            Value::Array(ops) => ops.iter().find(|op| op["path"] == "/spec/template" && op["op"] == "replace").map(|op| op["value"].clone()),
            _ => patch.pointer("/spec/template").filter(|t| t["$patch"] == "replace").cloned(),
        };
        let Some(mut template) = template else { return Ok(None) };
        // kubectl writes the template as Go serializes it (`creationTimestamp:
        // null`, `resources: {}`), the store keeps it as JSON: compare
        // them without empty values, and without the hash label kubectl
        // also drops.
        fn prune(value: &mut Value) -> bool {
            match value {
                Value::Null => false,
                Value::Object(map) => {
                    map.retain(|_, v| prune(v));
                    !map.is_empty()
                }
                Value::Array(items) => {
                    items.iter_mut().for_each(|i| {
                        prune(i);
                    });
                    !items.is_empty()
                }
                _ => true,
            }
        }
        let comparable = |template: &mut Value| {
            if let Some(map) = template.as_object_mut() {
                map.remove("$patch");
            }
            if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
                labels.remove("pod-template-hash");
            }
            prune(template);
        };
        comparable(&mut template);
        let found = self.revisions_with_templates(object)?.into_iter().find_map(|(revision, mut theirs)| {
            comparable(&mut theirs);
            (theirs == template).then_some(revision)
        });
        match found {
            Some(revision) => Ok(Some(revision)),
            None => Err(WriteFailure::Refused(format!(
                "{}: the template `{command}` writes back is none of the workload's revisions; use `driftless rollout undo`",
                driftless_write::display(object)
            ))),
        }
    }

    /// Each revision of a workload with its pod template.
    fn revisions_with_templates(&self, object: &ObjectRef) -> Result<Vec<(i64, Value)>, WriteFailure> {
        let namespace = object.namespace.as_deref();
        let workload = self
            .store
            .get(&Key::new(object.kind, namespace.unwrap_or_default(), object.name.clone()))
            .ok_or_else(|| WriteFailure::NotFound(format!("{} \"{}\" not found", object.kind.plural(), object.name)))?;
        let uid = workload.pointer("/metadata/uid").cloned().unwrap_or_default();
        let (kind, pointer) =
            if object.kind == Kind::Deployment { (Kind::ReplicaSet, "/spec/template") } else { (Kind::ControllerRevision, "/data/spec/template") };
        Ok(self
            .store
            .list(kind, namespace)
            .0
            .iter()
            .filter(|r| r.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|os| os.iter().any(|o| o["uid"] == uid)))
            .filter_map(|r| {
                let revision = match kind {
                    Kind::ReplicaSet => annotation(r, "deployment.kubernetes.io/revision").and_then(|n| n.parse().ok())?,
                    _ => r["revision"].as_i64()?,
                };
                Some((revision, r.pointer(pointer)?.clone()))
            })
            .collect())
    }

    /// The commits behind a workload's current revision and revision `to`
    /// (the one before the current by default).
    pub(crate) fn undo_for(&self, object: &ObjectRef, to: Option<i64>) -> Result<Undo, WriteFailure> {
        let revisions = self.revisions(object)?;
        let resource = object.kind.name().to_ascii_lowercase();
        let Some((current, current_commit)) = revisions.last().cloned() else {
            return Err(WriteFailure::Refused(format!("no rollout history found for {resource} \"{}\"", object.name)));
        };
        let wanted = match to {
            Some(n) if n != 0 => revisions.iter().find(|(r, _)| *r == n).cloned(),
            _ => revisions.iter().rev().find(|(r, _)| *r < current).cloned(),
        };
        let Some((revision, target_commit)) = wanted else {
            return Err(WriteFailure::Refused(match to {
                Some(n) if n != 0 => format!("unable to find specified revision {n} in history"),
                _ => format!("no rollout history found for {resource} \"{}\"", object.name),
            }));
        };
        let (Some(current_commit), Some(target_commit)) = (current_commit, target_commit) else {
            return Err(WriteFailure::Refused(format!("the commits behind revisions {current} and {revision} are not recorded")));
        };
        Ok(Undo { revision, current_commit, target_commit })
    }

    /// Asks the sync loop to look now, waits for it, and says what became
    /// of `commit`: applied, refused (with why) or still pending.
    pub(crate) fn sync_now(&self, commit: &str) -> Value {
        let (reply, outcome) = std::sync::mpsc::channel();
        if self.sync.send(Trigger::Now(Reply::new(move |outcome| drop(reply.send(outcome))))).is_ok() {
            let _ = outcome.recv_timeout(Duration::from_secs(60));
        }
        // The loop may have seen the commit first (the ref watch): its
        // persisted state says what it did either way.
        let status = driftless_sync::Syncer::status(&*self.store);
        if status.applied.as_ref().is_some_and(|a| a.id == commit) {
            return json!({"result": "applied", "commit": commit});
        }
        match status.refused {
            Some((refused, errors)) if refused.id == commit => json!({"result": "refused", "commit": commit, "errors": errors}),
            _ => json!({"result": "pending", "commit": commit}),
        }
    }
}

impl DaemonWrites {
    /// Writes one change (the API's requests and the daemon's own
    /// rollbacks alike).
    pub(crate) fn commit(&self, request: &Request) -> Result<driftless_write::Written, WriteFailure> {
        self.writer.write(request).map_err(refused)
    }
}

impl WriteOps for DaemonWrites {
    fn write(&self, body: Value) -> Result<Value, WriteFailure> {
        let wire: WireRequest = serde_json::from_value(body).map_err(|e| WriteFailure::Refused(format!("bad request: {e}")))?;
        let kind = |name: &str| Kind::from_name(name).ok_or_else(|| WriteFailure::Refused(format!("unknown kind {name:?}")));
        let objects: Vec<ObjectRef> = match &wire.change {
            WireChange::Verb(_) | WireChange::Undo { .. } | WireChange::Open | WireChange::Edit { .. } | WireChange::Patch { .. } => {
                vec![ObjectRef::new(kind(&wire.kind)?, wire.namespace.as_deref(), wire.name.clone())]
            }
            WireChange::Delete { objects } => {
                objects.iter().map(|(k, ns, n)| Ok(ObjectRef::new(kind(k)?, Some(ns), n.clone()))).collect::<Result<_, WriteFailure>>()?
            }
            WireChange::Apply { .. } | WireChange::Restore { .. } => Vec::new(),
        };
        for object in &objects {
            if let Some(owner) = self.declared_owner(object) {
                return Err(WriteFailure::Refused(format!("{} is made by {owner}: change that instead", driftless_write::display(object))));
            }
        }
        let change = match wire.change {
            WireChange::Open => {
                let opened = driftless_write::open(self.writer.target(), &objects[0]).map_err(refused)?;
                return serde_json::to_value(opened).map_err(|e| WriteFailure::Internal(e.to_string()));
            }
            WireChange::Edit { opened, edited } => Change::Edit { object: objects[0].clone(), opened, edited },
            WireChange::Patch { patch_type, patch, command } => match self.undo_by_template(&objects[0], &command, &patch)? {
                Some(revision) => Change::Undo(objects[0].clone(), self.undo_for(&objects[0], Some(revision))?),
                None => Change::Patch { object: objects[0].clone(), kind: patch_type, patch, command },
            },
            WireChange::Verb(verb) => Change::Verb(objects[0].clone(), verb),
            WireChange::Undo { to_revision } => Change::Undo(objects[0].clone(), self.undo_for(&objects[0], to_revision)?),
            WireChange::Apply { verb, documents } => Change::Apply { verb, documents },
            WireChange::Restore { commit } => Change::Restore { commit },
            WireChange::Delete { .. } => Change::Delete(objects),
        };
        let patching = matches!(change, Change::Patch { .. });
        let target = match &change {
            Change::Verb(object, _) | Change::Patch { object, .. } => Some(object.clone()),
            _ => None,
        };
        let request = Request { change, author: wire.author, message: wire.message, dry_run: wire.dry_run, branch: wire.branch.clone(), trailers: Vec::new() };
        let written = match self.writer.write(&request) {
            // A patch that changes nothing git holds is no error to kubectl.
            Err(WriteError::NoChange(_)) if patching => return Ok(json!({"unchanged": true})),
            other => other.map_err(refused)?,
        };
        let mut reply = serde_json::to_value(&written).map_err(|e| WriteFailure::Internal(e.to_string()))?;
        // A dry run answers with the object as it would be once synced.
        if let (true, Some((before, after)), Some(object)) = (wire.dry_run, &written.declared, target) {
            let key = Key::new(object.kind, object.namespace.unwrap_or_default(), object.name);
            if let Some(live) = self.store.get(&key) {
                reply["object"] = driftless_write::merge::carried(&live, before, after);
            }
        }
        if let Some(commit) = written.commit.as_deref().filter(|_| wire.branch.is_none()) {
            reply["sync"] = self.sync_now(commit);
        }
        Ok(reply)
    }
}

/// The write path's target for a local repository source.
/// The write path's target: the repository the sync reads (a local one,
/// or the mirror of a remote one, whose commits are pushed).
pub(crate) fn target(repo: PathBuf, branch: &str, path: &str, remote: bool, age_keys: PathBuf) -> Target {
    Target { repo, branch: branch.to_owned(), path: path.to_owned(), remote: remote.then(|| "origin".to_owned()), age_keys: Some(age_keys) }
}
