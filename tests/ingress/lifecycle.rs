//! Starting and stopping: bind errors come back from `start` with nothing
//! left running; `shutdown` closes the listeners, lets a request in flight
//! finish and is bounded by the drain timeout; dropping the handle stops
//! the server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use driftless_ingress::{DEFAULT_CLASS, IngressConfig, IngressError, IngressServer, IngressTable};
use hyper::StatusCode;
use serde_json::json;
use tokio::net::TcpStream;

use crate::support::*;

fn held_cluster(backend: &TestBackend) -> Cluster {
    let mut cluster = Cluster::default();
    cluster.service(&backend.name, &[backend.addr], &[]);
    cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"defaultBackend": to(&backend.name)}}));
    cluster
}

async fn refuses(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_err()
}

#[tokio::test]
async fn a_bind_error_is_returned() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = IngressConfig { http: vec!["127.0.0.1:0".parse().unwrap()], https: vec![addr], ..IngressConfig::default() };
    match IngressServer::start(config) {
        Err(IngressError::Bind { addr: failed, scheme: "https", .. }) => assert_eq!(failed, addr),
        other => panic!("expected a bind error, got {other:?}"),
    }
    let error = IngressServer::start(IngressConfig::default()).unwrap_err();
    assert!(matches!(error, IngressError::NoListenAddress), "{error:?}");
}

#[test]
fn the_server_runs_on_threads_of_its_own() {
    use std::io::{Read, Write};
    // Started outside any runtime, with two workers on one port.
    let config = IngressConfig { http: vec!["127.0.0.1:0".parse().unwrap()], workers: 2, ..IngressConfig::default() };
    let ingress = IngressServer::start(config).unwrap();
    let addr = ingress.http_addrs()[0];
    // Each connection is served, whichever worker the kernel hands it to.
    for _ in 0..8 {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    }
    drop(ingress);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "the listeners are still open");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn an_empty_table_is_404_and_the_addresses_are_known() {
    let ingress = start(IngressTable::empty(DEFAULT_CLASS));
    let addrs = ingress.local_addrs();
    assert_eq!(addrs.len(), 2);
    assert_eq!(addrs[0], ingress.http_addrs()[0]);
    assert_eq!(addrs[1], ingress.https_addrs()[0]);
    assert!(addrs.iter().all(|addr| addr.ip().is_loopback() && addr.port() != 0));
    assert_eq!(fetch(addrs[0], "any.test", "/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let (slow, mut events) = TestBackend::start("slow", 2).await;
    let ingress = start(held_cluster(&slow).table());
    let addr = http_addr(&ingress);
    let mut connection = Connection::open(addr).await;
    let in_flight = tokio::spawn(async move { connection.send(get("x.test", "/held")).await });
    assert_eq!(bounded("the held request", events.recv()).await.as_deref(), Some("held"));

    let mut stopping = tokio::spawn(ingress.shutdown());
    eventually("the listener to close", || refuses(addr)).await;
    assert!(!stopping.is_finished(), "shutdown waits for the request in flight");
    slow.release();
    let answer = bounded("the held answer", in_flight).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.backend(), "slow");
    bounded("shutdown", &mut stopping).await.unwrap();
}

#[tokio::test]
async fn shutdown_is_bounded_by_the_drain_timeout() {
    let (slow, mut events) = TestBackend::start("slow", 2).await;
    let config = IngressConfig { drain_timeout: Duration::from_millis(300), ..IngressConfig::default() };
    let ingress = start_with(held_cluster(&slow).table(), config);
    let addr = http_addr(&ingress);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut client = Connection::open(addr).await;
    let in_flight = tokio::spawn(async move {
        let response = client.try_head(get("x.test", "/held")).await;
        response.is_err()
    });
    assert_eq!(bounded("the held request", events.recv()).await.as_deref(), Some("held"));
    let started = Instant::now();
    bounded("shutdown", ingress.shutdown()).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(bounded("the cut request", in_flight).await.unwrap(), "the request in flight was cut off");
    // An idle keep-alive connection was closed too.
    let mut buffer = [0u8; 1];
    let read = bounded("the idle connection to close", tokio::io::AsyncReadExt::read(&mut stream, &mut buffer)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    slow.release();
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let ingress = start(IngressTable::empty(DEFAULT_CLASS));
    let addrs = ingress.local_addrs();
    assert_eq!(fetch(addrs[0], "x.test", "/").await.status, StatusCode::NOT_FOUND);
    drop(ingress);
    for addr in addrs {
        eventually("the listener to close", || refuses(addr)).await;
    }
}
