//! Tests of the embedded store: metadata it maintains, atomic batches,
//! watch order, and reopening from disk.

use driftless_model::Kind;
use serde_json::json;

use super::*;
use crate::StoreExt;

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {"containers": []}})
}

#[test]
fn create_sets_identity_and_update_keeps_it() {
    let store = SqliteStore::in_memory();
    let created = store.write(Op::Create(pod("a"))).unwrap().unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["metadata"]["resourceVersion"], "1");
    assert!(created["metadata"]["creationTimestamp"].as_str().unwrap().ends_with('Z'));

    let mut changed = pod("a");
    changed["metadata"]["labels"] = json!({"x": "y"});
    let updated = store.write(Op::Update(changed.clone())).unwrap().unwrap();
    assert_eq!(updated["metadata"]["uid"], uid.as_str());
    assert_eq!(updated["metadata"]["generation"], 1, "metadata changes leave the generation");
    changed["spec"]["containers"] = json!([{"name": "c"}]);
    let updated = store.write(Op::Update(changed)).unwrap().unwrap();
    assert_eq!(updated["metadata"]["generation"], 2, "spec changes raise it");
    assert!(matches!(store.write(Op::Create(pod("a"))), Err(StoreError::AlreadyExists(_))));
}

#[test]
fn stale_versions_conflict_and_status_writes_keep_spec() {
    let store = SqliteStore::in_memory();
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

#[test]
fn a_failing_batch_writes_nothing() {
    let store = SqliteStore::in_memory();
    store.write(Op::Create(pod("a"))).unwrap();
    let mut batch = Batch::new();
    batch.push(Op::Create(pod("b"))).push(Op::Create(pod("a"))).set_meta("applied", json!("abc"));
    assert!(store.apply(batch).is_err());
    assert!(store.get(&Key::new(Kind::Pod, "default", "b")).is_none());
    assert!(store.meta("applied").is_none());
    assert_eq!(store.revision(), 1);
}

#[test]
fn lists_by_kind_and_namespace() {
    let store = SqliteStore::in_memory();
    let mut batch = Batch::new();
    for (ns, name) in [("default", "b"), ("default", "a"), ("other", "c")] {
        let mut p = pod(name);
        p["metadata"]["namespace"] = json!(ns);
        batch.push(Op::Create(p));
    }
    batch.push(Op::Create(json!({"kind": "Service", "metadata": {"name": "s", "namespace": "default"}})));
    store.apply(batch).unwrap();
    let names = |ns| store.list(Kind::Pod, ns).0.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(None), ["a", "b", "c"]);
    assert_eq!(names(Some("default")), ["a", "b"]);
    assert_eq!(names(Some("none")), Vec::<String>::new());
    assert_eq!(store.list(Kind::Service, None).0.len(), 1);
}

#[tokio::test]
async fn watchers_see_every_change_in_order() {
    let store = SqliteStore::in_memory();
    let mut rx = store.watch();
    store.write(Op::Create(pod("a"))).unwrap();
    store.write(Op::Put(pod("a"))).unwrap();
    store.write(Op::Delete { key: Key::new(Kind::Pod, "default", "a"), uid: None }).unwrap();
    assert!(store.write(Op::Delete { key: Key::new(Kind::Pod, "default", "a"), uid: None }).unwrap().is_none());
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = rx.recv().await.unwrap();
        seen.push((event.kind, event.revision));
    }
    assert_eq!(seen, [(EventType::Added, 1), (EventType::Modified, 2), (EventType::Deleted, 3)]);
}

#[test]
fn reopening_finds_everything_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/store.db");
    let uid = {
        let store = SqliteStore::open(&path).unwrap();
        let mut batch = Batch::new();
        batch.push(Op::Create(pod("a"))).push(Op::Create(pod("b"))).set_meta("applied", json!({"commit": "abc"}));
        store.apply(batch).unwrap();
        store.write(Op::Delete { key: Key::new(Kind::Pod, "default", "b"), uid: None }).unwrap();
        store.get(&Key::new(Kind::Pod, "default", "a")).unwrap()["metadata"]["uid"].clone()
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.revision(), 3);
    assert_eq!(store.meta("applied").unwrap()["commit"], "abc");
    assert_eq!(store.get(&Key::new(Kind::Pod, "default", "a")).unwrap()["metadata"]["uid"], uid);
    assert!(store.get(&Key::new(Kind::Pod, "default", "b")).is_none());
    let next = store.write(Op::Create(pod("c"))).unwrap().unwrap();
    assert_eq!(next["metadata"]["resourceVersion"], "4", "revisions continue after a restart");
}
