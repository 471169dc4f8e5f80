//! The objects a backend keeps in memory, ordered by [`Key`], for reads
//! served without touching the database.
//!
//! Most objects are kept parsed (`Arc<Value>`): controllers read them all
//! the time. Events are kept as their JSON text instead. They are the most
//! numerous objects (up to the recorder's bound of 1,000), written on every
//! pod's start and stop and read rarely (`kubectl get events`,
//! `describe`). Parsed, each is about 5 KB in dozens of small allocations
//! (every JSON object is a B-tree node of about 600 bytes); as text, about
//! 0.7 KB in one. Under pod churn those allocations, each living until the
//! recorder's bound pushes it out, were half the daemon's heap and what
//! scattered it (docs/benchmarks.md, issue 21).
//!
//! Must not touch: what objects mean, persistence, or watchers: changes
//! are announced with the parsed value written, whatever is kept here.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use driftless_model::Kind;
use serde_json::Value;

use crate::Key;

/// One object as kept in memory.
#[derive(Clone, Debug)]
enum Held {
    Parsed(Arc<Value>),
    /// Serialized JSON, parsed again when read.
    Text(Box<str>),
}

impl Held {
    fn of(key: &Key, value: Arc<Value>) -> Held {
        if !kept_as_text(key.kind) {
            return Held::Parsed(value);
        }
        match serde_json::to_string(&*value) {
            Ok(text) => Held::Text(text.into_boxed_str()),
            // A `Value` always serializes; keep it parsed if it ever does not.
            Err(_) => Held::Parsed(value),
        }
    }

    fn value(&self) -> Arc<Value> {
        match self {
            Held::Parsed(value) => value.clone(),
            // Text this module wrote from a `Value`: it parses back to the
            // same `Value` (serde_json round-trips numbers exactly).
            Held::Text(text) => Arc::new(serde_json::from_str(text).unwrap_or(Value::Null)),
        }
    }
}

/// Kinds kept as text: many, written often, read rarely.
fn kept_as_text(kind: Kind) -> bool {
    kind == Kind::Event
}

/// Every object a backend holds, by key.
#[derive(Clone, Debug, Default)]
pub(crate) struct Objects {
    map: BTreeMap<Key, Held>,
}

impl Objects {
    /// The object at `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.map.get(key).map(Held::value)
    }

    /// How many objects are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether an object is kept at `key`.
    pub(crate) fn contains_key(&self, key: &Key) -> bool {
        self.map.contains_key(key)
    }

    /// Keeps `value` at `key`; whether it replaced an object.
    pub(crate) fn insert(&mut self, key: Key, value: Arc<Value>) -> bool {
        let held = Held::of(&key, value);
        self.map.insert(key, held).is_some()
    }

    /// Removes and returns the object at `key`.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Arc<Value>> {
        self.map.remove(key).map(|held| held.value())
    }

    /// Every object, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Key, Arc<Value>)> {
        self.map.iter().map(|(key, held)| (key, held.value()))
    }

    /// Every object of `kind` (in `namespace`, if given): one range walk.
    pub(crate) fn of_kind(&self, kind: Kind, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.range(kind, namespace).map(|(_, held)| held.value()).collect()
    }

    /// How many objects of `kind` (in `namespace`, if given), none read.
    pub(crate) fn count(&self, kind: Kind, namespace: Option<&str>) -> usize {
        self.range(kind, namespace).count()
    }

    /// The keys of every object of `kind` (in `namespace`, if given).
    pub(crate) fn keys(&self, kind: Kind, namespace: Option<&str>) -> Vec<Key> {
        self.range(kind, namespace).map(|(key, _)| key.clone()).collect()
    }

    fn range(&self, kind: Kind, namespace: Option<&str>) -> impl Iterator<Item = (&Key, &Held)> {
        let start = Key::new(kind, namespace.unwrap_or(""), "");
        self.map
            .range((Bound::Included(start), Bound::Unbounded))
            .take_while(move |(key, _)| key.kind == kind && namespace.is_none_or(|ns| key.namespace == ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str) -> Arc<Value> {
        Arc::new(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": "12", "uid": "u-1"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"},
            "reason": "Started", "message": "Started container c: ünïcode \"quoted\"",
            "count": 18446744073709551615u64, "ratio": 0.1, "negative": -3,
            "firstTimestamp": "2026-12-06T02:00:00Z", "source": {"component": "kubelet", "host": "node-1"}
        }))
    }

    #[test]
    fn events_are_kept_as_text_and_read_back_equal() {
        let mut objects = Objects::default();
        let key = Key::new(Kind::Event, "default", "web-1.1");
        assert!(!objects.insert(key.clone(), event("web-1.1")));
        assert!(matches!(objects.map[&key], Held::Text(_)));
        assert_eq!(objects.get(&key), Some(event("web-1.1")));
        assert!(objects.insert(key.clone(), event("web-1.1")), "a second insert replaces");
        assert_eq!(objects.remove(&key), Some(event("web-1.1")));
        assert!(!objects.contains_key(&key));
    }

    #[test]
    fn other_kinds_stay_parsed_and_shared() {
        let mut objects = Objects::default();
        let pod = Arc::new(json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "a"}}));
        let key = Key::new(Kind::Pod, "a", "p");
        objects.insert(key.clone(), pod.clone());
        assert!(Arc::ptr_eq(&objects.get(&key).unwrap(), &pod), "reads share the parsed object");
    }

    #[test]
    fn a_kind_is_listed_by_namespace_in_key_order() {
        let mut objects = Objects::default();
        for (ns, name) in [("b", "e2"), ("a", "e1"), ("a", "e0")] {
            objects.insert(Key::new(Kind::Event, ns, name), event(name));
        }
        objects.insert(Key::new(Kind::Pod, "a", "p"), Arc::new(json!({"kind": "Pod"})));
        let names = |items: Vec<Arc<Value>>| items.iter().map(|v| v["metadata"]["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(objects.of_kind(Kind::Event, None)), ["e0", "e1", "e2"]);
        assert_eq!(names(objects.of_kind(Kind::Event, Some("a"))), ["e0", "e1"]);
        assert_eq!(objects.keys(Kind::Event, Some("a")), [Key::new(Kind::Event, "a", "e0"), Key::new(Kind::Event, "a", "e1")]);
        assert_eq!((objects.count(Kind::Event, None), objects.count(Kind::Event, Some("b")), objects.count(Kind::Pod, None)), (3, 1, 1));
        assert_eq!(objects.iter().count(), 4);
    }
}
