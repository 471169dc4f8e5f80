//! `attach`: a running container's output from now on, over the exec
//! WebSocket protocol ([`crate::channel`]), read from its log file as it
//! grows, each line on the stream it was written to; the container's exit
//! code comes last, as kubectl attach shows it.
//!
//! Must not touch: the container. Its standard input is not kept open by
//! the runtime, so `attach -i` is refused with the reason (see
//! ARCHITECTURE's differences).

use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::{Store, StoreExt};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::ApiState;
use super::channel::{self, Output};
use super::logs::{container_of, decode_line, read_from};
use super::query::Query;
use crate::ApiError;
use crate::channel::{STDERR, STDOUT};

/// How often the log file is read for more.
const POLL: Duration = Duration::from_millis(100);

pub(crate) async fn serve(state: ApiState, namespace: &str, name: &str, query: &Query, request: Request) -> Result<Response, ApiError> {
    let pod = state.store.api::<Pod>().get(namespace, name).ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))?;
    let container = container_of(&pod, name, query.get("container"))?;
    if query.flag("stdin") {
        return Err(ApiError::BadRequest(format!(
            "cannot attach to the standard input of container {container:?}: Driftless does not keep containers' standard input open; use kubectl exec -i"
        )));
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let node = state.node.clone().ok_or_else(|| ApiError::BadRequest("this daemon runs no node".into()))?;
    if exit_code(&pod, &container).is_some() {
        return Err(ApiError::BadRequest(format!("container {container} not found in pod {name} or not running")));
    }
    let path = node.log_path(&uid, &container, false).ok_or_else(|| ApiError::BadRequest(format!("container {container:?} has no log yet")))?;
    let accepted = channel::accept(&request, &crate::channel::PROTOCOLS)?;
    let mut offset = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
    tracing::info!(pod = %format!("{namespace}/{name}"), container, "attach");
    let (tx, rx) = mpsc::channel(64);
    let (store, shutdown) = (state.store.clone(), state.shutdown.clone());
    let (namespace, name) = (namespace.to_owned(), name.to_owned());
    tokio::spawn(async move {
        let mut partial = String::new();
        loop {
            partial.push_str(&read_from(&path, &mut offset).await);
            let complete = partial.rfind('\n').map(|i| i + 1).unwrap_or(0);
            for line in partial[..complete].lines() {
                let stream = if line.split(' ').nth(1) == Some("stderr") { STDERR } else { STDOUT };
                if let Some(text) = decode_line(line, false)
                    && tx.send(Output::Data(stream, text.into_bytes().into())).await.is_err()
                {
                    return;
                }
            }
            partial.drain(..complete);
            match ended(&*store, &namespace, &name, &uid, &container) {
                Some(code) => {
                    let _ = tx.send(Output::Exit(code)).await;
                    return;
                }
                None => tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = tx.closed() => return,
                    _ = shutdown.cancelled() => return,
                },
            }
        }
    });
    let on_upgrade = hyper::upgrade::on(request);
    let response = accepted.response();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let socket = channel::Socket::new(TokioIo::new(upgraded), accepted.protocol).await;
        if let Err(error) = channel::relay_output(socket, rx).await {
            tracing::debug!(%error, "attach stream ended with an error");
        }
    });
    Ok(response)
}

/// The exit code once the attached instance has ended: terminated (its
/// code), restarted, or the pod gone (0).
fn ended(store: &dyn Store, namespace: &str, name: &str, uid: &str, container: &str) -> Option<i32> {
    let Some(pod) = store.api::<Pod>().get(namespace, name).filter(|p| p.metadata.uid.as_deref() == Some(uid)) else { return Some(0) };
    exit_code(&pod, container)
}

/// The container's exit code if it is not running now.
fn exit_code(pod: &Pod, container: &str) -> Option<i32> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.iter().find(|c| c.name == container)?;
    let state = status.state.as_ref()?;
    if state.running.is_some() {
        return None;
    }
    Some(state.terminated.as_ref().map_or(0, |t| t.exit_code))
}
