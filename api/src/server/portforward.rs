//! `pods/portforward`: the request is upgraded to a SPDY session speaking
//! Kubernetes' port-forward protocol ([`crate::portforward`]), either
//! tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`, what kubectl
//! 1.30+ tries first) or by a plain `Upgrade: SPDY/3.1` (its fallback).
//! Each forwarded connection goes to the port on the pod's own loopback,
//! inside its network namespace, as kubelet connects.
//!
//! Must not touch: the pod (only connections into it are made).

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::StoreExt;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{ApiState, channel};
use crate::ApiError;
use crate::portforward::{PROTOCOL_V1, SPDY_UPGRADE, WEBSOCKET_PROTOCOL, serve as forward};

/// The header that names the stream protocols a SPDY upgrade offers.
const PROTOCOL_VERSION: &str = "x-stream-protocol-version";

pub(crate) async fn serve(state: ApiState, namespace: &str, name: &str, request: Request) -> Result<Response, ApiError> {
    let pod = state.store.api::<Pod>().get(namespace, name).ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))?;
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    if !running {
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        return Err(ApiError::BadRequest(format!("pod {name} is not running (phase {phase:?}): nothing to forward to")));
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let node = state.node.clone().ok_or_else(|| ApiError::BadRequest("this daemon runs no node".into()))?;
    let upgrade = request.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let described = format!("{namespace}/{name}");
    let connect = move |port: u16| {
        let (node, uid, pod) = (node.clone(), uid.clone(), described.clone());
        async move {
            tracing::info!(%pod, port, "port-forward connection");
            let socket = tokio::task::spawn_blocking(move || node.connect(&uid, port)).await.map_err(|e| e.to_string()).and_then(|r| {
                r.map_err(|e| format!("error forwarding port {port} to pod {pod}: failed to connect to localhost:{port} inside namespace: {e}"))
            })?;
            socket.set_nonblocking(true).map_err(|e| e.to_string())?;
            tokio::net::TcpStream::from_std(socket).map_err(|e| e.to_string())
        }
    };
    let shutdown = state.shutdown.clone();
    if upgrade.eq_ignore_ascii_case("websocket") {
        let accepted = channel::accept(&request, &[WEBSOCKET_PROTOCOL])?;
        let on_upgrade = hyper::upgrade::on(request);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            tokio::select! {
                () = forward(crate::tunnel::bytes(socket), connect) => {}
                _ = shutdown.cancelled() => {}
            }
        });
        return Ok(accepted.response());
    }
    if !upgrade.eq_ignore_ascii_case(SPDY_UPGRADE) {
        return Err(ApiError::BadRequest(format!("portforward needs an upgrade to a WebSocket speaking {WEBSOCKET_PROTOCOL}, or to {SPDY_UPGRADE}")));
    }
    let offered =
        request.headers().get_all(PROTOCOL_VERSION).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|p| p.trim() == PROTOCOL_V1);
    if !offered {
        return Err(ApiError::BadRequest(format!("portforward speaks {PROTOCOL_V1}, which the client did not offer")));
    }
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        tokio::select! {
            () = forward(TokioIo::new(upgraded), connect) => {}
            _ = shutdown.cancelled() => {}
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static(SPDY_UPGRADE));
    headers.insert(PROTOCOL_VERSION, HeaderValue::from_static(PROTOCOL_V1));
    Ok(response)
}
