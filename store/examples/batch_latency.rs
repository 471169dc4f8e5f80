//! Store write latency for a commit's worth of objects, on both backends
//! in one run: a batch of N objects (1,000 by default) created, then the
//! same N updated, R rounds each, timed from `apply` called to returned
//! (for etcd: committed, and back in memory through the watch). Also the
//! latency of single writes (a controller's status update).
//!
//! `cargo run --release -p driftless-store --example batch_latency -- [N] [ROUNDS]`
//! starts Debian's etcd (scripts/setup.sh) on loopback ports with the
//! transaction limits the store needs, in a temporary folder, and stops
//! it at the end. Bounded: N at most 20,000, rounds at most 100.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_store::{Batch, EtcdConfig, EtcdStore, Key, Op, SqliteStore, Store};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn etcd(dir: &std::path::Path) -> (Etcd, String) {
    let (client, peer) = (free_port(), free_port());
    let (client_url, peer_url) = (format!("http://127.0.0.1:{client}"), format!("http://127.0.0.1:{peer}"));
    let child = Command::new("etcd")
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.join("etcd"))
        .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("bench={peer_url}"), "--initial-cluster-state", "new"])
        .args(["--max-txn-ops", "100000", "--max-request-bytes", "67108864"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd (scripts/setup.sh installs Debian's etcd-server)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
        assert!(Instant::now() < deadline, "etcd did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Etcd(child), format!("etcd://127.0.0.1:{client}"))
}

/// A ConfigMap of about 1 KiB, as a commit's objects are.
fn object(i: usize, round: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("config-{i:05}"), "namespace": "bench", "labels": {"app": format!("app-{}", i % 50)},
            "annotations": {"driftless.dev/commit": format!("{round:07x} round {round}")}},
        "data": {"settings.yaml": "x".repeat(900), "round": round.to_string()}})
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn measure(name: &str, store: &dyn Store, n: usize, rounds: usize) {
    let mut batches = Vec::new();
    for round in 0..rounds {
        let mut batch = Batch::new();
        for i in 0..n {
            batch.push(if round == 0 { Op::Create(object(i, round)) } else { Op::Put(object(i, round)) });
        }
        batch.set_meta("driftless.sync", json!({"applied": format!("{round:07x}")}));
        let started = Instant::now();
        let written = store.apply(batch).expect("the batch is written");
        batches.push(started.elapsed());
        assert_eq!(written.len(), n);
    }
    let mut singles = Vec::new();
    for i in 0..(rounds * 10).min(n) {
        let key = Key::new(driftless_model::Kind::ConfigMap, "bench", format!("config-{i:05}"));
        let started = Instant::now();
        store.apply(Batch::one(Op::Status { key, uid: None, status: json!({"seen": i}) })).expect("a single write");
        singles.push(started.elapsed());
    }
    batches.sort();
    singles.sort();
    println!(
        "{name:8} batch of {n}: p50 {:8.1} ms  p99 {:8.1} ms  max {:8.1} ms   single write: p50 {:6.2} ms  p99 {:6.2} ms   ({} batches, {} singles)",
        percentile(&batches, 0.5),
        percentile(&batches, 0.99),
        percentile(&batches, 1.0),
        percentile(&singles, 0.5),
        percentile(&singles, 0.99),
        batches.len(),
        singles.len()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000).clamp(1, 20_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20).clamp(2, 100);
    let dir = tempfile::tempdir().unwrap();

    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    measure("sqlite", &*sqlite, n, rounds);

    let (_etcd, url) = etcd(dir.path());
    let store = EtcdStore::connect(&EtcdConfig::parse(&url).unwrap()).unwrap();
    measure("etcd", &store, n, rounds);
}
