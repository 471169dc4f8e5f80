//! Driftless' own endpoints: the sync loop's status, the ledger's history,
//! "sync now", and the node's images.

use driftless_model::Kind;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query as AxumQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use crate::ApiError;

/// The node's image operations, as the daemon implements them over its
/// image store (so the CLI's `image` commands go through the daemon while
/// it runs).
pub trait ImageOps: Send + Sync {
    /// Every image: references, digests, sizes.
    fn list(&self) -> Result<Value, String>;
    /// Imports an OCI layout or `docker save` archive at a path the daemon
    /// can read.
    fn import(&self, path: &str, name: Option<&str>) -> Result<Value, String>;
    /// Pulls from a registry.
    fn pull(&self, reference: &str, insecure: &[String], username: Option<&str>, password: Option<&str>) -> Result<Value, String>;
    /// Removes an image.
    fn remove(&self, reference: &str) -> Result<Value, String>;
}

/// The write path, as the daemon implements it over the watched
/// repository: a verb becomes a commit (`driftless scale`, `set image`,
/// `rollout undo`...). Errors carry the HTTP status to answer with.
pub trait WriteOps: Send + Sync {
    /// Carries out one verb request; blocks (git, validation, the sync).
    fn write(&self, request: Value) -> Result<Value, WriteFailure>;
}

/// Why a write committed nothing.
#[derive(Debug)]
pub enum WriteFailure {
    /// The request is wrong, or the change is refused (invalid result,
    /// derived object, dirty file): 422 with the reason.
    Refused(String),
    /// The object is not declared: 404.
    NotFound(String),
    /// The branch moved or the remote refused: 409.
    Conflict(String),
    /// The daemon failed.
    Internal(String),
}

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (WriteFailure::Refused(m) | WriteFailure::NotFound(m) | WriteFailure::Conflict(m) | WriteFailure::Internal(m)) = self;
        f.write_str(m)
    }
}

pub(crate) async fn write(State(state): State<ApiState>, caller: Option<axum::Extension<crate::auth::Caller>>, Json(body): Json<Value>) -> Response {
    match commit(&state, caller.map(|c| c.0).as_ref(), body).await {
        Ok(value) => Json(value).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Hands a write request to the write path. Over TCP the token says who
/// writes: the commit's author is that identity, whatever the request
/// claims (on the socket, root on the node names the author, `root` when
/// it names none).
pub async fn commit(state: &ApiState, caller: Option<&crate::auth::Caller>, mut body: Value) -> Result<Value, ApiError> {
    let Some(ops) = state.writes.clone() else {
        return Err(ApiError::BadRequest("this daemon syncs no repository".into()));
    };
    if let Some(caller) = caller {
        let (name, email) = caller.author();
        body["author"] = json!({"name": name, "email": email});
    } else if body.get("author").is_none() {
        body["author"] = json!({"name": "root", "email": "root@localhost"});
    }
    match tokio::task::spawn_blocking(move || ops.write(body)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(WriteFailure::Refused(message))) => Err(ApiError::Invalid(message)),
        Ok(Err(WriteFailure::NotFound(message))) => Err(ApiError::NotFound(message)),
        Ok(Err(WriteFailure::Conflict(message))) => Err(ApiError::Conflict(message)),
        Ok(Err(WriteFailure::Internal(message))) => Err(ApiError::Internal(message)),
        Err(error) => Err(ApiError::Internal(error.to_string())),
    }
}

pub(crate) async fn status(State(state): State<ApiState>) -> Response {
    let sync = driftless_sync::Syncer::status(&*state.store);
    let pods = state.store.list(Kind::Pod, None).0;
    let running = pods.iter().filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")).count();
    let nodes: Vec<Value> = state.store.list(Kind::Node, None).0.iter().map(|n| (**n).clone()).collect();
    Json(json!({
        "sync": sync,
        "pods": {"total": pods.len(), "running": running},
        "nodes": nodes.iter().map(|n| n.pointer("/metadata/name").cloned()).collect::<Vec<_>>(),
        "revision": state.store.revision(),
        // A store that cannot write (a full disk) cannot save that in the
        // sync status either: said here, from memory.
        "storeError": state.store.write_error(),
        // The daemon's automatic rollbacks (and those it refused), one
        // record per workload.
        "rollbacks": state.store.meta_names("rollback/").iter().filter_map(|n| state.store.meta(n)).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// What runs, for `driftless plan --live`: the declared objects and those
/// of the request's `objects` that exist, as the change engine reads them.
pub(crate) async fn live(State(state): State<ApiState>, caller: Option<axum::Extension<crate::auth::Caller>>, Json(body): Json<Value>) -> Response {
    let store = state.store.clone();
    // A reviewer with a read-only token plans against what runs, but sees
    // Secrets' values as the ledger shows them: redacted.
    let redact = caller.is_some_and(|c| c.node().is_none() && !c.may_write());
    match tokio::task::spawn_blocking(move || driftless_sync::StoreLive::new(&*store).snapshot(&body)).await {
        Ok(mut snapshot) => {
            if redact {
                for entry in snapshot.get_mut("objects").and_then(Value::as_array_mut).into_iter().flatten() {
                    if entry.pointer("/ref/kind").and_then(Value::as_str) == Some("Secret") {
                        let value = entry["value"].take();
                        entry["value"] = driftless_diff::redacted(Kind::Secret, &value);
                    }
                }
            }
            Json(snapshot).into_response()
        }
        Err(error) => ApiError::Internal(error.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    limit: Option<usize>,
}

pub(crate) async fn history(State(state): State<ApiState>, AxumQuery(q): AxumQuery<HistoryQuery>) -> Response {
    let Some(repo) = state.ledger.clone() else {
        return ApiError::BadRequest("this daemon syncs no repository".into()).into_response();
    };
    let limit = q.limit.unwrap_or(100);
    let finished = finished_jobs(&*state.store);
    let pending = driftless_sync::Syncer::status(&*state.store).pending;
    match tokio::task::spawn_blocking(move || driftless_sync::ledger::read_with_pending(&repo, limit, pending)).await {
        Ok(Ok(entries)) => Json(json!({"entries": entries, "finished_jobs": finished})).into_response(),
        Ok(Err(error)) => ApiError::Internal(error.to_string()).into_response(),
        Err(error) => ApiError::Internal(error.to_string()).into_response(),
    }
}

/// The Jobs git declared that ran to the end and were removed after their
/// `ttlSecondsAfterFinished`: remembered so the same spec does not run
/// again, and listed with the ledger.
fn finished_jobs(store: &dyn driftless_store::Store) -> Vec<Value> {
    let mut out = Vec::new();
    for name in store.meta_names(driftless_store::records::JOB_RUN_PREFIX) {
        let Some(job) = store.meta(&name) else { continue };
        let ended = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["status"] == "True" && (c["type"] == "Complete" || c["type"] == "Failed")).cloned());
        let finished = job.pointer("/status/completionTime").or_else(|| ended.as_ref().and_then(|c| c.get("lastTransitionTime"))).cloned();
        out.push(json!({
            "job": format!("{}/{}", job.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default(), job.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()),
            "result": ended.as_ref().and_then(|c| c.get("type")).cloned().unwrap_or(Value::Null),
            "reason": ended.as_ref().and_then(|c| c.get("reason")).cloned().unwrap_or(Value::Null),
            "finished": finished.unwrap_or(Value::Null),
            "commit": job.pointer("/metadata/annotations").and_then(|a| a.get(driftless_model::annotations::SOURCE_COMMIT)).cloned().unwrap_or(Value::Null),
        }));
    }
    out
}

pub(crate) async fn sync(State(state): State<ApiState>) -> Response {
    let Some(sender) = state.sync.clone() else {
        return ApiError::BadRequest("this daemon syncs no repository".into()).into_response();
    };
    // Waited for as a future: a client waiting on a slow sync holds no
    // thread of the daemon's bounded blocking pool.
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let reply = driftless_sync::Reply::new(move |outcome| drop(reply.send(outcome)));
    if sender.send(driftless_sync::Trigger::Now(reply)).is_err() {
        return ApiError::Internal("the sync loop has stopped".into()).into_response();
    }
    match tokio::time::timeout(Duration::from_secs(120), outcome).await {
        Ok(Ok(Ok(outcome))) => Json(json!(outcome)).into_response(),
        Ok(Ok(Err(error))) => ApiError::Internal(error).into_response(),
        Ok(Err(_)) => ApiError::Internal("the sync loop has stopped".into()).into_response(),
        Err(_) => ApiError::Internal("the sync did not finish in time".into()).into_response(),
    }
}

fn images(state: &ApiState) -> Result<Arc<dyn ImageOps>, ApiError> {
    state.images.clone().ok_or_else(|| ApiError::BadRequest("this daemon has no image store".into()))
}

async fn blocking(f: impl FnOnce() -> Result<Value, String> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(error)) => ApiError::BadRequest(error).into_response(),
        Err(error) => ApiError::Internal(error.to_string()).into_response(),
    }
}

pub(crate) async fn images_list(State(state): State<ApiState>) -> Response {
    match images(&state) {
        Ok(ops) => blocking(move || ops.list()).await,
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct Import {
    path: String,
    name: Option<String>,
}

pub(crate) async fn images_import(State(state): State<ApiState>, Json(body): Json<Import>) -> Response {
    match images(&state) {
        Ok(ops) => blocking(move || ops.import(&body.path, body.name.as_deref())).await,
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct Pull {
    reference: String,
    #[serde(default)]
    insecure_registries: Vec<String>,
    username: Option<String>,
    password: Option<String>,
}

pub(crate) async fn images_pull(State(state): State<ApiState>, Json(body): Json<Pull>) -> Response {
    match images(&state) {
        Ok(ops) => blocking(move || ops.pull(&body.reference, &body.insecure_registries, body.username.as_deref(), body.password.as_deref())).await,
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct Remove {
    reference: String,
}

pub(crate) async fn images_remove(State(state): State<ApiState>, Json(body): Json<Remove>) -> Response {
    match images(&state) {
        Ok(ops) => blocking(move || ops.remove(&body.reference)).await,
        Err(e) => e.into_response(),
    }
}
