//! What the ingress end-to-end tests share: test backends (small hyper
//! servers on their own 127.0.0.x address that answer with their name and
//! the headers they got), the cluster objects that point at them, the
//! ingress under test on 127.0.0.1, and HTTP clients with bounded waits.
//! Everything is on 127.0.0.0/8, and everything started here stops when
//! its guard is dropped, even when a test fails.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use driftless_ingress::{IngressConfig, IngressHandle, IngressServer, IngressTable};
use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Secret, Service};
use driftless_model::k8s_openapi::api::networking::v1::Ingress;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

/// How long any one exchange of a test may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The size of the chunks streamed bodies are made of.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Byte `i` of every streamed body, so that a reordered or lost chunk shows.
pub(crate) fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Waits for `future`, failing the test after [`TIMEOUT`].
pub(crate) async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future).await.unwrap_or_else(|_| panic!("{what} took longer than {TIMEOUT:?}"))
}

/// Polls `check` until it returns true, failing after [`TIMEOUT`].
pub(crate) async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + TIMEOUT;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback address of its own for each backend: 127.0.0.`n`.
pub(crate) fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A test backend: answers every request with its name and what it got,
/// as JSON, plus a few paths for the streaming, upgrade and drain tests:
/// - `/upload`: reads the body, reporting its first chunk on `events`, and
///   answers with the byte count (after checking [`pattern`]);
/// - `/download?bytes=N`: streams N pattern bytes, holding all but the
///   first chunk until [`TestBackend::release`];
/// - `/held`: answers only after [`TestBackend::release`];
/// - `/ws` with `Upgrade`: switches protocols and echoes bytes.
///
/// Dropping it stops the server and its connections.
pub(crate) struct TestBackend {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    state: Arc<BackendState>,
    _tasks: JoinSet<()>,
}

struct BackendState {
    name: String,
    release: Arc<Notify>,
    /// Streaming and echo tasks; they hold nothing of the state, so
    /// dropping the state (once the connections are gone) aborts them.
    side: Mutex<JoinSet<()>>,
    events: mpsc::UnboundedSender<String>,
    connections: AtomicUsize,
    requests: AtomicUsize,
}

impl TestBackend {
    /// Starts a backend called `name` on 127.0.0.`n`, a free port.
    pub(crate) async fn start(name: &str, n: u8) -> (TestBackend, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind(SocketAddr::new(loopback(n), 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (events, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(BackendState {
            name: name.to_owned(),
            release: Arc::new(Notify::new()),
            side: Mutex::new(JoinSet::new()),
            events,
            connections: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        });
        let mut tasks = JoinSet::new();
        let shared = state.clone();
        tasks.spawn(async move {
            // Connections live in this task's JoinSet: aborting the task
            // (dropping the backend) drops them all.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let state = shared.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| answer(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades().await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        (TestBackend { name: name.to_owned(), addr, state, _tasks: tasks }, receiver)
    }

    /// Lets held requests and downloads go on.
    pub(crate) fn release(&self) {
        self.state.release.notify_waiters();
        self.state.release.notify_one();
    }

    /// How many TCP connections the backend has accepted.
    pub(crate) fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// How many requests it has answered or started answering.
    pub(crate) fn requests(&self) -> usize {
        self.state.requests.load(Ordering::Relaxed)
    }
}

type TestBody = BoxBody<Bytes, Infallible>;

fn full(body: impl Into<Bytes>) -> TestBody {
    Full::new(body.into()).boxed()
}

async fn answer(state: Arc<BackendState>, mut request: Request<Incoming>) -> Result<Response<TestBody>, Infallible> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let path = request.uri().path().to_owned();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.headers() {
        headers.entry(name.to_string()).or_default().push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let mut info = json!({
        "backend": state.name,
        "method": request.method().as_str(),
        "uri": request.uri().to_string(),
        "version": format!("{:?}", request.version()),
        "headers": headers,
    });
    match path.as_str() {
        "/upload" => {
            let mut body = request.into_body();
            let mut count = 0usize;
            let mut intact = true;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Ok(data) = frame.into_data() {
                    if count == 0 {
                        let _ = state.events.send(format!("first chunk {}", data.len()));
                    }
                    intact &= data.iter().enumerate().all(|(i, b)| *b == pattern(count + i));
                    count += data.len();
                }
            }
            info["bytes"] = json!(count);
            info["intact"] = json!(intact);
        }
        "/download" => {
            let total: usize = request.uri().query().and_then(|q| q.strip_prefix("bytes=")).and_then(|n| n.parse().ok()).unwrap_or(0);
            let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(2);
            let release = state.release.clone();
            state.side.lock().unwrap().spawn(async move {
                let mut sent = 0;
                while sent < total {
                    let len = CHUNK.min(total - sent);
                    let chunk: Vec<u8> = (sent..sent + len).map(pattern).collect();
                    if sender.send_data(Bytes::from(chunk)).await.is_err() {
                        return;
                    }
                    if sent == 0 {
                        // Hold the rest until the test has seen the first chunk.
                        let _ = tokio::time::timeout(TIMEOUT, release.notified()).await;
                    }
                    sent += len;
                }
            });
            let mut response = Response::new(body.boxed());
            response.headers_mut().insert("x-backend", state.name.parse().unwrap());
            return Ok(response);
        }
        "/held" => {
            let _ = state.events.send("held".to_owned());
            let _ = tokio::time::timeout(Duration::from_secs(30), state.release.notified()).await;
        }
        "/ws" if request.headers().contains_key(hyper::header::UPGRADE) => {
            let upgrade = hyper::upgrade::on(&mut request);
            state.side.lock().unwrap().spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let (mut read, mut write) = tokio::io::split(TokioIo::new(upgraded));
                    let _ = tokio::time::timeout(TIMEOUT, tokio::io::copy(&mut read, &mut write)).await;
                }
            });
            let mut response = Response::new(full(""));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response.headers_mut().insert("connection", "upgrade".parse().unwrap());
            response.headers_mut().insert("upgrade", "echo".parse().unwrap());
            return Ok(response);
        }
        _ => {}
    }
    let mut response = Response::new(full(info.to_string()));
    response.headers_mut().insert("x-backend", state.name.parse().unwrap());
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    // Hop-by-hop headers the proxy must not pass on.
    response.headers_mut().insert("keep-alive", "timeout=60".parse().unwrap());
    response.headers_mut().insert("connection", "x-backend-secret".parse().unwrap());
    response.headers_mut().insert("x-backend-secret", "1".parse().unwrap());
    Ok(response)
}

/// A Service `name` in `default` with port 80 named `http`, and its
/// Endpoints: `ready` addresses (one subset each, since every test backend
/// has its own port) and `not_ready` ones.
pub(crate) fn service(name: &str, ready: &[SocketAddr], not_ready: &[SocketAddr]) -> (Service, Endpoints) {
    let service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let mut subsets: Vec<Value> =
        ready.iter().map(|addr| json!({"addresses": [{"ip": addr.ip().to_string()}], "ports": [{"name": "http", "port": addr.port()}]})).collect();
    subsets
        .extend(not_ready.iter().map(|addr| json!({"notReadyAddresses": [{"ip": addr.ip().to_string()}], "ports": [{"name": "http", "port": addr.port()}]})));
    let endpoints = serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "subsets": subsets})).unwrap();
    (service, endpoints)
}

pub(crate) fn ingress(value: Value) -> Ingress {
    serde_json::from_value(value).unwrap()
}

/// A backend reference to port 80 of `service`.
pub(crate) fn to(service: &str) -> Value {
    json!({"service": {"name": service, "port": {"number": 80}}})
}

/// A port on 127.0.0.`n` that refuses connections: bound, then closed.
pub(crate) async fn refusing(n: u8) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::new(loopback(n), 0)).await.unwrap();
    listener.local_addr().unwrap()
}

/// The objects a table is built from.
#[derive(Default)]
pub(crate) struct Cluster {
    pub(crate) ingresses: Vec<Ingress>,
    pub(crate) services: Vec<Service>,
    pub(crate) endpoints: Vec<Endpoints>,
    pub(crate) secrets: Vec<Secret>,
}

impl Cluster {
    pub(crate) fn service(&mut self, name: &str, ready: &[SocketAddr], not_ready: &[SocketAddr]) -> &mut Self {
        let (service, endpoints) = service(name, ready, not_ready);
        self.services.push(service);
        self.endpoints.push(endpoints);
        self
    }

    pub(crate) fn ingress(&mut self, value: Value) -> &mut Self {
        self.ingresses.push(ingress(value));
        self
    }

    /// The table, asserting that building it warned about nothing.
    pub(crate) fn table(&self) -> IngressTable {
        let (table, warnings) = self.table_with_warnings();
        assert!(warnings.is_empty(), "{warnings:#?}");
        table
    }

    pub(crate) fn table_with_warnings(&self) -> (IngressTable, Vec<String>) {
        IngressTable::build(driftless_ingress::DEFAULT_CLASS, &self.ingresses, &self.services, &self.endpoints, &self.secrets)
    }
}

/// The ingress under test on free ports of 127.0.0.1 (one HTTP, one HTTPS
/// listener), serving `table`. Dropping the handle stops it.
pub(crate) fn start(table: IngressTable) -> IngressHandle {
    start_with(table, IngressConfig::default())
}

pub(crate) fn start_with(table: IngressTable, config: IngressConfig) -> IngressHandle {
    let config = IngressConfig { http: vec!["127.0.0.1:0".parse().unwrap()], https: vec!["127.0.0.1:0".parse().unwrap()], ..config };
    let ingress = IngressServer::start(config).unwrap();
    ingress.set_table(table);
    ingress
}

pub(crate) fn http_addr(ingress: &IngressHandle) -> SocketAddr {
    ingress.http_addrs()[0]
}

/// A response read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The backend's JSON report.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| panic!("not json ({error}): {:?} {}", self.status, self.text()))
    }

    /// Which backend answered (its name), per its JSON report.
    pub(crate) fn backend(&self) -> String {
        self.json()["backend"].as_str().unwrap().to_owned()
    }

    /// A header the backend got, all its values.
    pub(crate) fn seen(&self, header: &str) -> Vec<String> {
        let json = self.json();
        json["headers"][header].as_array().map(|values| values.iter().map(|v| v.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
    }
}

/// An HTTP/1.1 client connection whose driver task stops when it is
/// dropped.
pub(crate) struct Connection {
    sender: hyper::client::conn::http1::SendRequest<TestRequestBody>,
    _driver: JoinSet<()>,
}

pub(crate) type TestRequestBody = BoxBody<Bytes, Infallible>;

impl Connection {
    pub(crate) async fn open(addr: SocketAddr) -> Connection {
        let stream = bounded("connecting", TcpStream::connect(addr)).await.unwrap();
        Connection::over(stream).await
    }

    pub(crate) async fn over<I>(io: I) -> Connection
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.unwrap();
        let mut driver = JoinSet::new();
        driver.spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        Connection { sender, _driver: driver }
    }

    /// Sends `request` and reads the whole answer.
    pub(crate) async fn send(&mut self, request: Request<TestRequestBody>) -> Answer {
        let response = self.head(request).await;
        read(response).await
    }

    /// Sends `request`; the response head, or how the exchange failed.
    pub(crate) async fn try_head(&mut self, request: Request<TestRequestBody>) -> Result<Response<Incoming>, hyper::Error> {
        bounded("the response", async {
            self.sender.ready().await?;
            self.sender.send_request(request).await
        })
        .await
    }

    /// Sends `request` and returns the response as soon as its head is in.
    pub(crate) async fn head(&mut self, request: Request<TestRequestBody>) -> Response<Incoming> {
        bounded("the response", async {
            self.sender.ready().await.unwrap();
            self.sender.send_request(request).await.unwrap()
        })
        .await
    }
}

pub(crate) async fn read<B>(response: Response<B>) -> Answer
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let body = bounded("the body", body.collect()).await.unwrap().to_bytes();
    Answer { status: parts.status, headers: parts.headers, body }
}

/// A GET request with this Host header.
pub(crate) fn get(host: &str, path: &str) -> Request<TestRequestBody> {
    Request::get(path).header("host", host).body(full_request(Bytes::new())).unwrap()
}

pub(crate) fn full_request(body: Bytes) -> TestRequestBody {
    Full::new(body).boxed()
}

/// One GET over a fresh connection.
pub(crate) async fn fetch(addr: SocketAddr, host: &str, path: &str) -> Answer {
    Connection::open(addr).await.send(get(host, path)).await
}

/// A request body fed by the test, chunk by chunk.
pub(crate) fn channel_body() -> (http_body_util::channel::Sender<Bytes, Infallible>, TestRequestBody) {
    let (sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(2);
    (sender, body.boxed())
}

/// Reads the next data frame of a streamed body.
pub(crate) async fn next_data(body: &mut Incoming) -> Option<Bytes> {
    loop {
        let frame: Frame<Bytes> = bounded("the next chunk", body.frame()).await?.unwrap();
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}
