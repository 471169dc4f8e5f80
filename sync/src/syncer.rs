//! The sync loop as a small state machine: each step reads the branch
//! head, and if it is new, validates it whole and either applies it (one
//! store batch) or refuses it, then records the outcome in the ledger.
//!
//! What the loop has seen and applied lives in the store (a metadata
//! record written in the same batch as the objects), so a daemon killed at
//! any point resumes exactly: a commit is applied once, and a ledger entry
//! interrupted by the kill is written on the next step.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use driftless_events::{EventType, Recorder};
use driftless_manifest::LoadError;
use driftless_store::{Batch, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ledger::{self, LedgerEntry};
use driftless_diff::{Live, LiveObject};

use crate::apply::StoreLive;
use crate::{Action, Source, SyncError, batch_for};

/// The store metadata record of the sync loop's state.
pub const STATUS_META: &str = "driftless.sync";

/// What woke the loop.
#[derive(Debug)]
pub enum Trigger {
    /// The repository changed (a ref moved).
    Changed,
    /// Someone asked for a sync now (`driftless sync`); the outcome is
    /// handed to the reply.
    Now(Reply),
    /// Write a status change that is not a sync (an autoscaler's rescale)
    /// to the ledger, beside the syncs, keeping the applied tree. The
    /// entry's source is set to the revision running.
    Record(LedgerEntry),
    /// Stop the loop.
    Stop,
}

/// Where the outcome of a [`Trigger::Now`] goes. A callback rather than a
/// channel, so that an async caller waits on a future of its own (the API
/// holds no thread while a sync runs) and a blocking one on a channel.
pub struct Reply(Box<dyn FnOnce(Result<Outcome, String>) + Send>);

impl Reply {
    /// A reply that hands the outcome to `deliver`.
    pub fn new(deliver: impl FnOnce(Result<Outcome, String>) + Send + 'static) -> Reply {
        Reply(Box::new(deliver))
    }

    /// A reply nobody waits for (a webhook delivery).
    pub fn ignored() -> Reply {
        Reply::new(|_| {})
    }

    fn send(self, outcome: Result<Outcome, String>) {
        (self.0)(outcome)
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

/// What one sync did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    /// The head was already synced.
    Unchanged {
        /// The head.
        commit: String,
    },
    /// A new head was applied.
    Applied {
        /// The head.
        commit: String,
        /// What changed.
        actions: Vec<Action>,
    },
    /// A new head was refused whole.
    Refused {
        /// The head.
        commit: String,
        /// Why.
        errors: Vec<String>,
    },
}

/// A commit as `driftless status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRef {
    /// The full id.
    pub id: String,
    /// The subject.
    pub subject: String,
    /// `Name <email>`.
    pub author: String,
    /// Author time, seconds since the epoch.
    pub time: i64,
    /// Its `Driftless-*` trailers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trailers: Vec<String>,
}

/// The sync loop's state, persisted in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The repository, as configured.
    pub repo: String,
    /// The branch.
    pub branch: String,
    /// The path inside it.
    pub path: String,
    /// The last head looked at.
    pub seen: Option<String>,
    /// The revision running.
    pub applied: Option<CommitRef>,
    /// The last refused commit and why, while it is the head.
    pub refused: Option<(CommitRef, Vec<String>)>,
    /// When the last sync ran, seconds since the epoch.
    pub synced_at: i64,
    /// The last failure to sync at all (repository unreachable...).
    pub error: Option<String>,
    /// A ledger entry written to the store but not yet to git.
    pub pending: Option<LedgerEntry>,
}

/// The loop.
pub struct Syncer {
    source: Source,
    store: Arc<dyn Store>,
    events: Arc<Recorder>,
    allow_empty: bool,
    /// How long to wait between looks at the branch (a fallback for local
    /// repositories, the fetch interval for remote ones).
    pub poll: Duration,
    observer: Option<Observer>,
    verify: Option<Verify>,
    age_keys: Option<std::path::PathBuf>,
}

/// Which commits must be signed, and by whom (`--verify-commits`).
#[derive(Clone, Debug)]
pub struct Verify {
    /// The folder of allowed signers, read at each new head so that a key
    /// added or removed counts from the next sync.
    pub keys: std::path::PathBuf,
    /// The head only, or every commit since the last applied one.
    pub mode: driftless_signatures::Mode,
}

/// Told of every sync that applied or refused a commit (notifications), on
/// the sync thread: it must hand the news off, not act on it.
pub type Observer = Box<dyn Fn(&Outcome, &SyncStatus) + Send>;

impl Syncer {
    /// A loop over `source` writing to `store`.
    pub fn new(source: Source, store: Arc<dyn Store>, events: Arc<Recorder>, allow_empty: bool, poll: Duration) -> Syncer {
        Syncer { source, store, events, allow_empty, poll, observer: None, verify: None, age_keys: None }
    }

    /// Decrypts SOPS files with the age identities in `keys` (or SOPS's
    /// own environment variables), read at each new head so that a key
    /// made while the daemon runs counts from the next sync.
    pub fn age_keys(mut self, keys: std::path::PathBuf) -> Syncer {
        self.age_keys = Some(keys);
        self
    }

    /// Refuses heads that are not signed as `verify` says.
    pub fn verify(mut self, verify: Verify) -> Syncer {
        self.verify = Some(verify);
        self
    }

    /// Tells `observer` of every applied or refused commit.
    pub fn observe(mut self, observer: Observer) -> Syncer {
        self.observer = Some(observer);
        self
    }

    /// The loop's persisted state.
    pub fn status(store: &dyn Store) -> SyncStatus {
        store.meta(STATUS_META).and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default()
    }

    /// The repository the ledger is written to.
    pub fn ledger_repository(&self) -> &std::path::Path {
        self.source.repository_path()
    }

    /// Writes `entry` (a status change) to the ledger; see
    /// [`Trigger::Record`].
    fn note(&self, mut entry: LedgerEntry) {
        if let Some(applied) = Syncer::status(&*self.store).applied {
            entry.source = applied.id;
        }
        if let Err(error) = ledger::record(self.source.repository_path(), &entry, None) {
            tracing::warn!(%error, subject = %entry.subject, "could not write a status change to the ledger");
        }
    }

    fn base_status(&self) -> SyncStatus {
        let mut status = Syncer::status(&*self.store);
        status.repo = self.source.repo().to_owned();
        status.branch = self.source.branch().to_owned();
        status.path = self.source.path().to_owned();
        status
    }

    fn repository_object(&self) -> Value {
        json!({
            "apiVersion": "driftless.dev/v1", "kind": "Repository",
            "metadata": {"name": self.source.branch(), "namespace": "default", "uid": format!("repository-{}", self.source.branch())},
        })
    }

    fn save(&self, batch: &mut Batch, status: &SyncStatus) {
        batch.set_meta(STATUS_META, serde_json::to_value(status).unwrap_or(Value::Null));
    }

    /// One step: look at the head and apply or refuse it if it is new.
    pub fn sync_once(&self) -> Result<Outcome, SyncError> {
        let started = Instant::now();
        let result = self.step();
        let label = match &result {
            Ok(Outcome::Applied { .. }) => "applied",
            Ok(Outcome::Refused { .. }) => "refused",
            Ok(Outcome::Unchanged { .. }) => "unchanged",
            Err(_) => "error",
        };
        let metrics = driftless_telemetry::metrics();
        let elapsed = started.elapsed().as_secs_f64();
        metrics.sync_duration.get_or_create(&driftless_telemetry::ResultLabel { result: label }).observe(elapsed);
        let flux = driftless_telemetry::ReconcileLabels { kind: "Repository", name: self.source.branch().to_owned(), namespace: "default" };
        metrics.gotk_reconcile_duration.get_or_create(&flux).observe(elapsed);
        if let Ok(outcome @ (Outcome::Applied { .. } | Outcome::Refused { .. })) = &result {
            if matches!(outcome, Outcome::Refused { .. }) {
                metrics.refused_commits.inc();
            }
            if let Some(observer) = &self.observer {
                observer(outcome, &Syncer::status(&*self.store));
            }
        }
        match &result {
            Ok(outcome) => tracing::debug!(?outcome, elapsed = ?started.elapsed(), "sync step"),
            Err(error) => {
                let mut status = self.base_status();
                status.error = Some(error.to_string());
                status.synced_at = jiff::Timestamp::now().as_second();
                let mut batch = Batch::new();
                self.save(&mut batch, &status);
                let _ = self.store.apply(batch);
            }
        }
        result
    }

    fn step(&self) -> Result<Outcome, SyncError> {
        self.source.fetch()?;
        let head = self.source.head()?;
        let mut status = self.base_status();
        self.finish_pending(&mut status)?;
        if status.seen.as_deref() == Some(head.as_str()) {
            if status.error.is_some() {
                status.error = None;
                let mut batch = Batch::new();
                self.save(&mut batch, &status);
                self.store.apply(batch)?;
            }
            return Ok(Outcome::Unchanged { commit: head });
        }
        let span = tracing::info_span!("sync", commit = %&head[..head.len().min(12)]);
        let _entered = span.enter();
        let info = self.source.commit(&head)?;
        let commit =
            CommitRef { id: info.id.clone(), subject: info.summary.clone(), author: info.author.clone(), time: info.time, trailers: info.trailers.clone() };
        if let Some(verify) = &self.verify {
            let since = status.applied.as_ref().map(|applied| applied.id.as_str());
            if let Err(refusal) = self.check_signatures(verify, &head, since) {
                return self.refuse(status, commit, vec![refusal]);
            }
        }
        let files = match self.source.load(&head) {
            Ok((_, files)) => files,
            Err(SyncError::Load(error @ LoadError::PathNotInRevision { .. })) => {
                return self.refuse(status, commit, vec![format!("{error}: refusing to delete what runs")]);
            }
            // Past a bound of what one revision may hold: as invalid as a
            // syntax error, and as final (it is not read again).
            Err(SyncError::Load(error @ LoadError::TooLarge { .. })) => return self.refuse(status, commit, vec![error.to_string()]),
            // An object that cannot be read is the repository's fault, not
            // the commit's: reported and tried again, never recorded as a
            // refusal of the commit.
            Err(error @ (SyncError::Git(_) | SyncError::Load(LoadError::Git(_)))) => {
                return Err(SyncError::Unreadable {
                    commit: head[..7].to_owned(),
                    repo: self.source.repository_path().display().to_string(),
                    source: Box::new(error),
                });
            }
            Err(error) => return Err(error),
        };
        let keyring = match &self.age_keys {
            Some(keys) => driftless_secrets::Keyring::from_env_or(keys).map_err(SyncError::Secrets)?,
            None => driftless_secrets::Keyring::default(),
        };
        let report = driftless_validate::validate_files(files, &|file| driftless_secrets::open(file, &keyring));
        if !report.is_valid() {
            let errors = report.errors().map(ToString::to_string).collect();
            return self.refuse(status, commit, errors);
        }
        let desired: Vec<_> = report.objects.iter().map(|(r, e)| (r, &e.object)).collect();
        let plan = driftless_diff::plan(desired.iter().copied(), &StoreLive::new(&*self.store));
        if !plan.is_applicable() {
            // What the API server would refuse as an update (an immutable
            // field), located in the file like any validation error.
            let errors = plan.refused.iter().map(|r| report.error_at(&r.object, &r.pointer, &r.message).to_string()).collect();
            return self.refuse(status, commit, errors);
        }
        let managed = managed_count(&*self.store);
        if desired.is_empty() && managed > 0 && !self.allow_empty {
            let error = format!(
                "{} declares no objects under {:?}; refusing to delete the {managed} objects it runs (start the daemon with --allow-empty to allow this)",
                &head[..7],
                self.source.path()
            );
            return self.refuse(status, commit, vec![error]);
        }
        let note = format!("{} {}", &head[..7], info.summary);
        let now = jiff::Timestamp::now();
        let mut trailers = commit.trailers.clone();
        if status.applied.is_none() && status.refused.is_none() {
            // A store that knows no sync while the ledger holds some was
            // rebuilt (`up --rebuild-store`, or a new store on a repository
            // an earlier one synced): say so, so applying the same commit
            // again reads as what it is.
            if let Some(last) = ledger::read(self.source.repository_path(), 1)?.first() {
                trailers.push(format!(
                    "Driftless-Store: rebuilt from git; the store held no record of the syncs this ledger holds (the last: {} {})",
                    last.result,
                    &last.source[..last.source.len().min(7)]
                ));
            }
        }
        if let Some(previous) = status.applied.as_ref().filter(|p| p.id != head)
            && !self.source.descends_from(&head, &previous.id)?
        {
            // A force-push: applied as any new head, and said, since what
            // ran is no longer in the branch's history.
            let rewrite = format!(
                "{} ({}) is no longer on {}: the branch was rewritten",
                &previous.id[..previous.id.len().min(7)],
                previous.subject,
                self.source.branch()
            );
            tracing::warn!(previous = %previous.id, %head, "{rewrite}");
            self.events.record(&self.repository_object(), EventType::Warning, "BranchRewritten", &format!("{rewrite}; applying {}", &head[..7]));
            trailers.push(format!("Driftless-Rewrite: {rewrite}"));
        }
        let (mut batch, actions) = batch_for(&plan, &*self.store, &note, now);
        status.seen = Some(head.clone());
        status.applied = Some(commit.clone());
        status.refused = None;
        status.error = None;
        status.synced_at = now.as_second();
        status.pending = Some(LedgerEntry {
            id: String::new(),
            source: head.clone(),
            subject: commit.subject.clone(),
            author: commit.author.clone(),
            time: commit.time,
            synced_at: now.as_second(),
            result: "applied".into(),
            actions: actions.clone(),
            errors: vec![],
            trailers,
        });
        self.save(&mut batch, &status);
        self.store.apply(batch)?;
        tracing::info!(subject = %info.summary, author = %info.author, changes = actions.len(), "applied");
        let message = format!("applied {} ({}): {} changes", &head[..7], info.summary, actions.len());
        self.events.record(&self.repository_object(), EventType::Normal, "Synced", &message);
        self.finish_pending(&mut status)?;
        Ok(Outcome::Applied { commit: head, actions })
    }

    /// Whether the head (and, in range mode, every commit since `since`) is
    /// signed by an allowed key; the refusal as users read it otherwise.
    fn check_signatures(&self, verify: &Verify, head: &str, since: Option<&str>) -> Result<(), String> {
        let signers = driftless_signatures::AllowedSigners::load(&verify.keys)
            .map_err(|error| format!("cannot read the allowed signers ({error}): refusing what cannot be verified"))?;
        let repo =
            git2::Repository::open(self.source.repository_path()).map_err(|error| format!("cannot open the repository to verify signatures: {error}"))?;
        let oid = |id: &str| git2::Oid::from_str(id).map_err(|error| format!("{id}: {error}"));
        let since = since.map(oid).transpose()?;
        let signed = driftless_signatures::verify(&repo, oid(head)?, since, verify.mode, &signers).map_err(|refused| format!("unverified: {refused}"))?;
        for signer in &signed {
            tracing::info!(commit = %signer.commit, fingerprint = %signer.fingerprint, principal = %signer.principal, "signature verified");
        }
        Ok(())
    }

    fn refuse(&self, mut status: SyncStatus, commit: CommitRef, errors: Vec<String>) -> Result<Outcome, SyncError> {
        let now = jiff::Timestamp::now().as_second();
        let head = commit.id.clone();
        for error in &errors {
            tracing::warn!(%error, "refusing commit");
        }
        status.seen = Some(head.clone());
        status.refused = Some((commit.clone(), errors.clone()));
        status.error = None;
        status.synced_at = now;
        status.pending = Some(LedgerEntry {
            id: String::new(),
            source: head.clone(),
            subject: commit.subject.clone(),
            author: commit.author.clone(),
            time: commit.time,
            synced_at: now,
            result: "refused".into(),
            actions: vec![],
            errors: errors.clone(),
            trailers: commit.trailers.clone(),
        });
        let mut batch = Batch::new();
        self.save(&mut batch, &status);
        self.store.apply(batch)?;
        let running = status.applied.as_ref().map_or("nothing".to_owned(), |a| a.id[..7].to_owned());
        let message = format!("refused {} ({}): {} error(s); still running {running}", &head[..7], commit.subject, errors.len());
        self.events.record(&self.repository_object(), EventType::Warning, "SyncRefused", &message);
        self.finish_pending(&mut status)?;
        Ok(Outcome::Refused { commit: head, errors })
    }

    /// Writes a ledger entry the store has but git does not yet (after a
    /// kill between the two writes, too).
    fn finish_pending(&self, status: &mut SyncStatus) -> Result<(), SyncError> {
        let Some(pending) = status.pending.clone() else { return Ok(()) };
        let repo = self.source.repository_path();
        let already = ledger::read(repo, 1)?.first().is_some_and(|e| e.records(&pending));
        if !already {
            let files = (pending.result == "applied").then(|| ledger::render(&applied_objects(&*self.store)));
            ledger::record(repo, &pending, files.as_ref())?;
        }
        status.pending = None;
        let mut batch = Batch::new();
        self.save(&mut batch, status);
        self.store.apply(batch)?;
        Ok(())
    }

    /// Runs until [`Trigger::Stop`] (or every sender is gone): a step at
    /// once, then one per trigger or poll interval. Blocks; give it a
    /// thread of its own.
    pub fn run(self, triggers: Receiver<Trigger>, wake: Sender<Trigger>) {
        let _watch = match self.source.git_dir() {
            Some(dir) => match crate::watch::watch(&dir, wake) {
                Ok(watch) => Some(watch),
                Err(error) => {
                    tracing::warn!(%error, "cannot watch the repository; polling only");
                    None
                }
            },
            None => None,
        };
        // Every caller that asked since the last step gets this step's
        // outcome: two `driftless sync` at once both hear back.
        let mut replies: Vec<Reply> = Vec::new();
        loop {
            let outcome = self.sync_once().map_err(|e| e.to_string());
            if let Err(error) = &outcome {
                tracing::warn!(%error, "sync failed");
            }
            for reply in replies.drain(..) {
                reply.send(outcome.clone());
            }
            match triggers.recv_timeout(self.poll) {
                Ok(Trigger::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Trigger::Now(reply)) => replies.push(reply),
                Ok(Trigger::Record(entry)) => self.note(entry),
                Ok(Trigger::Changed) => {
                    // A commit moves several files: let the burst pass.
                    let until = Instant::now() + Duration::from_millis(50);
                    while let Some(left) = until.checked_duration_since(Instant::now()) {
                        match triggers.recv_timeout(left) {
                            Ok(Trigger::Stop) => return,
                            Ok(Trigger::Now(reply)) => replies.push(reply),
                            Ok(Trigger::Record(entry)) => self.note(entry),
                            _ => {}
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

/// How many objects git declared that the store holds.
fn managed_count(store: &dyn Store) -> usize {
    StoreLive::new(store).declared().len()
}

/// Every object git declared, as applied (the engine's canonical form),
/// for the ledger's tree.
fn applied_objects(store: &dyn Store) -> Vec<Value> {
    let live = StoreLive::new(store);
    live.declared()
        .iter()
        .filter_map(|object| match live.get(object)? {
            LiveObject::Stored(value) | LiveObject::Finished(value) => Some(driftless_diff::normalize_stored(object.kind, &value)),
            LiveObject::Declared(declared) => Some(driftless_diff::normalize(declared)),
        })
        .collect()
}

#[cfg(test)]
mod tests;
