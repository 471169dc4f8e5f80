//! What keeps pages current without reloading, as server-sent events:
//! `/ui/changes` says "something changed" when the store's watch reports
//! a change (at most once a second, so a rollout of 100 pods is a few
//! refreshes, not hundreds), and a pod's `…/logs` stream sends each line
//! its container writes. The page's script (`assets/live.js`) listens.
//!
//! Must not touch: what pages show (a change event carries nothing but
//! the store revision; the page fetches itself again) or how logs are
//! read (the API's one log reader, `driftless_api::log_stream`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::UiState;

/// The shortest time between two change events.
const COALESCE: Duration = Duration::from_secs(1);
/// How many log lines a page starts with.
const TAIL: usize = 500;

/// `GET /ui/changes`: an event each time the store changed (coalesced),
/// until the daemon stops or the page goes.
pub(crate) async fn changes(State(state): State<UiState>, request: Request) -> Response {
    if crate::session(&state, request.headers()).is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let watch = state.api.store.watch();
    let shutdown = state.api.shutdown.clone();
    let store = state.api.store.clone();
    let stream = futures_util::stream::unfold((watch, shutdown), move |(mut watch, shutdown)| {
        let store = store.clone();
        async move {
            // Wait for one change (a lagged receiver missed some: that is
            // a change too), then let the burst it starts settle.
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                received = watch.recv() => if let Err(RecvError::Closed) = received { return None },
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(COALESCE) => {}
            }
            watch = watch.resubscribe();
            let event = Event::default().event("change").data(store.revision().to_string());
            Some((Ok::<_, Infallible>(event), (watch, shutdown)))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    container: Option<String>,
}

/// `GET /ui/objects/Pod/NS/NAME/logs?container=C`: the last lines, then
/// each new one, one event per line; an `end` event when the pod is gone.
pub(crate) async fn logs(
    State(state): State<UiState>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
    request: Request,
) -> Response {
    if crate::session(&state, request.headers()).is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let asked = driftless_api::LogRequest { container: query.container, tail: Some(TAIL), follow: true, ..Default::default() };
    let chunks = match driftless_api::log_stream(&state.api, &namespace, &name, &asked).await {
        Ok(chunks) => chunks,
        // The page shows why (a container still waiting has no log yet)
        // in the log's place, and the script tries again later.
        Err(error) => {
            let event = Event::default().event("error").data(error.to_string().replace('\r', ""));
            return Sse::new(futures_util::stream::once(async move { Ok::<_, Infallible>(event) })).into_response();
        }
    };
    // SSE cannot carry a carriage return; a line is a line without it.
    let lines = chunks.flat_map(|chunk| futures_util::stream::iter(chunk.lines().map(|l| l.replace('\r', "")).collect::<Vec<_>>()));
    let events = lines.map(|line| Ok::<_, Infallible>(Event::default().data(line)));
    let end = futures_util::stream::once(async { Ok::<_, Infallible>(Event::default().event("end").data("")) });
    Sse::new(events.chain(end)).keep_alive(KeepAlive::default()).into_response()
}
