//! Pod streams (logs, exec, attach, port-forward) of pods on another node:
//! the API forwards the request to that node's agent, which serves them
//! from its own runtime, as kube-apiserver forwards them to a kubelet.
//!
//! The agent's address is its Node's InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`; its certificate must
//! chain to the CA its Node publishes (annotation [`SERVING_CA`]), which
//! only that node may write; and the API presents the node's own token
//! (from the tokens file), which is the one credential the agent accepts.
//! Upgraded requests (exec, attach, port-forward) are joined end to end
//! once both sides have switched protocols.
//!
//! Must not touch: the request's meaning: path, query and headers go
//! through unchanged but for the credentials.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use driftless_model::Kind;
use driftless_store::Key;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::ApiState;
use crate::ApiError;

/// The Node annotation holding the PEM of the CA an agent's serving
/// certificate chains to.
pub const SERVING_CA: &str = "driftless.dev/serving-ca";

/// Where a pod's streams are served, when not here.
pub(super) struct Remote {
    node: String,
    address: String,
    host: String,
    ca: String,
    token: String,
}

/// The agent serving pod `namespace/name`, or `None` when this API serves
/// it itself (its node is this one, or it is not bound, or it does not
/// exist: the local handlers say so). An API without a node of its own
/// (a pure control plane, a standby) forwards every bound pod's.
pub(super) fn target(state: &ApiState, namespace: &str, name: &str) -> Result<Option<Remote>, ApiError> {
    let Some(pod) = state.store.get(&Key::new(Kind::Pod, namespace, name)) else { return Ok(None) };
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    let local = match &state.node_name {
        Some(local) => node == local,
        None => state.node.is_some(),
    };
    if node.is_empty() || local {
        return Ok(None);
    }
    let unavailable = |why: String| ApiError::BadRequest(format!("pod {name:?} runs on node {node:?}, whose streams cannot be reached: {why}"));
    let object = state.store.get(&Key::new(Kind::Node, "", node)).ok_or_else(|| unavailable("no such Node".into()))?;
    let host = object
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|addresses| addresses.iter().find(|a| a["type"] == "InternalIP"))
        .and_then(|a| a["address"].as_str())
        .ok_or_else(|| unavailable("it has no InternalIP".into()))?;
    let port =
        object.pointer("/status/daemonEndpoints/kubeletEndpoint/Port").and_then(Value::as_u64).ok_or_else(|| unavailable("its agent serves none".into()))?;
    let ca = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SERVING_CA))
        .and_then(Value::as_str)
        .ok_or_else(|| unavailable(format!("it publishes no {SERVING_CA}")))?;
    let user = format!("system:node:{node}");
    let token = state.tokens.as_ref().and_then(|t| t.token_of(&user)).ok_or_else(|| unavailable(format!("the tokens file has no token of {user}")))?;
    let address = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    Ok(Some(Remote { node: node.to_owned(), address, host: host.to_owned(), ca: ca.to_owned(), token: token.to_owned() }))
}

fn failed(remote: &Remote, what: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("node {:?} at {}: {what}", remote.node, remote.address))
}

/// Sends `request` to the agent and its answer back; an upgrade is joined
/// end to end.
pub(super) async fn forward(remote: Remote, mut request: Request) -> Result<Response, ApiError> {
    let config = crate::tls::client_config(remote.ca.as_bytes()).map_err(|e| failed(&remote, format!("its CA: {e}")))?;
    let name = rustls::pki_types::ServerName::try_from(remote.host.clone()).map_err(|e| failed(&remote, e))?;
    let stream = tokio::time::timeout(std::time::Duration::from_secs(10), tokio::net::TcpStream::connect(&remote.address))
        .await
        .map_err(|_| failed(&remote, "no answer within 10s"))?
        .map_err(|e| failed(&remote, e))?;
    let stream = tokio_rustls::TlsConnector::from(config).connect(name, stream).await.map_err(|e| failed(&remote, e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| failed(&remote, e))?;
    tokio::spawn(connection.with_upgrades());

    let client_upgrade = hyper::upgrade::on(&mut request);
    let (mut parts, body) = request.into_parts();
    let bearer = HeaderValue::from_str(&format!("Bearer {}", remote.token)).map_err(|e| failed(&remote, e))?;
    parts.headers.insert(header::AUTHORIZATION, bearer);
    parts.headers.insert(header::HOST, HeaderValue::from_str(&remote.address).map_err(|e| failed(&remote, e))?);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    parts.uri = path.parse().map_err(|e| failed(&remote, e))?;
    tracing::debug!(node = %remote.node, %path, "forwarding a pod stream to its node");
    let mut response = sender.send_request(Request::from_parts(parts, body)).await.map_err(|e| failed(&remote, e))?;
    if response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
        let agent_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(client), Ok(agent)) = (client_upgrade.await, agent_upgrade.await) else { return };
            let (mut client, mut agent) = (TokioIo::new(client), TokioIo::new(agent));
            let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
        });
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::new(body.map_err(axum::Error::new))))
}
