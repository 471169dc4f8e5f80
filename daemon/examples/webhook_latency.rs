//! Benchmark for the forge loop (issue 16): from a push announced by a
//! webhook to the change applied, against the real `driftless up` syncing
//! a remote repository (a bare clone on this machine, fetched over
//! `file://`, as a forge's would be over the network).
//!
//! Each round commits a new value of a ConfigMap, pushes it to the bare
//! remote, then POSTs a push delivery signed as the generic sender signs
//! (`X-Signature: sha256=<HMAC>`) to `--webhook-listen`, and polls the API
//! (every 2 ms) until the ConfigMap holds the new value: the time from the
//! POST to that read. Rounds start at least 250 ms apart, under the
//! endpoint's rate limit. The reference, in the same run on the same daemon:
//! rounds where nothing announces the push and the daemon's own poll of
//! the remote (every 15 s, the default for remote repositories) finds it.
//! Argo CD and Flux poll every 3 minutes and 1 minute by default.
//!
//! Usage (root): `webhook_latency [ROUNDS] [POLL_ROUNDS]` (default 30 and
//! 5), after `scripts/build-images.sh` and `cargo build --release -p
//! driftless -p driftless-runtime --bins --examples`. Uses its own bridge
//! (`dlkhook0`), CIDRs (10.252.0.0/24 for pods, 10.105.0.0/24 for
//! services) and cgroup root, and removes everything with `driftless reset
//! --purge` (also when it panics).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[path = "support/daemon.rs"]
mod daemon;
use daemon::{Bench, Network, git};

const NETWORK: Network =
    Network { bridge: "dlkhook0", pod_cidr: "10.252.0.0/24", service_cidr: "10.105.0.0/24", cluster_dns: "10.105.0.10", cgroup_root: "/driftless-bench-hook" };

const SECRET: &str = "bench-webhook-secret";
/// The least time between two rounds' deliveries.
const PACE: Duration = Duration::from_millis(250);
/// How long one round may take before the benchmark gives up.
const DEADLINE: Duration = Duration::from_secs(60);

fn settings(round: usize) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{round: \"{round}\"}}\n")
}

/// Commits round `round`'s value and pushes it to the bare remote.
fn push(bench: &Bench, round: usize) {
    std::fs::write(bench.repo.join("apps/bench.yaml"), settings(round)).unwrap();
    git(&bench.repo, &["commit", "-q", "-am", &format!("round {round}")]);
    let remote = bench.remote.as_ref().unwrap().display().to_string();
    git(&bench.repo, &["push", "-q", &remote, "main"]);
}

/// POSTs a signed generic push delivery; the status code.
fn announce(address: &str) -> u16 {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = driftless_forge::sign::hex_hmac_sha256(SECRET.as_bytes(), body);
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /hooks/bench HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nX-Signature: sha256={signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Waits until the ConfigMap holds `round`; the time since `from`.
fn applied(bench: &Bench, round: usize, from: Instant) -> Duration {
    let want = round.to_string();
    bench.runtime.block_on(async {
        loop {
            let value = bench.client.get("/api/v1/namespaces/default/configmaps/settings").await.ok();
            if value.as_ref().and_then(|v| v.pointer("/data/round")).and_then(|r| r.as_str()) == Some(want.as_str()) {
                return from.elapsed();
            }
            assert!(from.elapsed() < DEADLINE, "round {round} was not applied in {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len() as f64;
    println!(
        "{what:<28} n={:<3} p50 {:>8.1} ms  p90 {:>8.1} ms  max {:>8.1} ms  mean {:>8.1} ms",
        times.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(*times.last().unwrap()),
        mean
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(30, |a| a.parse().unwrap());
    let poll_rounds: usize = args.next().map_or(5, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let extra = ["--interval", "15s", "--webhook-listen", &address, "--webhook-secret-file", secret.to_str().unwrap()];
    let bench = Bench::start_from(&settings(0), &NETWORK, &extra, true);
    applied(&bench, 0, Instant::now());

    let mut hooked = Vec::new();
    for round in 1..=rounds {
        // Paced under the endpoint's rate limit (5 deliveries a second after
        // a burst of 20): pushes, not a flood, are what is measured.
        let began = Instant::now();
        push(&bench, round);
        let posted = Instant::now();
        assert_eq!(announce(&address), 202);
        hooked.push(applied(&bench, round, posted));
        std::thread::sleep(PACE.saturating_sub(began.elapsed()));
    }
    let mut polled = Vec::new();
    for round in rounds + 1..=rounds + poll_rounds {
        push(&bench, round);
        polled.push(applied(&bench, round, Instant::now()));
    }
    report("webhook → applied", hooked);
    report("push → applied (15 s poll)", polled);
}
