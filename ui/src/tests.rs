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

use crate::session::{self, Sessions};
use crate::{UiState, router};

const TOKEN: &str = "31ada4fd-adec-460c-809a-9e56ceb75269";

fn state() -> UiState {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory());
    let tokens = driftless_api::auth::Tokens::parse(&format!("{TOKEN},grace,grace@example.invalid\n")).unwrap();
    UiState { store, tokens: Arc::new(tokens), sessions: Arc::new(Sessions::default()), ledger: None }
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
    let page = send(state, Request::get("/ui/login").body(Body::empty()).unwrap()).await;
    let csrf = set_cookie_value(&page, session::LOGIN_COOKIE).unwrap();
    assert!(page.body.contains(&format!("value=\"{csrf}\"")), "the form repeats the cookie's token");
    let answer = send(state, form("/ui/login", &format!("{}={csrf}", session::LOGIN_COOKIE), format!("token={TOKEN}&csrf={csrf}"))).await;
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
    state.store.apply(batch).unwrap();
    let id = sign_in(&state).await;
    let page = send(&state, Request::get("/ui/").header(COOKIE, format!("{}={id}", session::COOKIE)).body(Body::empty()).unwrap()).await;
    let body = &page.body;
    assert!(body.contains("0123456") && body.contains("scale web") && body.contains("<code>main</code>"), "{body}");
    assert!(body.contains("Refused: <code>fedcba9</code>"), "{body}");
    assert!(body.contains("apps/web.yaml:8:3: error: Deployment/web: spec.selector: field is immutable"), "{body}");
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
