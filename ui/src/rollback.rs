//! "Roll back to here" from History: the commit the write path would make
//! (its message, the files' diff and the plan) shown first, made only
//! when the user confirms with the session's CSRF token. The commit is the
//! write path's `restore` change, authored by the signed-in user, the same
//! request `driftless rollback REV` sends.
//!
//! Must not touch: git. The write path validates, plans and commits; a
//! read-only session is refused before anything is asked of it.

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::session::{self, Session};
use crate::{UiState, layout, pages};

#[derive(Deserialize)]
pub(crate) struct Target {
    to: String,
}

#[derive(Deserialize)]
pub(crate) struct Confirmed {
    to: String,
    csrf: String,
}

/// A commit id, or why it is not one.
fn commit_id(to: &str) -> Result<&str, String> {
    if (4..=64).contains(&to.len()) && to.bytes().all(|b| b.is_ascii_hexdigit()) { Ok(to) } else { Err("name the commit to roll back to by its id".into()) }
}

/// The write path's request; the author is the session's user (set by
/// the API's one place that does so).
fn restore(to: &str, dry_run: bool) -> Value {
    json!({"change": {"restore": {"commit": to}}, "dry_run": dry_run})
}

/// Why this session may not roll back, if it may not.
fn refused(state: &UiState, session: &Session) -> Option<&'static str> {
    if state.api.writes.is_none() {
        Some("This daemon syncs no repository it can commit to.")
    } else if !session.caller.may_write() {
        Some("Your token is read-only: it may look, not commit.")
    } else {
        None
    }
}

/// `GET /ui/rollback?to=COMMIT`: what the commit would be, and a button.
pub(crate) async fn confirm(State(state): State<UiState>, Query(target): Query<Target>, request: Request) -> Response {
    let session = match crate::session(&state, request.headers()) {
        Ok(session) => session,
        Err(missing) => return pages::login::redirect(missing),
    };
    let body = match (commit_id(&target.to), refused(&state, &session)) {
        (_, Some(why)) => html! { h1 { "Roll back" } p.error role="alert" { (why) } },
        (Err(why), None) => html! { h1 { "Roll back" } p.error role="alert" { (why) } },
        (Ok(to), None) => {
            let dry = crate::driftless_write(&state, &session, restore(to, true)).await;
            preview(&session, to, dry)
        }
    };
    layout::page("Roll back", "history", Some(&session), body).into_response()
}

fn preview(session: &Session, to: &str, dry: Result<Value, String>) -> Markup {
    html! {
        h1 { "Roll back to " code { (&to[..to.len().min(7)]) } }
        @match dry {
            Ok(written) => {
                p { "This commit is made on " code { (written["branch"].as_str().unwrap_or_default()) } " as you, then synced:" }
                pre.commit { (written["message"].as_str().unwrap_or_default()) }
                h2 { "What it does" }
                pre { (written["plan"].as_str().unwrap_or_default()) }
                details {
                    summary { "The files' changes" }
                    pre { (written["diff"].as_str().unwrap_or_default()) }
                }
                form method="post" action="/ui/rollback" {
                    input type="hidden" name="to" value=(to);
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Make this commit" } " "
                    a href="/ui/history" { "Cancel" }
                }
            }
            Err(why) => {
                p.error role="alert" { "Nothing to commit: " (why) }
                p { a href="/ui/history" { "Back to History" } }
            }
        }
    }
}

/// `POST /ui/rollback`: the commit, then back to History.
pub(crate) async fn make(State(state): State<UiState>, request: Request) -> Response {
    let session = match crate::session(&state, request.headers()) {
        Ok(session) => session,
        Err(missing) => return pages::login::redirect(missing),
    };
    let form = match axum::extract::Form::<Confirmed>::from_request(request, &()).await {
        Ok(axum::extract::Form(form)) => form,
        Err(rejection) => return (StatusCode::BAD_REQUEST, rejection.body_text()).into_response(),
    };
    if !session::same(&session.csrf, &form.csrf) {
        tracing::warn!(user = %session.caller.user, "dashboard rollback refused: the form did not carry the session's token");
        return (StatusCode::FORBIDDEN, "the form did not carry this session's token").into_response();
    }
    if let Some(why) = refused(&state, &session) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let to = match commit_id(&form.to) {
        Ok(to) => to.to_owned(),
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    tracing::info!(user = %session.caller.user, commit = %to, "dashboard rollback");
    match crate::driftless_write(&state, &session, restore(&to, false)).await {
        Ok(written) => {
            let commit = written["commit"].as_str().unwrap_or_default();
            (StatusCode::SEE_OTHER, [(LOCATION, format!("/ui/history?committed={commit}"))]).into_response()
        }
        Err(why) => {
            let body = html! { h1 { "Roll back" } p.error role="alert" { "Nothing was committed: " (why) } p { a href="/ui/history" { "Back to History" } } };
            (StatusCode::UNPROCESSABLE_ENTITY, layout::page("Roll back", "history", Some(&session), body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commit_ids_are_rolled_back_to() {
        assert_eq!(commit_id("0123abcd"), Ok("0123abcd"));
        assert!(commit_id("HEAD~1").is_err() && commit_id("abc").is_err() && commit_id(&"a".repeat(65)).is_err());
    }
}
