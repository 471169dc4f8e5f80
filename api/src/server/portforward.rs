//! `portforward`: one upgraded request carries one TCP connection to a
//! port of the pod, relayed to the pod's address (the daemon's node reaches
//! pod addresses over its bridge). The connection is made before the
//! upgrade is answered, so a port nothing listens on is an error the
//! client sees, as kubectl's `error forwarding port` is.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_store::StoreExt;
use hyper_util::rt::TokioIo;

use super::ApiState;
use super::query::Query;
use crate::ApiError;

/// The upgrade protocol of a port-forward stream: the raw bytes of one TCP
/// connection each way.
pub const PROTOCOL: &str = "driftless-portforward";

pub(crate) async fn serve(state: ApiState, namespace: &str, name: &str, query: &Query, request: Request) -> Result<Response, ApiError> {
    let pod = state.store.api::<Pod>().get(namespace, name).ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))?;
    let port: u16 = query
        .get("ports")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::BadRequest("one port to forward is required (?ports=8080)".into()))?;
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("pod {name:?} has no address: is it running?")))?;
    let upgrade = request.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok());
    if upgrade != Some(PROTOCOL) {
        return Err(ApiError::BadRequest(format!("portforward needs an upgrade to {PROTOCOL}")));
    }
    let target = std::net::SocketAddr::new(ip, port);
    let connect = tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::TcpStream::connect(target)).await;
    let mut stream = match connect {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(ApiError::BadRequest(format!("error forwarding port {port} to pod {name}: {error}"))),
        Err(_) => return Err(ApiError::BadRequest(format!("error forwarding port {port} to pod {name}: timed out connecting"))),
    };
    tracing::info!(pod = %format!("{namespace}/{name}"), port, "port-forward");
    let on_upgrade = hyper::upgrade::on(request);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut io, &mut stream) => {}
            _ = shutdown.cancelled() => {}
        }
    });
    Ok((StatusCode::SWITCHING_PROTOCOLS, [(header::CONNECTION, "upgrade"), (header::UPGRADE, PROTOCOL)]).into_response())
}
