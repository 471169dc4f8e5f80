//! The recorder: events about objects, stored as core/v1 Events and
//! aggregated as the API server's clients do:
//! the same reason and message about the same object within ten minutes
//! raises the count of one event instead of adding another.

use driftless_model::Kind;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_store::{Batch, Key, Op, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Clock, rfc3339};

/// Events kept before the oldest are removed.
const MAX_EVENTS: usize = 1000;
/// How long repeats aggregate into one event.
const AGGREGATE: Duration = Duration::from_secs(600);
/// Entries the aggregation map may hold before those whose event is no
/// longer stored are dropped: a quarter above the stored events' bound,
/// so the sweep (one listing of the stored events' keys) comes once per
/// few hundred events.
const SEEN_SWEEP_ABOVE: usize = MAX_EVENTS + MAX_EVENTS / 4;

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong or needs attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// What the recorder remembers of an event it wrote, for repeats to
/// aggregate into. Kept small: under pod churn there are up to
/// [`SEEN_SWEEP_ABOVE`] of them, and they live as long as their events,
/// among the longest-lived allocations of the daemon (issue 21).
struct Seen {
    key: Key,
    count: u64,
    first: Timestamp,
    last: Timestamp,
}

/// The aggregation map's key: a fingerprint of the involved object's uid,
/// the reason and the message, instead of the three strings (three
/// allocations an entry, the map's largest part). Two different repeats
/// would share one with a chance of about n²/2⁶⁵, for n ≤ 1,250: never in
/// practice, and then one event's count would be raised for the other.
fn fingerprint(uid: &str, reason: &str, message: &str) -> u64 {
    // `DefaultHasher::new()` has fixed keys: every call in the process
    // hashes alike, which is all an in-memory map needs.
    let mut hasher = std::hash::DefaultHasher::new();
    (uid, reason, message).hash(&mut hasher);
    hasher.finish()
}

/// The object an event is about.
struct Involved {
    kind: String,
    namespace: String,
    name: String,
}

impl Involved {
    fn of(value: &Value) -> Option<Involved> {
        let kind = value.get("kind")?.as_str()?.to_owned();
        let name = value.pointer("/metadata/name")?.as_str()?.to_owned();
        let namespace = value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_owned();
        (!kind.is_empty() && !name.is_empty()).then_some(Involved { kind, namespace, name })
    }
}

/// Events a queued recorder holds for its writer before it drops new
/// ones (kubelet's broadcaster queue is 1000 too).
const QUEUE: usize = 1000;

/// Writes events to the store.
pub struct Recorder {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    component: String,
    host: String,
    seen: Mutex<HashMap<u64, Seen>>,
    /// The writer's queue, for a store across the network; none when
    /// events are written as they are recorded.
    queue: Option<SyncSender<Batch>>,
}

impl Recorder {
    /// A recorder writing as `component` on `host`, each event as it is
    /// recorded.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, component: &str, host: &str) -> Recorder {
        Recorder { store, clock, component: component.to_owned(), host: host.to_owned(), seen: Mutex::new(HashMap::new()), queue: None }
    }

    /// A recorder whose events are written in order by a thread of their
    /// own, as kubelet's event broadcaster writes them: for a store across
    /// the network, where a write is a round trip that a pod being started
    /// must not wait on. When the writer falls `QUEUE` events behind, new
    /// ones are dropped (and logged), never waited for. The writer ends
    /// with the recorder.
    pub fn queued(store: Arc<dyn Store>, clock: Arc<dyn Clock>, component: &str, host: &str) -> Result<Recorder, std::io::Error> {
        let (queue, batches) = std::sync::mpsc::sync_channel::<Batch>(QUEUE);
        let writer = store.clone();
        std::thread::Builder::new().name("events".into()).spawn(move || {
            for batch in batches {
                if let Err(error) = writer.apply(batch) {
                    tracing::warn!(%error, "could not record an event");
                }
                prune(&*writer);
            }
        })?;
        Ok(Recorder { queue: Some(queue), ..Recorder::new(store, clock, component, host) })
    }

    /// Records an event about `object` (its JSON, with kind and metadata).
    /// Failing to record is logged, never an error for the caller.
    pub fn record(&self, object: &Value, kind: EventType, reason: &str, message: &str) {
        if let Err(error) = self.try_record(object, kind, reason, message) {
            tracing::warn!(%error, reason, "could not record an event");
        }
    }

    fn try_record(&self, object: &Value, kind: EventType, reason: &str, message: &str) -> Result<(), driftless_store::StoreError> {
        // The object is read as written, not as a store key: events are
        // also recorded about things the store does not hold (the
        // repository the sync loop reads).
        let Some(object_key) = Involved::of(object) else { return Ok(()) };
        let uid = object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_owned();
        let now = self.clock.now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let dedup = fingerprint(&uid, reason, message);
        let namespace = if object_key.namespace.is_empty() { "default".to_owned() } else { object_key.namespace.clone() };
        let (key, count, first) = match seen.get_mut(&dedup) {
            Some(prior) if now.duration_since(prior.last).unsigned_abs() < AGGREGATE && self.store.get(&prior.key).is_some() => {
                prior.count += 1;
                prior.last = now;
                (prior.key.clone(), prior.count, rfc3339(prior.first))
            }
            _ => {
                let name = format!("{}.{:x}", object_key.name, now.as_nanosecond());
                let key = Key::new(Kind::Event, namespace.clone(), name);
                seen.insert(dedup, Seen { key: key.clone(), count: 1, first: now, last: now });
                (key, 1, rfc3339(now))
            }
        };
        if seen.len() > SEEN_SWEEP_ABOVE {
            // Only events still stored can aggregate: this keeps the map
            // about as small as the store's events, however fast they
            // churn. (The event being recorded is not stored yet.) The
            // keys are listed once, no event read.
            let stored: HashSet<Key> = self.store.keys(Kind::Event, None).into_iter().collect();
            seen.retain(|_, s| now.duration_since(s.last).unsigned_abs() < AGGREGATE && (s.key == key || stored.contains(&s.key)));
        }
        drop(seen);
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": key.name, "namespace": key.namespace},
            "involvedObject": {
                "apiVersion": object.get("apiVersion"),
                "kind": object_key.kind,
                "name": object_key.name,
                "namespace": if object_key.namespace.is_empty() { Value::Null } else { Value::from(object_key.namespace.clone()) },
                "uid": uid,
            },
            "reason": reason,
            "message": message,
            "type": kind.as_str(),
            "count": count,
            "firstTimestamp": first,
            "lastTimestamp": rfc3339(now),
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        });
        let batch = Batch::one(Op::Put(event));
        match &self.queue {
            None => {
                self.store.apply(batch)?;
                prune(&*self.store);
            }
            Some(queue) => {
                if queue.try_send(batch).is_err() {
                    tracing::warn!(reason, "an event was dropped: the event writer is behind");
                }
            }
        }
        Ok(())
    }
}

/// One pruning at a time in the process: recorders of several components
/// share the store's events, and two prunings at once would each read them
/// all to delete the same ones.
static PRUNING: Mutex<()> = Mutex::new(());

/// Once the store holds `MAX_EVENTS` events, deletes the least recently
/// updated fifth of them, so that pruning happens rarely. Run after an
/// event is written (by the writer thread, for a queued recorder), so the
/// count includes it. Events are read one at a time: the store keeps them
/// as text, and reading all of them at once would parse a thousand objects
/// into memory together (docs/benchmarks.md, issue 21).
fn prune(store: &dyn Store) {
    if store.count(Kind::Event, None) < MAX_EVENTS {
        return;
    }
    let Ok(_pruning) = PRUNING.try_lock() else { return };
    let mut by_age: Vec<(String, Key)> = store
        .keys(Kind::Event, None)
        .into_iter()
        .filter_map(|key| {
            let last = store.get(&key)?.get("lastTimestamp")?.as_str()?.to_owned();
            Some((last, key))
        })
        .collect();
    by_age.sort();
    let mut batch = Batch::default();
    for (_, key) in by_age.into_iter().take(MAX_EVENTS / 5) {
        batch.push(Op::Delete { key, uid: None });
    }
    if let Err(error) = store.apply(batch) {
        tracing::warn!(%error, "could not delete the oldest events");
    }
}

/// The events about an object, oldest first.
pub fn about(store: &dyn Store, kind: &str, namespace: &str, name: &str, uid: Option<&str>) -> Vec<Arc<Value>> {
    let ns = if namespace.is_empty() { "default" } else { namespace };
    let (events, _) = store.list(Kind::Event, Some(ns));
    let mut events: Vec<Arc<Value>> = events
        .into_iter()
        .filter(|e| {
            let o = &e["involvedObject"];
            o["kind"] == kind && o["name"] == name && uid.is_none_or(|uid| o["uid"] == uid)
        })
        .collect();
    events.sort_by(|a, b| a["lastTimestamp"].as_str().cmp(&b["lastTimestamp"].as_str()));
    events
}

#[cfg(test)]
mod tests {
    use driftless_store::SqliteStore;

    use super::*;
    use crate::SystemClock;

    #[test]
    fn repeats_aggregate_and_the_bookkeeping_stays_as_small_as_the_stored_events() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
        let recorder = Recorder::new(store.clone(), Arc::new(SystemClock), "test", "node-1");
        let pod = |i: usize| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i}"), "namespace": "default", "uid": format!("u{i}")}});
        recorder.record(&pod(0), EventType::Normal, "Started", "Started container c");
        recorder.record(&pod(0), EventType::Normal, "Started", "Started container c");
        let (events, _) = store.list(Kind::Event, None);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["count"], 2);
        // Pods churn: every event is about a new pod.
        for i in 1..=3 * MAX_EVENTS {
            recorder.record(&pod(i), EventType::Normal, "Scheduled", "Successfully assigned");
        }
        let events = store.list(Kind::Event, None).0;
        assert!(events.len() <= MAX_EVENTS);
        // Pruning drops the least recently updated: the latest is kept.
        let latest = format!("p{}", 3 * MAX_EVENTS);
        assert!(events.iter().any(|e| e["involvedObject"]["name"] == latest.as_str()), "{latest} was pruned");
        let seen = recorder.seen.lock().unwrap().len();
        assert!(seen <= SEEN_SWEEP_ABOVE + 1, "{seen} dedup entries for at most {MAX_EVENTS} stored events");
    }

    #[test]
    fn a_queued_recorder_writes_every_event_in_order_behind_the_caller() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
        let recorder = Recorder::queued(store.clone(), Arc::new(SystemClock), "kubelet", "node-2").unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default", "uid": "u1"}});
        for step in ["Pulled", "Created", "Started"] {
            recorder.record(&pod, EventType::Normal, step, &format!("{step} container c"));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.list(Kind::Event, None).0.len() < 3 {
            assert!(std::time::Instant::now() < deadline, "the writer did not write the events");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut events = store.list(Kind::Event, None).0;
        events.sort_by_key(|e| e.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned());
        let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
        assert_eq!(reasons, ["Pulled", "Created", "Started"]);
        assert_eq!(events[0]["source"]["host"], "node-2");
    }
}
