//! The embedded store: SQLite on disk, a copy of everything in memory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};
use serde_json::Value;
use tokio::sync::broadcast;

use driftless_model::Kind;

use crate::objects::Objects;
use crate::{Batch, Key, Store, StoreError, WatchEvent};

/// How many changes a slow watcher may fall behind before it is told it
/// lagged (and must list again). The buffer keeps a change alive, old
/// version or deleted object, until every watcher has read it (tokio's
/// channel drops it then: see `watch.rs`'s test), so only behind a slow
/// watcher: at 8192 whole pods (5–10 KiB of JSON each) one could pin tens
/// of MiB. A watcher that falls behind re-lists, which level-triggered
/// controllers do anyway.
const WATCH_BUFFER: usize = 1024;

/// The meta record holding the store revision.
const REVISION: &str = "driftless.revision";
/// The meta record naming this store; `<file>.id` beside the file holds
/// the same, so an emptied or replaced file is told from a new one.
const IDENTITY: &str = "driftless.store-id";
/// The meta record saying a daemon has the store open. Written into the
/// main file (checkpointed) on open and cleared on a clean close: found set
/// with no write-ahead log beside the file, the log that held the last
/// acknowledged changes was lost.
const OPEN: &str = "driftless.open";

/// The embedded store. Cheap to share behind an `Arc`; every method takes
/// one short lock.
pub struct SqliteStore {
    inner: Mutex<Inner>,
    events: broadcast::Sender<WatchEvent>,
}

struct Inner {
    conn: Connection,
    objects: Objects,
    meta: HashMap<String, Value>,
    revision: u64,
    /// Why the last write failed, until one succeeds.
    write_error: Option<String>,
}

impl SqliteStore {
    /// Opens (or creates) the store in the file at `path`, refusing one
    /// that cannot be trusted ([`StoreError::Damaged`]): a file SQLite
    /// finds damaged (`quick_check`), a file emptied or replaced since this
    /// data folder made it (`<path>.id`), or a file a daemon had open whose
    /// write-ahead log is gone. A damaged store never becomes an empty one.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
        }
        let damaged = |why: String| StoreError::Damaged { path: path.display().to_string(), why };
        let id_path = identity_path(path);
        let known = match std::fs::read_to_string(&id_path) {
            Ok(id) => Some(id.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(StoreError::Io { path: id_path.display().to_string(), source }),
        };
        let had_content = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        if known.is_some() && !had_content {
            return Err(damaged(format!("the store file is missing or empty, but this data folder had a store ({} names it)", id_path.display())));
        }
        let wal_existed = wal_path(path).exists();
        let conn = Connection::open(path)?;
        if had_content {
            check_integrity(&conn).map_err(damaged)?;
        }
        let store = SqliteStore::from_connection(conn).map_err(|e| match e {
            StoreError::Database(e) if is_damage(&e) => damaged(e.to_string()),
            other => other,
        })?;
        {
            let mut inner = store.lock();
            let stored_id = inner.meta.get(IDENTITY).and_then(Value::as_str).map(str::to_owned);
            match (&known, &stored_id) {
                (Some(known), Some(stored)) if known != stored => {
                    return Err(damaged(format!("this is not the store this data folder made: its id is {stored}, {} says {known}", id_path.display())));
                }
                (Some(_), None) => return Err(damaged(format!("the store file holds no store id, but {} names one: it was replaced", id_path.display()))),
                _ => {}
            }
            if inner.meta.get(OPEN) == Some(&Value::Bool(true)) && !wal_existed {
                return Err(damaged(format!(
                    "the daemon stopped without closing the store, and its write-ahead log {} is gone: the last changes it acknowledged are lost",
                    wal_path(path).display()
                )));
            }
            let id = stored_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            inner.set_meta(&[(IDENTITY, Value::from(id.clone())), (OPEN, Value::Bool(true))])?;
            // Into the main file now: the marker must not live only in the
            // log whose loss it is there to detect.
            inner.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            if known.is_none() {
                write_durably(&id_path, &id)?;
            }
        }
        Ok(store)
    }

    /// A store that lives in memory only, for tests.
    pub fn in_memory() -> SqliteStore {
        // An in-memory SQLite database can only fail to open when memory
        // is exhausted.
        SqliteStore::from_connection(Connection::open_in_memory().expect("in-memory sqlite")).expect("in-memory store")
    }

    fn from_connection(conn: Connection) -> Result<SqliteStore, StoreError> {
        // WAL with synchronous=NORMAL: a commit is in the log (the OS has
        // it) before `apply` returns, so a killed process loses nothing;
        // only a power cut can lose the last commits, never consistency.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Reads are served from the in-memory copy; SQLite's own page
        // cache only helps writes find their pages. 512 KiB, not 2 MiB.
        conn.pragma_update(None, "cache_size", -512)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects (
                 kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                 body TEXT NOT NULL, PRIMARY KEY (kind, namespace, name));
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, body TEXT NOT NULL);",
        )?;
        let mut objects = Objects::default();
        {
            let mut statement = conn.prepare("SELECT kind, namespace, name, body FROM objects")?;
            let rows =
                statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?)))?;
            for row in rows {
                let (kind, namespace, name, body) = row?;
                let Some(kind) = Kind::from_name(&kind) else {
                    // Written by another version that knew this kind.
                    tracing::warn!(%kind, %namespace, %name, "a stored object of a kind this version does not know is ignored");
                    continue;
                };
                let key = Key::new(kind, namespace, name);
                let value = serde_json::from_str(&body).map_err(|source| StoreError::Corrupt { what: key.to_string(), source })?;
                objects.insert(key, Arc::new(value));
            }
        }
        let mut meta = HashMap::new();
        {
            let mut statement = conn.prepare("SELECT name, body FROM meta")?;
            let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
            for row in rows {
                let (name, body) = row?;
                let value = serde_json::from_str(&body).map_err(|source| StoreError::Corrupt { what: format!("metadata record {name}"), source })?;
                meta.insert(name, value);
            }
        }
        let revision = meta.get(REVISION).and_then(Value::as_u64).unwrap_or(0);
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        Ok(SqliteStore { inner: Mutex::new(Inner { conn, objects, meta, revision, write_error: None }), events })
    }

    /// Closes the store cleanly: clears the open marker, so the next open
    /// does not look for a write-ahead log (SQLite deletes it on close).
    fn close(inner: &mut Inner) -> bool {
        inner.set_meta(&[(OPEN, Value::Bool(false))]).is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves memory as it was before the
        // batch (memory changes only after the commit), so the data is
        // still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if !inner.meta.contains_key(IDENTITY) {
            return; // In memory, or never opened as a file store.
        }
        if !SqliteStore::close(inner) {
            // The marker stays set: keep the log too (SQLite deletes it
            // when the connection closes), or the next open would take the
            // store for one that lost its log.
            let conn = std::mem::replace(&mut inner.conn, Connection::open_in_memory().expect("in-memory sqlite"));
            std::mem::forget(conn);
        }
    }
}

impl Inner {
    /// Writes metadata records outside any batch (and its revision).
    fn set_meta(&mut self, records: &[(&str, Value)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (name, value) in records {
            tx.execute(
                "INSERT INTO meta (name, body) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET body = excluded.body",
                params![name, value.to_string()],
            )?;
        }
        tx.commit()?;
        for (name, value) in records {
            self.meta.insert((*name).to_owned(), value.clone());
        }
        Ok(())
    }
}

/// Writes a staged batch in one transaction: all of it or nothing.
fn write_batch(conn: &mut Connection, staged: &HashMap<Key, Option<Arc<Value>>>, meta: &[(String, Value)], revision: u64) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO objects (kind, namespace, name, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind, namespace, name) DO UPDATE SET body = excluded.body",
        )?;
        let mut delete = tx.prepare_cached("DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3")?;
        for (key, value) in staged {
            match value {
                Some(value) => upsert.execute(params![key.kind.name(), key.namespace, key.name, value.to_string()])?,
                None => delete.execute(params![key.kind.name(), key.namespace, key.name])?,
            };
        }
        let mut set_meta = tx.prepare_cached("INSERT INTO meta (name, body) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET body = excluded.body")?;
        let mut delete_meta = tx.prepare_cached("DELETE FROM meta WHERE name = ?1")?;
        for (name, value) in meta {
            if value.is_null() {
                delete_meta.execute(params![name])?;
            } else {
                set_meta.execute(params![name, value.to_string()])?;
            }
        }
        set_meta.execute(params![REVISION, revision.to_string()])?;
    }
    tx.commit()
}

/// `<file>.id`: the store's id, beside it.
fn identity_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".id");
    name.into()
}

/// `<file>-wal`: SQLite's write-ahead log.
fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// SQLite's own look at the file: every page reachable and well formed
/// (`quick_check`, which skips only the index-to-table cross checks).
fn check_integrity(conn: &Connection) -> Result<(), String> {
    let mut statement = conn.prepare("PRAGMA quick_check(5)").map_err(|e| e.to_string())?;
    let rows: Vec<String> =
        statement.query_map([], |row| row.get::<_, String>(0)).map_err(|e| e.to_string())?.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if rows == ["ok"] { Ok(()) } else { Err(format!("SQLite finds it damaged: {}", rows.join("; "))) }
}

/// Whether SQLite's error says the file is not a sound database.
fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase))
}

/// Writes `text` to `path` and makes it durable (file, then folder).
fn write_durably(path: &Path, text: &str) -> Result<(), StoreError> {
    let io = |source| StoreError::Io { path: path.display().to_string(), source };
    let tmp = path.with_extension("id.tmp");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.lock().objects.get(key)
    }

    fn count(&self, kind: Kind, namespace: Option<&str>) -> usize {
        self.lock().objects.count(kind, namespace)
    }

    fn keys(&self, kind: Kind, namespace: Option<&str>) -> Vec<Key> {
        self.lock().objects.keys(kind, namespace)
    }

    fn list(&self, kind: Kind, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = inner.objects.of_kind(kind, namespace);
        (items, inner.revision)
    }

    fn apply(&self, batch: Batch) -> Result<Vec<Arc<Value>>, StoreError> {
        let mut inner = self.lock();
        let now = now_rfc3339();
        // Work out every new object first, against the store as the batch
        // has changed it so far, so a failure writes nothing.
        let mut revision = inner.revision;
        let objects = &inner.objects;
        let crate::stage::Staged { finals: staged, changes } = crate::stage::stage(batch.ops, &|key| objects.get(key), &now, &mut || {
            revision += 1;
            revision
        })?;

        let written = write_batch(&mut inner.conn, &staged, &batch.meta, revision);
        // Kept until a write succeeds, so status can say why nothing is
        // saved (a full disk) while the store cannot save that either.
        inner.write_error = written.as_ref().err().map(ToString::to_string);
        written?;

        for (key, value) in staged {
            match value {
                Some(value) => drop(inner.objects.insert(key, value)),
                None => drop(inner.objects.remove(&key)),
            }
        }
        for (name, value) in batch.meta {
            if value.is_null() {
                inner.meta.remove(&name);
            } else {
                inner.meta.insert(name, value);
            }
        }
        inner.meta.insert(REVISION.to_owned(), Value::from(revision));
        inner.revision = revision;
        let mut written = Vec::with_capacity(changes.len());
        for (kind, key, object, revision) in changes {
            written.push(object.clone());
            // No receivers is fine: nobody watches yet.
            let _ = self.events.send(WatchEvent { kind, key, object, revision });
        }
        Ok(written)
    }

    fn write_error(&self) -> Option<String> {
        self.lock().write_error.clone()
    }

    fn watch(&self) -> broadcast::Receiver<WatchEvent> {
        // Subscribing under the lock orders the subscription against
        // writes: the receiver sees exactly the changes after `revision()`.
        let _inner = self.lock();
        self.events.subscribe()
    }

    fn revision(&self) -> u64 {
        self.lock().revision
    }

    fn meta(&self, name: &str) -> Option<Value> {
        self.lock().meta.get(name).cloned()
    }

    fn meta_names(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self.lock().meta.keys().filter(|n| n.starts_with(prefix)).cloned().collect();
        names.sort_unstable();
        names
    }
}

pub(crate) fn uid_matches(value: &Value, uid: Option<&str>) -> bool {
    uid.is_none_or(|uid| value.pointer("/metadata/uid").and_then(Value::as_str) == Some(uid))
}

pub(crate) fn set_revision(value: &mut Value, revision: u64) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
    }
}

pub(crate) fn created(mut value: Value, revision: u64, now: &str) -> Value {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        if !meta.get("uid").is_some_and(Value::is_string) {
            meta.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
        }
        meta.entry("creationTimestamp").or_insert_with(|| Value::String(now.to_owned()));
        meta.insert("generation".into(), Value::from(1));
    }
    set_revision(&mut value, revision);
    value
}

pub(crate) fn updated(old: &Value, mut value: Value, revision: u64) -> Value {
    let old_meta = old.get("metadata");
    let generation = old_meta.and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(1);
    let spec_changed = old.get("spec") != value.get("spec");
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["uid", "creationTimestamp"] {
            match old_meta.and_then(|m| m.get(field)) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        // A deletion once started cannot be taken back by a later write.
        if let Some(deleting) = old_meta.and_then(|m| m.get("deletionTimestamp")) {
            meta.insert("deletionTimestamp".into(), deleting.clone());
        }
        meta.insert("generation".into(), Value::from(if spec_changed { generation + 1 } else { generation }));
    }
    if value.get("status").is_none()
        && let Some(status) = old.get("status")
    {
        value["status"] = status.clone();
    }
    set_revision(&mut value, revision);
    value
}

/// Now, as Kubernetes writes timestamps (RFC 3339, whole seconds, UTC).
pub(crate) fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests;
