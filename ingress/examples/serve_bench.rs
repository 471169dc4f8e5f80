//! A benchmark target for bench/ingress.sh: a tiny HTTP backend and the
//! ingress in front of it, in one process, both on loopback addresses the
//! caller gives, for a bounded time.
//!
//! Usage: `serve_bench INGRESS_ADDR BACKEND_ADDR LIFETIME_SECONDS WORKERS`:
//! WORKERS threads for the backend's runtime, and as many ingress workers.
//! The backend answers every request with `ok\n`; the ingress routes host
//! `bench.test` to it (a Service with one ready endpoint). Both stop by
//! themselves after LIFETIME_SECONDS.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use driftless_ingress::{DEFAULT_CLASS, IngressConfig, IngressServer, IngressTable};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::task::JoinSet;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, ingress_addr, backend_addr, lifetime, workers] = args.as_slice() else {
        eprintln!("usage: serve_bench INGRESS_ADDR BACKEND_ADDR LIFETIME_SECONDS WORKERS");
        std::process::exit(64);
    };
    let ingress_addr: SocketAddr = ingress_addr.parse().expect("INGRESS_ADDR");
    let backend_addr: SocketAddr = backend_addr.parse().expect("BACKEND_ADDR");
    assert!(ingress_addr.ip().is_loopback() && backend_addr.ip().is_loopback(), "loopback addresses only");
    let lifetime = Duration::from_secs(lifetime.parse().expect("LIFETIME_SECONDS"));
    let workers: usize = workers.parse().expect("WORKERS");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    runtime.block_on(async move {
        let mut backend = JoinSet::new();
        let listener = tokio::net::TcpListener::bind(backend_addr).await.expect("binding the backend");
        backend.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                connections.spawn(async move {
                    let service =
                        hyper::service::service_fn(|_request| async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok\n")))) });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });

        let service = serde_json::from_value(json!({"metadata": {"name": "bench", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}]}}))
        .unwrap();
        let endpoints = serde_json::from_value(json!({"metadata": {"name": "bench", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": backend_addr.ip().to_string()}], "ports": [{"name": "http", "port": backend_addr.port()}]}]}))
        .unwrap();
        let ingress = serde_json::from_value(json!({"metadata": {"name": "bench", "namespace": "default"}, "spec": {"rules": [
            {"host": "bench.test", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "bench", "port": {"number": 80}}}}]}}]}}))
        .unwrap();
        let (table, warnings) = IngressTable::build(DEFAULT_CLASS, &[ingress], &[service], &[endpoints], &[]);
        assert!(warnings.is_empty(), "{warnings:?}");
        let config = IngressConfig { http: vec![ingress_addr], workers, ..IngressConfig::default() };
        let server = IngressServer::start(config).expect("starting the ingress");
        server.set_table(table);
        println!("ready: ingress {} backend {backend_addr}", server.http_addrs()[0]);
        tokio::time::sleep(lifetime).await;
        server.shutdown().await;
        backend.abort_all();
    });
}
