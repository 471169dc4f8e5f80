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
mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use driftless_api::auth::Tokens;
use driftless_store::Store;
use maud::Markup;

use crate::session::{Missing, Session, Sessions};

/// What the pages read.
#[derive(Clone)]
pub struct UiState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Who may sign in: the API's tokens.
    pub tokens: Arc<Tokens>,
    /// The signed-in browsers.
    pub sessions: Arc<Sessions>,
    /// The repository whose `refs/driftless/applied` is the ledger.
    pub ledger: Option<std::path::PathBuf>,
}

/// The dashboard's routes, all under `/ui/`, to be merged into the API's
/// router ahead of its bearer-token check (the pages check their session).
pub fn router(state: UiState) -> Router {
    Router::new()
        .route("/ui", get(|| async { axum::response::Redirect::permanent("/ui/") }))
        .route("/ui/", get(overview))
        .route("/ui/workloads", get(workloads))
        .route("/ui/history", get(history))
        .route("/ui/login", get(pages::login::form).post(pages::login::submit))
        .route("/ui/logout", axum::routing::post(pages::login::logout))
        .route("/ui/assets/style.css", get(|| async { ([(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "max-age=300")], STYLE) }))
        .with_state(state)
}

const STYLE: &str = include_str!("../assets/style.css");

/// The request's session, or where to send it instead.
fn session(state: &UiState, request: &axum::http::HeaderMap) -> Result<Session, Missing> {
    let cookies = request.get(COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let id = session::cookie(cookies, session::COOKIE).ok_or(Missing::None)?;
    state.sessions.get(id)
}

/// A signed-in page: the session checked (else the login page), its body
/// built off the async workers by `body` (store and git reads block), and
/// the shell around it.
async fn signed_in(state: UiState, request: Request, title: &'static str, current: &'static str, body: fn(&UiState) -> Markup) -> Response {
    let session = match session(&state, request.headers()) {
        Ok(session) => session,
        Err(missing) => return pages::login::redirect(missing),
    };
    let content = tokio_blocking(move || body(&state)).await;
    layout::page(title, current, Some(&session), content).into_response()
}

async fn overview(State(state): State<UiState>, request: Request) -> Response {
    signed_in(state, request, "Overview", "", |state| pages::overview::Overview::read(&*state.store).render()).await
}

async fn workloads(State(state): State<UiState>, request: Request) -> Response {
    signed_in(state, request, "Workloads", "workloads", |state| pages::workloads::Tree::read(&*state.store).render(jiff::Timestamp::now())).await
}

async fn history(State(state): State<UiState>, request: Request) -> Response {
    signed_in(state, request, "History", "history", |state| {
        let entries = match &state.ledger {
            Some(repo) => driftless_sync::ledger::read(repo, pages::history::LIMIT).map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        };
        match entries {
            Ok(entries) => pages::history::render(&entries, jiff::Timestamp::now().as_second()),
            Err(error) => maud::html! { h1 { "History" } p.error role="alert" { "The ledger could not be read: " (error) } },
        }
    })
    .await
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
