//! Benchmark: `driftless scale` to pods changed, as a user waits for it,
//! through the real `driftless up` binary on a local repository: the verb
//! request (what the CLI sends) is committed, synced and answered, then a
//! watch sees the new pod Ready (scale up) or the removed pod gone (scale
//! down). The time is split between the write path's steps (from its
//! reply), the sync that applies the commit, and the node.
//!
//! Usage (root): `verb_to_pods [RUNS]`, after `cargo build --release -p
//! driftless -p driftless-runtime --examples`. Uses its own bridge, CIDRs
//! and cgroup root, and removes everything with `driftless reset`.

use std::time::{Duration, Instant};

use serde_json::json;

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/pods.rs"]
mod pods;
use daemon::{Bench, Network, git, sleep_deployment};
use pods::wait_pods;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Per run: total, write (load+edit+validate+plan+commit), of which
/// validate and commit, sync (the rest of the reply), node (reply to pods).
type Split = [f64; 6];

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(10);
    let network = Network {
        bridge: "dlverb0",
        pod_cidr: "10.249.0.0/24",
        service_cidr: "10.102.0.0/24",
        cluster_dns: "10.102.0.10",
        cgroup_root: "/driftless-bench-verb",
    };
    let bench = Bench::start(&sleep_deployment(1), &network);
    let (repo, client, runtime) = (&bench.repo, &bench.client, &bench.runtime);
    runtime.block_on(wait_pods(client, 1));
    let (mut up, mut down): (Vec<Split>, Vec<Split>) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for replicas in [2usize, 1] {
            let body = json!({
                "kind": "Deployment", "namespace": "default", "name": "bench",
                "change": {"verb": {"verb": "scale", "replicas": replicas}},
                "author": {"name": "bench", "email": "bench@localhost"},
            });
            let (started, replied, done, reply) = runtime.block_on(async {
                let started = Instant::now();
                let reply = client.post("/driftless/v1/write", &body).await.unwrap();
                let replied = Instant::now();
                let done = wait_pods(client, replicas).await;
                (started, replied, done, reply)
            });
            assert_eq!(reply["sync"]["result"], "applied", "{reply}");
            let t = &reply["timings"];
            let us = |k: &str| t[k].as_f64().unwrap_or(0.0) / 1000.0;
            let write = us("load_us") + us("edit_us") + us("validate_us") + us("plan_us") + us("commit_us");
            let total = ms(done - started);
            let split = [total, write, us("validate_us"), us("commit_us"), ms(replied - started) - write, ms(done - replied)];
            eprintln!("scale to {replicas}: {split:?}");
            if replicas == 2 { up.push(split) } else { down.push(split) }
        }
    }
    // The reference: the same one-line change by hand (`sed`, `git
    // commit`), which the daemon sees through its watch of the branch.
    let (mut hand_up, mut hand_down) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for replicas in [2usize, 1] {
            let text = std::fs::read_to_string(repo.join("apps/bench.yaml")).unwrap();
            let line = text.lines().find(|l| l.trim_start().starts_with("replicas:")).unwrap().to_owned();
            let text = text.replace(&line, &format!("  replicas: {replicas}"));
            let took = runtime.block_on(async {
                let started = Instant::now();
                std::fs::write(repo.join("apps/bench.yaml"), &text).unwrap();
                git(repo, &["commit", "-q", "-am", "by hand"]);
                ms(wait_pods(client, replicas).await - started)
            });
            if replicas == 2 { hand_up.push(took) } else { hand_down.push(took) }
        }
    }
    println!("| scale (local repository, {runs} runs each) | p50 total | write | of which validate | of which commit | sync (apply) | node (pods) |");
    println!("|---|---|---|---|---|---|---|");
    for (name, splits) in [("1 → 2 (new pod Ready)", &up), ("2 → 1 (pod gone)", &down)] {
        let column = |i: usize| median(splits.iter().map(|s| s[i]).collect());
        println!(
            "| {name} | {:.0} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} ms | {:.0} ms |",
            column(0),
            column(1),
            column(2),
            column(3),
            column(4),
            column(5)
        );
    }
    println!("| reference: edit + `git commit` by hand, 1 → 2 | {:.0} ms | | | | | |", median(hand_up));
    println!("| reference: edit + `git commit` by hand, 2 → 1 | {:.0} ms | | | | | |", median(hand_down));
}
