//! The login page: a token (one of the API's bearer tokens) in, a session
//! cookie out. The form is protected from cross-site posts by a
//! double-submit token: a random value in an HttpOnly cookie that the
//! form must repeat.
//!
//! Must not touch: the token beyond checking it; it is never stored,
//! logged or echoed.

use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use crate::UiState;
use crate::layout::page;
use crate::session::{self, COOKIE as SESSION, LIFETIME, LOGIN_COOKIE, Missing};

/// How long the login form's token lasts.
const FORM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    expired: Option<String>,
}

/// `GET /ui/login`.
pub(crate) async fn form(Query(query): Query<LoginQuery>) -> Response {
    let why = query.expired.is_some().then_some("Your session has ended. Sign in again.");
    render(StatusCode::OK, why)
}

fn render(status: StatusCode, error: Option<&str>) -> Response {
    let csrf = session::random_token();
    let body = html! {
        h1 { "Sign in" }
        p.muted { "Use a token from the daemon's tokens file (the same one kubectl uses: " code { "driftless kubeconfig" } ")." }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form.login method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(csrf);
            label for="token" { "Token" }
            input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
            button type="submit" { "Sign in" }
        }
    };
    let cookie = session::set_cookie(LOGIN_COOKIE, &csrf, FORM_LIFETIME);
    (status, [(SET_COOKIE, cookie)], page("Sign in", "login", None, body)).into_response()
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    csrf: String,
}

/// `POST /ui/login`.
pub(crate) async fn submit(State(state): State<UiState>, headers: HeaderMap, axum::Form(form): axum::Form<LoginForm>) -> Response {
    let cookies = headers.get(COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let expected = session::cookie(cookies, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same(expected, &form.csrf) {
        return render(StatusCode::FORBIDDEN, Some("The form had expired or came from another site. Sign in again."));
    }
    let Some(caller) = state.api.tokens.as_ref().and_then(|t| t.caller(form.token.trim())).cloned() else {
        tracing::info!("dashboard sign-in refused: unknown token");
        return render(StatusCode::UNAUTHORIZED, Some("That token is not valid."));
    };
    tracing::info!(user = %caller.user, "dashboard sign-in");
    let id = state.sessions.start(caller);
    let headers = [(SET_COOKIE, session::set_cookie(SESSION, &id, LIFETIME)), (LOCATION, "/ui/".to_owned())];
    (StatusCode::SEE_OTHER, headers).into_response()
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf: String,
}

/// `POST /ui/logout`.
pub(crate) async fn logout(State(state): State<UiState>, headers: HeaderMap, axum::Form(form): axum::Form<LogoutForm>) -> Response {
    let cookies = headers.get(COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Some(id) = session::cookie(cookies, SESSION)
        && let Ok(session) = state.sessions.get(id)
    {
        if !session::same(&session.csrf, &form.csrf) {
            return (StatusCode::FORBIDDEN, "the form did not carry this session's token").into_response();
        }
        state.sessions.end(id);
    }
    let headers = [(SET_COOKIE, session::set_cookie(SESSION, "", std::time::Duration::ZERO)), (LOCATION, "/ui/login".to_owned())];
    (StatusCode::SEE_OTHER, headers).into_response()
}

/// Where a request without a good session goes.
pub(crate) fn redirect(missing: Missing) -> Response {
    let to = match missing {
        Missing::Expired => "/ui/login?expired=1",
        Missing::None => "/ui/login",
    };
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}
