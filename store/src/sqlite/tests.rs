//! The embedded store against the store's contract (`conformance.rs`),
//! each test on a SQLite file of its own.

use std::sync::Arc;

use super::SqliteStore;
use crate::Store;

fn fresh() -> (tempfile::TempDir, impl Fn() -> Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/store.db");
    (dir, move || Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>)
}

crate::conformance::conformance_tests!(fresh());

#[test]
fn an_in_memory_store_keeps_the_contract_too() {
    crate::conformance::create_sets_identity_and_update_keeps_it(&|| Arc::new(SqliteStore::in_memory()) as Arc<dyn Store>);
}

/// A store at `dir/store.db` with one object in it, closed again.
fn store_with_an_object(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}});
    store.apply(crate::Batch::one(crate::Op::Create(pod))).unwrap();
    drop(store);
    path
}

fn damage_of(path: &std::path::Path) -> String {
    match SqliteStore::open(path) {
        Err(crate::StoreError::Damaged { why, .. }) => why,
        Err(other) => panic!("expected a damaged store, got {other}"),
        Ok(_) => panic!("a damaged store was opened"),
    }
}

#[test]
fn a_store_closed_cleanly_opens_again_with_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_an_object(dir.path());
    assert!(dir.path().join("store.db.id").exists());
    assert!(!dir.path().join("store.db-wal").exists(), "SQLite removes the log on a clean close");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.list(driftless_model::Kind::Pod, None).0.len(), 1);
}

#[test]
fn a_damaged_emptied_or_replaced_store_is_refused_never_served_empty() {
    // Overwritten with other bytes.
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_an_object(dir.path());
    std::fs::write(&path, vec![0x5a; 64 << 10]).unwrap();
    assert!(damage_of(&path).contains("not a database"), "{}", damage_of(&path));

    // Truncated to its first pages.
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_an_object(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "{}", bytes.len());
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let why = damage_of(&path);
    assert!(why.contains("SQLite finds it damaged") || why.contains("malformed"), "{why}");

    // Emptied, or removed, while its id stays.
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_an_object(dir.path());
    std::fs::write(&path, b"").unwrap();
    assert!(damage_of(&path).contains("the store file is missing or empty, but this data folder had a store"), "{}", damage_of(&path));
    std::fs::remove_file(&path).unwrap();
    assert!(damage_of(&path).contains("missing or empty"));

    // Replaced by another data folder's store.
    let dir = tempfile::tempdir().unwrap();
    let path = store_with_an_object(dir.path());
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(store_with_an_object(other.path()), &path).unwrap();
    assert!(damage_of(&path).contains("this is not the store this data folder made"), "{}", damage_of(&path));
}
