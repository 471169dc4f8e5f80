//! One verb, start to end: find the document that declares the object at
//! the branch's head, make the new text, validate the new revision whole
//! with the daemon's pipeline, plan it with the daemon's change engine,
//! and commit it (or, for `--dry-run`, only say what it would do). A
//! branch that moves meanwhile is read again and the edit redone on its
//! new head.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use driftless_diff::{Plan, Revision, render};
use driftless_manifest::{GitRepo, RawFile};
use driftless_model::{Kind, Object, ObjectRef};
use driftless_validate::{Report, Validator};
use git2::Repository;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::WriteError;
use crate::commit::{self, Identity};
use crate::edit;
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
    /// `Some("origin")` when `repo` is the daemon's mirror of a remote
    /// repository: the head is `refs/remotes/origin/<branch>`, and a commit
    /// is pushed (never forced) instead of moving a local branch.
    pub remote: Option<String>,
    /// The age identities SOPS files are decrypted with for validation
    /// (the daemon's, or SOPS's environment variables); `None` for none.
    pub age_keys: Option<PathBuf>,
}

impl Target {
    /// The age identities, read now (a key made while the daemon runs
    /// counts from the next write). An unreadable identity file decrypts
    /// nothing: the revision is then refused at the encrypted file.
    pub fn keyring(&self) -> driftless_secrets::Keyring {
        let Some(keys) = &self.age_keys else { return driftless_secrets::Keyring::default() };
        driftless_secrets::Keyring::from_env_or(keys).unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the age identities; SOPS files will not decrypt");
            driftless_secrets::Keyring::default()
        })
    }

    /// The ref holding the watched branch's head.
    pub fn head_ref(&self) -> String {
        match &self.remote {
            Some(remote) => format!("refs/remotes/{remote}/{}", self.branch),
            None => format!("refs/heads/{}", self.branch),
        }
    }
}

/// What to change.
#[derive(Clone, Debug)]
pub enum Change {
    /// An imperative verb on one object.
    Verb(ObjectRef, Verb),
    /// `rollout undo` of one workload.
    Undo(ObjectRef, Undo),
    /// Objects to write as given (`apply -f`, `create`, `autoscale`,
    /// `edit`): each replaces the document declaring it, or is added in a
    /// file of its own. `verb` names the command (`apply`).
    Apply {
        /// The command, for the subject and `Driftless-Verb`.
        verb: String,
        /// The objects.
        documents: Vec<Value>,
    },
    /// Declared objects to remove from git (`delete`).
    Delete(Vec<ObjectRef>),
    /// A patch kubectl sent (`label`, `set image`, `rollout restart`...),
    /// applied to the document as git holds it.
    Patch {
        /// The object.
        object: ObjectRef,
        /// How to read the patch.
        kind: crate::merge::PatchType,
        /// The patch.
        patch: Value,
        /// What sent it (`kubectl label`), for the subject.
        command: String,
    },
    /// "Roll back to here": the manifests as this commit (of the
    /// branch's history) declared them.
    Restore {
        /// The commit, as git names it (an id, a short id, a ref).
        commit: String,
    },
    /// `edit`: the document as opened ([`crate::open`]) and as saved.
    Edit {
        /// The object.
        object: ObjectRef,
        /// The document's text as the editor was given it.
        opened: String,
        /// The text the user saved.
        edited: String,
    },
}

/// One change, by one person.
#[derive(Clone, Debug)]
pub struct Request {
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
    /// More trailers (`Driftless-Rollback:` on a rollback the daemon
    /// made), after the verb's own.
    pub trailers: Vec<(String, String)>,
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
    /// The files changed, relative to the repository root.
    pub files: Vec<String>,
    /// The files' changes, as `git diff` shows them.
    pub diff: String,
    /// The plan, as `driftless plan` prints it.
    pub plan: String,
    /// The plan in markdown, for a pull request.
    pub plan_markdown: String,
    /// The commit a revert undid.
    pub reverts: Option<String>,
    /// The object's declared document before and after, for a change to
    /// one object's fields (a verb or a patch): what a dry run answers
    /// with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<(Value, Value)>,
    /// Where the time went.
    #[serde(default)]
    pub timings: Timings,
}

/// Trailer names every verb's commit carries.
pub const VERB_TRAILER: &str = "Driftless-Verb";
/// The object a verb changed.
pub const OBJECT_TRAILER: &str = "Driftless-Object";
/// The commit an undo reverted.
pub const REVERTS_TRAILER: &str = "Driftless-Reverts";
/// The commit a rollback restored the manifests of.
pub const RESTORES_TRAILER: &str = "Driftless-Restores";

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

/// Loads and validates `rev` as the sync loop does (SOPS files decrypted
/// for validation; `files` keep the bytes as committed).
pub(crate) fn load(repo: &GitRepo, rev: &str, target: &Target) -> Result<Loaded, WriteError> {
    let (_, files) = repo.load(rev, &target.path)?;
    let keyring = target.keyring();
    let report = driftless_validate::validate_files(files.clone(), &|file| driftless_secrets::open(file, &keyring));
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
    if driftless_secrets::is_encrypted(&raw.bytes) {
        // An edit would break SOPS's MAC, and writing the plaintext back
        // would commit the secret.
        return Err(WriteError::NotInPlace { file: place.file.clone(), line: 1, why: "the file is SOPS-encrypted: edit it with sops".into() });
    }
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

fn message(edits: &Edits, request: &Request) -> String {
    let mut out = match &request.message {
        Some(m) => format!("{}\n\n{}\n", m.trim(), edits.subject),
        None => format!("{}\n", edits.subject),
    };
    if let Some(body) = &edits.body {
        out.push_str(&format!("\n{body}\n"));
    }
    out.push_str(&format!("\n{VERB_TRAILER}: {}\n", edits.verb));
    for object in &edits.objects {
        out.push_str(&format!("{OBJECT_TRAILER}: {}\n", object_trailer(object)));
    }
    if let Some(reverts) = &edits.reverts {
        out.push_str(&format!("{REVERTS_TRAILER}: {reverts}\n"));
    }
    if let Some(restores) = &edits.restores {
        out.push_str(&format!("{RESTORES_TRAILER}: {restores}\n"));
    }
    for (name, value) in &request.trailers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    out
}

/// The unified diff of one file, as `git diff` prints it.
fn unified(file: &str, before: &str, after: &str) -> String {
    let diff = similar::TextDiff::from_lines(before, after);
    let body = diff.unified_diff().context_radius(3).header(&format!("a/{file}"), &format!("b/{file}")).to_string();
    format!("diff --git a/{file} b/{file}\n{body}")
}

/// What one change does to the files: each file's text before and after
/// (`None`: absent), and how to describe it.
pub(crate) struct Edits {
    files: std::collections::BTreeMap<String, (Option<String>, Option<String>)>,
    subject: String,
    verb: String,
    objects: Vec<ObjectRef>,
    reverts: Option<String>,
    pub(crate) restores: Option<String>,
    pub(crate) body: Option<String>,
    /// For a verb: the object's value as read and as the verb made it, to
    /// tell on a redo whether someone changed the same fields meanwhile.
    basis: Option<(Value, Value)>,
}

impl Edits {
    pub(crate) fn new(subject: String, verb: &str, objects: Vec<ObjectRef>) -> Edits {
        Edits { files: Default::default(), subject, verb: verb.to_owned(), objects, reverts: None, restores: None, body: None, basis: None }
    }

    /// Whether no file changes.
    pub(crate) fn is_empty(&self) -> bool {
        self.files.values().all(|(b, a)| b == a)
    }

    /// A file's text as edited so far.
    fn text(&self, loaded: &Loaded, file: &str) -> Option<String> {
        match self.files.get(file) {
            Some((_, after)) => after.clone(),
            None => loaded.files.iter().find(|f| *f.path == *file).and_then(|f| String::from_utf8(f.bytes.clone()).ok()),
        }
    }

    pub(crate) fn set(&mut self, loaded: &Loaded, file: &str, text: Option<String>) {
        let before = loaded.files.iter().find(|f| *f.path == *file).and_then(|f| String::from_utf8(f.bytes.clone()).ok());
        self.files.insert(file.to_owned(), (before, text));
    }
}

/// Where `object` is declared in `text` (a file being edited), and its
/// value there.
fn locate(file: &str, text: &str, object: &ObjectRef) -> Option<(Place, Value)> {
    let docs = driftless_manifest::parse_file(Arc::from(file), text).ok()?;
    docs.into_iter().find_map(|d| {
        let kind = Kind::from_type(d.api_version()?, d.kind()?).ok()?;
        let namespace = d.value.pointer("/metadata/namespace").and_then(Value::as_str);
        let found = ObjectRef::new(kind, namespace, d.name()?);
        (found == *object).then(|| (Place { file: file.to_owned(), index: d.origin.index(), prefix: d.origin.prefix().to_owned() }, d.value))
    })
}

/// Where a new object's file goes: `<path>/<namespace>/<kind>-<name>.yaml`
/// (no namespace folder for cluster-scoped kinds), or the watched file
/// itself when the path is one file.
fn new_file(target: &Target, loaded: &Loaded, object: &ObjectRef) -> String {
    let path = target.path.trim_matches('/');
    if loaded.files.len() == 1 && *loaded.files[0].path == *path {
        return path.to_owned();
    }
    let name = format!("{}-{}.yaml", object.kind.name().to_ascii_lowercase(), object.name);
    let folder = match &object.namespace {
        Some(ns) => {
            if path.is_empty() {
                ns.clone()
            } else {
                format!("{path}/{ns}")
            }
        }
        None => path.to_owned(),
    };
    if folder.is_empty() { name } else { format!("{folder}/{name}") }
}

fn object_of(value: &Value) -> Result<ObjectRef, WriteError> {
    let kind = driftless_model::kind_of(value).map_err(|e| WriteError::Verb(e.to_string()))?;
    let name = value.pointer("/metadata/name").and_then(Value::as_str).ok_or_else(|| WriteError::Verb(format!("a {} without metadata.name", kind.name())))?;
    Ok(ObjectRef::new(kind, value.pointer("/metadata/namespace").and_then(Value::as_str), name))
}

/// Names a few objects for a subject: `deployment/web, service/web`.
fn names(objects: &[ObjectRef]) -> String {
    let shown: Vec<String> = objects.iter().take(3).map(verb::display).collect();
    match objects.len() {
        n if n > 3 => format!("{} and {} more", shown.join(", "), n - 3),
        _ => shown.join(", "),
    }
}

/// What `change` does to the files at `head`.
fn edits(repository: &Repository, git: &GitRepo, target: &Target, head: &git2::Commit<'_>, before: &Loaded, change: &Change) -> Result<Edits, WriteError> {
    let head_id = head.id().to_string();
    match change {
        Change::Verb(object, verb) => {
            let (place, text, old) = declared(before, object, &target.path, &head_id)?;
            let mut new = old.clone();
            verb.apply(object.kind, &mut new)?;
            if new == old {
                return Err(WriteError::NoChange(verb.subject(object)));
            }
            let mut edits = Edits::new(verb.subject(object), verb.name(), vec![object.clone()]);
            let text = yaml::edit(&text, &place, &old, &new)?;
            edits.basis = Some((old, new));
            edits.set(before, &place.file, Some(text));
            Ok(edits)
        }
        Change::Edit { object, opened, edited } => {
            let (place, text, old) = declared(before, object, &target.path, &head_id)?;
            let text = edit::prepare(object, &place, &text, &old, &head_id[..7], opened, edited)?;
            let mut edits = Edits::new(format!("edit {}", verb::display(object)), "edit", vec![object.clone()]);
            edits.set(before, &place.file, Some(text));
            Ok(edits)
        }
        Change::Patch { object, kind, patch, command } => {
            let (place, text, old) = declared(before, object, &target.path, &head_id)?;
            let mut new = crate::merge::apply(*kind, &old, patch)?;
            keep_server_fields(&old, &mut new);
            let subject = format!("{command} {}", verb::display(object));
            if new == old {
                return Err(WriteError::NoChange(subject));
            }
            let mut edits = Edits::new(subject, &command.replace(' ', "-"), vec![object.clone()]);
            let text = yaml::edit(&text, &place, &old, &new)?;
            edits.basis = Some((old, new));
            edits.set(before, &place.file, Some(text));
            Ok(edits)
        }
        Change::Undo(object, undo) => {
            let (place, text, old) = declared(before, object, &target.path, &head_id)?;
            let made = undo::prepare(repository, git, target, head, object, &place, &text, &old, undo)?;
            let mut edits = Edits::new(made.subject, "rollout-undo", vec![object.clone()]);
            edits.reverts = made.reverts;
            edits.body = made.body;
            edits.set(before, &place.file, Some(made.text));
            Ok(edits)
        }
        Change::Apply { verb: name, documents } => {
            let objects = documents.iter().map(object_of).collect::<Result<Vec<_>, _>>()?;
            let mut edits = Edits::new(format!("{name} {}", names(&objects)), name, objects.clone());
            for (object, value) in objects.iter().zip(documents) {
                let declared_in = before.report.objects.get(object).map(|e| e.origin.file().to_string());
                match declared_in {
                    Some(file) => {
                        let text = edits.text(before, &file).unwrap_or_default();
                        let (place, old) = locate(&file, &text, object).ok_or_else(|| WriteError::Verb(format!("{} appears twice", verb::display(object))))?;
                        if &old != value {
                            let text = yaml::edit(&text, &place, &old, value)?;
                            edits.set(before, &file, Some(text));
                        }
                    }
                    None => {
                        let file = new_file(target, before, object);
                        let document = yaml::new_document(value);
                        let text = match edits.text(before, &file) {
                            Some(existing) if !existing.trim().is_empty() => {
                                format!("{}{}---\n{document}", existing, if existing.ends_with('\n') { "" } else { "\n" })
                            }
                            _ => document,
                        };
                        edits.set(before, &file, Some(text));
                    }
                }
            }
            if edits.is_empty() {
                return Err(WriteError::NoChange(edits.subject));
            }
            Ok(edits)
        }
        Change::Restore { commit } => crate::restore::prepare(repository, git, target, head, before, commit),
        Change::Delete(objects) => {
            let mut edits = Edits::new(format!("delete {}", names(objects)), "delete", objects.clone());
            for object in objects {
                let (place, _, _) = declared(before, object, &target.path, &head_id)?;
                if !place.prefix.is_empty() {
                    return Err(WriteError::NotInPlace {
                        file: place.file,
                        line: 1,
                        why: format!("{} is an item of a List; remove it from the List by hand", verb::display(object)),
                    });
                }
                let text = edits.text(before, &place.file).unwrap_or_default();
                let (place, _) = locate(&place.file, &text, object).ok_or_else(|| WriteError::Verb(format!("{} appears twice", verb::display(object))))?;
                let text = yaml::remove_document(&place.file, &text, place.index)?;
                edits.set(before, &place.file, text);
            }
            Ok(edits)
        }
    }
}

/// A patch made against the live object may carry what the API server
/// owns (status, resourceVersion, uid, the sync's own annotation...): git
/// keeps none of it, so those stay as the document had them.
fn keep_server_fields(old: &Value, new: &mut Value) {
    const SERVER: [&str; 8] = [
        "/status",
        "/metadata/resourceVersion",
        "/metadata/uid",
        "/metadata/generation",
        "/metadata/creationTimestamp",
        "/metadata/managedFields",
        "/metadata/selfLink",
        "/metadata/deletionTimestamp",
    ];
    let owned = ["/metadata/annotations/driftless.dev~1commit", "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"];
    for pointer in SERVER.iter().chain(owned.iter()) {
        let (parent, key) = pointer.rsplit_once('/').expect("pointers have a parent");
        let key = key.replace("~1", "/");
        let was = old.pointer(pointer).cloned();
        if let Some(map) = new.pointer_mut(parent).and_then(Value::as_object_mut) {
            match was {
                Some(value) => {
                    map.insert(key, value);
                }
                None => {
                    map.remove(&key);
                }
            }
        }
    }
    // An annotations map the patch left empty goes, as it came.
    if old.pointer("/metadata/annotations").is_none()
        && new.pointer("/metadata/annotations").and_then(Value::as_object).is_some_and(Map::is_empty)
        && let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("annotations");
    }
}

/// The JSON pointers of the leaves where `a` and `b` differ.
pub(crate) fn changed_pointers(a: &Value, b: &Value) -> Vec<String> {
    fn walk(a: Option<&Value>, b: Option<&Value>, at: String, out: &mut Vec<String>) {
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    walk(x.get(key), y.get(key), format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")), out);
                }
            }
            // Same-length lists (containers, ports...) by position, so a
            // change to one item's field is that field.
            (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
                for (i, (a, b)) in x.iter().zip(y).enumerate() {
                    walk(Some(a), Some(b), format!("{at}/{i}"), out);
                }
            }
            (x, y) if x != y => out.push(at),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(Some(a), Some(b), String::new(), &mut out);
    out
}

/// Carries out `request` on `target`, validating from scratch (a
/// [`Writer`] remembers what it validated; use one for many requests).
pub fn write(target: &Target, request: &Request) -> Result<Written, WriteError> {
    Writer::new(target.clone()).write(request)
}

/// Where a request's time went, in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Reading the head's files and validating them (nothing when the
    /// head is the last commit this writer made).
    pub load_us: u64,
    /// Finding the document and making the new text.
    pub edit_us: u64,
    /// Validating the new revision whole.
    pub validate_us: u64,
    /// Planning it with the change engine.
    pub plan_us: u64,
    /// Writing the commit and moving the branch (or pushing).
    pub commit_us: u64,
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The write path over one repository, one request at a time. It keeps
/// what it validated: each file's own checks (so a new revision is
/// validated whole by checking again only the files a change touched) and
/// the revision of the last commit it made (the head of its next request,
/// usually).
pub struct Writer {
    target: Target,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    validator: Validator,
    head: Option<(String, Arc<Loaded>)>,
}

impl Writer {
    /// A writer for `target`, with nothing validated yet.
    pub fn new(target: Target) -> Writer {
        Writer { target, cache: Mutex::new(Cache::default()) }
    }

    /// The repository it writes.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Validates the branch's head ahead of the first request, so that one
    /// is as quick as the rest.
    pub fn warm(&self) -> Result<(), WriteError> {
        let repository = Repository::open(&self.target.repo)?;
        let git = GitRepo::open(&self.target.repo)?;
        let head = repository.find_reference(&self.target.head_ref())?.peel_to_commit()?.id().to_string();
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.loaded(&git, &head, &self.target)?;
        Ok(())
    }

    /// Carries out `request`. Requests are taken one at a time.
    pub fn write(&self, request: &Request) -> Result<Written, WriteError> {
        let target = &self.target;
        let span = tracing::info_span!("write", branch = %target.branch);
        let _entered = span.enter();
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let repository = Repository::open(&target.repo)?;
        let git = GitRepo::open(&target.repo)?;
        let mut first_basis: Option<(Value, Value)> = None;
        for _attempt in 0..5 {
            let mut timings = Timings::default();
            let started = Instant::now();
            let head = repository.find_reference(&target.head_ref())?.peel_to_commit()?;
            let head_id = head.id().to_string();
            let before = cache.loaded(&git, &head_id, target)?;
            timings.load_us = micros(started);
            let started = Instant::now();
            let edits = edits(&repository, &git, target, &head, &before, &request.change)?;
            // Redone on a moved head: refuse if the fields the verb changes
            // were changed there too (never overwrite someone's change).
            if let (Some((old0, new0)), Some((old1, _))) = (&first_basis, &edits.basis)
                && let Some(pointer) = changed_pointers(old0, new0).into_iter().find(|p| old0.pointer(p) != old1.pointer(p))
            {
                return Err(WriteError::Conflict { field: pointer, commit: head_id[..7].to_owned() });
            }
            if first_basis.is_none() {
                first_basis = edits.basis.clone();
            }
            let mut files: Vec<RawFile> = before.files.iter().filter(|f| !edits.files.contains_key(&*f.path)).cloned().collect();
            for (file, (_, after)) in &edits.files {
                if let Some(text) = after {
                    files.push(RawFile::new(Arc::from(file.as_str()), text.as_bytes().to_vec()));
                }
            }
            timings.edit_us = micros(started);
            let started = Instant::now();
            let keyring = self.target.keyring();
            let after = cache.validator.validate_with(&files, &|file| driftless_secrets::open(file, &keyring));
            timings.validate_us = micros(started);
            if !after.is_valid() {
                return Err(WriteError::Invalid { errors: after.errors().map(ToString::to_string).collect() });
            }
            let started = Instant::now();
            let plan: Plan = driftless_diff::plan(objects(&after), &Revision::new(objects(&before.report)));
            if !plan.is_applicable() {
                let errors = plan.refused.iter().map(|r| after.error_at(&r.object, &r.pointer, &r.message).to_string()).collect();
                return Err(WriteError::Invalid { errors });
            }
            timings.plan_us = micros(started);
            let message = message(&edits, request);
            let branch = request.branch.clone().unwrap_or_else(|| target.branch.clone());
            let diff: String =
                edits.files.iter().map(|(file, (b, a))| unified(file, b.as_deref().unwrap_or_default(), a.as_deref().unwrap_or_default())).collect();
            let mut written = Written {
                commit: None,
                branch: branch.clone(),
                message: message.clone(),
                files: edits.files.keys().cloned().collect(),
                diff,
                plan: render::text(&plan, false),
                plan_markdown: render::markdown(&plan),
                reverts: edits.reverts.clone(),
                declared: edits.basis.clone(),
                timings: Timings::default(),
            };
            if request.dry_run {
                written.timings = timings;
                return Ok(written);
            }
            let started = Instant::now();
            let changes: Vec<commit::FileChange<'_>> = edits.files.iter().map(|(f, (_, a))| (f.as_str(), a.as_deref().map(str::as_bytes))).collect();
            if request.branch.is_none() && target.remote.is_none() {
                for (file, _) in &changes {
                    commit::check_clean(&repository, &target.branch, file)?;
                }
            }
            let tree = commit::tree_with(&repository, &head.tree()?, &changes)?;
            let id = commit::commit_object(&repository, &head, tree, &request.author, &message)?;
            let first_line = message.lines().next().unwrap_or_default();
            if let Some(remote) = &target.remote {
                let to = request.branch.as_deref().unwrap_or(&target.branch);
                if !commit::push(&target.repo, remote, id, to, request.branch.is_some())? {
                    tracing::info!("the remote branch moved; fetching and redoing the edit on its new head");
                    commit::fetch(&target.repo, remote, &target.branch)?;
                    continue;
                }
                if request.branch.is_none() {
                    repository.reference(&target.head_ref(), id, true, &format!("driftless: {first_line}"))?;
                }
            } else if let Some(new_branch) = &request.branch {
                commit::create_branch(&repository, new_branch, id, first_line)?;
            } else if !commit::advance(&repository, &target.branch, head.id(), id, first_line, &changes)? {
                tracing::info!("the branch moved; redoing the edit on its new head");
                continue;
            }
            timings.commit_us = micros(started);
            tracing::info!(commit = %id, files = ?written.files, ?timings, "committed");
            if request.branch.is_none() {
                // The next request most likely starts from this commit.
                cache.head = Some((id.to_string(), Arc::new(Loaded { files, report: after })));
            }
            written.commit = Some(id.to_string());
            written.timings = timings;
            return Ok(written);
        }
        Err(WriteError::Raced(target.branch.clone()))
    }
}

impl Cache {
    /// The revision at `commit`, validated (from memory when it is the
    /// last one seen).
    fn loaded(&mut self, git: &GitRepo, commit: &str, target: &Target) -> Result<Arc<Loaded>, WriteError> {
        if let Some((id, loaded)) = &self.head
            && id == commit
        {
            return Ok(loaded.clone());
        }
        let (_, files) = git.load(commit, &target.path)?;
        let keyring = target.keyring();
        let report = self.validator.validate_with(&files, &|file| driftless_secrets::open(file, &keyring));
        let loaded = Arc::new(Loaded { files, report });
        self.head = Some((commit.to_owned(), loaded.clone()));
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests;
