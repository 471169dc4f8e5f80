//! Bodies and connections: large request and response bodies streamed
//! through in lockstep (the far side sees the first chunk before the rest
//! is sent, so nothing buffers a whole body), upgrades passed through,
//! HTTP/2 from clients, and the header read timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use driftless_ingress::IngressConfig;
use hyper::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// 32 MiB: far more than any buffer on the way.
const LARGE: usize = 32 * 1024 * 1024;

fn one_backend_cluster(backend: &TestBackend) -> Cluster {
    let mut cluster = Cluster::default();
    cluster.service(&backend.name, &[backend.addr], &[]);
    cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"defaultBackend": to(&backend.name)}}));
    cluster
}

#[tokio::test]
async fn a_large_upload_streams_through() {
    let (sink, mut events) = TestBackend::start("sink", 2).await;
    let ingress = start(one_backend_cluster(&sink).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    let (mut sender, body) = channel_body();
    let request = hyper::Request::post("/upload").header("host", "up.test").body(body).unwrap();
    let response = tokio::spawn(async move { connection.send(request).await });

    let chunk = |start: usize| Bytes::from((start..start + CHUNK).map(pattern).collect::<Vec<u8>>());
    bounded("sending the first chunk", sender.send_data(chunk(0))).await.unwrap();
    // The backend has the first chunk while the rest is not even made.
    let event = bounded("the first chunk at the backend", events.recv()).await.unwrap();
    assert!(event.starts_with("first chunk "), "{event}");
    let mut sent = CHUNK;
    while sent < LARGE {
        bounded("sending a chunk", sender.send_data(chunk(sent))).await.unwrap();
        sent += CHUNK;
    }
    drop(sender);
    let answer = bounded("the upload's answer", response).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["bytes"], LARGE);
    assert_eq!(answer.json()["intact"], true);
    assert_eq!(answer.seen("transfer-encoding"), ["chunked"], "a body of unknown length goes on chunked");
}

#[tokio::test]
async fn a_large_download_streams_through() {
    let (source, _) = TestBackend::start("source", 2).await;
    let ingress = start(one_backend_cluster(&source).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    let response = connection.head(get("down.test", &format!("/download?bytes={LARGE}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // The first chunk arrives while the backend holds back the rest.
    let first = next_data(&mut body).await.unwrap();
    assert!(!first.is_empty() && first.len() <= CHUNK);
    source.release();
    let mut received = first.len();
    let mut intact = first.iter().enumerate().all(|(i, b)| *b == pattern(i));
    while let Some(data) = next_data(&mut body).await {
        intact &= data.iter().enumerate().all(|(i, b)| *b == pattern(received + i));
        received += data.len();
    }
    assert_eq!(received, LARGE);
    assert!(intact, "the body arrived in order and unchanged");
}

#[tokio::test]
async fn upgrades_pass_through() {
    let (echo, _) = TestBackend::start("echo", 2).await;
    let ingress = start(one_backend_cluster(&echo).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    let request = hyper::Request::get("/ws")
        .header("host", "ws.test")
        .header("connection", "Upgrade")
        .header("upgrade", "echo")
        .body(full_request(Bytes::new()))
        .unwrap();
    let response = connection.head(request).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["upgrade"], "echo");
    let upgraded = bounded("the upgrade", hyper::upgrade::on(response)).await.unwrap();
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    for message in ["hello", "through the ingress"] {
        bounded("writing", io.write_all(message.as_bytes())).await.unwrap();
        let mut buffer = vec![0; message.len()];
        bounded("the echo", io.read_exact(&mut buffer)).await.unwrap();
        assert_eq!(buffer, message.as_bytes());
    }
}

#[tokio::test]
async fn http2_clients_are_served_over_http1_backends() {
    let (web, _) = TestBackend::start("web", 2).await;
    let ingress = start(one_backend_cluster(&web).table());
    let stream = TcpStream::connect(http_addr(&ingress)).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    let mut driver = tokio::task::JoinSet::new();
    driver.spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::get("http://h2.test/path?q=1").body(full_request(Bytes::new())).unwrap();
    let response = bounded("the h2 response", sender.send_request(request)).await.unwrap();
    let answer = read(response).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.backend(), "web");
    assert_eq!(answer.seen("host"), ["h2.test"], ":authority becomes the Host header");
    assert_eq!(answer.json()["uri"], "/path?q=1");
    assert_eq!(answer.json()["version"], "HTTP/1.1");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let (web, _) = TestBackend::start("web", 2).await;
    let config = IngressConfig { header_read_timeout: Duration::from_millis(300), ..IngressConfig::default() };
    let ingress = start_with(one_backend_cluster(&web).table(), config);
    let mut stream = TcpStream::connect(http_addr(&ingress)).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: slow.test\r\n").await.unwrap();
    let started = Instant::now();
    let mut buffer = Vec::new();
    // The server closes the connection (perhaps after a 408); the headers
    // never finish.
    let _ = bounded("the server to hang up", stream.read_to_end(&mut buffer)).await;
    assert!(buffer.is_empty() || buffer.starts_with(b"HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&buffer));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(5), "cut off after {elapsed:?}");
    assert_eq!(web.requests(), 0);
}
