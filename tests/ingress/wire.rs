//! Backends that are not hyper: responses written byte for byte as other
//! servers write them (chunk extensions and trailers, bodies ended by the
//! close, 1xx heads before the answer, bodiless HEAD, 204 and 304 answers,
//! a kept connection the backend drops), malformed ones, and Python's own
//! `http.server`. The proxy frames each as RFC 9112 §6.3 says, and keeps
//! a backend connection only when the next request can safely follow.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::support::*;

/// What a scripted backend does with one request.
struct Reply {
    bytes: &'static [u8],
    /// Close the connection once written.
    close: bool,
}

/// A backend on 127.0.0.`n` that answers the `i`-th request on each
/// connection (counting from 0) with `script(path, i)`, and counts its
/// connections. Stops when dropped.
struct Scripted {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// Every request head it read, as text.
    heads: Arc<Mutex<Vec<String>>>,
    _tasks: JoinSet<()>,
}

impl Scripted {
    async fn start(n: u8, script: fn(&str, usize) -> Reply) -> Scripted {
        let listener = TcpListener::bind(SocketAddr::new(loopback(n), 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (counted, recorded) = (connections.clone(), heads.clone());
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut open = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                counted.fetch_add(1, Ordering::Relaxed);
                open.spawn(serve_script(stream, script, recorded.clone()));
                while open.try_join_next().is_some() {}
            }
        });
        Scripted { addr, connections, heads, _tasks: tasks }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Reads request heads (the tests send no bodies) and writes the script's
/// replies, until the proxy closes or the script says to.
async fn serve_script(mut stream: TcpStream, script: fn(&str, usize) -> Reply, heads: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    for index in 0.. {
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end);
        // Bodies are not read as such; what follows a head that is not a
        // request line is a body's bytes, answered but not recorded.
        if head.lines().next().is_some_and(|line| line.ends_with(" HTTP/1.1") || line.ends_with(" HTTP/1.0")) {
            heads.lock().unwrap().push(head.clone());
        }
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let reply = script(&path, index);
        if stream.write_all(reply.bytes).await.is_err() || reply.close {
            return;
        }
    }
}

fn cluster_for(addr: SocketAddr) -> Cluster {
    let mut cluster = Cluster::default();
    cluster.service("wire", &[addr], &[]);
    cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"defaultBackend": to("wire")}}));
    cluster
}

fn request(method: &str, path: &str) -> Request<TestRequestBody> {
    Request::builder().method(method).uri(path).header("host", "wire.test").body(full_request(Bytes::new())).unwrap()
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers_arrive_whole_and_the_connection_is_kept() {
    let backend = Scripted::start(2, |_, _| Reply {
        bytes:
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n",
        close: false,
    })
    .await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    for _ in 0..3 {
        let answer = connection.send(request("GET", "/")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), "hello world");
        assert!(answer.headers.get("trailer").is_none(), "Trailer is hop-by-hop: {:?}", answer.headers);
    }
    assert_eq!(backend.connections(), 1, "a chunked body ends by itself; its connection is used again");
}

#[tokio::test]
async fn a_body_ended_by_the_close_arrives_and_its_connection_is_not_reused() {
    let backend = Scripted::start(2, |_, _| Reply { bytes: b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close", close: true }).await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    for _ in 0..2 {
        let answer = connection.send(request("GET", "/")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), "until the close");
    }
    assert_eq!(backend.connections(), 2);
}

#[tokio::test]
async fn head_204_and_304_answers_have_no_body_and_the_next_request_follows() {
    let backend = Scripted::start(2, |path, _| match path {
        // A HEAD answer announces the length a GET would have.
        "/head" => Reply { bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", close: false },
        "/204" => Reply { bytes: b"HTTP/1.1 204 No Content\r\n\r\n", close: false },
        "/304" => Reply { bytes: b"HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\n\r\n", close: false },
        _ => Reply { bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext", close: false },
    })
    .await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    let answer = connection.send(request("HEAD", "/head")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-length"], "1000");
    assert!(answer.body.is_empty());
    assert_eq!(connection.send(request("GET", "/204")).await.status, StatusCode::NO_CONTENT);
    let answer = connection.send(request("GET", "/304")).await;
    assert_eq!(answer.status, StatusCode::NOT_MODIFIED);
    assert_eq!(answer.headers["etag"], "\"1\"");
    let answer = connection.send(request("GET", "/next")).await;
    assert_eq!(answer.text(), "next", "nothing of a bodiless answer was taken for a body");
    assert_eq!(backend.connections(), 1);
}

#[tokio::test]
async fn informational_heads_before_the_answer_are_passed_over() {
    let backend = Scripted::start(2, |_, _| Reply {
        bytes: b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        close: false,
    })
    .await;
    let ingress = start(cluster_for(backend.addr).table());
    let answer = fetch(http_addr(&ingress), "wire.test", "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "ok");
}

#[tokio::test]
async fn a_kept_connection_the_backend_closes_is_replaced_for_a_get() {
    // Answers as keep-alive, then closes at once: as a backend whose idle
    // timeout ends the connection the proxy just put back in its pool.
    let backend = Scripted::start(2, |_, _| Reply { bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: true }).await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    for round in 1..=3 {
        let answer = connection.send(request("GET", "/")).await;
        assert_eq!((answer.status, answer.text().as_str()), (StatusCode::OK, "ok"), "round {round}");
    }
    assert_eq!(backend.connections(), 3);
}

#[tokio::test]
async fn malformed_answers_are_502_naming_the_endpoint() {
    let backend = Scripted::start(2, |path, _| match path {
        "/smtp" => Reply { bytes: b"220 mail.example.com ESMTP ready\r\n\r\n", close: true },
        "/lengths" => Reply { bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", close: true },
        "/chunks" => Reply { bytes: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", close: true },
        _ => Reply { bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", close: true },
    })
    .await;
    let ingress = start(cluster_for(backend.addr).table());
    let addr = http_addr(&ingress);
    for path in ["/smtp", "/lengths"] {
        let answer = fetch(addr, "wire.test", path).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{path}");
        let text = answer.text();
        assert!(text.contains(&format!("endpoint {} of service default/wire:80 failed", backend.addr)), "{path}: {text}");
        assert!(text.contains("malformed"), "{path}: {text}");
    }
    // The head was fine, the body is not: the client's response is cut
    // off (before or after its head went out), never completed.
    for path in ["/chunks", "/short"] {
        let mut connection = Connection::open(addr).await;
        let complete = match connection.try_head(request("GET", path)).await {
            Err(_) => false,
            Ok(response) => bounded("the cut body", http_body_util::BodyExt::collect(response.into_body())).await.is_ok(),
        };
        assert!(!complete, "{path}: a broken body is an error at the client");
    }
}

#[tokio::test]
async fn an_unusual_reason_phrase_reaches_the_client() {
    let backend = Scripted::start(2, |_, _| Reply { bytes: b"HTTP/1.1 404 No Such Widget\r\nContent-Length: 0\r\n\r\n", close: false }).await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut stream = TcpStream::connect(http_addr(&ingress)).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: wire.test\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    bounded("the answer", stream.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 404 No Such Widget\r\n"), "{answer}");
}

/// Python's `http.server` on 127.0.0.`n`, serving `dir`; killed when
/// dropped.
struct PythonServer {
    addr: SocketAddr,
    child: tokio::process::Child,
}

impl PythonServer {
    async fn start(n: u8, dir: &std::path::Path) -> PythonServer {
        // A free port: bound, then released for Python to take.
        let port = TcpListener::bind(SocketAddr::new(loopback(n), 0)).await.unwrap().local_addr().unwrap().port();
        let addr = SocketAddr::new(loopback(n), port);
        let child = tokio::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", &addr.ip().to_string(), "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        eventually("python's http.server to listen", || async { TcpStream::connect(addr).await.is_ok() }).await;
        PythonServer { addr, child }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn pythons_http_server_is_served_through() {
    let dir = tempfile::tempdir().unwrap();
    let page: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.path().join("page.txt"), &page).unwrap();
    let python = PythonServer::start(2, dir.path()).await;
    let ingress = start(cluster_for(python.addr).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    for _ in 0..2 {
        let answer = connection.send(request("GET", "/page.txt")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), page);
    }
    let answer = connection.send(request("HEAD", "/page.txt")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-length"], page.len().to_string());
    assert!(answer.body.is_empty());
    let answer = connection.send(request("GET", "/missing")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.text().contains("File not found"), "{}", answer.text());
}

#[tokio::test]
async fn a_request_with_two_framings_reaches_the_backend_with_one() {
    // Kept open: closing with the body unread would reset the connection.
    let backend = Scripted::start(2, |_, _| Reply { bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: false }).await;
    let ingress = start(cluster_for(backend.addr).table());
    // A smuggling attempt: a length beside chunked, the two disagreeing.
    let mut stream = TcpStream::connect(http_addr(&ingress)).await.unwrap();
    let request = b"POST / HTTP/1.1\r\nHost: wire.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    bounded("the answer", stream.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    // hyper may refuse it outright; if it went on, the backend saw one
    // framing, chunked, and no length.
    assert!(answer.starts_with("HTTP/1.1 200 OK") || answer.starts_with("HTTP/1.1 400"), "{answer}");
    for head in backend.heads() {
        let head = head.to_ascii_lowercase();
        assert!(!head.contains("content-length"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
    }
}

#[tokio::test]
async fn an_answer_with_two_framings_is_read_by_its_chunks_and_its_connection_dropped() {
    let backend = Scripted::start(2, |_, _| Reply {
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        close: false,
    })
    .await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    for _ in 0..2 {
        let answer = connection.send(request("GET", "/")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), "hello", "Transfer-Encoding wins over the length");
    }
    assert_eq!(backend.connections(), 2, "a connection whose framing may be faulty is not used again");
}

#[tokio::test]
async fn a_declared_length_reaches_the_backend_as_sent() {
    let backend = Scripted::start(2, |_, _| Reply { bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: true }).await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    let empty_post = Request::post("/").header("host", "wire.test").header("content-length", "0").body(full_request(Bytes::new())).unwrap();
    assert_eq!(connection.send(empty_post).await.status, StatusCode::OK);
    let head = backend.heads().pop().unwrap();
    assert!(head.contains("content-length: 0\r\n"), "a POST's declared empty body stays declared: {head}");
}

#[tokio::test]
async fn bytes_sent_right_behind_a_101_reach_the_client() {
    // The backend greets in the upgraded protocol in the same write as
    // its 101: those bytes arrive with the head and must not be lost.
    let backend = Scripted::start(2, |_, _| Reply {
        bytes: b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: greeting\r\n\r\nhello from the backend",
        close: false,
    })
    .await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut connection = Connection::open(http_addr(&ingress)).await;
    let upgrade =
        Request::get("/").header("host", "wire.test").header("connection", "upgrade").header("upgrade", "greeting").body(full_request(Bytes::new())).unwrap();
    let response = connection.head(upgrade).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let upgraded = bounded("the upgrade", hyper::upgrade::on(response)).await.unwrap();
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    let mut greeting = vec![0; "hello from the backend".len()];
    bounded("the greeting", io.read_exact(&mut greeting)).await.unwrap();
    assert_eq!(greeting, b"hello from the backend");
}

#[tokio::test]
async fn a_client_that_stops_sending_still_gets_its_answer() {
    let backend = Scripted::start(2, |_, _| Reply { bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: false }).await;
    let ingress = start(cluster_for(backend.addr).table());
    let mut stream = TcpStream::connect(http_addr(&ingress)).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: wire.test\r\n\r\n").await.unwrap();
    // Half-closed: nothing more is sent, the answer is still awaited
    // (RFC 9112 §9.6).
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    bounded("the answer", stream.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\nok"), "{answer}");
}
