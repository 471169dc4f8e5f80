//! Automatic rollback, opt-in: a workload annotated
//! `driftless.dev/rollback: on-failure` (or every workload, with
//! `--rollback-on-failure`) whose rollout fails gets its `rollout undo`
//! committed by the daemon, attributed to Driftless, naming the failed
//! commit and why, on the watched branch (or on a branch for review with
//! `--rollback-branch`).
//!
//! A rollout has failed when a Deployment's `Progressing` condition says
//! `ProgressDeadlineExceeded`, or when a StatefulSet's updated pod has
//! been failing to start (crash-looping, or its image not pulled) for
//! longer than its deadline (`driftless.dev/progress-deadline-seconds`,
//! default 600 as Deployments'). Git is the memory: a failure is rolled
//! back once, because the commit doing it carries `Driftless-Rollback:
//! <failed commit>` and is looked for first; a failed commit that is
//! itself such a rollback is never rolled back (no loops). Each outcome is
//! an Event on the workload and a record `status` shows.
//!
//! Must not touch: the store's objects (the sync applies the commit like
//! any other) or any ref but the one the write path writes.

use std::sync::Arc;
use std::time::Duration;

use driftless_controllers::events::EventType;
use driftless_controllers::{Action, Context, ReconcileError, Reconciler, Watch};
use driftless_model::{Kind, ObjectRef};
use driftless_store::{Batch, Key, Store};
use driftless_write::{Change, Identity, Request};
use serde_json::{Value, json};

use super::writes::DaemonWrites;

/// The annotation that opts a workload in.
pub(crate) const ROLLBACK: &str = "driftless.dev/rollback";
/// A StatefulSet's deadline for its updated pods to start, in seconds.
pub(crate) const DEADLINE: &str = "driftless.dev/progress-deadline-seconds";
/// The trailer naming the failed commit a rollback undoes.
pub(crate) const TRAILER: &str = "Driftless-Rollback";
/// Where the outcomes are recorded (one record per workload).
pub(crate) const RECORDS: &str = "rollback/";

/// How far back the branch is searched for an earlier rollback.
const SEARCH: usize = 500;

/// Settings from the daemon's flags.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    /// Every workload, annotated or not.
    pub all: bool,
    /// Commit to a new branch `<prefix>/<kind>-<name>-<commit>` instead.
    pub branch_prefix: Option<String>,
}

/// The rollback reconciler for one workload kind.
pub(crate) struct Rollback {
    kind: Kind,
    ctx: Context,
    writes: Arc<DaemonWrites>,
    settings: Settings,
}

impl Rollback {
    pub(crate) fn new(kind: Kind, ctx: Context, writes: Arc<DaemonWrites>, settings: Settings) -> Arc<Rollback> {
        Arc::new(Rollback { kind, ctx, writes, settings })
    }

    fn store(&self) -> &dyn Store {
        &*self.ctx.store
    }

    /// Why the workload's rollout failed, if it did; else when to look
    /// again (a StatefulSet's deadline still running).
    fn failure(&self, workload: &Value) -> Result<Option<String>, Duration> {
        // A status older than the spec speaks of the rollout before (the
        // one a rollback has just replaced, say).
        let generation = workload.pointer("/metadata/generation").and_then(Value::as_i64);
        if workload.pointer("/status/observedGeneration").and_then(Value::as_i64) != generation {
            return Ok(None);
        }
        match self.kind {
            Kind::Deployment => Ok(workload.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().find_map(|c| {
                (c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
                    .then(|| format!("ProgressDeadlineExceeded: {}", c["message"].as_str().unwrap_or("the rollout made no progress")))
            })),
            Kind::StatefulSet => self.statefulset_failure(workload),
            _ => Ok(None),
        }
    }

    fn statefulset_failure(&self, set: &Value) -> Result<Option<String>, Duration> {
        let update = set.pointer("/status/updateRevision").and_then(Value::as_str).unwrap_or_default();
        let uid = set.pointer("/metadata/uid").cloned().unwrap_or_default();
        let namespace = set.pointer("/metadata/namespace").and_then(Value::as_str);
        let deadline = annotation(set, DEADLINE).and_then(|d| d.parse::<i64>().ok()).unwrap_or(600);
        let now = self.ctx.clock.now().as_second();
        let mut wait: Option<i64> = None;
        for pod in self.store().list(Kind::Pod, namespace).0 {
            let owned = pod.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|os| os.iter().any(|o| o["uid"] == uid));
            let updated = pod.pointer("/metadata/labels/controller-revision-hash").and_then(Value::as_str) == Some(update);
            if !owned || !updated || update.is_empty() {
                continue;
            }
            let Some(why) = failing(&pod) else { continue };
            let created = pod.pointer("/metadata/creationTimestamp").and_then(Value::as_str).and_then(|t| t.parse::<jiff::Timestamp>().ok());
            let age = created.map_or(0, |c| now - c.as_second());
            if age >= deadline {
                let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                return Ok(Some(format!("pod {name} {why} for more than {deadline}s")));
            }
            wait = Some(wait.map_or(deadline - age, |w| w.min(deadline - age)));
        }
        match wait {
            Some(seconds) => Err(Duration::from_secs(seconds.max(1) as u64)),
            None => Ok(None),
        }
    }

    /// Records an outcome for `status` and as an Event on the workload.
    fn record(&self, workload: &Value, object: &ObjectRef, outcome: Value, event: (EventType, &str, &str)) -> Result<(), ReconcileError> {
        let name = record_name(object);
        let mut record = outcome;
        record["object"] = json!(driftless_write::display(object));
        record["at"] = json!(self.ctx.clock.now().as_second());
        let mut batch = Batch::new();
        batch.set_meta(name, record);
        self.store().apply(batch)?;
        self.ctx.events.record(workload, event.0, event.1, event.2);
        Ok(())
    }
}

fn annotation<'v>(object: &'v Value, name: &str) -> Option<&'v str> {
    object.pointer("/metadata/annotations").and_then(|a| a.get(name)).and_then(Value::as_str)
}

/// Why a pod cannot start, as the kubelet reports it.
fn failing(pod: &Value) -> Option<String> {
    pod.pointer("/status/containerStatuses").and_then(Value::as_array).into_iter().flatten().find_map(|status| {
        let waiting = status.pointer("/state/waiting/reason").and_then(Value::as_str);
        let restarts = status["restartCount"].as_i64().unwrap_or(0);
        match waiting {
            Some(reason @ ("CrashLoopBackOff" | "ErrImagePull" | "ImagePullBackOff" | "CreateContainerError" | "InvalidImageName")) => {
                Some(format!("is in {reason}"))
            }
            _ if restarts >= 3 && status["ready"] != true => Some(format!("restarted {restarts} times")),
            _ => None,
        }
    })
}

/// What git says about a failed commit: was it rolled back already (the
/// rollback commit), or is it itself a rollback (no loops)?
enum Known {
    RolledBack(String),
    IsRollback,
    Neither,
}

fn known(writes: &DaemonWrites, failed: &str, branch: Option<&str>) -> Result<Known, git2::Error> {
    let repository = git2::Repository::open(&writes.writer.target().repo)?;
    let failed_commit = repository.revparse_single(failed)?.peel_to_commit()?;
    if trailer(&failed_commit).is_some() {
        return Ok(Known::IsRollback);
    }
    let short = &failed[..failed.len().min(7)];
    if let Some(branch) = branch
        && let Ok(reference) = repository.find_branch(branch, git2::BranchType::Local)
    {
        return Ok(Known::RolledBack(reference.get().peel_to_commit()?.id().to_string()));
    }
    let head = repository.find_reference(&writes.writer.target().head_ref())?.peel_to_commit()?;
    let mut walk = repository.revwalk()?;
    walk.push(head.id())?;
    walk.simplify_first_parent()?;
    for id in walk.take(SEARCH) {
        let commit = repository.find_commit(id?)?;
        if trailer(&commit).is_some_and(|t| t.starts_with(short)) {
            return Ok(Known::RolledBack(commit.id().to_string()));
        }
        if commit.id() == failed_commit.id() {
            break;
        }
    }
    Ok(Known::Neither)
}

/// The value of a commit's `Driftless-Rollback:` trailer.
fn trailer(commit: &git2::Commit<'_>) -> Option<String> {
    let prefix = format!("{TRAILER}: ");
    commit.message().unwrap_or_default().lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

impl Reconciler for Rollback {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::StatefulSet => "rollback-statefulset",
            _ => "rollback-deployment",
        }
    }

    fn watch(&self) -> Watch {
        Watch::of(self.kind)
    }

    fn watches(&self, event: &driftless_store::WatchEvent, _store: &dyn Store) -> Vec<Key> {
        // A StatefulSet's failure shows on its pods.
        if self.kind != Kind::StatefulSet || event.key.kind != Kind::Pod {
            return Vec::new();
        }
        let object = &event.object;
        let owner = object.pointer("/metadata/ownerReferences").and_then(Value::as_array).and_then(|os| os.iter().find(|o| o["kind"] == "StatefulSet"));
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        owner.and_then(|o| o["name"].as_str()).map(|name| vec![Key::new(Kind::StatefulSet, namespace, name)]).unwrap_or_default()
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let Some(workload) = self.store().get(key) else { return Ok(Action::AwaitChange) };
        if !self.settings.all && annotation(&workload, ROLLBACK) != Some("on-failure") {
            return Ok(Action::AwaitChange);
        }
        let reason = match self.failure(&workload) {
            Ok(Some(reason)) => reason,
            Ok(None) => return Ok(Action::AwaitChange),
            Err(wait) => return Ok(Action::requeue(wait)),
        };
        let object = ObjectRef::new(self.kind, Some(&key.namespace), key.name.clone());
        let shown = driftless_write::display(&object);
        let span = tracing::info_span!("rollback", object = %shown);
        let _entered = span.enter();
        let last = last_record(self.store(), &object);
        let undo = match self.writes.undo_for(&object, None) {
            Ok(undo) => undo,
            Err(failure) => {
                let why = failure.to_string();
                if last.as_ref().is_some_and(|r| r["outcome"] == "refused" && r["reason"] == reason.as_str()) {
                    return Ok(Action::AwaitChange);
                }
                tracing::warn!(reason, why, "the rollout failed and cannot be rolled back");
                let message = format!("The rollout failed ({reason}) and cannot be rolled back: {why}");
                self.record(
                    &workload,
                    &object,
                    json!({"outcome": "refused", "reason": reason, "why": why}),
                    (EventType::Warning, "RollbackRefused", &message),
                )?;
                return Ok(Action::AwaitChange);
            }
        };
        let failed = undo.current_commit.clone();
        let short = failed[..failed.len().min(7)].to_owned();
        // Each failure is acted on once: a refusal is not retried until the
        // rollout fails anew.
        if last.as_ref().is_some_and(|r| r["outcome"] == "refused" && r["failed"] == short.as_str()) {
            return Ok(Action::AwaitChange);
        }
        let branch =
            self.settings.branch_prefix.as_ref().map(|p| format!("{}/{}-{}-{short}", p.trim_end_matches('/'), self.kind.name().to_ascii_lowercase(), key.name));
        let writes = self.writes.clone();
        let (failed_for_git, branch_for_git) = (failed.clone(), branch.clone());
        let known = tokio::task::spawn_blocking(move || known(&writes, &failed_for_git, branch_for_git.as_deref()))
            .await?
            .map_err(|e| ReconcileError::Malformed(format!("reading the history of {short}: {e}")))?;
        match known {
            Known::RolledBack(commit) => {
                // Done before (the daemon may have stopped between the
                // commit and its record): record it, commit nothing.
                if last.as_ref().is_none_or(|r| r["failed"] != short.as_str()) {
                    let record = json!({"outcome": "rolled back", "failed": short, "reason": reason, "commit": commit, "revision": undo.revision});
                    let message = format!("The rollout of {short} failed ({reason}); {} rolled it back", &commit[..7]);
                    self.record(&workload, &object, record, (EventType::Warning, "RolledBack", &message))?;
                }
                return Ok(Action::AwaitChange);
            }
            Known::IsRollback => {
                let message = format!("The rollout of {short} failed ({reason}); it is itself an automatic rollback, so it is not rolled back again");
                tracing::warn!(commit = short, reason, "a rollback failed; not rolling it back");
                let record = json!({"outcome": "refused", "failed": short, "reason": reason, "why": "the failed commit is itself a rollback"});
                self.record(&workload, &object, record, (EventType::Warning, "RollbackRefused", &message))?;
                return Ok(Action::AwaitChange);
            }
            Known::Neither => {}
        }
        let subject = format!("Roll back {shown}: {short} failed");
        let request = Request {
            change: Change::Undo(object.clone(), undo.clone()),
            author: Identity { name: "Driftless".into(), email: "driftless@localhost".into() },
            message: Some(subject),
            dry_run: false,
            branch: branch.clone(),
            trailers: vec![(TRAILER.to_owned(), format!("{short} ({reason})"))],
        };
        let writes = self.writes.clone();
        let written = tokio::task::spawn_blocking(move || writes.commit(&request)).await?;
        match written {
            Ok(written) => {
                let commit = written.commit.clone().unwrap_or_default();
                let new = &commit[..commit.len().min(7)];
                let place = match &branch {
                    Some(b) => format!("on branch {b} for review"),
                    None => format!("on {}", written.branch),
                };
                tracing::info!(failed = short, commit = new, reason, "rolled back");
                let message = format!("The rollout of {short} failed ({reason}); committed {new} {place}, rolling back to revision {}", undo.revision);
                let record =
                    json!({"outcome": "rolled back", "failed": short, "reason": reason, "commit": commit, "branch": written.branch, "revision": undo.revision});
                self.record(&workload, &object, record, (EventType::Warning, "RolledBack", &message))?;
                if branch.is_none() {
                    let writes = self.writes.clone();
                    tokio::task::spawn_blocking(move || writes.sync_now(&commit)).await?;
                }
            }
            Err(failure) => {
                let why = failure.to_string();
                tracing::warn!(failed = short, reason, why, "the rollback could not be committed");
                let message = format!("The rollout of {short} failed ({reason}); the rollback could not be committed: {why}");
                self.record(
                    &workload,
                    &object,
                    json!({"outcome": "refused", "failed": short, "reason": reason, "why": why}),
                    (EventType::Warning, "RollbackRefused", &message),
                )?;
            }
        }
        Ok(Action::AwaitChange)
    }
}

/// The workload's last recorded outcome.
fn last_record(store: &dyn Store, object: &ObjectRef) -> Option<Value> {
    store.meta(&record_name(object))
}

fn record_name(object: &ObjectRef) -> String {
    format!("{RECORDS}{}/{}/{}", object.kind.name(), object.namespace.as_deref().unwrap_or_default(), object.name)
}

#[cfg(test)]
mod tests {
    //! When a StatefulSet's rollout counts as failed: its updated pod
    //! failing to start for longer than the deadline, judged on a real
    //! (in-memory) store with a clock the test moves.

    use std::sync::Mutex;

    use driftless_controllers::events::Recorder;
    use driftless_store::{Op, SqliteStore};

    use super::*;

    struct At(Mutex<jiff::Timestamp>);

    impl driftless_controllers::Clock for At {
        fn now(&self) -> jiff::Timestamp {
            *self.0.lock().unwrap()
        }
    }

    fn rollback(store: Arc<dyn Store>, now: jiff::Timestamp) -> Arc<Rollback> {
        let clock: Arc<dyn driftless_controllers::Clock> = Arc::new(At(Mutex::new(now)));
        let ctx = Context { events: Arc::new(Recorder::new(store.clone(), clock.clone(), "test", "node-1")), store: store.clone(), clock };
        let target = driftless_write::Target { repo: "/nonexistent".into(), branch: "main".into(), path: String::new(), remote: None, age_keys: None };
        let (sync, _) = std::sync::mpsc::channel();
        let writes = Arc::new(DaemonWrites { writer: driftless_write::Writer::new(target), store, sync });
        Rollback::new(Kind::StatefulSet, ctx, writes, Settings::default())
    }

    fn put(store: &dyn Store, value: Value) -> Arc<Value> {
        store.apply(Batch::one(Op::Put(value))).unwrap().remove(0)
    }

    fn pod(uid: &Value, revision: &str, waiting: Option<&str>, restarts: i64) -> Value {
        let state = match waiting {
            Some(reason) => json!({"waiting": {"reason": reason}}),
            None => json!({"running": {}}),
        };
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db-0", "namespace": "default", "labels": {"controller-revision-hash": revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": uid, "controller": true}]},
            "spec": {"containers": [{"name": "main", "image": "x"}]},
            "status": {"containerStatuses": [{"name": "main", "ready": false, "restartCount": restarts, "state": state}]},
        })
    }

    #[test]
    fn a_statefulset_fails_once_its_updated_pod_is_stuck_past_the_deadline() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
        let set = put(
            &*store,
            json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "db", "namespace": "default", "annotations": {DEADLINE: "60"}},
                "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "main", "image": "x"}]}}},
            }),
        );
        let mut set = (*set).clone();
        set["status"] = json!({"observedGeneration": set["metadata"]["generation"], "updateRevision": "db-2", "currentRevision": "db-1"});
        let uid = set["metadata"]["uid"].clone();
        let created = put(&*store, pod(&uid, "db-2", Some("CrashLoopBackOff"), 4));
        let born: jiff::Timestamp = created["metadata"]["creationTimestamp"].as_str().unwrap().parse().unwrap();

        // Within the deadline: look again when it ends.
        let early = rollback(store.clone(), born + jiff::SignedDuration::from_secs(20));
        assert_eq!(early.failure(&set), Err(Duration::from_secs(40)));
        // Past it: failed, naming the pod and why.
        let late = rollback(store.clone(), born + jiff::SignedDuration::from_secs(61));
        assert_eq!(late.failure(&set), Ok(Some("pod db-0 is in CrashLoopBackOff for more than 60s".to_owned())));
        // A pod of the old revision, or one that runs, is no failure.
        put(&*store, pod(&uid, "db-1", Some("CrashLoopBackOff"), 4));
        assert_eq!(late.failure(&set), Ok(None));
        put(&*store, pod(&uid, "db-2", None, 0));
        assert_eq!(late.failure(&set), Ok(None));
        // Nor is a status older than the spec.
        put(&*store, pod(&uid, "db-2", Some("ErrImagePull"), 0));
        assert!(matches!(late.failure(&set), Ok(Some(_))));
        set["status"]["observedGeneration"] = json!(0);
        assert_eq!(late.failure(&set), Ok(None));
    }
}
