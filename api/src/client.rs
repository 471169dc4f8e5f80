//! The client the CLI and the agents use: HTTP/1.1 over the daemon's Unix
//! socket, or over HTTPS (trusting one CA) with a bearer token. Connections
//! are pooled and kept alive (hyper-util's pool over `dial.rs`); a clone
//! shares its original's pool.

use std::path::PathBuf;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::Value;

use crate::dial::Dialer;

/// How long an idle connection is kept for the next request: longer than
/// an agent's heartbeat (10 s), so a quiet node keeps its one connection.
const IDLE: Duration = Duration::from_secs(30);

/// Where the daemon listens.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// Its Unix socket.
    Unix(PathBuf),
    /// `host:port` over HTTPS, with the token to present.
    Https {
        /// `host:port`.
        address: String,
        /// The bearer token.
        token: Option<String>,
        /// The PEM file of the CA the server's certificate must chain to.
        ca: PathBuf,
    },
}

/// A request that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error("cannot reach the daemon at {endpoint}: {source}")]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// HTTP failed mid-way.
    #[error("talking to the daemon: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be sent, or its answer not read.
    #[error("talking to the daemon at {endpoint}: {}", chain(source))]
    Transport {
        /// Where.
        endpoint: String,
        /// Why.
        #[source]
        source: legacy::Error,
    },
    /// The daemon answered with an error.
    #[error("{message}")]
    Status {
        /// The HTTP status.
        code: u16,
        /// The daemon's message.
        message: String,
    },
    /// The answer was not JSON.
    #[error("the daemon's answer is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A request could not be built.
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
}

impl ClientError {
    /// Whether the daemon said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Status { code: 404, .. })
    }
}

/// An error and its causes, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        line.push_str(": ");
        line.push_str(&error.to_string());
        cause = error.source();
    }
    line
}

/// A client of one daemon.
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: Endpoint,
    /// `scheme://authority` of every request (the dialer ignores it; the
    /// pool keys on it and the Host header comes from it).
    base: String,
    pool: legacy::Client<Dialer, Full<Bytes>>,
}

impl Client {
    /// A client of the daemon at `endpoint`. Nothing is dialled until the
    /// first request.
    pub fn new(endpoint: Endpoint) -> Client {
        let (base, dialer) = match &endpoint {
            Endpoint::Unix(path) => ("http://driftless".to_owned(), Dialer::Unix(path.clone())),
            Endpoint::Https { address, ca, .. } => (format!("https://{address}"), Dialer::Tls { address: address.clone(), ca: ca.clone() }),
        };
        let pool = legacy::Client::builder(TokioExecutor::new()).pool_timer(TokioTimer::new()).pool_idle_timeout(IDLE).build(dialer);
        Client { endpoint, base, pool }
    }

    /// Where it connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn describe(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(path) => path.display().to_string(),
            Endpoint::Https { address, .. } => format!("https://{address}"),
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut builder = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Endpoint::Https { token: Some(token), .. } = &self.endpoint {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(value) => {
                builder = builder.header("content-type", "application/json");
                Full::new(Bytes::from(value.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        Ok(builder.body(body)?)
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let response = self.pool.request(request).await.map_err(|error| self.transport(error))?;
        if response.status().is_success() || response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(response);
        }
        let code = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        Err(ClientError::Status { code, message })
    }

    /// A failed request as the caller sees it: not reachable at all, or
    /// failed on the way.
    fn transport(&self, error: legacy::Error) -> ClientError {
        if error.is_connect() {
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                    return ClientError::Connect { endpoint: self.describe(), source: std::io::Error::new(io.kind(), io.to_string()) };
                }
                cause = inner.source();
            }
        }
        ClientError::Transport { endpoint: self.describe(), source: error }
    }

    /// GETs `path` and parses the JSON answer.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let response = self.send(self.request("GET", path, None)?).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }

    /// GETs `path` as text.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let response = self.send(self.request("GET", path, None)?).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// POSTs JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let response = self.send(self.request("POST", path, Some(body))?).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }

    /// PUTs `body` (JSON) to `path`; the JSON answer.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let response = self.send(self.request("PUT", path, Some(body))?).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }

    /// PATCHes `path` with `body` as `content_type` (a merge patch, say);
    /// the JSON answer.
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Value, ClientError> {
        let mut request = self.request("PATCH", path, Some(body))?;
        request.headers_mut().insert("content-type", hyper::header::HeaderValue::from_str(content_type).map_err(hyper::http::Error::from)?);
        let response = self.send(request).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }

    /// DELETEs `path`.
    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.delete_with(path, None).await
    }

    /// DELETEs `path` with `options` (Kubernetes' DeleteOptions) as the
    /// body.
    pub async fn delete_with(&self, path: &str, options: Option<&Value>) -> Result<Value, ClientError> {
        let response = self.send(self.request("DELETE", path, options)?).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }

    /// GETs `path` and yields the body as it arrives (watches, followed
    /// logs).
    pub async fn stream(&self, path: &str) -> Result<futures_util::stream::BoxStream<'static, Result<Bytes, ClientError>>, ClientError> {
        let response = self.send(self.request("GET", path, None)?).await?;
        let body = response.into_body();
        Ok(futures_util::StreamExt::boxed(futures_util::stream::unfold(body, |mut body| async move {
            loop {
                match body.frame().await? {
                    Ok(frame) => {
                        if let Ok(data) = frame.into_data() {
                            return Some((Ok(data), body));
                        }
                    }
                    Err(error) => return Some((Err(ClientError::Http(error)), body)),
                }
            }
        })))
    }

    /// Opens a WebSocket at `path` speaking one of `protocols`; the socket
    /// and the protocol the server chose.
    pub async fn websocket(
        &self,
        path: &str,
        protocols: &[&str],
    ) -> Result<(tokio_tungstenite::WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, String), ClientError> {
        let mut request = self.request("GET", path, None)?;
        let headers = request.headers_mut();
        let value = |v: &str| hyper::header::HeaderValue::from_str(v).map_err(hyper::http::Error::from);
        headers.insert("connection", value("Upgrade")?);
        headers.insert("upgrade", value("websocket")?);
        headers.insert("sec-websocket-version", value("13")?);
        headers.insert("sec-websocket-key", value(&tokio_tungstenite::tungstenite::handshake::client::generate_key())?);
        headers.insert("sec-websocket-protocol", value(&protocols.join(", "))?);
        let response = self.send(request).await?;
        let protocol = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let upgraded = hyper::upgrade::on(response).await?;
        let socket =
            tokio_tungstenite::WebSocketStream::from_raw_socket(TokioIo::new(upgraded), tokio_tungstenite::tungstenite::protocol::Role::Client, None).await;
        Ok((socket, protocol))
    }

    /// POSTs to `path` asking to upgrade to `protocol` (port-forward's),
    /// and returns the raw stream.
    pub async fn upgrade(&self, path: &str, protocol: &str) -> Result<TokioIo<hyper::upgrade::Upgraded>, ClientError> {
        let mut request = self.request("POST", path, None)?;
        request.headers_mut().insert("connection", hyper::header::HeaderValue::from_static("upgrade"));
        request.headers_mut().insert("upgrade", hyper::header::HeaderValue::from_str(protocol).map_err(hyper::http::Error::from)?);
        let response = self.send(request).await?;
        let upgraded = hyper::upgrade::on(response).await?;
        Ok(TokioIo::new(upgraded))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A server on a Unix socket that answers `{}` and counts the
    /// connections it accepted.
    async fn counting_server(path: &std::path::Path) -> Arc<AtomicUsize> {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(|_| async { Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from("{}")))) });
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        accepted
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_connection_and_clones_share_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let accepted = counting_server(&socket).await;
        let client = Client::new(Endpoint::Unix(socket));
        for _ in 0..20 {
            client.get("/api/v1/pods").await.unwrap();
            client.clone().put("/api/v1/namespaces/default/pods/a/status", &serde_json::json!({})).await.unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "40 requests in turn took more than one connection");
    }

    #[tokio::test]
    async fn an_absent_daemon_is_a_connect_error_naming_where() {
        let dir = tempfile::tempdir().unwrap();
        let client = Client::new(Endpoint::Unix(dir.path().join("none.sock")));
        let error = client.get("/api/v1/pods").await.unwrap_err();
        assert!(matches!(&error, ClientError::Connect { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{error:?}");
        assert!(error.to_string().contains("none.sock"), "{error}");
    }
}
