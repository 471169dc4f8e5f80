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

mod headers;
mod pool;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::table::{Backend, IngressTable, normalize_request_host};
pub(crate) use pool::Pool;
use pool::SendError;

/// How many endpoints one request tries to connect to before it gives up
/// with a 503: the one round robin picked and, if that one refuses, the
/// next.
pub(crate) const CONNECT_ATTEMPTS: usize = 2;

/// The body of every response the proxy sends.
pub(crate) type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// What every request of a server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) table: Arc<ArcSwap<IngressTable>>,
    pub(crate) pool: Pool,
    pub(crate) response_timeout: Duration,
    /// Tunnels of upgraded connections and backend connections; they end
    /// at once when their worker's runtime is dropped (the end of a drain,
    /// or drop), so none of them waits on a stop token of its own.
    pub(crate) tasks: TaskTracker,
}

/// The client connection a request came on.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    /// `http` or `https`.
    pub(crate) proto: &'static str,
    /// The client's address as an `X-Forwarded-For` value, made once per
    /// connection rather than per request.
    pub(crate) peer_ip: HeaderValue,
}

/// Answers one request. Never fails: every problem is a response.
pub(crate) async fn handle(shared: Arc<Shared>, client: Arc<Client>, request: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let table = shared.table.load_full();
    let host = request_host(&request).map(normalize_request_host).unwrap_or_default();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let Some(route) = table.route(&host, &path) else {
        let response = text(StatusCode::NOT_FOUND, format!("no ingress rule matches host {host:?} and path {path:?}, and no ingress has a defaultBackend"));
        info!(target: "driftless_ingress::access", %method, host, path, status = 404, peer = %client.peer, "no route");
        return Ok(response);
    };
    let backend = route.backend;
    let (response, endpoint) = forward(&shared, &client, backend, request).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    // Formatted only if the access log is on.
    let endpoint = tracing::field::display(Endpoint(endpoint));
    info!(
        target: "driftless_ingress::access",
        %method, host, path, ingress = route.ingress, %backend, endpoint, status, elapsed_ms, peer = %client.peer, "proxied"
    );
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
    let mut request = outbound(request, client, upgrade);

    let start = backend.next_start();
    let attempts = endpoints.len().min(CONNECT_ATTEMPTS);
    for attempt in 0..attempts {
        let endpoint = endpoints[(start + attempt) % endpoints.len()];
        let sent = tokio::time::timeout(shared.response_timeout, shared.pool.send(endpoint, request)).await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(SendError::Connect(error, unsent))) => {
                warn!(%backend, %endpoint, %error, attempt = attempt + 1, "cannot connect to endpoint");
                request = *unsent;
                continue;
            }
            Ok(Err(SendError::Failed(error))) => {
                warn!(%backend, %endpoint, %error, "backend exchange failed");
                return (text(StatusCode::BAD_GATEWAY, format!("endpoint {endpoint} of service {backend} failed: {error}")), Some(endpoint));
            }
            Err(_) => {
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

/// The request as the backend gets it: origin-form URI over HTTP/1.1, the
/// client's Host kept (or taken from `:authority`), hop-by-hop headers
/// removed, `X-Forwarded-*` set.
fn outbound(request: Request<Incoming>, client: &Client, upgrade: bool) -> Request<Incoming> {
    let (mut parts, body) = request.into_parts();
    let host = match parts.uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => parts.headers.get(header::HOST).cloned(),
    };
    headers::remove_hop_by_hop(&mut parts.headers, upgrade);
    // We answer `Expect: 100-continue` ourselves (hyper does, when the
    // body is first read); the backend gets the body without waiting.
    parts.headers.remove(header::EXPECT);
    if let Some(host) = &host {
        parts.headers.insert(header::HOST, host.clone());
    }
    headers::set_forwarded(&mut parts.headers, headers::Forwarded { peer: &client.peer_ip, local: client.local, proto: client.proto, host: host.as_ref() });
    parts.uri = Uri::from(parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/")));
    parts.version = hyper::Version::HTTP_11;
    Request::from_parts(parts, body)
}

/// The backend's response as the client gets it: hop-by-hop headers
/// removed, the body streamed as it arrives.
fn inbound(response: Response<pool::PooledBody>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers, false);
    Response::from_parts(parts, body.boxed_unsync())
}

/// Joins an upgraded client connection to the upgraded backend connection
/// and answers the client's 101 with the backend's headers.
fn tunnel(shared: &Shared, client: hyper::upgrade::OnUpgrade, mut response: Response<pool::PooledBody>, endpoint: SocketAddr) -> Response<ProxyBody> {
    let backend = hyper::upgrade::on(&mut response);
    shared.tasks.spawn(async move {
        let joined = async {
            let (client, backend) = tokio::try_join!(client, backend)?;
            let copied = tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(backend)).await;
            Ok::<_, hyper::Error>(copied)
        };
        match joined.await {
            Ok(Ok((up, down))) => debug!(%endpoint, up, down, "upgraded connection closed"),
            Ok(Err(error)) => debug!(%endpoint, %error, "upgraded connection failed"),
            Err(error) => debug!(%endpoint, %error, "upgrade failed"),
        }
    });
    let (mut parts, _) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers, true);
    Response::from_parts(parts, empty())
}

fn empty() -> ProxyBody {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed_unsync()
}

/// A response of our own: the status line's words and why, as plain text.
pub(crate) fn text(status: StatusCode, why: String) -> Response<ProxyBody> {
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!("{} {reason}: {why}\n", status.as_u16());
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
