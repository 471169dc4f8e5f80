//! The store on etcd: objects under Kubernetes' key layout
//! (`<prefix>/<resource>/<namespace>/<name>`, cluster-scoped objects
//! without the namespace), `resourceVersion` from each key's
//! `mod_revision`, metadata records under `<prefix>/driftless/meta/`, and
//! a copy of everything in memory kept by one watch.
//!
//! Owns: the key layout, turning a [`Batch`] into one etcd transaction
//! (every operation and metadata record of the batch, or none: a batch is
//! never split, so controllers never see half a commit), the compares that
//! make a write conditional on what it was computed from (another writer
//! in between makes the batch be computed again on the newer objects, or
//! a `Conflict` when the batch named a `resourceVersion`), and the watch
//! that is the only path from etcd into memory and to watchers, in etcd's
//! revision order (a compacted revision makes it list again, as client-go
//! does, announcing the differences).
//!
//! Must not touch: what the objects mean (identity fields are set as
//! [`crate::SqliteStore`] sets them, by the shared functions in
//! `sqlite.rs`), or leadership. etcd's own limits apply to a batch:
//! `--max-txn-ops` (128 by default) and `--max-request-bytes` (1.5 MiB):
//! the daemon's commits need them raised (docs/ARCHITECTURE.md); a batch
//! over them is refused whole with etcd's reason.
//!
//! The client is async and the [`Store`] trait is not: the store runs its
//! own small runtime, and a write blocks its caller (as a SQLite write
//! does) until etcd has committed it and the watch has brought it into
//! memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use driftless_model::Kind;
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, EventType as EtcdEvent, GetOptions, KeyValue, Txn, TxnOp, WatchOptions};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::objects::Objects;
use crate::sqlite::now_rfc3339;
use crate::{Batch, EventType, Key, Store, StoreError, WatchEvent};

/// As for the embedded store: how far a slow watcher may fall behind.
const WATCH_BUFFER: usize = 1024;
/// How long a write waits for etcd and then for its own change to come
/// back through the watch.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a write waiting for the watch asks etcd where the watch is.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// HTTP/2 keepalive pings to etcd: how often, and how long an answer may
/// take. etcd refuses pings more often than its `--grpc-keepalive-min-time`
/// (5 s by default) and closes an idle connection that sends them (a
/// standby's, whose only stream is a quiet watch), so never faster than
/// that.
pub(crate) const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(5));
/// How many times a batch is computed again when another writer changed
/// one of its objects meanwhile.
const RETRIES: usize = 5;
/// How long one attempt at a transaction may take before its outcome is
/// looked up instead of waited for: a proposal lost with etcd's leader
/// otherwise takes etcd's own 7 s to time out.
const ATTEMPT: Duration = Duration::from_secs(3);

/// Where to find etcd, and under which prefix the objects live.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `http://HOST:PORT` (or `https://` with `tls`) of each member.
    pub endpoints: Vec<String>,
    /// The key prefix (`/registry`, as kube-apiserver's `--etcd-prefix`).
    pub prefix: String,
    /// Client certificates: the CA's PEM, then the client's certificate and
    /// key PEM.
    pub tls: Option<EtcdTls>,
    /// Who writes through this store, stable across restarts (the daemon
    /// gives its identity): names its write marker, so a restarted
    /// instance reuses its key instead of leaving one per run. Without
    /// it, a name of its own for each store.
    pub writer: Option<String>,
}

/// TLS to etcd: the CA that signed the members' certificates, and this
/// client's certificate and key (PEM).
#[derive(Clone, Debug)]
pub struct EtcdTls {
    /// The CA certificate.
    pub ca: Vec<u8>,
    /// The client certificate.
    pub cert: Vec<u8>,
    /// The client key.
    pub key: Vec<u8>,
}

impl EtcdConfig {
    /// From `etcd://HOST:PORT[,HOST:PORT...]` (plain HTTP) or
    /// `etcds://...` (TLS, with `tls` set by the caller).
    pub fn parse(url: &str) -> Result<EtcdConfig, StoreError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| StoreError::Config(format!("{url:?} is not etcd://HOST:PORT[,HOST:PORT]")))?;
        let http = match scheme {
            "etcd" => "http",
            "etcds" => "https",
            other => return Err(StoreError::Config(format!("unknown store scheme {other:?}: etcd:// or etcds://"))),
        };
        let (hosts, prefix) = match rest.split_once('/') {
            Some((hosts, prefix)) if !prefix.is_empty() => (hosts, format!("/{}", prefix.trim_end_matches('/'))),
            Some((hosts, _)) => (hosts, "/registry".to_owned()),
            None => (rest, "/registry".to_owned()),
        };
        let endpoints: Vec<String> = hosts.split(',').filter(|h| !h.is_empty()).map(|h| format!("{http}://{h}")).collect();
        if endpoints.is_empty() {
            return Err(StoreError::Config(format!("{url:?} names no etcd member")));
        }
        Ok(EtcdConfig { endpoints, prefix, tls: None, writer: None })
    }
}

/// The key layout under a prefix.
#[derive(Clone, Debug)]
struct Layout {
    prefix: String,
}

impl Layout {
    fn object(&self, key: &Key) -> String {
        if key.namespace.is_empty() {
            format!("{}/{}/{}", self.prefix, key.kind.plural(), key.name)
        } else {
            format!("{}/{}/{}/{}", self.prefix, key.kind.plural(), key.namespace, key.name)
        }
    }

    fn meta(&self, name: &str) -> String {
        format!("{}/driftless/meta/{name}", self.prefix)
    }

    fn all(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// What an etcd key names.
    fn parse(&self, key: &str) -> Option<Named> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if let Some(name) = rest.strip_prefix("driftless/meta/") {
            return Some(Named::Meta(name.to_owned()));
        }
        if rest.starts_with("driftless/") {
            return Some(Named::Internal);
        }
        let (resource, rest) = rest.split_once('/')?;
        let kind = Kind::ALL.iter().copied().find(|k| k.plural() == resource)?;
        let key = match rest.split_once('/') {
            Some((namespace, name)) if kind.namespaced() => Key::new(kind, namespace, name),
            None if !kind.namespaced() => Key::new(kind, "", rest),
            _ => return None,
        };
        Some(Named::Object(key))
    }
}

enum Named {
    Object(Key),
    Meta(String),
    /// The store's own keys (the leader key): not objects, not records.
    Internal,
}

/// What memory holds: every object and record, and the revision it is at.
#[derive(Default)]
struct Cache {
    objects: Objects,
    meta: HashMap<String, Value>,
    /// The object keys' and records' etcd `mod_revision`s.
    versions: HashMap<String, i64>,
    revision: u64,
}

struct Shared {
    cache: Mutex<Cache>,
    /// Signalled each time the watch has brought memory to a new revision.
    moved: Condvar,
    events: broadcast::Sender<WatchEvent>,
    layout: Layout,
    /// Why the watch stopped, if it did: every later write fails with it.
    broken: Mutex<Option<String>>,
    /// The watch stream's request side, to ask etcd where the watch is
    /// (a revision moved by writes outside the prefix brings no event).
    progress: tokio::sync::Mutex<Option<etcd_client::WatchRequestSender>>,
}

impl Shared {
    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The store on etcd.
pub struct EtcdStore {
    shared: Arc<Shared>,
    client: Client,
    runtime: Option<tokio::runtime::Runtime>,
    /// Local writes, one at a time (each computed on memory as the last
    /// one left it), and this instance's write marker.
    writing: Mutex<Marker>,
    /// The leader key and create revision every write is conditional on,
    /// once this instance leads (`crate::election`).
    fence: Mutex<Option<(String, i64)>>,
}

/// This writer's own key (`<prefix>/driftless/writes/<writer>`), which
/// every batch's transaction sets to the batch's mark on condition that it
/// is unchanged since this instance last wrote it. It answers the one
/// question a failed request leaves open (did etcd commit it?) and makes
/// two attempts at one batch exclusive: a batch is never applied twice,
/// even when an attempt whose answer was lost commits after the next one
/// was sent.
struct Marker {
    key: String,
    /// The key's mod revision as this instance last wrote or read it (0:
    /// absent).
    at: i64,
}

fn etcd_error(error: etcd_client::Error) -> StoreError {
    StoreError::Etcd(error.to_string())
}

/// Whether etcd's answer says for certain that the request was not
/// committed (a refusal), rather than leaving it open (a lost member, a
/// timed-out proposal, a broken connection).
fn refused(error: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    use tonic::Code;
    match error {
        E::GRpcStatus(status) => matches!(
            status.code(),
            Code::InvalidArgument | Code::ResourceExhausted | Code::PermissionDenied | Code::Unauthenticated | Code::FailedPrecondition | Code::OutOfRange
        ),
        E::InvalidArgs(_) | E::InvalidUri(_) | E::InvalidMetadataValue(_) | E::EndpointError(_) => true,
        _ => false,
    }
}

/// etcd's refusal of a batch over its limits, with what to do about it:
/// a batch is one transaction (a commit is never split), so the server's
/// limits must hold the largest commit.
fn too_large(error: etcd_client::Error, operations: usize) -> StoreError {
    let text = error.to_string();
    if text.contains("too many operations in txn request") || text.contains("request is too large") || text.contains("larger than max") {
        return StoreError::Etcd(format!(
            "a batch of {operations} writes is over etcd's limits ({text}): start etcd with a larger --max-txn-ops and --max-request-bytes (docs/ARCHITECTURE.md, the store)"
        ));
    }
    etcd_error(error)
}

/// An object as it is kept in etcd: without `resourceVersion`, which is
/// the key's `mod_revision`.
fn encode(value: &Value) -> Vec<u8> {
    let mut value = value.clone();
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    value.to_string().into_bytes()
}

/// An object as etcd holds it, with its `resourceVersion`.
fn decode(kv: &KeyValue) -> Result<Value, StoreError> {
    let mut value: Value =
        serde_json::from_slice(kv.value()).map_err(|source| StoreError::Corrupt { what: String::from_utf8_lossy(kv.key()).into_owned(), source })?;
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(kv.mod_revision().to_string()));
    }
    Ok(value)
}

impl EtcdStore {
    /// Connects, reads everything under the prefix into memory, and starts
    /// the watch that keeps it current.
    pub fn connect(config: &EtcdConfig) -> Result<EtcdStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd-store")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io { path: "etcd runtime".into(), source })?;
        let mut options =
            ConnectOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(WRITE_TIMEOUT).with_keep_alive(KEEPALIVE.0, KEEPALIVE.1);
        if let Some(tls) = &config.tls {
            let options_tls = etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(&tls.ca))
                .identity(etcd_client::Identity::from_pem(&tls.cert, &tls.key));
            options = options.with_tls(options_tls);
        }
        let endpoints = config.endpoints.clone();
        let client = block(&runtime, async move { Client::connect(endpoints, Some(options)).await }).map_err(etcd_error)?;
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        let shared = Arc::new(Shared {
            cache: Mutex::new(Cache::default()),
            moved: Condvar::new(),
            events,
            layout: Layout { prefix: config.prefix.trim_end_matches('/').to_owned() },
            broken: Mutex::new(None),
            progress: tokio::sync::Mutex::new(None),
        });
        let revision = block(&runtime, listed(client.clone(), shared.clone()))?;
        runtime.spawn(watch(client.clone(), shared.clone(), revision));
        let writer = config.writer.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let key = format!("{}/driftless/writes/{writer}", shared.layout.prefix);
        // Where an earlier run of this writer left its marker.
        let (mut reader, at) = (client.clone(), key.clone());
        let at = block(&runtime, async move { reader.get(at, None).await }).map_err(etcd_error)?.kvs().first().map_or(0, KeyValue::mod_revision);
        let marker = Marker { key, at };
        Ok(EtcdStore { shared, client, runtime: Some(runtime), writing: Mutex::new(marker), fence: Mutex::new(None) })
    }

    /// Makes every later write conditional on the leader key still being
    /// the one created at `revision` (`Leadership::fence`): once another
    /// instance is elected, this one's writes fail with `NotLeader`.
    pub fn fence(&self, fence: Option<(String, i64)>) {
        *self.fence.lock().unwrap_or_else(PoisonError::into_inner) = fence;
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives as long as the store")
    }

    /// Waits until memory is at `revision` or later.
    fn caught_up(&self, revision: u64) -> Result<(), StoreError> {
        let started = Instant::now();
        let deadline = started + WRITE_TIMEOUT;
        let mut asked = started;
        let mut cache = self.shared.cache();
        while cache.revision < revision {
            if let Some(why) = self.shared.broken.lock().unwrap_or_else(PoisonError::into_inner).clone() {
                return Err(StoreError::Etcd(why));
            }
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(StoreError::Etcd(format!("the watch did not reach revision {revision} within {WRITE_TIMEOUT:?}")));
            }
            // The revision was moved by writes outside the prefix (or
            // the watch is slow): etcd says where the watch is, with a
            // progress notification, once asked.
            if now.duration_since(asked) >= PROGRESS_EVERY {
                asked = now;
                drop(cache);
                let shared = self.shared.clone();
                // Never waited on past a moment: with etcd unreachable the
                // request cannot leave, and this wait has a deadline.
                block(self.runtime(), async move {
                    let ask = async {
                        if let Some(sender) = shared.progress.lock().await.as_mut() {
                            let _ = sender.request_progress().await;
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_millis(50), ask).await;
                });
                cache = self.shared.cache();
                continue;
            }
            cache = self.shared.moved.wait_timeout(cache, left.min(Duration::from_millis(100))).unwrap_or_else(PoisonError::into_inner).0;
        }
        Ok(())
    }

    /// The batch computed on memory as it is: the transaction, and the
    /// objects it writes (their `resourceVersion` filled in once committed).
    fn stage(&self, batch: &Batch, marker: &Marker, mark: &str) -> Result<Staged, StoreError> {
        let cache = self.shared.cache();
        let layout = &self.shared.layout;
        let now = now_rfc3339();
        // Revisions are etcd's, one for the whole transaction: filled in
        // from the key's mod_revision when the change comes back.
        let objects = &cache.objects;
        // A copy per attempt: a conflict stages the batch again.
        let crate::stage::Staged { finals: staged, changes } = crate::stage::stage(batch.ops.clone(), &|key| objects.get(key), &now, &mut || 0)?;
        let written: Vec<Arc<Value>> = changes.into_iter().map(|(_, _, value, _)| value).collect();
        // Each key written on condition that it is as memory has it: absent
        // (create revision 0) or at its mod revision.
        let mut compares = Vec::new();
        let mut ops = Vec::new();
        for (key, value) in &staged {
            let at = layout.object(key);
            compares.push(Compare::mod_revision(at.clone(), CompareOp::Equal, cache.versions.get(&at).copied().unwrap_or(0)));
            match value {
                Some(value) => ops.push(TxnOp::put(at, encode(value), None)),
                None => ops.push(TxnOp::delete(at, None)),
            }
        }
        // A record set twice in one batch is written once, as last set
        // (etcd refuses a key twice in a transaction).
        let records: BTreeMap<&str, &Value> = batch.meta.iter().map(|(n, v)| (n.as_str(), v)).collect();
        for (name, value) in records {
            let at = layout.meta(name);
            if value.is_null() {
                ops.push(TxnOp::delete(at, None));
            } else {
                ops.push(TxnOp::put(at, value.to_string().into_bytes(), None));
            }
        }
        // The marker, set to this batch's mark if no attempt at a batch of
        // this instance committed since it was last read; read back when
        // the transaction fails, to see whether an earlier attempt at this
        // batch committed after all.
        compares.push(Compare::mod_revision(marker.key.clone(), CompareOp::Equal, marker.at));
        ops.push(TxnOp::put(marker.key.clone(), mark, None));
        let mut otherwise = vec![TxnOp::get(marker.key.clone(), None)];
        let fence = self.fence.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some((key, revision)) = &fence {
            compares.push(Compare::create_revision(key.clone(), CompareOp::Equal, *revision));
            otherwise.push(TxnOp::get(key.clone(), None));
        }
        Ok(Staged { txn: Txn::new().when(compares).and_then(ops).or_else(otherwise), written, fence })
    }
}

impl EtcdStore {
    /// Applies `batch` as one transaction marked `mark` (one mark per
    /// batch, whatever the number of attempts). `open`: what an earlier
    /// attempt at it wrote, if etcd left that attempt's outcome open.
    fn apply_marked(&self, batch: &Batch, mark: &str, open: Option<Vec<Arc<Value>>>) -> Result<Vec<Arc<Value>>, StoreError> {
        let mut marker = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(earlier) = open
            && let Some(revision) = self.abandon(&mut marker, mark)?
        {
            self.caught_up(revision)?;
            return Ok(self.as_written(earlier, revision));
        }
        self.attempts(batch, mark, &mut marker)
    }

    /// The attempts at one batch, until one commits, etcd refuses it, or
    /// time runs out. An attempt whose outcome etcd leaves open is closed
    /// off before the next ([`EtcdStore::abandon`]): it either committed,
    /// or never will, so no error returned here can be undone by it.
    fn attempts(&self, batch: &Batch, mark: &str, marker: &mut Marker) -> Result<Vec<Arc<Value>>, StoreError> {
        let deadline = Instant::now() + 2 * WRITE_TIMEOUT;
        let (mut lost, mut unanswered) = (0, 0u64);
        loop {
            let Staged { txn, written, fence } = self.stage(batch, marker, mark)?;
            if written.is_empty() && batch.meta.is_empty() {
                return Ok(Vec::new());
            }
            let mut client = self.client.clone();
            let operations = written.len() + batch.meta.len();
            tracing::debug!(operations, "sending the batch to etcd");
            let outcome = block(self.runtime(), async move { tokio::time::timeout(ATTEMPT, client.txn(txn)).await });
            let response = match outcome {
                Ok(Ok(response)) => response,
                Ok(Err(error)) if refused(&error) => return Err(too_large(error, operations)),
                failed => {
                    let why = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => format!("no answer within {ATTEMPT:?}"),
                    };
                    tracing::warn!(%why, "etcd left a write's outcome open; closing it off");
                    if let Some(revision) = self.abandon(marker, mark)? {
                        self.caught_up(revision)?;
                        return Ok(self.as_written(written, revision));
                    }
                    if Instant::now() >= deadline {
                        return Err(StoreError::Etcd(format!("etcd did not commit the batch within {:?}: {why}", 2 * WRITE_TIMEOUT)));
                    }
                    // A member that refuses at once is not asked again at once.
                    unanswered += 1;
                    std::thread::sleep(Duration::from_millis(100 * unanswered.min(10)));
                    continue;
                }
            };
            let revision = response.header().map_or(0, |h| h.revision()).max(0) as u64;
            if response.succeeded() {
                marker.at = revision as i64;
                self.caught_up(revision)?;
                return Ok(self.as_written(written, revision));
            }
            // Memory must reach what beat the batch before it is computed
            // again.
            self.caught_up(revision)?;
            let mut gets = response.op_responses().into_iter().filter_map(|op| match op {
                etcd_client::TxnOpResponse::Get(get) => Some(get.kvs().first().cloned()),
                _ => None,
            });
            // Where the marker is now (every open attempt was closed off,
            // so it never holds this batch's mark here).
            let now = gets.next().flatten();
            marker.at = now.as_ref().map_or(0, KeyValue::mod_revision);
            // The fence failed: another instance leads now. Never retried.
            if let Some((key, fenced)) = &fence {
                let now = gets.next().map(|kv| kv.map_or(0, |kv| kv.create_revision()));
                if now != Some(*fenced) {
                    return Err(StoreError::NotLeader { key: key.clone(), revision: *fenced });
                }
            }
            lost += 1;
            if lost >= RETRIES {
                return Err(StoreError::Etcd(format!("the batch lost to other writers {RETRIES} times")));
            }
            tracing::debug!(revision, "another writer changed an object of this batch; computing it again");
        }
    }
}

impl EtcdStore {
    /// Makes sure no attempt at the batch marked `mark` can commit any
    /// more, by moving the marker on (which every attempt's compare
    /// needs unchanged): `None` once moved, or the revision the batch was
    /// committed at if the marker says it was.
    /// Its error: etcd could not be asked within [`WRITE_TIMEOUT`], so the
    /// outcome stays unknown.
    fn abandon(&self, marker: &mut Marker, mark: &str) -> Result<Option<u64>, StoreError> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let mut tries = 0u64;
        loop {
            let key = marker.key.clone();
            let txn = Txn::new()
                .when([Compare::mod_revision(key.clone(), CompareOp::Equal, marker.at)])
                .and_then([TxnOp::put(key.clone(), format!("abandoned {mark}"), None)])
                .or_else([TxnOp::get(key, None)]);
            let mut client = self.client.clone();
            match block(self.runtime(), async move { tokio::time::timeout(ATTEMPT, client.txn(txn)).await }) {
                Ok(Ok(response)) if response.succeeded() => {
                    marker.at = response.header().map_or(0, |h| h.revision());
                    return Ok(None);
                }
                Ok(Ok(response)) => {
                    let now = response.op_responses().into_iter().find_map(|op| match op {
                        etcd_client::TxnOpResponse::Get(get) => get.kvs().first().cloned(),
                        _ => None,
                    });
                    if let Some(kv) = now.as_ref().filter(|kv| kv.value() == mark.as_bytes()) {
                        marker.at = kv.mod_revision();
                        return Ok(Some(kv.mod_revision().max(0) as u64));
                    }
                    marker.at = now.as_ref().map_or(0, KeyValue::mod_revision);
                }
                // Itself left open: the next try's compare sees whether it
                // moved the marker.
                failed => {
                    if Instant::now() >= deadline {
                        let why = match failed {
                            Ok(Err(error)) => error.to_string(),
                            _ => format!("no answer within {ATTEMPT:?}"),
                        };
                        return Err(StoreError::Etcd(format!("whether a write was committed is unknown: etcd did not answer: {why}")));
                    }
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100 * tries.min(10)));
                }
            }
        }
    }

    /// The batch's objects as the watch brought them back at `revision`
    /// (a delete gives the object as it was).
    fn as_written(&self, written: Vec<Arc<Value>>, revision: u64) -> Vec<Arc<Value>> {
        let cache = self.shared.cache();
        let revision = revision.to_string();
        written
            .into_iter()
            .map(|value| match Key::of(&value).and_then(|key| cache.objects.get(&key)) {
                Some(now) if now.pointer("/metadata/resourceVersion").and_then(Value::as_str) == Some(revision.as_str()) => now,
                _ => value,
            })
            .collect()
    }
}

struct Staged {
    txn: Txn,
    written: Vec<Arc<Value>>,
    fence: Option<(String, i64)>,
}

/// Runs `future` on the store's runtime from a thread that may itself be
/// inside another runtime (the daemon's): the caller blocks, as on a
/// SQLite write.
fn block<T: Send + 'static>(runtime: &tokio::runtime::Runtime, future: impl std::future::Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().expect("the store's runtime runs every task it is given")
}

/// [`list`], tried again while etcd is between leaders or a member is
/// gone (a read changes nothing, so trying again is always safe).
async fn listed(client: Client, shared: Arc<Shared>) -> Result<u64, StoreError> {
    let mut tries = 0u64;
    loop {
        match list(client.clone(), shared.clone()).await {
            Err(StoreError::Etcd(error)) if tries < 8 => {
                tries += 1;
                tracing::debug!(%error, tries, "listing the store failed; trying again");
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
            outcome => return outcome,
        }
    }
}

/// Reads everything under the prefix into memory; the revision read at.
async fn list(mut client: Client, shared: Arc<Shared>) -> Result<u64, StoreError> {
    let all = shared.layout.all();
    let response = client.get(all, Some(GetOptions::new().with_prefix())).await.map_err(etcd_error)?;
    let revision = response.header().map_or(0, |h| h.revision()).max(0) as u64;
    let mut fresh = Cache { revision, ..Cache::default() };
    for kv in response.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        match shared.layout.parse(&key) {
            Some(Named::Object(object)) => {
                fresh.objects.insert(object, Arc::new(decode(kv)?));
            }
            Some(Named::Meta(name)) => {
                let value = serde_json::from_slice(kv.value()).map_err(|source| StoreError::Corrupt { what: format!("metadata record {name}"), source })?;
                fresh.meta.insert(name, value);
            }
            Some(Named::Internal) => continue,
            None => {
                tracing::warn!(%key, "a key under the store's prefix that names no object this version knows is ignored");
                continue;
            }
        }
        fresh.versions.insert(key, kv.mod_revision());
    }
    // A list after a compacted watch: announce what changed meanwhile, as
    // a watcher would have seen it.
    let mut cache = shared.cache();
    let mut announced = Vec::new();
    for (key, value) in fresh.objects.iter() {
        match cache.objects.get(key) {
            None => announced.push((EventType::Added, key.clone(), value)),
            Some(old) if old != value => announced.push((EventType::Modified, key.clone(), value)),
            Some(_) => {}
        }
    }
    for (key, value) in cache.objects.iter() {
        if !fresh.objects.contains_key(key) {
            announced.push((EventType::Deleted, key.clone(), value));
        }
    }
    *cache = fresh;
    for (kind, key, object) in announced {
        let _ = shared.events.send(WatchEvent { kind, key, object, revision });
    }
    shared.moved.notify_all();
    Ok(revision)
}

/// Keeps memory current from `revision` on, until the runtime stops.
async fn watch(mut client: Client, shared: Arc<Shared>, mut revision: u64) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let outcome = watch_from(&mut client, &shared, &mut revision).await;
        // A watch that ran a while before failing is a new run of failures.
        if started.elapsed() > Duration::from_secs(30) {
            failures = 0;
        }
        match outcome {
            Ok(Restart::Compacted) => {
                tracing::info!(revision, "the store's watch revision was compacted; listing again");
                match listed(client.clone(), shared.clone()).await {
                    Ok(listed) => revision = listed,
                    Err(error) => tracing::warn!(%error, "listing the store again failed"),
                }
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, failures, "the store's watch failed; resuming");
                if failures > 20 {
                    *shared.broken.lock().unwrap_or_else(PoisonError::into_inner) = Some(format!("the store's watch keeps failing: {error}"));
                    shared.moved.notify_all();
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(10)))).await;
            }
        }
    }
}

enum Restart {
    Compacted,
}

async fn watch_from(client: &mut Client, shared: &Shared, revision: &mut u64) -> Result<Restart, StoreError> {
    let options = WatchOptions::new().with_prefix().with_start_revision(*revision as i64 + 1).with_prev_key().with_progress_notify();
    let (sender, mut stream) = client.watch(shared.layout.all(), Some(options)).await.map_err(etcd_error)?.split();
    *shared.progress.lock().await = Some(sender);
    while let Some(response) = stream.message().await.map_err(etcd_error)? {
        if response.canceled() {
            if response.compact_revision() > 0 {
                return Ok(Restart::Compacted);
            }
            return Err(StoreError::Etcd(format!("the watch was cancelled: {}", response.cancel_reason())));
        }
        let header = response.header().map_or(0, |h| h.revision()).max(0) as u64;
        let mut cache = shared.cache();
        let mut announced = Vec::new();
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let at = kv.mod_revision().max(0) as u64;
            match (shared.layout.parse(&key), event.event_type()) {
                (Some(Named::Object(object)), EtcdEvent::Put) => {
                    let value = Arc::new(decode(kv)?);
                    let kind = if cache.objects.insert(object.clone(), value.clone()) { EventType::Modified } else { EventType::Added };
                    cache.versions.insert(key, kv.mod_revision());
                    announced.push(WatchEvent { kind, key: object, object: value, revision: at });
                }
                (Some(Named::Object(object)), EtcdEvent::Delete) => {
                    cache.versions.remove(&key);
                    if let Some(old) = cache.objects.remove(&object) {
                        announced.push(WatchEvent { kind: EventType::Deleted, key: object, object: old, revision: at });
                    }
                }
                (Some(Named::Meta(name)), EtcdEvent::Put) => {
                    if let Ok(value) = serde_json::from_slice(kv.value()) {
                        cache.meta.insert(name, value);
                    }
                    cache.versions.insert(key, kv.mod_revision());
                }
                (Some(Named::Meta(name)), EtcdEvent::Delete) => {
                    cache.meta.remove(&name);
                    cache.versions.remove(&key);
                }
                (Some(Named::Internal) | None, _) => {}
            }
            *revision = (*revision).max(at);
        }
        // A progress notification moves the revision without events. A
        // response with events is not read for its header: catching up,
        // etcd sends a long history in parts, each headed with its current
        // revision, and memory is at the last event it holds.
        if response.events().is_empty() {
            *revision = (*revision).max(header);
        }
        cache.revision = *revision;
        drop(cache);
        for event in announced {
            let _ = shared.events.send(event);
        }
        shared.moved.notify_all();
    }
    Err(StoreError::Etcd("the watch stream ended".into()))
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Store for EtcdStore {
    fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.shared.cache().objects.get(key)
    }

    fn count(&self, kind: Kind, namespace: Option<&str>) -> usize {
        self.shared.cache().objects.count(kind, namespace)
    }

    fn keys(&self, kind: Kind, namespace: Option<&str>) -> Vec<Key> {
        self.shared.cache().objects.keys(kind, namespace)
    }

    fn list(&self, kind: Kind, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let cache = self.shared.cache();
        let items = cache.objects.of_kind(kind, namespace);
        (items, cache.revision)
    }

    fn apply(&self, batch: Batch) -> Result<Vec<Arc<Value>>, StoreError> {
        // Every attempt at this batch carries the same mark: whichever
        // commits, the marker says so, and only one can.
        self.apply_marked(&batch, &uuid::Uuid::new_v4().to_string(), None)
    }

    fn watch(&self) -> broadcast::Receiver<WatchEvent> {
        // Under the cache's lock: the receiver sees exactly the changes
        // after `revision()`.
        let _cache = self.shared.cache();
        self.shared.events.subscribe()
    }

    fn revision(&self) -> u64 {
        self.shared.cache().revision
    }

    fn meta(&self, name: &str) -> Option<Value> {
        self.shared.cache().meta.get(name).cloned()
    }

    fn meta_names(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self.shared.cache().meta.keys().filter(|n| n.starts_with(prefix)).cloned().collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn keys_follow_kubernetes_layout_and_read_back() {
        let layout = Layout { prefix: "/registry".into() };
        let pod = Key::new(Kind::Pod, "default", "web-1");
        assert_eq!(layout.object(&pod), "/registry/pods/default/web-1");
        let namespace = Key::new(Kind::Namespace, "", "apps");
        assert_eq!(layout.object(&namespace), "/registry/namespaces/apps");
        assert!(matches!(layout.parse("/registry/pods/default/web-1"), Some(Named::Object(k)) if k == pod));
        assert!(matches!(layout.parse("/registry/namespaces/apps"), Some(Named::Object(k)) if k == namespace));
        assert!(matches!(layout.parse("/registry/driftless/meta/job-run/ns/name"), Some(Named::Meta(n)) if n == "job-run/ns/name"));
        assert!(layout.parse("/registry/gizmos/x").is_none() && layout.parse("/other/pods/a/b").is_none());
        // Each kind has a resource of its own.
        let mut plurals: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
        plurals.sort_unstable();
        plurals.dedup();
        assert_eq!(plurals.len(), Kind::ALL.len());
        assert!(!plurals.contains(&"driftless"));
    }

    #[test]
    fn store_urls_name_members_and_a_prefix() {
        let config = EtcdConfig::parse("etcd://127.0.0.1:2379,127.0.0.1:22379").unwrap();
        assert_eq!(config.endpoints, ["http://127.0.0.1:2379", "http://127.0.0.1:22379"]);
        assert_eq!(config.prefix, "/registry");
        assert_eq!(EtcdConfig::parse("etcds://h:2379/clusters/a/").unwrap().prefix, "/clusters/a");
        assert!(EtcdConfig::parse("etcds://h:2379").unwrap().endpoints[0].starts_with("https://"));
        assert!(EtcdConfig::parse("sqlite:///x").is_err() && EtcdConfig::parse("etcd://").is_err());
    }
}
