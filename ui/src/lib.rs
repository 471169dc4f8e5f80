//! The web dashboard at `/ui/` on the API's HTTPS listener: what runs,
//! what git said, what changed, and why a commit was refused.
//!
//! Owns: the pages (server-rendered HTML with maud: every value escaped),
//! the sessions a token is traded for at the login page (an HttpOnly,
//! Secure, SameSite=Strict cookie; a CSRF token in every form), object
//! health as Argo CD's checks define it ([`health`]), and the one
//! stylesheet, served from the binary (no CDN, no JavaScript framework).
//!
//! Must not touch: the store or git except through what the API and the
//! write path already offer; it reads the store and the ledger, and every
//! change it makes is a commit of the write path.

pub mod health;
mod layout;
mod live;
mod pages;
mod rollback;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use driftless_api::ApiState;
use driftless_store::Store;
use maud::{Markup, html};

pub use crate::pages::plan::Repo;
use crate::session::{Missing, Session, Sessions};

/// What the pages read and write through.
#[derive(Clone)]
pub struct UiState {
    /// The API's state: the store, the ledger's repository, the write
    /// path, the node (for logs) and the tokens who may sign in.
    pub api: ApiState,
    /// The signed-in browsers.
    pub sessions: Arc<Sessions>,
    /// The repository the daemon syncs, for the Plan page.
    pub repo: Option<Repo>,
}

impl UiState {
    /// The dashboard over `api`, with nobody signed in.
    pub fn new(api: ApiState) -> UiState {
        UiState { api, sessions: Arc::new(Sessions::default()), repo: None }
    }

    fn store(&self) -> &dyn Store {
        &*self.api.store
    }
}

/// The dashboard's routes, all under `/ui/`, to be merged into the API's
/// router ahead of its bearer-token check (the pages check their session).
pub fn router(state: UiState) -> Router {
    Router::new()
        .route("/ui", get(|| async { axum::response::Redirect::permanent("/ui/") }))
        .route("/ui/", get(overview))
        .route("/ui/workloads", get(workloads))
        .route("/ui/history", get(history))
        .route("/ui/plan", get(plan))
        .route("/ui/rollback", get(rollback::confirm).post(rollback::make))
        .route("/ui/objects/{kind}/{namespace}/{name}", get(object))
        .route("/ui/objects/Pod/{namespace}/{name}/logs", get(live::logs))
        .route("/ui/files", get(file))
        .route("/ui/changes", get(live::changes))
        .route("/ui/login", get(pages::login::form).post(pages::login::submit))
        .route("/ui/logout", axum::routing::post(pages::login::logout))
        .route("/ui/assets/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/ui/assets/live.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .with_state(state)
}

const STYLE: &str = include_str!("../assets/style.css");
/// The one script: follows logs and refreshes the page's live part when
/// the store changes. Without it every page still works, by reloading.
const SCRIPT: &str = include_str!("../assets/live.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// The request's session, or where to send it instead.
fn session(state: &UiState, request: &axum::http::HeaderMap) -> Result<Session, Missing> {
    let cookies = request.get(COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let id = session::cookie(cookies, session::COOKIE).ok_or(Missing::None)?;
    state.sessions.get(id)
}

/// A signed-in page: the session checked (else the login page), its body
/// built off the async workers by `body` (store and git reads block), and
/// the shell around it.
async fn signed_in<F>(state: UiState, request: Request, title: String, current: &'static str, body: F) -> Response
where
    F: FnOnce(&UiState, &Session) -> Markup + Send + 'static,
{
    let session = match session(&state, request.headers()) {
        Ok(session) => session,
        Err(missing) => return pages::login::redirect(missing),
    };
    let shown = session.clone();
    let content = tokio_blocking(move || body(&state, &shown)).await;
    layout::page(&title, current, Some(&session), content).into_response()
}

async fn overview(State(state): State<UiState>, request: Request) -> Response {
    signed_in(state, request, "Overview".into(), "", |state, _| live(pages::overview::Overview::read(state.store()).render())).await
}

async fn workloads(State(state): State<UiState>, request: Request) -> Response {
    signed_in(state, request, "Workloads".into(), "workloads", |state, _| live(pages::workloads::Tree::read(state.store()).render(jiff::Timestamp::now())))
        .await
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    /// The commit a rollback just made, to say so on top.
    committed: Option<String>,
}

async fn history(State(state): State<UiState>, Query(query): Query<HistoryQuery>, request: Request) -> Response {
    signed_in(state, request, "History".into(), "history", move |state, session| {
        let entries = match &state.api.ledger {
            Some(repo) => {
                let pending = driftless_sync::Syncer::status(state.store()).pending;
                driftless_sync::ledger::read_with_pending(repo, pages::history::LIMIT, pending).map_err(|e| e.to_string())
            }
            None => Ok(Vec::new()),
        };
        let running = driftless_sync::Syncer::status(state.store()).applied.map(|a| a.id);
        let view = pages::history::View { now: jiff::Timestamp::now().as_second(), running, may_write: session.caller.may_write() && state.api.writes.is_some() };
        match entries {
            Ok(entries) => html! {
                @if let Some(commit) = query.committed.filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_hexdigit())) {
                    p.notice role="status" { "Committed " code { (&commit[..commit.len().min(7)]) } ". The daemon syncs it now; it appears below once applied." }
                }
                (live(pages::history::render(&entries, &view)))
            },
            Err(error) => html! { h1 { "History" } p.error role="alert" { "The ledger could not be read: " (error) } },
        }
    })
    .await
}

async fn object(State(state): State<UiState>, Path((kind, namespace, name)): Path<(String, String, String)>, request: Request) -> Response {
    let named = match pages::object::Named::parse(&kind, &namespace, &name) {
        Ok(named) => named,
        Err(why) => return (axum::http::StatusCode::NOT_FOUND, why).into_response(),
    };
    let title = format!("{}/{}", named.kind.name(), named.name);
    signed_in(state, request, title, "workloads", move |state, _| pages::object::render(&state.api, &named, jiff::Timestamp::now())).await
}

#[derive(serde::Deserialize)]
struct PlanQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn plan(State(state): State<UiState>, Query(query): Query<PlanQuery>, request: Request) -> Response {
    signed_in(state, request, "Plan".into(), "plan", move |state, _| {
        let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        let (from, to) = (given(&query.from), given(&query.to));
        pages::plan::render(state.store(), state.repo.as_ref(), from.as_deref(), to.as_deref())
    })
    .await
}

#[derive(serde::Deserialize)]
struct FileQuery {
    rev: String,
    path: String,
}

async fn file(State(state): State<UiState>, Query(query): Query<FileQuery>, request: Request) -> Response {
    let title = query.path.clone();
    signed_in(state, request, title, "history", move |state, _| {
        let manifests = state.repo.as_ref().map(|r| r.manifests.as_str()).unwrap_or_default();
        pages::file::render(state.api.ledger.as_deref(), manifests, &query.rev, &query.path)
    })
    .await
}

/// A page's content that the script refreshes when the store changes.
fn live(content: Markup) -> Markup {
    html! { div id="live" { (content) } }
}

/// Hands a request to the write path as the session's user: the commit's
/// author is who signed in, whatever the request says.
async fn driftless_write(state: &UiState, session: &Session, body: serde_json::Value) -> Result<serde_json::Value, String> {
    driftless_api::write_as(&state.api, Some(&session.caller), body).await.map_err(|e| e.to_string())
}

/// Runs a store read off the async workers (the store's calls block).
async fn tokio_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

#[cfg(test)]
mod tests;
