//! Route and rendering tests: the router as the daemon serves it, on an
//! in-memory store, driven with requests as a browser sends them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Request, StatusCode};
use driftless_store::{Batch, Op, SqliteStore, Store};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use crate::session;
use crate::{UiState, router};

const TOKEN: &str = "31ada4fd-adec-460c-809a-9e56ceb75269";
/// A token of the read-only group.
const VIEWER: &str = "0c1f7d0e-2b5e-4d55-9a3e-7d2b8f1e9c44";

/// The write path, faked: what it was asked, and a reply shaped as the
/// daemon's (`driftless_write::Written` plus the sync's outcome).
#[derive(Default)]
struct FakeWrites {
    asked: std::sync::Mutex<Vec<serde_json::Value>>,
}

impl driftless_api::WriteOps for FakeWrites {
    fn write(&self, request: serde_json::Value) -> Result<serde_json::Value, driftless_api::WriteFailure> {
        self.asked.lock().unwrap().push(request.clone());
        if request["change"] == "open" {
            return Err(driftless_api::WriteFailure::NotFound("not declared".into()));
        }
        let dry = request["dry_run"].as_bool().unwrap_or(false);
        Ok(json!({
            "commit": if dry { json!(null) } else { json!("feedface00000000000000000000000000000000") },
            "branch": "main",
            "message": "Roll back to 0123456 \"web v1\"\n\nThis restores the manifests <b>...</b>",
            "files": ["apps/web.yaml"], "diff": "-image: v2\n+image: v1\n", "plan": "Plan: 1 to update (1 rolls pods)\n",
            "plan_markdown": "", "reverts": null,
        }))
    }
}

fn state() -> UiState {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let tokens = driftless_api::auth::Tokens::parse(&format!(
        "{TOKEN},grace,grace@example.invalid\n{VIEWER},vera,vera@example.invalid,\"{}\"\n",
        driftless_api::auth::READ_ONLY_GROUP
    ))
    .unwrap();
    let mut api = driftless_api::ApiState::of_store(store);
    api.tokens = Some(Arc::new(tokens));
    UiState::new(api)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(state: &UiState, request: Request<Body>) -> Answer {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Answer { status, headers, body }
}

fn set_cookie_value(answer: &Answer, name: &str) -> Option<String> {
    answer.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| session::cookie(c.split(';').next()?, name).map(str::to_owned))
}

fn form(path: &str, cookie: &str, body: String) -> Request<Body> {
    Request::post(path).header(COOKIE, cookie).header("content-type", "application/x-www-form-urlencoded").body(Body::from(body)).unwrap()
}

/// Signs in as a browser does; the session cookie's value.
async fn sign_in(state: &UiState) -> String {
    sign_in_with(state, TOKEN).await
}

async fn sign_in_with(state: &UiState, token: &str) -> String {
    let page = send(state, Request::get("/ui/login").body(Body::empty()).unwrap()).await;
    let csrf = set_cookie_value(&page, session::LOGIN_COOKIE).unwrap();
    assert!(page.body.contains(&format!("value=\"{csrf}\"")), "the form repeats the cookie's token");
    let answer = send(state, form("/ui/login", &format!("{}={csrf}", session::LOGIN_COOKIE), format!("token={token}&csrf={csrf}"))).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    set_cookie_value(&answer, session::COOKIE).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_need_a_session_and_a_token_makes_one() {
    let state = state();
    let anonymous = send(&state, Request::get("/ui/").body(Body::empty()).unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers[LOCATION], "/ui/login");

    let id = sign_in(&state).await;
    let cookie = format!("{}={id}", session::COOKIE);
    let overview = send(&state, Request::get("/ui/").header(COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("<h1>Overview</h1>") && overview.body.contains("Signed in as <strong>grace</strong>"), "{}", overview.body);
    assert!(overview.body.contains("aria-current=\"page\""), "the current page is marked");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_cookie_is_http_only_secure_and_same_site() {
    let state = state();
    let page = send(&state, Request::get("/ui/login").body(Body::empty()).unwrap()).await;
    let csrf = set_cookie_value(&page, session::LOGIN_COOKIE).unwrap();
    let answer = send(&state, form("/ui/login", &format!("{}={csrf}", session::LOGIN_COOKIE), format!("token={TOKEN}&csrf={csrf}"))).await;
    let set = answer.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).find(|c| c.starts_with(session::COOKIE)).unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(flag), "{set}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_a_forged_form_and_an_expired_session_are_refused() {
    let state = state();
    let page = send(&state, Request::get("/ui/login").body(Body::empty()).unwrap()).await;
    let csrf = set_cookie_value(&page, session::LOGIN_COOKIE).unwrap();
    let login_cookie = format!("{}={csrf}", session::LOGIN_COOKIE);

    let wrong = send(&state, form("/ui/login", &login_cookie, format!("token=nope&csrf={csrf}"))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("That token is not valid.") && !wrong.body.contains("nope"), "the token is never echoed");
    assert!(set_cookie_value(&wrong, session::COOKIE).is_none());

    // A post from another site carries no login cookie, or not this one.
    let forged = send(&state, form("/ui/login", "", format!("token={TOKEN}&csrf={csrf}"))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = send(&state, form("/ui/login", &login_cookie, format!("token={TOKEN}&csrf=guessed"))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Signing out needs the session's own CSRF token too.
    let id = sign_in(&state).await;
    let cookie = format!("{}={id}", session::COOKIE);
    let forged = send(&state, form("/ui/logout", &cookie, "csrf=guessed".into())).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(state.sessions.get(&id).is_ok(), "still signed in");

    state.sessions.age_all(session::LIFETIME);
    let expired = send(&state, Request::get("/ui/").header(COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(expired.headers[LOCATION], "/ui/login?expired=1");
    let login = send(&state, Request::get("/ui/login?expired=1").body(Body::empty()).unwrap()).await;
    assert!(login.body.contains("Your session has ended."), "{}", login.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_shows_the_source_the_refusal_and_escapes_what_it_shows() {
    let state = state();
    let mut batch = Batch::new();
    batch.set_meta(
        driftless_sync::STATUS_META,
        json!({
            "repo": "/srv/<b>repo</b>", "branch": "main", "path": "apps", "synced_at": 1_700_000_000,
            "applied": {"id": "0123456789abcdef", "subject": "scale web", "author": "Grace <grace@example.invalid>", "time": 1_700_000_000},
            "refused": [{"id": "fedcba9876543210", "subject": "<script>alert(1)</script>", "author": "Mallory <m@example.invalid>", "time": 1_700_000_100},
                        ["apps/web.yaml:8:3: error: Deployment/web: spec.selector: field is immutable"]],
        }),
    );
    batch.push(Op::Create(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
        "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}})));
    batch.push(Op::Create(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]},
        "status": {"phase": "Running"}})));
    state.api.store.apply(batch).unwrap();
    let id = sign_in(&state).await;
    let page = send(&state, Request::get("/ui/").header(COOKIE, format!("{}={id}", session::COOKIE)).body(Body::empty()).unwrap()).await;
    let body = &page.body;
    assert!(body.contains("0123456") && body.contains("scale web") && body.contains("<code>main</code>"), "{body}");
    assert!(body.contains("Refused: <code>fedcba9</code>"), "{body}");
    assert!(body.contains("#L8\">apps/web.yaml:8:3</a>: error: Deployment/web: spec.selector: field is immutable"), "the error links to its line: {body}");
    assert!(!body.contains("<script>alert(1)</script>") && body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "escaped: {body}");
    assert!(body.contains("/srv/&lt;b&gt;repo&lt;/b&gt;"), "{body}");
    assert!(body.contains("500m / 2000m (25%)") && body.contains("1024Mi / 4096Mi (25%)"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stylesheet_is_served_from_the_binary() {
    let answer = send(&state(), Request::get("/ui/assets/style.css").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.contains("@media (max-width: 600px)"));
}

fn get(path: &str, session: &str) -> Request<Body> {
    Request::get(path).header(COOKIE, format!("{}={session}", session::COOKIE)).body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_is_shown_first_then_made_only_with_the_sessions_token() {
    let mut state = state();
    let writes = Arc::new(FakeWrites::default());
    state.api.writes = Some(writes.clone());
    let id = sign_in(&state).await;
    let csrf = state.sessions.get(&id).unwrap().csrf;

    let preview = send(&state, get("/ui/rollback?to=0123456789abcdef", &id)).await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.contains("Roll back to 0123456 &quot;web v1&quot;") && preview.body.contains("&lt;b&gt;..."),
        "the message, escaped: {}",
        preview.body
    );
    assert!(preview.body.contains("Plan: 1 to update") && preview.body.contains(&format!("name=\"csrf\" value=\"{csrf}\"")), "{}", preview.body);
    {
        let asked = writes.asked.lock().unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0]["change"], json!({"restore": {"commit": "0123456789abcdef"}}));
        assert_eq!(asked[0]["dry_run"], true, "the preview commits nothing");
        assert_eq!(asked[0]["author"]["name"], "grace", "as the signed-in user");
    }

    let cookie = format!("{}={id}", session::COOKIE);
    let forged = send(&state, form("/ui/rollback", &cookie, "to=0123456789abcdef&csrf=guessed".into())).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let missing = send(&state, form("/ui/rollback", &cookie, "to=0123456789abcdef".into())).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let odd = send(&state, form("/ui/rollback", &cookie, format!("to=HEAD~1&csrf={csrf}"))).await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    assert_eq!(writes.asked.lock().unwrap().len(), 1, "nothing forged reached the write path");

    let made = send(&state, form("/ui/rollback", &cookie, format!("to=0123456789abcdef&csrf={csrf}"))).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    assert_eq!(made.headers[LOCATION], "/ui/history?committed=feedface00000000000000000000000000000000");
    assert_eq!(writes.asked.lock().unwrap()[1]["dry_run"], false);
    let history = send(&state, get("/ui/history?committed=feedface00000000000000000000000000000000", &id)).await;
    assert!(history.body.contains("Committed <code>feedfac</code>"), "{}", history.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_token_looks_and_cannot_commit() {
    let mut state = state();
    let writes = Arc::new(FakeWrites::default());
    state.api.writes = Some(writes.clone());
    let id = sign_in_with(&state, VIEWER).await;
    let csrf = state.sessions.get(&id).unwrap().csrf;
    assert_eq!(send(&state, get("/ui/", &id)).await.status, StatusCode::OK);
    let preview = send(&state, get("/ui/rollback?to=0123456789abcdef", &id)).await;
    assert!(preview.body.contains("Your token is read-only"), "{}", preview.body);
    let made = send(&state, form("/ui/rollback", &format!("{}={id}", session::COOKIE), format!("to=0123456789abcdef&csrf={csrf}"))).await;
    assert_eq!(made.status, StatusCode::FORBIDDEN);
    assert!(writes.asked.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_page_escapes_what_it_shows_and_streams_need_a_session() {
    let state = state();
    let mut batch = Batch::new();
    batch.push(Op::Create(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default", "labels": {"x": "<script>alert(1)</script>"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-<i>5f</i>", "uid": "r1"}]},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": "busybox", "ready": true, "restartCount": 2,
            "state": {"running": {"startedAt": "2026-12-04T10:00:00Z"}}, "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]}})));
    batch.push(Op::Create(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"}, "data": {"password": "aHVudGVyMg=="}}),
    ));
    state.api.store.apply(batch).unwrap();
    let id = sign_in(&state).await;

    let page = send(&state, get("/ui/objects/Pod/default/web-1", &id)).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(!body.contains("<script>alert(1)</script>") && body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{body}");
    assert!(body.contains("made by <a href=\"/ui/objects/ReplicaSet/default/web-%3Ci%3E5f%3C%2Fi%3E\">ReplicaSet/web-&lt;i&gt;5f&lt;/i&gt;</a>"), "{body}");
    assert!(body.contains("terminated (Error), exit code 1") && body.contains("data-follow=\"/ui/objects/Pod/default/web-1/logs?container=app\""), "{body}");

    let secret = send(&state, get("/ui/objects/Secret/default/creds", &id)).await;
    assert!(!secret.body.contains("aHVudGVyMg==") && secret.body.contains("(redacted)"), "{}", secret.body);
    assert_eq!(send(&state, get("/ui/objects/Gizmo/default/x", &id)).await.status, StatusCode::NOT_FOUND);
    let gone = send(&state, get("/ui/objects/Pod/default/nobody", &id)).await;
    assert!(gone.body.contains("Nothing by this name runs."), "{}", gone.body);

    let anonymous = send(&state, Request::get("/ui/objects/Pod/default/web-1/logs").body(Body::empty()).unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let anonymous = send(&state, Request::get("/ui/changes").body(Body::empty()).unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_stream_says_when_the_store_changed() {
    let state = state();
    let id = sign_in(&state).await;
    let response = router(state.clone()).oneshot(get("/ui/changes", &id)).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let store = state.api.store.clone();
    tokio::spawn(async move {
        let mut batch = Batch::new();
        batch.push(Op::Create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}})));
        store.apply(batch).unwrap();
    });
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame()).await.expect("an event within the deadline").unwrap().unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("event: change\ndata: "), "{text}");
}
