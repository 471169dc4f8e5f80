//! The API's handling of any request a client could send over HTTPS: the
//! token check, the path and query (selectors included), the method and
//! body, through the router `serve_tls` serves, on a store holding a few
//! objects and a Secret. Whatever comes in: no panic, no 500, a request
//! without a known token gets 401, a read-only caller never sees the
//! Secret's value, and every response ends once the server shuts down.
//!
//! An input is `WHO\nMETHOD TARGET\nCONTENT-TYPE\n\nBODY`, WHO being
//! `admin`, `viewer`, `node` (node-1's agent) or a token as sent.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use driftless_api::ApiState;
use driftless_api::auth::Tokens;
use driftless_store::{Batch, Op, SqliteStore, Store};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tower::ServiceExt;

const SECRET: &str = "fuzz-secret-value";
/// `SECRET` as a Secret's `data` holds it.
const SECRET_BASE64: &str = "ZnV6ei1zZWNyZXQtdmFsdWU=";

fn tokens() -> Arc<Tokens> {
    static TOKENS: OnceLock<Arc<Tokens>> = OnceLock::new();
    Arc::clone(TOKENS.get_or_init(|| {
        let file = "admin-token-0123456789,admin,admin@example.com,\"system:masters\"\n\
                    viewer-token-0123456789,viewer,viewer@example.com,\"driftless:view\"\n\
                    node-token-0123456789,system:node:node-1,node-1,\"system:nodes\"\n";
        Arc::new(Tokens::parse(file).unwrap())
    }))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap())
}

/// A fresh store per input (writes must not carry over to the next): a
/// Deployment's pod on node-1, a ConfigMap, a Secret, node-1.
fn store() -> Arc<dyn Store> {
    let store = SqliteStore::in_memory();
    let mut batch = Batch::new();
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx"}]}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"}, "data": {"mode": "fast"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"}, "data": {"password": SECRET_BASE64}}),
    ] {
        batch.push(Op::Create(object));
    }
    store.apply(batch).unwrap();
    Arc::new(store)
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let mut lines = text.splitn(4, '\n');
    let (Some(who), Some(line), Some(content_type)) = (lines.next(), lines.next(), lines.next()) else { return };
    let body = lines.next().unwrap_or("").strip_prefix('\n').unwrap_or("");
    let Some((method, target)) = line.split_once(' ') else { return };
    let token = match who {
        "admin" => "admin-token-0123456789",
        "viewer" => "viewer-token-0123456789",
        "node" => "node-token-0123456789",
        other => other,
    };
    let mut request = http::Request::builder().method(method).uri(target);
    if !token.is_empty() {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    let Ok(request) = request.body(Body::from(body.to_owned())) else { return };

    let mut state = ApiState::of_store(store());
    state.tokens = Some(tokens());
    let shutdown = state.shutdown.clone();
    let app = driftless_api::authenticated(state);
    let (status, body) = runtime().block_on(async move {
        let response = app.oneshot(request).await.expect("the router is infallible");
        let status = response.status();
        // Watches and streams end at shutdown, as they do when the daemon stops.
        shutdown.cancel();
        let body = tokio::time::timeout(Duration::from_secs(2), response.into_body().collect()).await;
        let body = body.expect("a response that does not end at shutdown").map(|b| b.to_bytes()).unwrap_or_default();
        (status, body)
    });

    let known = matches!(who, "admin" | "viewer" | "node");
    assert!(known || status == 401, "{status} to an unknown token");
    assert_ne!(status, 500, "500 to {line:?}: {}", String::from_utf8_lossy(&body));
    if who == "viewer" {
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains(SECRET) && !text.contains(SECRET_BASE64), "the Secret shown to a read-only caller: {text}");
    }
});
