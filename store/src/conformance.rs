//! The store's contract, as tests every backend runs unchanged: identity
//! fields, conflicts, atomic batches, lists, metadata records, watch order
//! and resumption, and reopening. A backend's tests call each function
//! with an `open` that gives a store over the same data each time it is
//! called (the same SQLite file; the same etcd and prefix).
//!
//! Must not touch: any backend's internals; revisions are compared, never
//! assumed to start anywhere (etcd's first write is not revision 1).

use std::sync::Arc;

use driftless_model::Kind;
use serde_json::{Value, json};

use crate::{Batch, EventType, Key, Op, Store, StoreError, StoreExt};

pub(crate) type Open<'a> = &'a dyn Fn() -> Arc<dyn Store>;

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {"containers": []}})
}

fn version(value: &Value) -> u64 {
    value.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|v| v.parse().ok()).expect("a numeric resourceVersion")
}

pub(crate) fn create_sets_identity_and_update_keeps_it(open: Open<'_>) {
    let store = open();
    let created = store.write(Op::Create(pod("a"))).unwrap().unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(version(&created) > 0);
    assert_eq!(version(&created), store.revision(), "an object's version is the revision that wrote it");
    assert!(created["metadata"]["creationTimestamp"].as_str().unwrap().ends_with('Z'));

    let mut changed = pod("a");
    changed["metadata"]["labels"] = json!({"x": "y"});
    let updated = store.write(Op::Update(changed.clone())).unwrap().unwrap();
    assert_eq!(updated["metadata"]["uid"], uid.as_str());
    assert_eq!(updated["metadata"]["generation"], 1, "metadata changes leave the generation");
    assert!(version(&updated) > version(&created));
    changed["spec"]["containers"] = json!([{"name": "c"}]);
    let updated = store.write(Op::Update(changed)).unwrap().unwrap();
    assert_eq!(updated["metadata"]["generation"], 2, "spec changes raise it");
    assert_eq!(*store.get(&Key::new(Kind::Pod, "default", "a")).unwrap(), *updated, "a read gives what the write returned");
    assert!(matches!(store.write(Op::Create(pod("a"))), Err(StoreError::AlreadyExists(_))));
}

pub(crate) fn stale_versions_conflict_and_status_writes_keep_spec(open: Open<'_>) {
    let store = open();
    let first = store.write(Op::Create(pod("a"))).unwrap().unwrap();
    let mut stale = (*first).clone();
    store.write(Op::Status { key: Key::of(&first).unwrap(), uid: None, status: json!({"phase": "Running"}) }).unwrap();
    stale["spec"]["nodeName"] = json!("n1");
    assert!(matches!(store.write(Op::Update(stale)), Err(StoreError::Conflict { .. })));
    let now = store.get(&Key::new(Kind::Pod, "default", "a")).unwrap();
    assert_eq!(now["status"]["phase"], "Running");
    // An update without a status keeps the stored one.
    let mut fresh = (*now).clone();
    fresh.as_object_mut().unwrap().remove("status");
    fresh["spec"]["nodeName"] = json!("n1");
    let written = store.write(Op::Update(fresh)).unwrap().unwrap();
    assert_eq!(written["status"]["phase"], "Running");
    // A status write for another incarnation is refused.
    let key = Key::new(Kind::Pod, "default", "a");
    assert!(store.write(Op::Status { key, uid: Some("other".into()), status: json!({}) }).is_err());
}

pub(crate) fn a_failing_batch_writes_nothing(open: Open<'_>) {
    let store = open();
    store.write(Op::Create(pod("a"))).unwrap();
    let before = store.revision();
    let mut batch = Batch::new();
    batch.push(Op::Create(pod("b"))).push(Op::Create(pod("a"))).set_meta("applied", json!("abc"));
    assert!(store.apply(batch).is_err());
    assert!(store.get(&Key::new(Kind::Pod, "default", "b")).is_none());
    assert!(store.meta("applied").is_none());
    assert_eq!(store.revision(), before);
}

pub(crate) fn a_batch_is_seen_whole(open: Open<'_>) {
    let store = open();
    let mut watch = store.watch();
    let mut batch = Batch::new();
    for name in ["a", "b", "c"] {
        batch.push(Op::Create(pod(name)));
    }
    batch.set_meta("applied", json!({"commit": "abc"})).set_meta("applied", json!({"commit": "def"}));
    let written = store.apply(batch).unwrap();
    assert_eq!(written.len(), 3);
    // Once apply returns, every object and the record are there at once.
    assert_eq!(store.list(Kind::Pod, None).0.len(), 3);
    assert_eq!(store.meta("applied").unwrap()["commit"], "def", "the last value set wins");
    let mut seen = Vec::new();
    while let Ok(event) = watch.try_recv() {
        seen.push(event.key.name.clone());
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"], "each object announced once, before apply returned");
}

pub(crate) fn lists_by_kind_and_namespace(open: Open<'_>) {
    let store = open();
    let mut batch = Batch::new();
    for (ns, name) in [("default", "b"), ("default", "a"), ("other", "c")] {
        let mut p = pod(name);
        p["metadata"]["namespace"] = json!(ns);
        batch.push(Op::Create(p));
    }
    batch.push(Op::Create(json!({"kind": "Service", "metadata": {"name": "s", "namespace": "default"}})));
    batch.push(Op::Create(json!({"kind": "Namespace", "metadata": {"name": "other"}})));
    store.apply(batch).unwrap();
    let names = |ns| store.list(Kind::Pod, ns).0.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(None), ["a", "b", "c"]);
    assert_eq!(names(Some("default")), ["a", "b"]);
    assert_eq!(names(Some("none")), Vec::<String>::new());
    assert_eq!(store.list(Kind::Service, None).0.len(), 1);
    assert_eq!(store.list(Kind::Namespace, None).0[0]["metadata"]["name"], "other");
    assert_eq!(store.list(Kind::Pod, None).1, store.revision());
}

pub(crate) fn metadata_records_are_set_listed_and_removed(open: Open<'_>) {
    let store = open();
    let mut batch = Batch::new();
    batch.set_meta("rollback/default/web", json!({"n": 1})).set_meta("rollback/default/db", json!({"n": 2})).set_meta("other", json!("x"));
    store.apply(batch).unwrap();
    assert_eq!(store.meta_names("rollback/"), ["rollback/default/db", "rollback/default/web"]);
    assert_eq!(store.meta("rollback/default/db").unwrap()["n"], 2);
    let mut batch = Batch::new();
    batch.set_meta("rollback/default/db", Value::Null);
    store.apply(batch).unwrap();
    assert_eq!(store.meta_names("rollback/"), ["rollback/default/web"]);
    assert!(store.meta("rollback/default/db").is_none());
}

pub(crate) async fn watchers_see_every_change_in_order(open: Open<'_>) {
    let store = open();
    let start = store.revision();
    let mut rx = store.watch();
    store.write(Op::Create(pod("a"))).unwrap();
    store.write(Op::Put(pod("a"))).unwrap();
    store.write(Op::Delete { key: Key::new(Kind::Pod, "default", "a"), uid: None }).unwrap();
    assert!(store.write(Op::Delete { key: Key::new(Kind::Pod, "default", "a"), uid: None }).unwrap().is_none());
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        seen.push((event.kind, event.revision));
    }
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [EventType::Added, EventType::Modified, EventType::Deleted]);
    assert!(start < seen[0].1 && seen[0].1 < seen[1].1 && seen[1].1 < seen[2].1, "{seen:?}");
    assert_eq!(store.revision(), seen[2].1);
    assert!(rx.try_recv().is_err(), "a delete of nothing announces nothing");
}

pub(crate) fn reopening_finds_everything_written(open: Open<'_>) {
    let (uid, revision) = {
        let store = open();
        let mut batch = Batch::new();
        batch.push(Op::Create(pod("a"))).push(Op::Create(pod("b"))).set_meta("applied", json!({"commit": "abc"}));
        store.apply(batch).unwrap();
        store.write(Op::Delete { key: Key::new(Kind::Pod, "default", "b"), uid: None }).unwrap();
        (store.get(&Key::new(Kind::Pod, "default", "a")).unwrap()["metadata"]["uid"].clone(), store.revision())
    };
    let store = open();
    assert_eq!(store.revision(), revision);
    assert_eq!(store.meta("applied").unwrap()["commit"], "abc");
    assert_eq!(store.get(&Key::new(Kind::Pod, "default", "a")).unwrap()["metadata"]["uid"], uid);
    assert!(store.get(&Key::new(Kind::Pod, "default", "b")).is_none());
    let next = store.write(Op::Create(pod("c"))).unwrap().unwrap();
    assert!(version(&next) > revision, "revisions continue after a restart");
}

/// Every test above, as `#[test]`s of the module it is used in: `$fresh`
/// is evaluated once per test and gives a guard (kept to the end of the
/// test) and an `open` over new, empty data.
macro_rules! conformance_tests {
    ($fresh:expr) => {
        #[test]
        fn create_sets_identity_and_update_keeps_it() {
            let (_guard, open) = $fresh;
            crate::conformance::create_sets_identity_and_update_keeps_it(&open);
        }
        #[test]
        fn stale_versions_conflict_and_status_writes_keep_spec() {
            let (_guard, open) = $fresh;
            crate::conformance::stale_versions_conflict_and_status_writes_keep_spec(&open);
        }
        #[test]
        fn a_failing_batch_writes_nothing() {
            let (_guard, open) = $fresh;
            crate::conformance::a_failing_batch_writes_nothing(&open);
        }
        #[test]
        fn a_batch_is_seen_whole() {
            let (_guard, open) = $fresh;
            crate::conformance::a_batch_is_seen_whole(&open);
        }
        #[test]
        fn lists_by_kind_and_namespace() {
            let (_guard, open) = $fresh;
            crate::conformance::lists_by_kind_and_namespace(&open);
        }
        #[test]
        fn metadata_records_are_set_listed_and_removed() {
            let (_guard, open) = $fresh;
            crate::conformance::metadata_records_are_set_listed_and_removed(&open);
        }
        #[test]
        fn watchers_see_every_change_in_order() {
            let (_guard, open) = $fresh;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(crate::conformance::watchers_see_every_change_in_order(&open));
        }
        #[test]
        fn reopening_finds_everything_written() {
            let (_guard, open) = $fresh;
            crate::conformance::reopening_finds_everything_written(&open);
        }
    };
}

pub(crate) use conformance_tests;
