//! The controller loop, shaped like kube-runtime's `Controller`: store
//! changes are mapped to the keys they concern, keys wait in a queue that
//! coalesces repeats, and a reconcile runs for each; it never runs twice at
//! once for one key, failures are retried with exponential back-off, and
//! every key is reconciled again periodically because events are only hints.
//!
//! Reconcilers are level-triggered: they see a key, never the change that
//! queued it, and must be idempotent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::Kind;
use driftless_store::{Key, Store, WatchEvent};
use driftless_telemetry::{ControllerLabel, ControllerResultLabels};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ReconcileError;

/// What to do with a key after a successful reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reconcile again after this long even if nothing changes (a
    /// `minReadySeconds` to wait out, a deadline to check).
    Requeue(Duration),
    /// Wait for a change (or the periodic resync).
    AwaitChange,
}

impl Action {
    /// Requeue after `duration`.
    pub fn requeue(duration: Duration) -> Action {
        Action::Requeue(duration)
    }
}

/// What a controller reconciles and owns, declared once: the runner
/// derives its keys and most of its triggers from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The kind of its keys: every object of it is reconciled, and a
    /// change to one queues that object. `None` for a controller whose
    /// keys are of many kinds (it says which in its own `keys` and
    /// `triggers`).
    pub kind: Option<Kind>,
    /// Kinds it makes and controls (a controller reference on them names
    /// an object of `kind`): a change to one queues its controller.
    pub owns: &'static [Kind],
}

impl Watch {
    /// The objects of `kind`, owning nothing.
    pub const fn of(kind: Kind) -> Watch {
        Watch { kind: Some(kind), owns: &[] }
    }

    /// Objects of any kind, as the controller's own `keys` and `triggers`
    /// choose them.
    pub const fn any() -> Watch {
        Watch { kind: None, owns: &[] }
    }

    /// The same, owning `kinds`.
    pub const fn owning(self, kinds: &'static [Kind]) -> Watch {
        Watch { owns: kinds, ..self }
    }

    /// The keys a change concerns by this declaration: the object itself,
    /// or its controller.
    pub fn triggers(&self, event: &WatchEvent) -> Option<Key> {
        let kind = self.kind?;
        if event.key.kind == kind {
            return Some(event.key.clone());
        }
        if self.owns.contains(&event.key.kind) {
            return crate::owner::owner_trigger(event, kind);
        }
        None
    }
}

/// A controller: which keys it reconciles and how.
pub trait Reconciler: Send + Sync + 'static {
    /// Its name, for logs.
    fn name(&self) -> &'static str;
    /// What it reconciles and owns.
    fn watch(&self) -> Watch;
    /// Every key it is responsible for now (the initial list and each
    /// periodic resync): by default every object of its kind.
    fn keys(&self, store: &dyn Store) -> Vec<Key> {
        let Some(kind) = self.watch().kind else { return Vec::new() };
        store.keys(kind, None)
    }
    /// Keys a change to some other object concerns: what the controller
    /// reads but neither reconciles nor owns (none by default).
    fn watches(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        let _ = (event, store);
        Vec::new()
    }
    /// The keys a change concerns: [`Watch::triggers`], then
    /// [`Reconciler::watches`].
    fn triggers(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        let mut keys: Vec<Key> = self.watch().triggers(event).into_iter().collect();
        keys.extend(self.watches(event, store));
        keys
    }
    /// Makes the world match what `key` asks for.
    fn reconcile(&self, key: &Key) -> impl Future<Output = Result<Action, ReconcileError>> + Send;
    /// How long to wait before retrying after `failures` failures in a row.
    fn error_policy(&self, error: &ReconcileError, failures: u32) -> Duration {
        let _ = error;
        backoff(failures)
    }
}

/// Exponential back-off without jitter (so tests are deterministic):
/// 100 ms doubling per failure, at most 1 min; conflicts (someone wrote the
/// object meanwhile) retry at once.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100).saturating_mul(1 << failures.saturating_sub(1).min(10)).min(Duration::from_secs(60))
}

/// How a controller runs.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Reconciles of different keys that may run at once.
    pub concurrency: usize,
    /// How often every key is reconciled regardless of changes.
    pub resync: Duration,
    /// How long a change waits for more changes to the same key before its
    /// reconcile starts (several writes in a row make one reconcile).
    pub debounce: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { concurrency: 4, resync: Duration::from_secs(60), debounce: Duration::from_millis(5) }
    }
}

/// Keys waiting for their time, each at most once (at its earliest time).
#[derive(Default)]
struct Queue {
    due: BTreeMap<(Instant, u64), Key>,
    scheduled: HashMap<Key, (Instant, u64)>,
    seq: u64,
}

impl Queue {
    fn schedule(&mut self, key: Key, at: Instant) {
        if let Some(&(when, seq)) = self.scheduled.get(&key) {
            if when <= at {
                return;
            }
            self.due.remove(&(when, seq));
        }
        self.seq += 1;
        self.due.insert((at, self.seq), key.clone());
        self.scheduled.insert(key, (at, self.seq));
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Key> {
        let (&(at, seq), _) = self.due.iter().next()?;
        if at > now {
            return None;
        }
        let key = self.due.remove(&(at, seq))?;
        self.scheduled.remove(&key);
        Some(key)
    }

    fn len(&self) -> usize {
        self.due.len()
    }
}

/// Runs `reconciler` until `cancel` fires, then waits (at most `grace`) for
/// reconciles in flight.
pub async fn run<R: Reconciler>(reconciler: Arc<R>, store: Arc<dyn Store>, options: RunOptions, cancel: CancellationToken) {
    let name = reconciler.name();
    let mut events = store.watch();
    let mut queue = Queue::default();
    let mut running: HashSet<Key> = HashSet::new();
    let mut dirty: HashSet<Key> = HashSet::new();
    let mut failures: HashMap<Key, u32> = HashMap::new();
    let mut tasks: JoinSet<(Key, Result<Action, ReconcileError>)> = JoinSet::new();
    let mut task_keys: HashMap<tokio::task::Id, Key> = HashMap::new();
    let now = Instant::now();
    for key in reconciler.keys(&*store) {
        queue.schedule(key, now);
    }
    let mut resync = tokio::time::interval_at(now + options.resync, options.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Start whatever is due, up to the concurrency limit.
        let now = Instant::now();
        while tasks.len() < options.concurrency {
            let Some(key) = queue.pop_due(now) else { break };
            if running.contains(&key) {
                dirty.insert(key);
                continue;
            }
            running.insert(key.clone());
            let reconciler = reconciler.clone();
            let span = tracing::info_span!("reconcile", controller = name, object = %key);
            let task_key = key.clone();
            let handle = tasks.spawn(
                async move {
                    let started = std::time::Instant::now();
                    let result = reconciler.reconcile(&key).await;
                    let metrics = driftless_telemetry::metrics();
                    metrics.reconcile_time.get_or_create(&ControllerLabel { controller: name }).observe(started.elapsed().as_secs_f64());
                    // controller-runtime's results: an error, a requeue
                    // asked for, or done.
                    let outcome = match &result {
                        Err(_) => "error",
                        Ok(Action::Requeue(_)) => "requeue",
                        Ok(Action::AwaitChange) => "success",
                    };
                    metrics.reconcile_total.get_or_create(&ControllerResultLabels { controller: name, result: outcome }).inc();
                    if result.is_err() {
                        metrics.reconcile_errors.get_or_create(&ControllerLabel { controller: name }).inc();
                    }
                    (key, result)
                }
                .instrument(span),
            );
            task_keys.insert(handle.id(), task_key);
        }
        let next_due = if tasks.len() < options.concurrency { queue.next_due() } else { None };
        tokio::select! {
            _ = cancel.cancelled() => break,
            event = events.recv() => match event {
                Ok(event) => {
                    let at = Instant::now() + options.debounce;
                    for key in reconciler.triggers(&event, &*store) {
                        queue.schedule(key, at);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(controller = name, missed, "fell behind the store's changes; reconciling everything");
                    let now = Instant::now();
                    for key in reconciler.keys(&*store) {
                        queue.schedule(key, now);
                    }
                }
                Err(RecvError::Closed) => break,
            },
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (key, result) = match done {
                    Ok((id, (key, result))) => {
                        task_keys.remove(&id);
                        (key, result)
                    }
                    Err(error) => {
                        // A panic is a bug; treat it as a failure of that
                        // key so the loop (and every other key) goes on.
                        let Some(key) = task_keys.remove(&error.id()) else { continue };
                        tracing::error!(controller = name, object = %key, %error, "reconcile panicked");
                        (key, Err(ReconcileError::Panicked))
                    }
                };
                running.remove(&key);
                let now = Instant::now();
                match result {
                    Ok(action) => {
                        failures.remove(&key);
                        if let Action::Requeue(after) = action {
                            queue.schedule(key.clone(), now + after);
                        }
                    }
                    Err(error) => {
                        let count = failures.entry(key.clone()).or_insert(0);
                        *count += 1;
                        let delay = if error.is_conflict() { Duration::ZERO } else { reconciler.error_policy(&error, *count) };
                        if error.is_conflict() {
                            tracing::debug!(controller = name, object = %key, %error, "conflict; retrying");
                        } else {
                            tracing::warn!(controller = name, object = %key, %error, failures = *count, retry_in = ?delay, "reconcile failed");
                        }
                        queue.schedule(key.clone(), now + delay);
                    }
                }
                if dirty.remove(&key) {
                    queue.schedule(key, now);
                }
            },
            _ = resync.tick() => {
                let now = Instant::now();
                for key in reconciler.keys(&*store) {
                    queue.schedule(key, now);
                }
                tracing::debug!(controller = name, queued = queue.len(), "periodic resync");
            },
            _ = sleep_until(next_due) => {},
        }
    }
    // Let reconciles in flight finish; they are idempotent, so cutting one
    // short is safe too, but finishing avoids needless repeats.
    let drained = tokio::time::timeout(Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(controller = name, "reconciles still running at shutdown; abandoned");
        tasks.abort_all();
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
