//! Benchmark: `kubectl get pods` on 1,000 pods against the real `driftless
//! up`, over HTTPS with the kubeconfig `driftless kubeconfig` prints. One
//! node runs at most 110 pods (Kubernetes' default), so 110 run and the
//! rest wait Pending, as on a one-node cluster. Measured: the
//! request's latency as kubectl itself measures it (`-v=6` logs `GET ...
//! 200 OK in N milliseconds`; a server-side Table of 1,000 rows), kubectl's
//! whole run, and the daemon's RSS with the pods running.
//!
//! Usage (root): `kubectl_get [PODS] [RUNS]` (defaults 1000 and 20), after
//! `cargo build --release -p driftless -p driftless-runtime --bins
//! --examples`. Uses its own bridge, a /22 pod CIDR, and cleans up with
//! `driftless reset`.

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/daemon.rs"]
mod daemon;
use daemon::{Bench, Network, sleep_deployment};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

fn main() {
    let pods: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let runs: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let network = Network {
        bridge: "dlkget0",
        pod_cidr: "10.250.0.0/22",
        service_cidr: "10.103.0.0/24",
        cluster_dns: "10.103.0.10",
        cgroup_root: "/driftless-bench-kget",
    };
    let bench = Bench::start_with(&sleep_deployment(pods), &network, &["--listen", &listen]);
    // All the pod objects, and as many running as the node takes.
    let running = pods.min(110);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    bench.runtime.block_on(async {
        loop {
            let list = bench.client.get("/api/v1/namespaces/default/pods").await.unwrap();
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let up = items.iter().filter(|p| p.pointer("/status/phase").and_then(|v| v.as_str()) == Some("Running")).count();
            if items.len() == pods && up >= running {
                break;
            }
            assert!(Instant::now() < deadline, "{} pods, {up} running", items.len());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    eprintln!("{pods} pods, {running} running, in {:.1} s", started.elapsed().as_secs_f64());
    let rss = rss_mib(bench.daemon.id());

    let kubeconfig = bench.data.join("bench-kubeconfig");
    let printed = Command::new(&bench.bin).args(["kubeconfig", "--data-dir"]).arg(&bench.data).output().unwrap();
    assert!(printed.status.success());
    std::fs::write(&kubeconfig, &printed.stdout).unwrap();
    let cache = bench.data.join("bench-kube-cache");
    let (mut request, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let out = Command::new("kubectl").arg("--kubeconfig").arg(&kubeconfig).arg("--cache-dir").arg(&cache).args(["get", "pods", "-v=6"]).output().unwrap();
        whole.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), pods + 1, "a header and a row per pod");
        // client-go logs each response: `"Response" verb="GET"
        // url="https://.../api/v1/namespaces/default/pods?limit=500"
        // status="200 OK" milliseconds=42` (or, older, `GET URL 200 OK in
        // 42 milliseconds`).
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let took: f64 = log
            .lines()
            .filter(|l| l.contains("/api/v1/namespaces/default/pods") && l.contains("200 OK"))
            .filter_map(|l| match l.split("milliseconds=").nth(1) {
                Some(rest) => rest.split_whitespace().next()?.parse::<f64>().ok(),
                None => l.split(" 200 OK in ").nth(1)?.split_whitespace().next()?.parse::<f64>().ok(),
            })
            .sum();
        assert!(took > 0.0, "no response time in kubectl's log: {log}");
        request.push(took);
    }
    println!("| `kubectl get pods`, {pods} pods, {runs} runs | p50 | daemon RSS |");
    println!("|---|---|---|");
    println!("| the request(s), as kubectl times them (`-v=6`) | {:.0} ms | {rss:.1} MiB |", median(request));
    println!("| kubectl's whole run | {:.0} ms | |", median(whole));
}
