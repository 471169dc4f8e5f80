//! Answering one request: find its route in the table snapshot the request
//! started with, then forward it to an endpoint of the backend, streaming
//! both bodies, or answer 404 (nothing matches), 503 (no ready endpoint,
//! or none accepted a connection), 502 (the exchange failed) or 504 (no
//! answer in time) with a plain-text body saying why.
//!
//! Endpoints are taken round robin; when connecting to one fails, the next
//! is tried, at most [`CONNECT_ATTEMPTS`] endpoints per request. Nothing
//! of the request has been sent when a connection fails, so the retry is
//! safe for any method. Upgrades (WebSocket) are passed through: once the
//! backend answers 101, the two connections are joined byte for byte.
//!
//! The backend side is HTTP/1.1 of our own (`exchange.rs`, `body.rs`) on
//! connections of our own (`pool.rs`); the client side is hyper's server.

mod body;
mod deadline;
mod exchange;
mod headers;
mod pool;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::table::{Backend, IngressTable, normalize_request_host};
use body::BackendBody;
pub(crate) use body::ProxyBody;
use deadline::Deadline;
use exchange::Outgoing;
pub(crate) use pool::Pool;
use pool::SendError;

/// How many endpoints one request tries to connect to before it gives up
/// with a 503: the one round robin picked and, if that one refuses, the
/// next.
pub(crate) const CONNECT_ATTEMPTS: usize = 2;

/// What every request of a server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) table: Arc<ArcSwap<IngressTable>>,
    pub(crate) pool: Pool,
    pub(crate) response_timeout: Duration,
    /// Tunnels of upgraded connections; they end at once when their
    /// worker's runtime is dropped (the end of a drain, or drop), so none of
    /// them waits on a stop token of its own.
    pub(crate) tasks: TaskTracker,
}

/// The client connection a request came on.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) peer: SocketAddr,
    /// `http` or `https`.
    pub(crate) proto: &'static str,
    /// The client's address as an `X-Forwarded-For` value, and the port it
    /// connected to as `X-Forwarded-Port`, made once per connection rather
    /// than per request.
    pub(crate) peer_ip: HeaderValue,
    pub(crate) local_port: HeaderValue,
    /// The response timeout's timer, kept between requests.
    pub(crate) deadline: Deadline,
}

/// Answers one request. Never fails: every problem is a response.
pub(crate) async fn handle(shared: Arc<Shared>, client: Arc<Client>, request: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    let table = shared.table.load_full();
    let host = request_host(&request).map(normalize_request_host).unwrap_or_default();
    let Some(route) = table.route(&host, request.uri().path()) else {
        let (method, path) = (request.method(), request.uri().path());
        let response = text(StatusCode::NOT_FOUND, format!("no ingress rule matches host {host:?} and path {path:?}, and no ingress has a defaultBackend"));
        info!(target: "driftless_ingress::access", %method, host = %host, path, status = 404, peer = %client.peer, "no route");
        return Ok(response);
    };
    // What the access log says of the request, copied only if the log is
    // on: the request itself goes on to the backend.
    let access = tracing::enabled!(target: "driftless_ingress::access", tracing::Level::INFO)
        .then(|| (Instant::now(), request.method().clone(), host.into_owned(), request.uri().path().to_owned()));
    let backend = route.backend;
    let (response, endpoint) = forward(&shared, &client, backend, request).await;
    if let Some((started, method, host, path)) = access {
        let status = response.status().as_u16();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let endpoint = tracing::field::display(Endpoint(endpoint));
        info!(
            target: "driftless_ingress::access",
            %method, host, path, ingress = route.ingress, %backend, endpoint, status, elapsed_ms, peer = %client.peer, "proxied"
        );
    }
    Ok(response)
}

/// An endpoint for the access log: its address, or nothing.
struct Endpoint(Option<SocketAddr>);

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(endpoint) => endpoint.fmt(f),
            None => Ok(()),
        }
    }
}

/// The host the client asked for: the authority of an absolute URI (and
/// HTTP/2's `:authority`), else the Host header.
fn request_host<B>(request: &Request<B>) -> Option<&str> {
    request.uri().authority().map(|authority| authority.as_str()).or_else(|| request.headers().get(header::HOST)?.to_str().ok())
}

/// Forwards to the backend's endpoints; returns the response and the
/// endpoint that gave it, if any did.
async fn forward(shared: &Shared, client: &Client, backend: &Backend, mut request: Request<Incoming>) -> (Response<ProxyBody>, Option<SocketAddr>) {
    let endpoints = backend.endpoints();
    if endpoints.is_empty() {
        return (text(StatusCode::SERVICE_UNAVAILABLE, format!("service {backend} has no ready endpoints")), None);
    }
    let upgrade = headers::is_upgrade(request.version(), request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let forwarded = headers::Forwarded { peer: &client.peer_ip, port: &client.local_port, proto: client.proto };
    let mut request = Outgoing::new(request, forwarded, upgrade);

    let start = backend.next_start();
    let attempts = endpoints.len().min(CONNECT_ATTEMPTS);
    for attempt in 0..attempts {
        let endpoint = endpoints[(start + attempt) % endpoints.len()];
        let sent = client.deadline.within(shared.response_timeout, shared.pool.send(endpoint, request)).await;
        let response = match sent {
            Some(Ok(response)) => response,
            Some(Err(SendError::Connect(error, unsent))) => {
                warn!(%backend, %endpoint, %error, attempt = attempt + 1, "cannot connect to endpoint");
                request = *unsent;
                continue;
            }
            Some(Err(SendError::Failed(error))) => {
                warn!(%backend, %endpoint, %error, "backend exchange failed");
                return (text(StatusCode::BAD_GATEWAY, format!("endpoint {endpoint} of service {backend} failed: {error}")), Some(endpoint));
            }
            None => {
                let seconds = shared.response_timeout.as_secs_f64();
                return (
                    text(StatusCode::GATEWAY_TIMEOUT, format!("endpoint {endpoint} of service {backend} did not answer within {seconds}s")),
                    Some(endpoint),
                );
            }
        };
        let response = match client_upgrade {
            Some(client_upgrade) if response.status() == StatusCode::SWITCHING_PROTOCOLS => tunnel(shared, client_upgrade, response, endpoint),
            _ => inbound(response),
        };
        return (response, Some(endpoint));
    }
    let tried = if attempts == endpoints.len() { "no endpoint".to_owned() } else { format!("none of {attempts} endpoints tried") };
    (text(StatusCode::SERVICE_UNAVAILABLE, format!("{tried} of service {backend} accepted a connection")), None)
}

/// The backend's response as the client gets it: hop-by-hop headers
/// removed, the body streamed as it arrives.
fn inbound(response: Response<BackendBody>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers, false);
    Response::from_parts(parts, ProxyBody::Backend(body))
}

/// Joins an upgraded client connection to the upgraded backend connection
/// and answers the client's 101 with the backend's headers. What the
/// backend sent after its 101 goes to the client first.
fn tunnel(shared: &Shared, client: hyper::upgrade::OnUpgrade, response: Response<BackendBody>, endpoint: SocketAddr) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    if let Some(backend) = body.into_upgraded() {
        shared.tasks.spawn(async move {
            let joined = async {
                let mut client = TokioIo::new(client.await.map_err(io::Error::other)?);
                let mut stream = backend.stream;
                client.write_all(&backend.read).await?;
                tokio::io::copy_bidirectional(&mut client, &mut stream).await
            };
            match joined.await {
                Ok((up, down)) => debug!(%endpoint, up, down, "upgraded connection closed"),
                Err(error) => debug!(%endpoint, %error, "upgraded connection failed"),
            }
        });
    }
    headers::remove_hop_by_hop(&mut parts.headers, true);
    Response::from_parts(parts, empty())
}

fn empty() -> ProxyBody {
    ProxyBody::Own(None)
}

/// A response of our own: the status line's words and why, as plain text.
pub(crate) fn text(status: StatusCode, why: String) -> Response<ProxyBody> {
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!("{} {reason}: {why}\n", status.as_u16());
    let mut response = Response::new(ProxyBody::Own(Some(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
