//! The client the CLI uses: HTTP/1.1 over the daemon's Unix socket, or
//! over HTTPS (trusting one CA) with a bearer token.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;

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

/// A client of one daemon.
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: Endpoint,
}

type Sender = http1::SendRequest<Full<Bytes>>;

impl Client {
    /// A client of the daemon at `endpoint`.
    pub fn new(endpoint: Endpoint) -> Client {
        Client { endpoint }
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

    async fn connect(&self) -> Result<Sender, ClientError> {
        let connect_error = |source| ClientError::Connect { endpoint: self.describe(), source };
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(connect_error)?;
                let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection.with_upgrades());
                Ok(sender)
            }
            Endpoint::Https { address, ca, .. } => {
                let tls_error = |why: String| connect_error(std::io::Error::other(why));
                let pem = std::fs::read(ca).map_err(|e| tls_error(format!("reading the CA {}: {e}", ca.display())))?;
                let config = crate::tls::client_config(&pem).map_err(|e| tls_error(format!("{}: {e}", ca.display())))?;
                let host = address.rsplit_once(':').map_or(address.as_str(), |(host, _)| host).trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| tls_error(format!("{host}: {e}")))?;
                let stream = tokio::net::TcpStream::connect(address).await.map_err(connect_error)?;
                let stream = tokio_rustls::TlsConnector::from(config).connect(name, stream).await.map_err(connect_error)?;
                let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection.with_upgrades());
                Ok(sender)
            }
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut builder = Request::builder().method(method).uri(path).header("host", "driftless");
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
        let mut sender = self.connect().await?;
        let response = sender.send_request(request).await?;
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
