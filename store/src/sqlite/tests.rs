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
