//! Benchmark for autoscaling (issue 15), against the real `driftless up`:
//!
//! (a) What sampling metrics costs with 100 pods: a Deployment of 100
//! sleeping busybox pods, run on a fresh daemon with `--metric-resolution
//! 10s` (the default), then `1h` (no sample in the window but the one at
//! start-up, before any pod), then `1s` (ten times the default's sampling,
//! to lift its cost above the noise). With all 100 Running and 15 s to
//! settle, the daemon's CPU time (utime + stime of /proc/PID/stat, 100
//! ticks a second) is read over 60 s, and its RSS at the end; the
//! difference from the `1h` run is the sampling's cost. The 10s run also
//! checks that `metrics.k8s.io` lists all 100 pods.
//!
//! (b) From load starting to the first scale-up: a Deployment `web` of one
//! pod (100m CPU requested) that spins once `/tmp/go` exists, and an
//! autoscaling/v2 HPA on it (1 to 3 replicas, 50 % CPU). With the pod
//! Running, `driftless exec web-... -- touch /tmp/go` starts the load and
//! the time until the Deployment's `spec.replicas` exceeds 1 is measured
//! (and, on the way, until `metrics.k8s.io` first shows the pod above the
//! 50m target). Cold: the load starts as soon as the pod is Running, three
//! runs at the defaults (`--metric-resolution 10s`,
//! `--horizontal-pod-autoscaler-sync-period 15s`) and one at 1s and 1s.
//! A pod has metrics only from its second sample, so a cold start waits for
//! two samples whenever the load starts. Warm: at the defaults, the load
//! starts 0, 5, ... 25 s after `metrics.k8s.io` first lists the pod, six
//! phases of the samples' and syncs' 30 s cycle, as a load arriving at any
//! moment on a pod already sampled would. Each run on a fresh daemon.
//!
//! Usage (root): `autoscale_cost [RUNS]` (default 3, the cold runs at the
//! defaults), after `scripts/build-images.sh` and `cargo build --release -p
//! driftless -p driftless-runtime --bins --examples`. Takes about 11
//! minutes. Uses its own bridge (`dlkauto0`), CIDRs (10.251.0.0/24 for pods,
//! 10.104.0.0/24 for services) and cgroup root, one daemon at a time, and
//! removes each with `driftless reset --purge` (also when it panics).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftless_api::Client;
use serde_json::Value;

#[path = "support/daemon.rs"]
mod daemon;
use daemon::{Bench, Network, sleep_deployment};

const NETWORK: Network =
    Network { bridge: "dlkauto0", pod_cidr: "10.251.0.0/24", service_cidr: "10.104.0.0/24", cluster_dns: "10.104.0.10", cgroup_root: "/driftless-bench-auto" };

/// The pods of (a).
const PODS: usize = 100;
/// How long (a) lets the daemon settle with its pods Running.
const SETTLE: Duration = Duration::from_secs(15);
/// (a)'s measurement window.
const WINDOW: Duration = Duration::from_secs(60);
/// `USER_HZ`: ticks a second of /proc/PID/stat's times.
const TICKS_PER_SECOND: f64 = 100.0;
/// How long (b) waits for a scale-up.
const SCALE_DEADLINE: Duration = Duration::from_secs(120);

/// (b)'s workload: one pod that waits for `/tmp/go`, then burns a core
/// against its 100m request; and its HPA.
const WEB: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: busybox:1.35
        imagePullPolicy: Never
        command: [sh, -c, 'while [ ! -f /tmp/go ]; do sleep 0.2; done; while :; do :; done']
        resources: {requests: {cpu: 100m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
";

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The process's CPU time so far, user and system, in ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command's name (in parentheses, which may hold spaces):
    // state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A number from /proc/PID/status (kB for sizes).
fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let prefix = format!("{field}:");
    status.lines().find(|l| l.starts_with(&prefix)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// A CPU quantity (`250m`, `123456n`, `1`) in millicores.
fn millicores(quantity: &str) -> f64 {
    let (number, scale) = match quantity.char_indices().last() {
        Some((i, 'n')) => (&quantity[..i], 1e-6),
        Some((i, 'u')) => (&quantity[..i], 1e-3),
        Some((i, 'm')) => (&quantity[..i], 1.0),
        _ => (quantity, 1000.0),
    };
    number.parse::<f64>().unwrap_or(0.0) * scale
}

/// The pods of the default namespace, and how many are Running.
async fn pods(client: &Client) -> (Vec<Value>, usize) {
    let list = client.get("/api/v1/namespaces/default/pods").await.unwrap();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let running = items.iter().filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")).count();
    (items, running)
}

/// Waits (up to `patience`) until `n` pods exist and all are Running.
async fn wait_running(client: &Client, n: usize, patience: Duration) -> Vec<Value> {
    let deadline = Instant::now() + patience;
    loop {
        let (items, running) = pods(client).await;
        if items.len() == n && running == n {
            return items;
        }
        assert!(Instant::now() < deadline, "timed out with {} pods, {running} Running", items.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The pods `metrics.k8s.io` lists in the default namespace.
async fn pod_metrics(client: &Client) -> Vec<Value> {
    let list = client.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").await.unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Waits (boundedly) until the previous daemon's bridge is gone, so the
/// next one starts clean.
fn wait_bridge_gone() {
    let path = format!("/sys/class/net/{}", NETWORK.bridge);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&path).exists() {
        assert!(Instant::now() < deadline, "bridge {} left behind", NETWORK.bridge);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One run of (a).
struct Sampling {
    cpu_percent: f64,
    rss_kib: u64,
    metric_items: usize,
    load: String,
}

fn sampling_cost(resolution: &str) -> Sampling {
    wait_bridge_gone();
    let bench = Bench::start_with(&sleep_deployment(PODS), &NETWORK, &["--metric-resolution", resolution]);
    let pid = bench.daemon.id();
    let started = Instant::now();
    bench.runtime.block_on(wait_running(&bench.client, PODS, Duration::from_secs(600)));
    eprintln!("--metric-resolution {resolution}: {PODS} pods Running in {:.1} s", started.elapsed().as_secs_f64());
    std::thread::sleep(SETTLE);
    let (before, from) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(WINDOW);
    let (after, elapsed) = (cpu_ticks(pid), from.elapsed());
    let rss_kib = status_field(pid, "VmRSS");
    let load = load_average();
    let cpu_percent = (after - before) as f64 / TICKS_PER_SECOND / elapsed.as_secs_f64() * 100.0;
    let metric_items = bench.runtime.block_on(pod_metrics(&bench.client)).len();
    eprintln!(
        "--metric-resolution {resolution}: {} ticks in {:.1} s = {cpu_percent:.2} % of a core; RSS {:.1} MiB \
         (anonymous {:.1}); {metric_items} pods in metrics.k8s.io; load average {load}",
        after - before,
        elapsed.as_secs_f64(),
        rss_kib as f64 / 1024.0,
        status_field(pid, "RssAnon") as f64 / 1024.0,
    );
    Sampling { cpu_percent, rss_kib, metric_items, load }
}

/// One run of (b): seconds from the load's start until metrics first show
/// the pod above target (if they did before the scale-up), until the
/// Deployment is scaled up, and the count it was scaled to; and when the
/// load started, in seconds after `driftless up` was started.
struct ScaleUp {
    metrics_s: Option<f64>,
    scaled_s: f64,
    replicas: i64,
    exec_s: f64,
    load_at_s: f64,
}

/// Starts the load as soon as the pod is Running (`warm` None), or `warm`
/// after `metrics.k8s.io` first lists it.
fn scale_up(extra: &[&str], warm: Option<Duration>) -> ScaleUp {
    wait_bridge_gone();
    let up = Instant::now();
    let bench = Bench::start_with(WEB, &NETWORK, extra);
    let client = &bench.client;
    let running = bench.runtime.block_on(wait_running(client, 1, Duration::from_secs(120)));
    let pod = running[0]["metadata"]["name"].as_str().unwrap().to_owned();
    if let Some(offset) = warm {
        bench.runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !pod_metrics(client).await.iter().any(|m| m["metadata"]["name"] == pod.as_str()) {
                assert!(Instant::now() < deadline, "metrics.k8s.io did not list {pod}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        std::thread::sleep(offset);
    }
    let load_started = Instant::now();
    let load_at_s = (load_started - up).as_secs_f64();
    let exec = Command::new(&bench.bin)
        .args(["exec", "--data-dir"])
        .arg(&bench.data)
        .args([pod.as_str(), "--", "touch", "/tmp/go"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let exec_s = load_started.elapsed().as_secs_f64();
    assert!(exec.status.success(), "driftless exec: {}", String::from_utf8_lossy(&exec.stderr));
    bench.runtime.block_on(async {
        let deadline = load_started + SCALE_DEADLINE;
        let mut metrics_s = None;
        loop {
            let deployment = client.get("/apis/apps/v1/namespaces/default/deployments/web").await.unwrap();
            let replicas = deployment.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(-1);
            if replicas > 1 {
                let scaled_s = load_started.elapsed().as_secs_f64();
                return ScaleUp { metrics_s, scaled_s, replicas, exec_s, load_at_s };
            }
            if metrics_s.is_none() {
                let above = pod_metrics(client).await.iter().filter(|m| m["metadata"]["name"] == pod.as_str()).any(|m| {
                    let containers = m["containers"].as_array().cloned().unwrap_or_default();
                    containers.iter().map(|c| millicores(c["usage"]["cpu"].as_str().unwrap_or("0"))).sum::<f64>() > 50.0
                });
                if above {
                    metrics_s = Some(load_started.elapsed().as_secs_f64());
                }
            }
            assert!(Instant::now() < deadline, "no scale-up within {SCALE_DEADLINE:?} (replicas {replicas})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Prints (b)'s rows.
fn print_scale_ups(rows: &[(String, ScaleUp)]) {
    println!("| load start to first scale-up | load started after `up` | metrics show > 50m | spec.replicas > 1 | scaled to | `driftless exec` took |");
    println!("|---|---|---|---|---|---|");
    for (name, up) in rows {
        let metrics = up.metrics_s.map_or("- (scaled first)".to_owned(), |s| format!("{s:.1} s"));
        println!("| {name} | {:.1} s | {metrics} | {:.1} s | {} | {:.2} s |", up.load_at_s, up.scaled_s, up.replicas, up.exec_s);
    }
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(3);

    // (a) Sampling 100 pods.
    let on = sampling_cost("10s");
    assert_eq!(on.metric_items, PODS, "with --metric-resolution 10s metrics.k8s.io must list every pod");
    let off = sampling_cost("1h");
    let often = sampling_cost("1s");
    println!("| {PODS} sleeping pods, {}s window | daemon CPU (% of one core) | daemon RSS | pods in metrics.k8s.io | load average |", WINDOW.as_secs());
    println!("|---|---|---|---|---|");
    for (name, run) in [("--metric-resolution 10s", &on), ("--metric-resolution 1h", &off), ("--metric-resolution 1s", &often)] {
        println!("| {name} | {:.2} % | {:.1} MiB | {} | {} |", run.cpu_percent, run.rss_kib as f64 / 1024.0, run.metric_items, run.load);
    }
    for (name, run) in [("10s", &on), ("1s", &often)] {
        println!(
            "| difference, {name} - 1h | {:+.2} % | {:+.1} MiB | | |",
            run.cpu_percent - off.cpu_percent,
            (run.rss_kib as f64 - off.rss_kib as f64) / 1024.0
        );
    }
    println!();

    // (b) Load to first scale-up, cold.
    let mut rows = Vec::new();
    let mut defaults = Vec::new();
    for run in 1..=runs {
        let up = scale_up(&[], None);
        eprintln!("cold, defaults, run {run}: scaled to {} in {:.1} s", up.replicas, up.scaled_s);
        defaults.push(up.scaled_s);
        rows.push((format!("cold, defaults (10s, 15s), run {run}"), up));
    }
    let fast = scale_up(&["--metric-resolution", "1s", "--horizontal-pod-autoscaler-sync-period", "1s"], None);
    eprintln!("cold, 1s/1s: scaled to {} in {:.1} s", fast.replicas, fast.scaled_s);
    rows.push(("cold, --metric-resolution 1s, --horizontal-pod-autoscaler-sync-period 1s".to_owned(), fast));
    print_scale_ups(&rows);
    println!("| cold, defaults, median of {runs} | | | {:.1} s | | |", median(defaults));
    println!();

    // (b) Warm: the load arriving at each phase of the cycle.
    let mut rows = Vec::new();
    let mut warm = Vec::new();
    for offset in [0, 5, 10, 15, 20, 25] {
        let up = scale_up(&[], Some(Duration::from_secs(offset)));
        eprintln!("warm, defaults, load {offset} s after metrics: scaled to {} in {:.1} s", up.replicas, up.scaled_s);
        warm.push(up.scaled_s);
        rows.push((format!("warm, defaults, load {offset} s after the pod's first metrics"), up));
    }
    print_scale_ups(&rows);
    let mean = warm.iter().sum::<f64>() / warm.len() as f64;
    let max = warm.iter().copied().fold(0.0, f64::max);
    println!("| warm, defaults, median / mean / max of {} phases | | | {:.1} s / {mean:.1} s / {max:.1} s | | |", warm.len(), median(warm));
}
