//! [`RemoteStore`]: the store as a node's agent sees it. The kinds the
//! node needs are copied into memory by watching the control plane's API
//! (one streaming list per kind, KEP-3157's `sendInitialEvents`, listed
//! again whole after a broken stream), each object as the node's
//! [`Transform`] leaves it, and announced to watchers as they change;
//! writes go to the API as a kubelet sends them. The kubelet, the
//! service proxy and the cluster DNS run on it unchanged, as they run on
//! the control plane's own store.
//!
//! Owns: the copy, its watch streams, and turning a [`Batch`] into the
//! API's writes: a pod's status (`PUT .../pods/{name}/status`, on
//! condition of its uid), removing a stopped pod (`DELETE` with a uid
//! precondition), events, and the node's Node and Lease.
//!
//! Must not touch: any other write. A batch is sent one operation at a
//! time, in order, and is not atomic across objects: no write a node makes
//! needs that (each pod's status stands alone). Events are written, and
//! remembered so they aggregate, but never read from the control plane:
//! deleting one here only forgets it, as the control plane bounds its
//! own.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use driftless_model::Kind;
use driftless_store::{Batch, EventType, Key, Op, Store, StoreError, WatchEvent};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::{Client, ClientError, INITIAL_EVENTS_END};

/// How long one write may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Writes of one batch in flight at once (a node's status report of many
/// pods): enough to overlap the round trips, few enough connections.
const CONCURRENT_WRITES: usize = 8;
/// The longest line a watch may send (one object): more is refused, and
/// the stream opened again.
const MAX_LINE: usize = 8 << 20;
/// How long a broken watch waits before it opens again, at most.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the copy keeps of each object it takes, by kind (client-go's
/// informer transform): a node keeps only the little it reads of what is
/// not its own.
pub type Transform = Box<dyn Fn(Kind, Value) -> Value + Send + Sync>;

/// A node's view of the control plane's store.
pub struct RemoteStore {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// The objects of one kind, by namespace and name.
type Objects = BTreeMap<(String, String), Arc<Value>>;

struct Shared {
    client: Client,
    objects: RwLock<HashMap<Kind, Objects>>,
    revision: AtomicU64,
    events: broadcast::Sender<WatchEvent>,
    transform: Option<Transform>,
    /// The kinds whose first whole list has arrived.
    synced: tokio::sync::watch::Sender<BTreeSet<Kind>>,
}

impl RemoteStore {
    /// Starts copying `kinds` from the control plane `client` talks to,
    /// each object as `transform` leaves it (whole without one). Reads see
    /// nothing of a kind until its list has arrived
    /// ([`RemoteStore::synced`]).
    pub fn connect(client: Client, kinds: &[Kind], transform: Option<Transform>) -> Result<RemoteStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("remote-store")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io { path: "the remote store's runtime".into(), source })?;
        let shared = Arc::new(Shared {
            client,
            objects: RwLock::new(HashMap::new()),
            revision: AtomicU64::new(0),
            events: broadcast::channel(4096).0,
            transform,
            synced: tokio::sync::watch::Sender::new(BTreeSet::new()),
        });
        for kind in kinds {
            runtime.spawn(follow(shared.clone(), *kind));
        }
        Ok(RemoteStore { shared, runtime: Some(runtime) })
    }

    /// Waits until every kind has been listed once; false if `timeout`
    /// passes first.
    pub async fn synced(&self, kinds: &[Kind], timeout: Duration) -> bool {
        let mut synced = self.shared.synced.subscribe();
        tokio::time::timeout(timeout, synced.wait_for(|done| kinds.iter().all(|k| done.contains(k)))).await.is_ok_and(|r| r.is_ok())
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives as long as the store")
    }
}

impl Drop for RemoteStore {
    fn drop(&mut self) {
        // May be dropped on another runtime's thread: no blocking wait.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Store for RemoteStore {
    fn get(&self, key: &Key) -> Option<Arc<Value>> {
        let objects = self.shared.objects.read().unwrap_or_else(|e| e.into_inner());
        objects.get(&key.kind)?.get(&(key.namespace.clone(), key.name.clone())).cloned()
    }

    fn list(&self, kind: Kind, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let objects = self.shared.objects.read().unwrap_or_else(|e| e.into_inner());
        let revision = self.shared.revision.load(Ordering::SeqCst);
        let Some(of_kind) = objects.get(&kind) else { return (Vec::new(), revision) };
        let items = match namespace {
            Some(ns) => of_kind.range((ns.to_owned(), String::new())..).take_while(|((n, _), _)| n == ns).map(|(_, v)| v.clone()).collect(),
            None => of_kind.values().cloned().collect(),
        };
        (items, revision)
    }

    fn apply(&self, batch: Batch) -> Result<Vec<Arc<Value>>, StoreError> {
        if !batch.meta.is_empty() {
            return Err(StoreError::Remote("a node keeps no metadata records".into()));
        }
        let shared = self.shared.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // The caller may be on another runtime's worker: the request runs
        // on this store's, and the caller waits as on a local write.
        self.runtime().spawn(async move {
            let _ = tx.send(shared.send(batch.ops).await);
        });
        rx.recv().map_err(|_| StoreError::Remote("the remote store stopped".into()))?
    }

    fn watch(&self) -> broadcast::Receiver<WatchEvent> {
        self.shared.events.subscribe()
    }

    fn revision(&self) -> u64 {
        self.shared.revision.load(Ordering::SeqCst)
    }

    fn meta(&self, _name: &str) -> Option<Value> {
        None
    }

    fn meta_names(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
}

fn version_of(object: &Value) -> u64 {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn uid_of(object: &Value) -> Option<&str> {
    object.pointer("/metadata/uid").and_then(Value::as_str)
}

impl Shared {
    /// Takes `object` into the copy, unless the copy already holds it at
    /// this version or later (the answer to a write of ours arrives once
    /// more by the watch); announces the change.
    fn remember(&self, object: Value) -> Option<Arc<Value>> {
        let key = Key::of(&object)?;
        let version = version_of(&object);
        let object = Arc::new(match &self.transform {
            Some(transform) => transform(key.kind, object),
            None => object,
        });
        let kind = {
            let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
            let slot = objects.entry(key.kind).or_default().entry((key.namespace.clone(), key.name.clone()));
            match slot {
                std::collections::btree_map::Entry::Occupied(mut held) => {
                    let same = uid_of(held.get()) == uid_of(&object);
                    if same && version != 0 && version_of(held.get()) >= version {
                        return Some(held.get().clone());
                    }
                    held.insert(object.clone());
                    EventType::Modified
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(object.clone());
                    EventType::Added
                }
            }
        };
        let revision = self.revision.fetch_max(version, Ordering::SeqCst).max(version);
        let _ = self.events.send(WatchEvent { kind, key, object: object.clone(), revision });
        Some(object)
    }

    /// Drops the object at `key` if it is still the one of `uid` (when
    /// given); announces it.
    fn forget(&self, key: &Key, uid: Option<&str>, revision: u64) -> Option<Arc<Value>> {
        let gone = {
            let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
            let of_kind = objects.get_mut(&key.kind)?;
            let id = (key.namespace.clone(), key.name.clone());
            if uid.is_some_and(|uid| of_kind.get(&id).and_then(|held| uid_of(held)) != Some(uid)) {
                return None;
            }
            of_kind.remove(&id)?
        };
        let revision = self.revision.fetch_max(revision, Ordering::SeqCst).max(revision);
        let _ = self.events.send(WatchEvent { kind: EventType::Deleted, key: key.clone(), object: gone.clone(), revision });
        Some(gone)
    }

    fn held(&self, key: &Key) -> Option<Arc<Value>> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        objects.get(&key.kind)?.get(&(key.namespace.clone(), key.name.clone())).cloned()
    }

    /// Sends the operations to the API; the objects as written. Writes to
    /// distinct objects (a status report of many pods) go out together, a
    /// few at a time over the client's pooled connections; a batch that
    /// names one object twice goes in turn, in order.
    async fn send(&self, ops: Vec<Op>) -> Result<Vec<Arc<Value>>, StoreError> {
        let keys: HashSet<Option<Key>> = ops.iter().map(op_key).collect();
        let mut written = Vec::new();
        if keys.len() == ops.len() && !keys.contains(&None) {
            let mut results = futures_util::stream::iter(ops).map(|op| self.send_one(op)).buffered(CONCURRENT_WRITES);
            let mut first_error = None;
            while let Some(result) = results.next().await {
                match result {
                    Ok(object) => written.extend(object),
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                }
            }
            return first_error.map_or(Ok(written), Err);
        }
        for op in ops {
            written.extend(self.send_one(op).await?);
        }
        Ok(written)
    }

    /// One operation; the object as written, if any.
    async fn send_one(&self, op: Op) -> Result<Option<Arc<Value>>, StoreError> {
        let mut written = None;
        match op {
            Op::Status { key, uid, status } if matches!(key.kind, Kind::Pod | Kind::Node) => {
                let mut body = (*self.held(&key).ok_or_else(|| StoreError::NotFound(key.clone()))?).clone();
                body["status"] = status;
                if let Some(uid) = uid {
                    body["metadata"]["uid"] = Value::from(uid);
                }
                // Nodes post their status with the object (their
                // agents own it: the API keeps what is not theirs).
                let path = match key.kind {
                    Kind::Pod => format!("{}/status", Kind::Pod.object_path(&key.namespace, &key.name)),
                    _ => Kind::Node.object_path("", &key.name),
                };
                let stored = self.request(&key, self.client.put(&path, &body)).await?;
                written = self.remember(stored);
            }
            Op::Put(object) | Op::Update(object) | Op::Create(object)
                if Key::of(&object).is_some_and(|k| matches!(k.kind, Kind::Node | Kind::Lease | Kind::Event)) =>
            {
                let key = Key::of(&object).ok_or(StoreError::Unnamed)?;
                let stored = self.request(&key, self.client.put(&key.kind.object_path(&key.namespace, &key.name), &object)).await?;
                written = self.remember(stored);
            }
            Op::Delete { key, .. } if key.kind == Kind::Event => {
                written = self.forget(&key, None, 0);
            }
            Op::Delete { key, uid } if key.kind == Kind::Pod => {
                let options = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}});
                let path = Kind::Pod.object_path(&key.namespace, &key.name);
                match self.request(&key, self.client.delete_with(&path, Some(&options))).await {
                    Ok(gone) => {
                        let revision = self.revision.load(Ordering::SeqCst);
                        written = self.forget(&key, uid.as_deref(), revision).or_else(|| Some(Arc::new(gone)));
                    }
                    // Already gone, or replaced by a pod of the same
                    // name: as a local store, nothing is deleted.
                    Err(StoreError::NotFound(_) | StoreError::Conflict { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            op => return Err(StoreError::Remote(format!("a node does not write {}", describe(&op)))),
        }
        Ok(written)
    }

    /// One request, bounded in time, its error as the store's.
    async fn request(&self, key: &Key, request: impl std::future::Future<Output = Result<Value, ClientError>>) -> Result<Value, StoreError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Err(_) => Err(StoreError::Remote(format!("writing {key}: no answer within {REQUEST_TIMEOUT:?}"))),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(ClientError::Status { code: 404, .. })) => Err(StoreError::NotFound(key.clone())),
            Ok(Err(ClientError::Status { code: 409, message })) => Err(StoreError::Conflict { key: key.clone(), expected: String::new(), actual: message }),
            Ok(Err(error)) => Err(StoreError::Remote(format!("writing {key}: {error}"))),
        }
    }
}

/// The object an operation writes.
fn op_key(op: &Op) -> Option<Key> {
    match op {
        Op::Create(v) | Op::Update(v) | Op::Put(v) => Key::of(v),
        Op::Status { key, .. } | Op::Delete { key, .. } => Some(key.clone()),
    }
}

fn describe(op: &Op) -> String {
    match op {
        Op::Create(v) | Op::Update(v) | Op::Put(v) => Key::of(v).map_or_else(|| "an unnamed object".to_owned(), |k| k.to_string()),
        Op::Status { key, .. } => format!("the status of {key}"),
        Op::Delete { key, .. } => format!("the removal of {key}"),
    }
}

/// Keeps the copy of `kind` current: a streaming list, then its changes;
/// after a broken stream, the whole list again (the API does not replay
/// changes from a resourceVersion), dropping what it no longer holds.
async fn follow(shared: Arc<Shared>, kind: Kind) {
    let path = format!("{}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan", kind.list_path(None));
    let mut backoff = Duration::from_millis(200);
    loop {
        let span = tracing::debug_span!("remote watch", kind = %kind);
        match watch_once(&shared, kind, &path, &mut backoff).await {
            Ok(()) => tracing::debug!(parent: &span, "the watch ended; listing again"),
            Err(error) => tracing::warn!(parent: &span, %error, retry_in = ?backoff, "the watch failed; listing again"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn watch_once(shared: &Shared, kind: Kind, path: &str, backoff: &mut Duration) -> Result<(), ClientError> {
    let mut stream = shared.client.stream(path).await?;
    let mut buffer: Vec<u8> = Vec::new();
    // Until the bookmark, the keys the list has named.
    let mut listed: Option<HashSet<(String, String)>> = Some(HashSet::new());
    while let Some(chunk) = stream.next().await {
        buffer.extend_from_slice(&chunk?);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else { continue };
            take(shared, kind, event, &mut listed);
            if listed.is_none() {
                *backoff = Duration::from_millis(200);
            }
        }
        if buffer.len() > MAX_LINE {
            return Err(ClientError::Status { code: 0, message: format!("a {kind} watch line over {MAX_LINE} bytes") });
        }
    }
    Ok(())
}

/// One watch event into the copy.
fn take(shared: &Shared, kind: Kind, mut event: Value, listed: &mut Option<HashSet<(String, String)>>) {
    let Some(object) = event.get_mut("object").map(Value::take) else { return };
    match event.get("type").and_then(Value::as_str) {
        Some("ADDED" | "MODIFIED") => {
            if let (Some(listed), Some(key)) = (listed.as_mut(), Key::of(&object)) {
                listed.insert((key.namespace, key.name));
            }
            shared.remember(object);
        }
        Some("DELETED") => {
            if let Some(key) = Key::of(&object) {
                shared.forget(&key, uid_of(&object), version_of(&object));
            }
        }
        Some("BOOKMARK") if object.pointer("/metadata/annotations").and_then(|a| a.get(INITIAL_EVENTS_END)).is_some() => {
            let Some(listed) = listed.take() else { return };
            // What the copy held that the new list lacks went while the
            // stream was down.
            let stale: Vec<(String, String)> = {
                let objects = shared.objects.read().unwrap_or_else(|e| e.into_inner());
                objects.get(&kind).map(|of_kind| of_kind.keys().filter(|id| !listed.contains(*id)).cloned().collect()).unwrap_or_default()
            };
            let revision = version_of(&object);
            for (namespace, name) in stale {
                shared.forget(&Key::new(kind, namespace, name), None, revision);
            }
            shared.revision.fetch_max(revision, Ordering::SeqCst);
            shared.synced.send_modify(|done| {
                done.insert(kind);
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    //! Against the real API server on a Unix socket, over an in-memory
    //! store.

    use driftless_store::SqliteStore;

    use super::*;
    use crate::ApiState;
    use crate::client::Endpoint;

    fn pod(name: &str, node: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A control plane's store holding `pod`, and where its API will
    /// listen (the folder lives as long as the first value).
    fn control_plane_with(pod: Value) -> (tempfile::TempDir, std::path::PathBuf, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let server: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
        server.apply(Batch::one(Op::Create(pod))).unwrap();
        (dir, socket, server)
    }

    fn serve(socket: &std::path::Path, store: Arc<dyn Store>) -> tokio_util::sync::CancellationToken {
        let mut state = ApiState::of_store(store);
        let stop = state.shutdown.clone();
        state.shutdown = stop.clone();
        let listener = crate::bind_unix(socket).unwrap();
        tokio::spawn(crate::serve_unix_on(listener, state));
        stop
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_follows_the_control_plane_and_writes_what_a_kubelet_writes() {
        let (_dir, socket, server) = control_plane_with(pod("a", "node-1"));
        let stop = serve(&socket, server.clone());

        let remote = RemoteStore::connect(Client::new(Endpoint::Unix(socket.clone())), &[Kind::Pod], None).unwrap();
        assert!(remote.synced(&[Kind::Pod], Duration::from_secs(10)).await);
        let key = Key::new(Kind::Pod, "default", "a");
        let uid = uid_of(&remote.get(&key).unwrap()).unwrap().to_owned();
        let mut changes = remote.watch();

        // A change on the control plane reaches the copy and its watchers.
        server.apply(Batch::one(Op::Create(pod("b", "node-1")))).unwrap();
        let added = tokio::time::timeout(Duration::from_secs(10), changes.recv()).await.unwrap().unwrap();
        assert_eq!((added.kind, added.key.name.as_str()), (EventType::Added, "b"));
        assert_eq!(remote.list(Kind::Pod, Some("default")).0.len(), 2);

        // A status goes to the control plane, on condition of the uid.
        let status = json!({"phase": "Running", "podIP": "10.244.0.5"});
        let store = Arc::new(remote);
        let writer = store.clone();
        let op = Op::Status { key: key.clone(), uid: Some(uid.clone()), status: status.clone() };
        tokio::task::spawn_blocking(move || writer.apply(Batch::one(op))).await.unwrap().unwrap();
        assert_eq!(server.get(&key).unwrap()["status"], status);
        assert_eq!(store.get(&key).unwrap()["status"], status, "the copy holds what it wrote at once");
        let writer = store.clone();
        let stale = Op::Status { key: key.clone(), uid: Some("another".into()), status: json!({"phase": "Failed"}) };
        let refused = tokio::task::spawn_blocking(move || writer.apply(Batch::one(stale))).await.unwrap().unwrap_err();
        assert!(refused.is_conflict(), "{refused}");

        // Removing the stopped pod, on condition of its uid.
        let writer = store.clone();
        let wrong = Op::Delete { key: key.clone(), uid: Some("another".into()) };
        let deleted = tokio::task::spawn_blocking(move || writer.apply(Batch::one(wrong))).await.unwrap().unwrap();
        assert!(deleted.is_empty() && server.get(&key).is_some(), "another uid's pod is not deleted, as in a local store");
        let writer = store.clone();
        let right = Op::Delete { key: key.clone(), uid: Some(uid) };
        tokio::task::spawn_blocking(move || writer.apply(Batch::one(right))).await.unwrap().unwrap();
        assert!(server.get(&key).is_none() && store.get(&key).is_none());

        // Anything else a node does not write.
        let writer = store.clone();
        let config = Op::Create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}));
        let refused = tokio::task::spawn_blocking(move || writer.apply(Batch::one(config))).await.unwrap().unwrap_err();
        assert!(matches!(refused, StoreError::Remote(_)), "{refused}");

        // The control plane goes away; what changed meanwhile is found by
        // listing again once it is back.
        stop.cancel();
        server.apply(Batch::one(Op::Delete { key: Key::new(Kind::Pod, "default", "b"), uid: None })).unwrap();
        server.apply(Batch::one(Op::Create(pod("c", "node-1")))).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _stop = serve(&socket, server.clone());
        until("the copy to list again", || {
            let names: Vec<String> = store.list(Kind::Pod, None).0.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect();
            names == ["c"]
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_copy_keeps_each_object_as_the_transform_leaves_it() {
        let (_dir, socket, server) = control_plane_with(pod("listed", "node-2"));
        let _stop = serve(&socket, server.clone());
        // Pods of other nodes lose their spec, as an agent keeps them.
        let transform: Transform = Box::new(|kind, mut object| {
            if kind == Kind::Pod && object.pointer("/spec/nodeName") != Some(&json!("node-1")) {
                object["spec"] = json!({"nodeName": object["spec"]["nodeName"].take()});
            }
            object
        });
        let remote = RemoteStore::connect(Client::new(Endpoint::Unix(socket.clone())), &[Kind::Pod], Some(transform)).unwrap();
        assert!(remote.synced(&[Kind::Pod], Duration::from_secs(10)).await);
        let mut changes = remote.watch();
        server.apply(Batch::one(Op::Create(pod("watched", "node-2")))).unwrap();
        server.apply(Batch::one(Op::Create(pod("own", "node-1")))).unwrap();
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(10), changes.recv()).await.unwrap().unwrap();
        }
        for name in ["listed", "watched"] {
            let held = remote.get(&Key::new(Kind::Pod, "default", name)).unwrap();
            assert_eq!(held["spec"], json!({"nodeName": "node-2"}), "{name}");
            assert!(held["metadata"]["uid"].is_string(), "{name}: the rest is kept");
        }
        let own = remote.get(&Key::new(Kind::Pod, "default", "own")).unwrap();
        assert_eq!(own["spec"]["containers"][0]["image"], "busybox", "this node's pods are kept whole");
    }
}
