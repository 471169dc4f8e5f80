//! Benchmark: from a `git commit` to every pod of a Deployment Ready, as a
//! user waits for it, through the real `driftless up` binary; and the
//! daemon's memory with those pods running.
//!
//! Usage (root): `commit_to_ready [RUNS] [sqlite|etcd]`, after `cargo
//! build --release -p driftless -p driftless-runtime --examples`. With
//! `etcd`, the store is a one-member etcd (Debian's, started here with the
//! limits the store needs) instead of the embedded SQLite. For 10 and then 100
//! replicas, each run starts from 0 replicas, commits the new count, and
//! times until a watch of the pods shows them all Ready. The daemon's RSS
//! is read from /proc with 100 pods Ready. Uses its own bridge, CIDRs and
//! cgroup root, and removes everything with `driftless reset` at the end.

use std::time::{Duration, Instant};

use driftless_api::Client;

#[path = "support/daemon.rs"]
mod daemon;
#[path = "../../tests/support/etcd.rs"]
#[allow(dead_code)]
mod etcd;
#[path = "support/pods.rs"]
mod pods;
#[path = "../../tests/support/ports.rs"]
mod ports;
use daemon::{Bench, Network, git, sleep_deployment};
use pods::wait_pods;

fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS")
}

/// A number from /proc/PID/status (kB for sizes).
fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let prefix = format!("{field}:");
    status.lines().find(|l| l.starts_with(&prefix)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Waits until `n` pods are Ready (0: until none is left); the time it took.
async fn wait_ready(client: &Client, n: usize, started: Instant) -> Duration {
    wait_pods(client, n).await - started
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(5);
    let network =
        Network { bridge: "dlbench0", pod_cidr: "10.247.0.0/24", service_cidr: "10.100.0.0/24", cluster_dns: "10.100.0.10", cgroup_root: "/driftless-bench" };
    let backend = std::env::args().nth(2).unwrap_or_else(|| "sqlite".into());
    let etcd = match backend.as_str() {
        "sqlite" => None,
        "etcd" => Some(etcd::Etcd::start()),
        other => panic!("unknown store {other:?}: sqlite or etcd"),
    };
    let store: Vec<&str> = etcd.as_ref().map_or(Vec::new(), |etcd| vec!["--store", &etcd.url]);
    let bench = Bench::start_with(&sleep_deployment(0), &network, &store);
    let (repo, client, runtime, daemon) = (&bench.repo, &bench.client, &bench.runtime, &bench.daemon);
    println!("store: {backend}");
    println!("| replicas | runs | min | p50 | max | daemon RSS with them Ready |");
    println!("|---|---|---|---|---|---|");
    let mut commit = 1;
    for n in [10u32, 100] {
        let mut times = Vec::new();
        let mut rss = 0;
        for _ in 0..runs {
            std::fs::write(repo.join("apps/bench.yaml"), sleep_deployment(n as usize)).unwrap();
            let started = Instant::now();
            git(repo, &["commit", "-q", "-am", &format!("commit {commit}: {n} replicas")]);
            commit += 1;
            let took = runtime.block_on(wait_ready(client, n as usize, started));
            times.push(took);
            let now = rss_kib(daemon.id());
            rss = rss.max(now);
            // Where the memory is: heap and stacks (anonymous) against the
            // binary's and libraries' pages (file), and how many threads.
            let pid = daemon.id();
            eprintln!(
                "{n} replicas: {took:?}, daemon RSS {:.1} MiB (anonymous {:.1}, file {:.1}; {} threads){}",
                now as f64 / 1024.0,
                status_field(pid, "RssAnon") as f64 / 1024.0,
                status_field(pid, "RssFile") as f64 / 1024.0,
                status_field(pid, "Threads"),
                etcd.as_ref().map_or(String::new(), |etcd| format!("; etcd RSS {:.1} MiB", rss_kib(etcd.pid()) as f64 / 1024.0))
            );
            std::fs::write(repo.join("apps/bench.yaml"), sleep_deployment(0)).unwrap();
            git(repo, &["commit", "-q", "-am", &format!("commit {commit}: 0 replicas")]);
            commit += 1;
            runtime.block_on(wait_ready(client, 0, Instant::now()));
        }
        times.sort();
        println!(
            "| {n} | {runs} | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} MiB |",
            times[0].as_secs_f64() * 1000.0,
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
            rss as f64 / 1024.0
        );
    }
}
