//! Benchmark: from a pod turning Ready (its Ready condition written to the
//! store, as seen by a watch) to it receiving traffic through its Service's
//! ClusterIP and appearing in the cluster DNS, through the real `driftless
//! up`.
//!
//! Usage (root): `ready_to_traffic [RUNS]`, after `cargo build --release
//! -p driftless -p driftless-runtime --bins --examples`. One pod with an
//! exec readiness probe on a file; each run creates the file, and times
//! the first answer through the ClusterIP (polled every 2 ms) and the
//! first DNS answer for the headless Service (polled every 2 ms) against
//! the watched Ready transition; then removes the file and waits for the
//! pod to leave the rotation.

use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftless_api::Client;
use futures_util::StreamExt;
use serde_json::Value;

#[path = "support/daemon.rs"]
mod daemon;
use daemon::{Bench, Network};

const MANIFESTS: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: bench}
spec:
  replicas: 1
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: busybox:1.35
        imagePullPolicy: Never
        command: [httpd, -f, -p, '8080', -h, /etc]
        readinessProbe: {exec: {command: [cat, /tmp/ready]}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Service
metadata: {name: bench}
spec: {selector: {app: bench}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: bench-h}
spec: {clusterIP: None, selector: {app: bench}, ports: [{port: 8080}]}
";

/// A DNS A query for `name`; the number of answers in the reply.
fn dns_answers(socket: &UdpSocket, server: &str, name: &str) -> usize {
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    if socket.send_to(&query, (server, 53)).is_err() {
        return 0;
    }
    let mut buf = [0u8; 512];
    match socket.recv(&mut buf) {
        Ok(n) if n >= 12 => usize::from(u16::from_be_bytes([buf[6], buf[7]])),
        _ => 0,
    }
}

fn served(ip: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect_timeout(&format!("{ip}:80").parse().unwrap(), Duration::from_millis(200)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.")
}

async fn wait_for_ready(client: &Client, ready: bool) -> Instant {
    let mut stream = client.stream("/api/v1/namespaces/default/pods?watch=1").await.unwrap();
    let mut buffer = String::new();
    while let Some(chunk) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let event: Value = serde_json::from_str(&line).unwrap();
            let is = event["object"]["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            if is == ready && event["object"]["status"]["podIP"].is_string() {
                return Instant::now();
            }
        }
    }
    panic!("watch ended");
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(10);
    let dns = "10.101.0.10";
    let network = Network { bridge: "dlrt0", pod_cidr: "10.248.1.0/24", service_cidr: "10.101.0.0/24", cluster_dns: dns, cgroup_root: "/driftless-bench-rt" };
    let bench = Bench::start(MANIFESTS, &network);
    let (client, runtime, bin, data) = (&bench.client, &bench.runtime, &bench.bin, &bench.data);
    let (pod, ip) = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "no pod came up");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(pods) = client.get("/api/v1/namespaces/default/pods").await else { continue };
            let Ok(svc) = client.get("/api/v1/namespaces/default/services/bench").await else { continue };
            let (Some(pod), Some(ip)) = (pods["items"][0]["metadata"]["name"].as_str(), svc["spec"]["clusterIP"].as_str()) else { continue };
            if pods["items"][0]["status"]["phase"] == "Running" {
                break (pod.to_owned(), ip.to_owned());
            }
        }
    });
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let exec = |args: &[&str]| {
        let ok = Command::new(bin).args(["exec", &pod, "--"]).args(args).env("DRIFTLESS_DATA_DIR", data).status().unwrap().success();
        assert!(ok, "exec {args:?}");
    };
    let mut traffic = Vec::new();
    let mut named = Vec::new();
    for _ in 0..runs {
        // Watch for Ready and poll the Service and DNS at the same time.
        let first_traffic: Arc<Mutex<Option<Instant>>> = Arc::default();
        let first_dns: Arc<Mutex<Option<Instant>>> = Arc::default();
        let poller = {
            let (ip, t, d) = (ip.clone(), first_traffic.clone(), first_dns.clone());
            let socket = socket.try_clone().unwrap();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                while (t.lock().unwrap().is_none() || d.lock().unwrap().is_none()) && Instant::now() < deadline {
                    if t.lock().unwrap().is_none() && served(&ip) {
                        *t.lock().unwrap() = Some(Instant::now());
                    }
                    if d.lock().unwrap().is_none() && dns_answers(&socket, dns, "bench-h.default.svc.cluster.local") > 0 {
                        *d.lock().unwrap() = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        exec(&["touch", "/tmp/ready"]);
        let ready_at = runtime.block_on(wait_for_ready(client, true));
        poller.join().unwrap();
        let t = first_traffic.lock().unwrap().expect("traffic arrived");
        let d = first_dns.lock().unwrap().expect("DNS answered");
        traffic.push(t.saturating_duration_since(ready_at));
        named.push(d.saturating_duration_since(ready_at));
        exec(&["rm", "/tmp/ready"]);
        runtime.block_on(wait_for_ready(client, false));
        // Out of the rotation again (refused) before the next run.
        let deadline = Instant::now() + Duration::from_secs(10);
        while served(&ip) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    traffic.sort();
    named.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| after Ready (watched) | runs | min | p50 | max |");
    println!("|---|---|---|---|---|");
    println!(
        "| first request served through the ClusterIP | {runs} | {:.0} ms | {:.0} ms | {:.0} ms |",
        ms(traffic[0]),
        ms(traffic[runs / 2]),
        ms(traffic[runs - 1])
    );
    println!("| first DNS answer for the headless Service | {runs} | {:.0} ms | {:.0} ms | {:.0} ms |", ms(named[0]), ms(named[runs / 2]), ms(named[runs - 1]));
}
