//! `exec` into a running container: the request is upgraded to a
//! WebSocket speaking Kubernetes' channel protocol ([`crate::channel`],
//! what kubectl and the CLI speak); the command runs in the container
//! through the runtime's helper, its standard streams relayed both ways,
//! and its exit code sent last.

use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::StoreExt;
use hyper_util::rt::TokioIo;

use super::logs::container_of;
use super::query::Query;
use super::{ApiState, channel};
use crate::ApiError;

pub(crate) async fn serve(state: ApiState, namespace: &str, name: &str, query: &Query, request: Request) -> Result<Response, ApiError> {
    let pod = state.store.api::<Pod>().get(namespace, name).ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))?;
    let container = container_of(&pod, name, query.get("container"))?;
    let args = query.all("command");
    if args.is_empty() {
        return Err(ApiError::BadRequest("you must specify at least one command for the container".into()));
    }
    let websocket = request.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !websocket {
        return Err(ApiError::BadRequest(format!("exec needs an upgrade to a WebSocket speaking {}", crate::channel::PROTOCOLS.join(" or "))));
    }
    let accepted = channel::accept(&request, &crate::channel::PROTOCOLS)?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let node = state.node.clone().ok_or_else(|| ApiError::BadRequest("this daemon runs no node".into()))?;
    let tty = query.flag("tty");
    let command =
        node.exec(&uid, &container, &args, tty).ok_or_else(|| ApiError::BadRequest(format!("container {container:?} in pod {name:?} is not running")))?;
    tracing::info!(pod = %format!("{namespace}/{name}"), container, ?args, tty, "exec");
    let on_upgrade = hyper::upgrade::on(request);
    let shutdown = state.shutdown.clone();
    let response = accepted.response();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let socket = channel::Socket::new(TokioIo::new(upgraded), accepted.protocol).await;
        tokio::select! {
            result = channel::relay(socket, command, tty) => if let Err(error) = result {
                tracing::warn!(%error, "exec stream ended with an error");
            },
            _ = shutdown.cancelled() => {}
        }
    });
    Ok(response)
}
