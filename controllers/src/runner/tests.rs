//! Tests of the controller loop with a recording reconciler and the
//! in-memory store, on tokio's paused clock.

use driftless_model::Kind;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use driftless_store::{Op, SqliteStore, StoreExt};
use serde_json::json;

use super::*;

struct Recorder {
    seen: Mutex<Vec<String>>,
    running: AtomicUsize,
    overlapped: AtomicUsize,
    fail_first: AtomicUsize,
    requeue: Option<Duration>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder { seen: Mutex::new(vec![]), running: AtomicUsize::new(0), overlapped: AtomicUsize::new(0), fail_first: AtomicUsize::new(0), requeue: None }
    }
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Reconciler for Recorder {
    fn name(&self) -> &'static str {
        "test"
    }
    fn watch(&self) -> Watch {
        Watch::of(Kind::ConfigMap)
    }
    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        if self.running.fetch_add(1, Ordering::SeqCst) > 0 {
            self.overlapped.fetch_add(1, Ordering::SeqCst);
        }
        self.seen.lock().unwrap().push(key.name.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.fail_first.load(Ordering::SeqCst) > 0 {
            self.fail_first.fetch_sub(1, Ordering::SeqCst);
            return Err(ReconcileError::Malformed("injected".into()));
        }
        Ok(self.requeue.map_or(Action::AwaitChange, Action::Requeue))
    }
}

fn cm(name: &str, value: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": {"v": value}})
}

async fn settle() {
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn existing_keys_run_once_and_changes_coalesce() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    store.write(Op::Create(cm("a", "1"))).unwrap();
    let recorder = Arc::new(Recorder::new());
    let cancel = CancellationToken::new();
    let options = RunOptions { concurrency: 1, ..RunOptions::default() };
    let task = tokio::spawn(run(recorder.clone(), store.clone(), options, cancel.clone()));
    settle().await;
    assert_eq!(recorder.seen(), ["a"]);
    // Three writes in a row, within the debounce, make one reconcile.
    for v in ["2", "3", "4"] {
        store.write(Op::Put(cm("a", v))).unwrap();
    }
    settle().await;
    assert_eq!(recorder.seen(), ["a", "a"]);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_key_never_runs_twice_at_once() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let recorder = Arc::new(Recorder::new());
    let cancel = CancellationToken::new();
    let options = RunOptions { concurrency: 4, debounce: Duration::ZERO, ..RunOptions::default() };
    let task = tokio::spawn(run(recorder.clone(), store.clone(), options, cancel.clone()));
    tokio::task::yield_now().await;
    store.write(Op::Create(cm("a", "1"))).unwrap();
    for v in 0..5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        store.write(Op::Put(cm("a", &v.to_string()))).unwrap();
    }
    settle().await;
    assert_eq!(recorder.overlapped.load(Ordering::SeqCst), 0);
    let runs = recorder.seen().len();
    assert!((2..=3).contains(&runs), "changes during a run make one more run, not one each: {runs}");
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_and_requeues_come_back() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    store.write(Op::Create(cm("a", "1"))).unwrap();
    let recorder = Arc::new(Recorder { requeue: Some(Duration::from_secs(30)), ..Recorder::new() });
    recorder.fail_first.store(3, Ordering::SeqCst);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(recorder.clone(), store.clone(), RunOptions::default(), cancel.clone()));
    // Failures at 0, then after 100, 200, 400 ms (plus the reconcile's own
    // 50 ms each): four runs within a second, the fourth succeeding.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(recorder.seen().len(), 4);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(recorder.seen().len(), 4, "nothing before the requeue");
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(recorder.seen().len(), 5, "the requeue after 30 s");
    cancel.cancel();
    task.await.unwrap();
}

#[test]
fn backoff_doubles_to_a_minute() {
    assert_eq!(backoff(1), Duration::from_millis(100));
    assert_eq!(backoff(2), Duration::from_millis(200));
    assert_eq!(backoff(4), Duration::from_millis(800));
    assert_eq!(backoff(30), Duration::from_secs(60));
}
