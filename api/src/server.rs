//! The API server: routes, the Kubernetes-shaped reads, watches, and the
//! few writes there are.

mod attach;
mod channel;
mod driftless;
mod exec;
mod forward;
mod logs;
mod metrics;
mod nodes;
mod openapi;
pub(crate) mod portforward;
mod prometheus;
mod query;
mod table;
mod writes;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use driftless_model::Kind;
use driftless_nodeapi::SharedRuntime;
use driftless_store::{EventType, Key, Store, StoreExt};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use driftless::{ImageOps, WriteFailure, WriteOps, commit as write_as};
pub use forward::SERVING_CA;
pub use logs::{LogRequest, stream as log_stream};
use query::Query;

use crate::ApiError;

/// What the API serves from.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The node's runtime, for logs and exec.
    pub node: Option<SharedRuntime>,
    /// The name of that node: the streams of pods on others are
    /// forwarded to their agents.
    pub node_name: Option<String>,
    /// The node's pod and node metrics (`metrics.k8s.io`).
    pub metrics: Option<driftless_nodeapi::Metrics>,
    /// Wakes the sync loop (`driftless sync`).
    pub sync: Option<std::sync::mpsc::Sender<driftless_sync::Trigger>>,
    /// The repository holding the ledger.
    pub ledger: Option<PathBuf>,
    /// The node's images.
    pub images: Option<Arc<dyn ImageOps>>,
    /// The write path (verbs that become commits).
    pub writes: Option<Arc<dyn WriteOps>>,
    /// The bearer tokens TCP clients may present, and whose they are.
    pub tokens: Option<Arc<crate::auth::Tokens>>,
    /// Where writes go instead (`commit to ./myrepo (branch main, path apps)`).
    pub write_hint: String,
    /// Ends open watches and log streams at shutdown.
    pub shutdown: CancellationToken,
}

impl ApiState {
    /// A state serving `store` alone: no node, no repository, no tokens
    /// (tests, and tools reading a store).
    pub fn of_store(store: Arc<dyn Store>) -> ApiState {
        ApiState {
            store,
            node: None,
            node_name: None,
            metrics: None,
            sync: None,
            ledger: None,
            images: None,
            writes: None,
            tokens: None,
            write_hint: String::new(),
            shutdown: CancellationToken::new(),
        }
    }
}

fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(prometheus::metrics))
        .route(
            "/version",
            get(|| async {
                axum::Json(
                    json!({"major": "1", "minor": "33", "gitVersion": concat!("v1.33.0-driftless.", env!("CARGO_PKG_VERSION")), "platform": "linux/amd64"}),
                )
            }),
        )
        .route("/driftless/v1/status", get(driftless::status))
        .route("/driftless/v1/history", get(driftless::history))
        .route("/driftless/v1/sync", post(driftless::sync))
        .route("/driftless/v1/live", post(driftless::live))
        .route("/driftless/v1/write", post(driftless::write))
        .route("/driftless/v1/images", get(driftless::images_list))
        .route("/driftless/v1/images/import", post(driftless::images_import))
        .route("/driftless/v1/images/pull", post(driftless::images_pull))
        .route("/driftless/v1/images/remove", post(driftless::images_remove))
        .route("/apis/metrics.k8s.io/v1beta1", get(metrics::resources))
        .route("/apis/metrics.k8s.io/v1beta1/nodes", get(metrics::nodes))
        .route("/apis/metrics.k8s.io/v1beta1/nodes/{name}", get(metrics::node))
        .route("/apis/metrics.k8s.io/v1beta1/pods", get(metrics::all_pods))
        .route("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods", get(metrics::pods_in))
        .route("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}", get(metrics::pod))
        .route("/openapi/v2", get(|headers: axum::http::HeaderMap| async move { openapi_v2(&headers) }))
        .route("/openapi/v3", get(|| async { axum::Json(openapi::index()) }))
        .route(
            "/openapi/v3/{*path}",
            get(|axum::extract::Path(path): axum::extract::Path<String>| async move {
                match openapi::document(&path) {
                    Some(document) => json_response(document),
                    None => ApiError::NotFound(format!("no OpenAPI document for {path}")).into_response(),
                }
            }),
        )
        .fallback(kubernetes)
        .with_state(state)
}

/// `/openapi/v2` in JSON to clients that take it; 406 to those that ask
/// only for the protobuf encoding (see [`openapi`]).
fn openapi_v2(headers: &axum::http::HeaderMap) -> Response {
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    let takes_json = accept.split(',').map(|t| t.split(';').next().unwrap_or("").trim()).any(|t| matches!(t, "application/json" | "application/*" | "*/*"));
    if takes_json {
        json_response(openapi::swagger())
    } else {
        ApiError::NotAcceptable(format!("/openapi/v2 is served as application/json only, not {accept}")).into_response()
    }
}

/// Serves the API on a Unix socket at `path` (replacing a stale one, mode
/// 0600) until `state.shutdown` fires.
pub async fn serve_unix(path: PathBuf, state: ApiState) -> std::io::Result<()> {
    serve_unix_on(bind_unix(&path)?, state).await
}

/// Binds the API's socket at `path` (replacing a stale one), readable by
/// root only. Bound before serving, a caller knows from when the socket
/// is answered (a standby's API hands it over without a gap).
pub fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the API on a socket [`bind_unix`] bound, until the state's
/// shutdown fires.
pub async fn serve_unix_on(listener: tokio::net::UnixListener, state: ApiState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    axum::serve(listener, router(state)).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

/// Serves the API over HTTPS on `listener`: every request must carry a
/// bearer token the state's tokens name; the caller's identity goes with
/// the request (the write path's commit author). `pages` (the dashboard)
/// are served beside it without that check: they keep sessions of their
/// own. Until `state.shutdown` fires.
pub async fn serve_tls(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>, state: ApiState, pages: Option<Router>) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let app = authenticated(state);
    let app = match pages {
        Some(pages) => pages.merge(app),
        None => app,
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: back off rather than spin.
                    tracing::warn!(%error, "accepting an API connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (acceptor, app, shutdown) = (acceptor.clone(), app.clone(), shutdown.clone());
        tokio::spawn(async move {
            // A client that never finishes its handshake is dropped.
            let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).with_upgrades();
            tokio::select! {
                _ = shutdown.cancelled() => {}
                result = connection => if let Err(error) = result {
                    tracing::debug!(%peer, %error, "API connection ended");
                },
            }
        });
    }
}

/// The API as [`serve_tls`] serves it, without the socket: every request
/// must carry a bearer token the state's tokens name, and is refused 401
/// or 403 here otherwise; the caller goes with the request. Public for
/// in-process clients (the request fuzz target).
pub fn authenticated(state: ApiState) -> Router {
    let tokens = state.tokens.clone().unwrap_or_default();
    router(state).layer(axum::middleware::from_fn(move |mut request: Request, next: axum::middleware::Next| {
        let tokens = tokens.clone();
        async move {
            let presented = request.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            match presented.and_then(|token| tokens.caller(token)).cloned() {
                // A node's token reads, and writes what a kubelet writes
                // (`nodes.rs` checks whose), and nothing else.
                Some(caller)
                    if caller.node().is_some()
                        && !reads(request.method(), request.uri().path())
                        && !nodes::node_may_try(request.method(), request.uri().path()) =>
                {
                    ApiError::Forbidden(format!(
                        "User {:?} cannot {} {}: a node writes only its own Node, Lease, pods' status and events",
                        caller.user,
                        request.method().as_str().to_ascii_lowercase(),
                        request.uri().path()
                    ))
                    .into_response()
                }
                // Kubernetes' view role reads everything but Secrets.
                Some(caller) if caller.node().is_none() && !caller.may_write() && names_secrets(request.uri().path()) => ApiError::Forbidden(format!(
                    "User {:?} cannot {} secrets: read-only tokens (group {}) do not read Secrets, as Kubernetes' view role does not",
                    caller.user,
                    request.method().as_str().to_ascii_lowercase(),
                    crate::auth::READ_ONLY_GROUP
                ))
                .into_response(),
                Some(caller) if !caller.may_write() && !reads(request.method(), request.uri().path()) => ApiError::Forbidden(format!(
                    "User {:?} cannot {} {}: the token is read-only (group {})",
                    caller.user,
                    request.method().as_str().to_ascii_lowercase(),
                    request.uri().path(),
                    crate::auth::READ_ONLY_GROUP
                ))
                .into_response(),
                Some(caller) => {
                    request.extensions_mut().insert(caller);
                    next.run(request).await
                }
                None => ApiError::Unauthorized.into_response(),
            }
        }
    }))
}

/// Whether a path names Secrets: their collection (in a namespace or all),
/// one of them, or a subresource of one.
fn names_secrets(path: &str) -> bool {
    matches!(
        parse_path(path),
        Ok(Target::Collection { resource: Kind::Secret, .. } | Target::Object { resource: Kind::Secret, .. } | Target::Sub { resource: Kind::Secret, .. })
    )
}

/// Whether a request only reads: GET and HEAD (lists, watches, logs), and
/// the live snapshot `plan --live` posts its question to. Exec, attach and
/// port-forward are GETs that upgrade to a stream into a pod: writes.
fn reads(method: &Method, path: &str) -> bool {
    let streams = ["/exec", "/attach", "/portforward"].iter().any(|s| path.ends_with(s));
    (matches!(*method, Method::GET | Method::HEAD) && !streams) || (*method == Method::POST && path == "/driftless/v1/live")
}

/// What a Kubernetes path names.
enum Target {
    Versions,
    Groups,
    ResourceList { group: String, version: String },
    Collection { resource: Kind, namespace: Option<String> },
    Object { resource: Kind, namespace: String, name: String },
    Sub { resource: Kind, namespace: String, name: String, sub: String },
}

fn parse_path(path: &str) -> Result<Target, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let not_found = || ApiError::NotFound(format!("the server could not find the requested resource ({path})"));
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Ok(Target::Versions),
        ["apis"] => return Ok(Target::Groups),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    let resource = |plural: &str| Kind::from_path(group, version, plural).ok_or_else(not_found);
    Ok(match rest {
        [] => Target::ResourceList { group: group.to_owned(), version: version.to_owned() },
        ["namespaces", ns, plural, rest @ ..] => {
            let resource = resource(plural)?;
            match rest {
                [] => Target::Collection { resource, namespace: Some((*ns).to_owned()) },
                [name] => Target::Object { resource, namespace: (*ns).to_owned(), name: (*name).to_owned() },
                [name, sub] => Target::Sub { resource, namespace: (*ns).to_owned(), name: (*name).to_owned(), sub: (*sub).to_owned() },
                _ => return Err(not_found()),
            }
        }
        [plural] => Target::Collection { resource: resource(plural)?, namespace: None },
        [plural, name] => Target::Object { resource: resource(plural)?, namespace: String::new(), name: (*name).to_owned() },
        _ => return Err(not_found()),
    })
}

fn json_response(value: &Value) -> Response {
    (StatusCode::OK, [("content-type", "application/json")], value.to_string()).into_response()
}

async fn kubernetes(State(state): State<ApiState>, request: Request) -> Response {
    match serve_kubernetes(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve_kubernetes(state: ApiState, request: Request) -> Result<Response, ApiError> {
    let query = Query::parse(request.uri().query());
    let target = parse_path(request.uri().path())?;
    let method = request.method().clone();
    match (&method, target) {
        (&Method::PUT, Target::Object { resource: resource @ (Kind::Node | Kind::Lease), namespace, name }) => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            let body = body_of(request).await?;
            Ok(json_response(&nodes::put(&state, caller.as_ref(), (resource, &namespace, &name), &body).await?))
        }
        (&Method::PUT, Target::Sub { resource: Kind::Pod, namespace, name, sub }) if sub == "status" => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            let body = body_of(request).await?;
            Ok(json_response(&nodes::pod_status(&state, caller.as_ref(), &namespace, &name, &body).await?))
        }
        (&Method::PUT, Target::Object { resource: Kind::Event, namespace, name }) => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            let body = body_of(request).await?;
            Ok(json_response(&nodes::event(&state, caller.as_ref(), &namespace, Some(&name), &body).await?))
        }
        (&Method::POST, Target::Collection { resource: Kind::Event, namespace: Some(namespace) }) if is_node(&request) => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            let body = body_of(request).await?;
            let created = nodes::event(&state, caller.as_ref(), &namespace, None, &body).await?;
            Ok((StatusCode::CREATED, [("content-type", "application/json")], created.to_string()).into_response())
        }
        // A node removes a pod whose containers have stopped; anyone else
        // deletes gracefully (below).
        (&Method::DELETE, Target::Object { resource: Kind::Pod, namespace, name }) if is_node(&request) => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            let body = body_of(request).await?;
            Ok(json_response(&nodes::remove_pod(&state, caller.as_ref(), &namespace, &name, &body).await?))
        }
        (&Method::GET, Target::Versions) => Ok(json_response(&json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}))),
        (&Method::GET, Target::Groups) => Ok(json_response(&discovery_groups())),
        (&Method::GET, Target::ResourceList { group, version }) => Ok(json_response(&discovery_resources(&group, &version)?)),
        (&Method::GET, Target::Collection { resource, namespace }) => {
            let as_table = table::wanted(request.headers()).then(|| table::Include::parse(query.get("includeObject")));
            if query.watch() {
                Ok(watch(state, resource, namespace, query, as_table))
            } else {
                let body = list(&*state.store, resource, namespace.as_deref(), &query, as_table)?;
                list_response(body, accepts_gzip(request.headers()))
            }
        }
        (&Method::GET, Target::Object { resource, namespace, name }) => {
            let key = Key::new(resource, if resource.namespaced() { namespace.clone() } else { String::new() }, name.clone());
            let object = state.store.get(&key).ok_or_else(|| ApiError::NotFound(format!("{} {name:?} not found", resource.plural())))?;
            if table::wanted(request.headers()) {
                let version = object.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
                return Ok(json_response(&table::table(resource, [&*object], &version, table::Include::parse(query.get("includeObject")))));
            }
            Ok(json_response(&object))
        }
        // A pod's streams: served here from this node's runtime, or by the
        // agent of the node it runs on.
        (&Method::GET | &Method::POST, Target::Sub { resource: Kind::Pod, namespace, name, sub })
            if matches!((&method, sub.as_str()), (&Method::GET, "log") | (_, "exec" | "attach" | "portforward")) =>
        {
            if let Some(remote) = forward::target(&state, &namespace, &name)? {
                return forward::forward(remote, request).await;
            }
            match sub.as_str() {
                "log" => logs::serve(state, &namespace, &name, &query).await,
                "attach" => attach::serve(state, &namespace, &name, &query, request).await,
                "exec" => exec::serve(state, &namespace, &name, &query, request).await,
                _ => portforward::serve(state, &namespace, &name, request).await,
            }
        }
        (&Method::GET, Target::Sub { resource, namespace, name, sub }) if sub == "status" && resource.has_status() => {
            let key = Key::new(resource, if resource.namespaced() { namespace } else { String::new() }, name.clone());
            let object = state.store.get(&key).ok_or_else(|| ApiError::NotFound(format!("{}.{} {name:?} not found", resource.plural(), resource.group())))?;
            Ok(json_response(&object))
        }
        (&Method::GET, Target::Sub { resource, namespace, name, sub }) if sub == "scale" && writes::scalable(resource) => {
            let key = Key::new(resource, namespace, name.clone());
            let object = state.store.get(&key).ok_or_else(|| ApiError::NotFound(format!("{}.{} {name:?} not found", resource.plural(), resource.group())))?;
            Ok(json_response(&writes::scale_of(resource, &object)))
        }
        (&Method::PATCH | &Method::PUT, Target::Sub { resource, namespace, name, sub }) if sub == "scale" && writes::scalable(resource) => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            let content_type = request.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_owned();
            let body = body_of(request).await?;
            let scale = writes::scale(&state, caller.as_ref(), (resource, &namespace, &name), &query, &content_type, &body).await?;
            Ok(json_response(&scale))
        }
        (&Method::POST, Target::Collection { resource, namespace }) => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            let body = body_of(request).await?;
            let created = writes::create(&state, caller.as_ref(), (resource, namespace.as_deref()), &query, &body).await?;
            Ok((StatusCode::CREATED, [("content-type", "application/json")], created.to_string()).into_response())
        }
        // `kubectl cordon`, `taint`, `label node`: a Node is observed, not
        // declared, and changes in the store.
        (&Method::PATCH, Target::Object { resource: Kind::Node, name, .. }) if !is_declared(&state, Kind::Node, "", &name) => {
            let content_type = request.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let body = body_of(request).await?;
            Ok(json_response(&nodes::patch_node(&state, &name, &content_type, &body).await?))
        }
        // The Eviction API (`kubectl drain`): a graceful delete.
        (&Method::POST, Target::Sub { resource: Kind::Pod, namespace, name, sub }) if sub == "eviction" => {
            let body = body_of(request).await?;
            let options = serde_json::from_slice::<Value>(&body).ok().and_then(|e| e.get("deleteOptions").cloned()).unwrap_or(Value::Null);
            delete_pod(&state, &namespace, &name, &Query::default(), options.to_string().as_bytes())?;
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
            Ok((StatusCode::CREATED, [("content-type", "application/json")], status.to_string()).into_response())
        }
        (&Method::PATCH, Target::Object { resource, namespace, name }) => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            let headers = request.headers();
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            // kubectl names its command (KEP-859); it becomes the subject.
            let command = headers.get("kubectl-command").and_then(|v| v.to_str().ok()).unwrap_or("patch").to_owned();
            let body = body_of(request).await?;
            let object = writes::patch(&state, caller.as_ref(), (resource, &namespace, &name), &query, (&content_type, &command), &body).await?;
            Ok(json_response(&object))
        }
        // `kubectl delete node`: the node is gone, and its pods with it
        // (pod garbage collection removes them).
        (&Method::DELETE, Target::Object { resource: Kind::Node, name, .. }) if !is_declared(&state, Kind::Node, "", &name) => {
            Ok(json_response(&nodes::delete_node(&state, &name).await?))
        }
        (&Method::DELETE, Target::Object { resource, namespace, name }) if resource != Kind::Pod || is_declared(&state, resource, &namespace, &name) => {
            let caller = request.extensions().get::<crate::auth::Caller>().cloned();
            Ok(json_response(&writes::delete(&state, caller.as_ref(), (resource, &namespace, &name), &query).await?))
        }
        (&Method::DELETE, Target::Object { resource: Kind::Pod, namespace, name }) => {
            let body = body_of(request).await?;
            delete_pod(&state, &namespace, &name, &query, &body)
        }
        (&Method::GET, _) => Err(ApiError::NotFound("the server could not find the requested resource".into())),
        (method, _) => Err(ApiError::MethodNotAllowed(format!("{method} is not allowed: Driftless takes changes from git only; {}", state.write_hint))),
    }
}

/// The most a request body may hold: kube-apiserver's bound
/// (`maxRequestBodyBytes`), for every body alike.
pub(crate) const MAX_BODY: usize = 3 << 20;

/// The request's body, unless it is over [`MAX_BODY`] (413, as
/// kube-apiserver answers: it is not read further).
async fn body_of(request: Request) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), MAX_BODY).await.map_err(|error| {
        let too_large = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source()).any(|e| e.is::<http_body_util::LengthLimitError>());
        if too_large { ApiError::TooLarge(format!("Request entity too large: limit is {MAX_BODY}")) } else { ApiError::BadRequest(error.to_string()) }
    })
}

/// Whether a node's agent sent the request.
fn is_node(request: &Request) -> bool {
    request.extensions().get::<crate::auth::Caller>().is_some_and(|c| c.node().is_some())
}

fn discovery_groups() -> Value {
    let mut groups: Vec<(&str, &str)> = Kind::ALL.iter().filter(|k| !k.group().is_empty()).map(|k| (k.group(), k.version())).collect();
    groups.sort();
    groups.dedup();
    let mut groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    groups.push(metrics::group());
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Kubernetes' `all` category (`kubectl get all`).
const CATEGORY_ALL: &[Kind] = &[
    Kind::Pod,
    Kind::ReplicationController,
    Kind::Service,
    Kind::DaemonSet,
    Kind::Deployment,
    Kind::ReplicaSet,
    Kind::StatefulSet,
    Kind::HorizontalPodAutoscaler,
    Kind::CronJob,
    Kind::Job,
];

fn discovery_resources(group: &str, version: &str) -> Result<Value, ApiError> {
    let mut list: Vec<Value> = Vec::new();
    for k in Kind::ALL.iter().filter(|k| k.group() == group && k.version() == version) {
        // Reads, and the writes that become commits (deleting a declared
        // object, or a pod).
        let verbs = ["create", "get", "list", "watch", "patch", "delete"];
        let mut resource = json!({
            "name": k.plural(), "singularName": k.name().to_ascii_lowercase(), "namespaced": k.namespaced(),
            "kind": k.name(), "verbs": verbs, "shortNames": k.short_names(),
        });
        if CATEGORY_ALL.contains(k) {
            resource["categories"] = json!(["all"]);
        }
        list.push(resource);
        let sub = |name: &str, kind: &str, verbs: &[&str], extra: Value| {
            let mut sub = json!({"name": format!("{}/{name}", k.plural()), "singularName": "", "namespaced": k.namespaced(), "kind": kind, "verbs": verbs});
            if let (Some(sub), Some(extra)) = (sub.as_object_mut(), extra.as_object()) {
                sub.extend(extra.clone());
            }
            sub
        };
        // Status is the server's to write: readable here, never written
        // through the API.
        if k.has_status() {
            list.push(sub("status", k.name(), &["get"], json!({})));
        }
        if writes::scalable(*k) {
            list.push(sub("scale", "Scale", &["get", "patch", "update"], json!({"group": "autoscaling", "version": "v1"})));
        }
        if *k == Kind::Pod {
            list.push(sub("log", "Pod", &["get"], json!({})));
            list.push(sub("exec", "PodExecOptions", &["create", "get"], json!({})));
            list.push(sub("attach", "PodAttachOptions", &["create", "get"], json!({})));
            list.push(sub("portforward", "PodPortForwardOptions", &["create", "get"], json!({})));
            list.push(sub("eviction", "Eviction", &["create"], json!({"group": "policy", "version": "v1"})));
        }
    }
    if list.is_empty() {
        return Err(ApiError::NotFound(format!("no resources in {group}/{version}")));
    }
    let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Ok(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}))
}

/// A collection as JSON, as a list or (`as_table`) as a Table. Serialized
/// straight from the store's objects: a list is the biggest answer the API
/// gives, and copying it into a second JSON tree first cost more than
/// everything else the request does.
fn list(store: &dyn Store, resource: Kind, namespace: Option<&str>, query: &Query, as_table: Option<table::Include>) -> Result<Vec<u8>, ApiError> {
    let selector = query.label_selector()?;
    let fields = query.field_selector()?;
    let ns = if resource.namespaced() { namespace } else { None };
    let (mut items, revision) = store.list(resource, ns);
    // No selector (`kubectl get`) selects everything: skip copying every
    // object's labels to find that out.
    if !selector.0.is_empty() {
        items.retain(|v| selector.matches(&labels(v)));
    }
    items.retain(|v| fields.matches(v));
    let version = revision.to_string();
    let body = match as_table {
        Some(include) => serde_json::to_vec(&table::Table::new(resource, items.iter().map(|v| &**v), &version, include)),
        None => {
            let kind = format!("{}List", resource.name());
            let metadata = table::ListMeta { resource_version: &version };
            serde_json::to_vec(&List { api_version: resource.api_version(), items: &items, kind: &kind, metadata })
        }
    };
    body.map_err(|error| ApiError::Internal(format!("{} did not serialize: {error}", resource.plural())))
}

/// A list's JSON as the response, gzipped if the client takes gzip and
/// the list is big.
fn list_response(body: Vec<u8>, gzip: bool) -> Result<Response, ApiError> {
    if gzip && body.len() > GZIP_ABOVE {
        let body = gzipped(&body).map_err(|error| ApiError::Internal(format!("gzip: {error}")))?;
        let headers = [("content-type", "application/json"), ("content-encoding", "gzip"), ("vary", "Accept-Encoding")];
        return Ok((StatusCode::OK, headers, body).into_response());
    }
    Ok((StatusCode::OK, [("content-type", "application/json")], body).into_response())
}

/// Lists bigger than this are gzipped, as Kubernetes' API server does
/// (`defaultGzipThresholdBytes`): below it, compressing costs more time
/// than sending the bytes saves.
const GZIP_ABOVE: usize = 128 * 1024;

/// Whether the client takes gzip (Go's HTTP client, so kubectl, asks for
/// it unless `--disable-compression`): a `gzip` coding not given `q=0`.
fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
    let mut codings = headers.get_all(axum::http::header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    codings.any(|coding| {
        let mut params = coding.split(';').map(str::trim);
        let refused = |param: &str| param.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0);
        params.next().is_some_and(|name| name.eq_ignore_ascii_case("gzip")) && !params.any(refused)
    })
}

/// `body` gzipped at level 1, Kubernetes' level: a Table of 1,000 pods goes
/// from 600 KiB to 46 KiB in under 2 ms, and higher levels save a few more
/// KiB for twice the time.
fn gzipped(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 8), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// A `<Kind>List` of objects borrowed from the store; fields in the order
/// `serde_json`'s sorted maps gave them when lists were built as values.
#[derive(serde::Serialize)]
struct List<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    items: &'a [Arc<Value>],
    kind: &'a str,
    metadata: table::ListMeta<'a>,
}

pub(crate) fn labels(value: &Value) -> std::collections::BTreeMap<String, String> {
    value
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

fn watch(state: ApiState, resource: Kind, namespace: Option<String>, query: Query, as_table: Option<table::Include>) -> Response {
    let selector = match query.label_selector() {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let fields = match query.field_selector() {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    // Each event's object as asked: itself, or a Table of one row (what
    // `kubectl get -w` asks for).
    let shown = move |object: &Value| -> Value {
        match as_table {
            Some(include) => {
                let version = object.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
                table::table(resource, [object], &version, include)
            }
            None => object.clone(),
        }
    };
    // Subscribe before listing, so nothing falls between the two.
    let events = state.store.watch();
    let since: Option<u64> = query.get("resourceVersion").and_then(|v| v.parse().ok()).filter(|v| *v > 0);
    let ns = if resource.namespaced() { namespace } else { None };
    let (initial, listed_at) = state.store.list(resource, ns.as_deref());
    let initial: Vec<Value> = if since.is_some() {
        Vec::new()
    } else {
        initial.iter().filter(|v| selector.matches(&labels(v)) && fields.matches(v)).map(|v| json!({"type": "ADDED", "object": shown(v)})).collect()
    };
    // A streaming list (`sendInitialEvents=true`, KEP-3157) ends its
    // initial events with a bookmark, so the client knows when it has the
    // whole set (and can forget what it held that is not in it).
    let mut initial = initial;
    if query.flag("sendInitialEvents") {
        let end = json!({"apiVersion": resource.api_version(), "kind": resource.name(), "metadata": {
            "resourceVersion": listed_at.to_string(), "annotations": {INITIAL_EVENTS_END: "true"},
        }});
        initial.push(json!({"type": "BOOKMARK", "object": end}));
    }
    let after = since.unwrap_or(listed_at);
    let timeout = query.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(std::time::Duration::from_secs);
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let shutdown = state.shutdown.clone();
    let kind = resource;
    let initial = futures_util::stream::iter(initial.into_iter().map(|v| Ok::<_, std::io::Error>(bytes::Bytes::from(format!("{v}\n")))));
    let changes = futures_util::stream::unfold(events, move |mut events| {
        let (selector, fields, ns, shutdown) = (selector.clone(), fields.clone(), ns.clone(), shutdown.clone());
        async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = sleep_until(deadline) => return None,
                    next = events.recv() => next,
                };
                let event = match next {
                    Ok(event) => event,
                    // Too slow: end the watch; the client lists again.
                    Err(_) => return None,
                };
                if event.key.kind != kind || event.revision <= after || ns.as_ref().is_some_and(|ns| &event.key.namespace != ns) {
                    continue;
                }
                if !selector.matches(&labels(&event.object)) || !fields.matches(&event.object) {
                    continue;
                }
                let kind = match event.kind {
                    EventType::Added => "ADDED",
                    EventType::Modified => "MODIFIED",
                    EventType::Deleted => "DELETED",
                };
                let line = format!("{}\n", json!({"type": kind, "object": shown(&event.object)}));
                return Some((Ok(bytes::Bytes::from(line)), events));
            }
        }
    });
    let body = Body::from_stream(initial.chain(changes));
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}

/// The annotation of the bookmark that ends a streaming list's initial
/// events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether git declares the object (the sync marks what it applies).
fn is_declared(state: &ApiState, kind: Kind, namespace: &str, name: &str) -> bool {
    let key = Key::new(kind, if kind.namespaced() { namespace } else { "" }, name);
    state.store.get(&key).is_some_and(|o| o.pointer("/metadata/annotations").and_then(|a| a.get(driftless_sync::MANAGED)).is_some())
}

/// `kubectl delete pod`: the pod is deleted gracefully, and its owner (if
/// any) makes another. With a grace period of 0 (`--force
/// --grace-period=0`, in the query or the body's DeleteOptions) the
/// object goes at once, as Kubernetes does, on condition of the options'
/// `preconditions.uid`. Changes nothing git declares.
fn delete_pod(state: &ApiState, namespace: &str, name: &str, query: &Query, body: &[u8]) -> Result<Response, ApiError> {
    let options: Value =
        if body.is_empty() { Value::Null } else { serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("DeleteOptions: {e}")))? };
    let grace = query.get("gracePeriodSeconds").and_then(|g| g.parse::<i64>().ok()).or_else(|| options.get("gracePeriodSeconds").and_then(Value::as_i64));
    let pod = state
        .store
        .api::<driftless_model::k8s_openapi::api::core::v1::Pod>()
        .get(namespace, name)
        .ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))?;
    let declared = pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(driftless_sync::MANAGED));
    if declared {
        return Err(ApiError::MethodNotAllowed(format!("pod {name:?} is declared in git: remove it there to delete it; {}", state.write_hint)));
    }
    let live = state.store.get(&driftless_store::key_of(&pod)).ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))?;
    if grace == Some(0) {
        let uid = options.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_owned);
        nodes::precondition(&live, uid.as_deref())?;
        let op = driftless_store::Op::Delete { key: driftless_store::key_of(&pod), uid };
        state.store.apply(driftless_store::Batch::one(op)).map_err(nodes::store_error)?;
        return Ok(json_response(&live));
    }
    if let Some(op) = driftless_store::delete_op(&live, jiff::Timestamp::now()) {
        state.store.apply(driftless_store::Batch::one(op)).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    let object = state.store.get(&driftless_store::key_of(&pod)).map(|v| (*v).clone()).unwrap_or_else(|| json!({}));
    Ok(json_response(&object))
}

#[cfg(test)]
mod tests {
    //! The LIST path: the JSON it sends, and when it gzips; the bound on
    //! request bodies.

    use std::io::Read;

    use driftless_store::{Batch, Op, SqliteStore};

    use super::*;

    fn store_of_pods(count: usize) -> SqliteStore {
        let store = SqliteStore::in_memory();
        let mut batch = Batch::new();
        for i in 0..count {
            let labels = if i % 2 == 0 { json!({"app": "web"}) } else { json!({"app": "db"}) };
            batch.push(Op::Create(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("pod-{i:04}"), "namespace": "default", "labels": labels},
                "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
            })));
        }
        store.apply(batch).unwrap();
        store
    }

    fn accept_encoding(value: &str) -> axum::http::HeaderMap {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(axum::http::header::ACCEPT_ENCODING, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_list_is_the_json_it_was_when_built_as_a_value() {
        let store = store_of_pods(3);
        let body = list(&store, Kind::Pod, Some("default"), &Query::parse(Some("labelSelector=app%3Dweb")), None).unwrap();
        let (items, revision) = store.list(Kind::Pod, Some("default"));
        let web: Vec<Value> = items.iter().filter(|p| p["metadata"]["labels"]["app"] == "web").map(|p| (**p).clone()).collect();
        let value = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": revision.to_string()}, "items": web});
        assert_eq!(String::from_utf8(body).unwrap(), value.to_string());
        let fields = Query::parse(Some("fieldSelector=metadata.name%3Dpod-0001"));
        let table: Value = serde_json::from_slice(&list(&store, Kind::Pod, None, &fields, Some(table::Include::Metadata)).unwrap()).unwrap();
        assert_eq!(table["rows"].as_array().map(Vec::len), Some(1));
        assert_eq!(table["rows"][0]["cells"][0], "pod-0001");
    }

    #[test]
    fn gzip_is_what_go_asks_for_unless_refused() {
        assert!(accepts_gzip(&accept_encoding("gzip")));
        assert!(accepts_gzip(&accept_encoding("br, GZIP;q=0.5")));
        assert!(!accepts_gzip(&accept_encoding("gzip;q=0")));
        assert!(!accepts_gzip(&accept_encoding("identity, x-gzip")));
        assert!(!accepts_gzip(&axum::http::HeaderMap::new()));
    }

    #[tokio::test]
    async fn big_lists_are_gzipped_small_ones_not() {
        let store = store_of_pods(1000);
        let body = list(&store, Kind::Pod, None, &Query::default(), None).unwrap();
        assert!(body.len() > GZIP_ABOVE);
        let response = list_response(body.clone(), true).unwrap();
        assert_eq!(response.headers()["content-encoding"], "gzip");
        let compressed = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut unzipped).unwrap();
        assert_eq!(unzipped, body);
        assert!(list_response(body, false).unwrap().headers().get("content-encoding").is_none());
        assert!(list_response(b"{}".to_vec(), true).unwrap().headers().get("content-encoding").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_the_bound_is_refused_with_413_as_kube_apiserver_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let store: Arc<dyn Store> = Arc::new(store_of_pods(1));
        tokio::spawn(crate::serve_unix_on(crate::bind_unix(&socket).unwrap(), ApiState::of_store(store)));
        let client = crate::Client::new(crate::client::Endpoint::Unix(socket));
        let path = "/api/v1/namespaces/default/pods/pod-0000/status";
        let pod = |padding: usize| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-0000", "namespace": "default"},
            "status": {"message": "x".repeat(padding)}})
        };
        let error = client.put(path, &pod(MAX_BODY)).await.unwrap_err();
        let crate::ClientError::Status { code, message } = &error else { panic!("{error:?}") };
        assert_eq!((*code, message.as_str()), (413, "Request entity too large: limit is 3145728"));
        // Under the bound, the same request is read (and judged on its
        // merits).
        let error = client.put(path, &pod(1000)).await.err();
        assert!(!matches!(error, Some(crate::ClientError::Status { code: 413, .. })), "{error:?}");
    }
}
