//! Benchmark: one verb (`scale`) committed on a repository of 1,000 files
//! (10,000 objects, `bench/gen_repo.py`), through the same `Writer` the
//! daemon uses, with the time split between loading, editing, validating
//! the new revision whole, planning and committing. Side by side, the
//! floor: the same one-line edit made with `sed` and committed with `git
//! commit -a` (no validation, no plan).
//!
//! Usage: `verb_on_large_repo [FILES] [RUNS]` (defaults 1000 and 20), after
//! `cargo build --release -p driftless-write --examples`. The first verb is
//! reported on its own (cold: the head validated whole, as a daemon does
//! once at start, in `Writer::warm`); the rest are the warm figures.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftless_model::{Kind, ObjectRef};
use driftless_write::{Change, Identity, Request, Target, Verb, Writer};

fn run(dir: &Path, program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{program} {args:?}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let files: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let runs: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let generator = root.join("bench/gen_repo.py");
    run(dir.path(), "python3", &[generator.to_str().unwrap(), repo.to_str().unwrap(), &files.to_string()]);
    run(&repo, "git", &["init", "-q", "-b", "main"]);
    run(&repo, "git", &["add", "-A"]);
    run(&repo, "git", &["commit", "-q", "-m", "generated"]);

    // The middle file's Deployment (as gen_repo.py names them).
    let app = format!("app{:04}", files / 2);
    let object = ObjectRef::new(Kind::Deployment, None, app.clone());
    let writer = Writer::new(Target { repo: repo.clone(), branch: "main".into(), path: "apps".into(), remote: None, age_keys: None });
    let request = |replicas: i64| Request {
        change: Change::Verb(object.clone(), Verb::Scale { replicas, current_replicas: None }),
        author: Identity { name: "bench".into(), email: "bench@localhost".into() },
        message: None,
        dry_run: false,
        branch: None,
        trailers: Vec::new(),
    };

    let started = Instant::now();
    let first = writer.write(&request(7)).unwrap();
    let cold = started.elapsed();
    eprintln!("cold: {:.0} ms {:?}", ms(cold), first.timings);

    let (mut totals, mut load, mut edit, mut validate, mut plan, mut commit) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        let replicas = 10 + i as i64;
        let started = Instant::now();
        let written = writer.write(&request(replicas)).unwrap();
        totals.push(ms(started.elapsed()));
        let t = &written.timings;
        load.push(t.load_us as f64 / 1000.0);
        edit.push(t.edit_us as f64 / 1000.0);
        validate.push(t.validate_us as f64 / 1000.0);
        plan.push(t.plan_us as f64 / 1000.0);
        commit.push(t.commit_us as f64 / 1000.0);
    }

    // The floor: the same edit by hand, committed by git.
    let file = format!("apps/{app}.yaml");
    let mut by_hand = Vec::new();
    for i in 0..runs {
        let started = Instant::now();
        run(&repo, "sed", &["-i", &format!("0,/replicas: [0-9]*/s//replicas: {}/", 100 + i), &file]);
        run(&repo, "git", &["commit", "-q", "-am", "by hand"]);
        by_hand.push(ms(started.elapsed()));
    }

    println!("| {files} files, {runs} runs | p50 | load | edit | validate | plan | commit |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| `driftless scale` (Writer, warm) | {:.1} ms | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        median(totals),
        median(load),
        median(edit),
        median(validate),
        median(plan),
        median(commit)
    );
    let t = &first.timings;
    println!(
        "| the first verb (cold) | {:.1} ms | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        ms(cold),
        t.load_us as f64 / 1000.0,
        t.edit_us as f64 / 1000.0,
        t.validate_us as f64 / 1000.0,
        t.plan_us as f64 / 1000.0,
        t.commit_us as f64 / 1000.0
    );
    println!("| reference: `sed -i` + `git commit -a` | {:.1} ms | | | | | |", median(by_hand));
}
