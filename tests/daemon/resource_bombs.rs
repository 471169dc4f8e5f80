//! Commits built to exhaust the daemon (issue 20): an alias bomb, a
//! 200 MB file, 70 MB in five files, 100,000 objects (in one List, and in
//! 100 files), a value nested 10,000 levels deep, a key written twice.
//! Each is refused at its file with a message that says which bound it
//! crossed, in bounded time and memory, while the last good revision keeps
//! running; the bounds are `driftless_manifest::limits` and the YAML
//! parser's.

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, name, web};

/// Files of a commit: path and text.
type Files = Vec<(String, String)>;

/// A ConfigMap that carries `extra` after its data.
fn config_map(name: &str, extra: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n{extra}")
}

/// "Billion laughs": nine levels of nine aliases each, 9^9 strings if
/// expanded.
fn alias_bomb() -> String {
    let mut levels = vec!["  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]".to_owned()];
    for i in 1..9 {
        levels.push(format!("  l{i}: &l{i} [{}]", vec![format!("*l{}", i - 1); 9].join(", ")));
    }
    config_map("laughs", &format!("binaryData:\n{}\n", levels.join("\n")))
}

/// A ConfigMap of 200 MB: a comment line repeated.
fn huge_file() -> String {
    let mut text = config_map("huge", "");
    let line = "# ".to_owned() + &"x".repeat(98) + "\n";
    text.reserve(200_000_000);
    while text.len() < 200_000_000 {
        text.push_str(&line);
    }
    text
}

/// Five files of 14 MB, each under the bound for one file, 70 MB together.
fn big_files() -> Files {
    let line = "# ".to_owned() + &"x".repeat(98) + "\n";
    (0..5).map(|f| (format!("apps/big/f{f}.yaml"), config_map(&format!("big-{f}"), "") + &line.repeat(140_000))).collect()
}

/// 100,000 ConfigMaps as the items of one List, in one file.
fn one_long_list() -> String {
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..100_000 {
        text.push_str(&format!("- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{i}}}}}\n"));
    }
    text
}

/// 100,000 ConfigMaps in 100 files of 1,000 documents.
fn many_files() -> Files {
    (0..100)
        .map(|f| {
            let text: String = (0..1000).map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{f}-{i}}}\n")).collect();
            (format!("apps/many/f{f:03}.yaml"), text)
        })
        .collect()
}

#[test]
fn resource_bombs_are_refused_at_their_file_while_the_last_good_revision_runs() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(1, "1", "{type: RollingUpdate}"))]);
    cluster.start();
    let before: Vec<String> = cluster.wait_ready("web-", 1, Duration::from_secs(30)).iter().map(name).collect();

    let one = |path: &str, text: String| vec![(path.to_owned(), text)];
    let bombs: Vec<(&str, Files, &str, &str)> = vec![
        ("an alias bomb", one("apps/laughs.yaml", alias_bomb()), "apps/laughs.yaml:1:1", "an alias bomb"),
        ("a 200 MB file", one("apps/huge.yaml", huge_file()), "apps/huge.yaml:1:1", "the file is 190.7 MiB; a manifest file may hold at most 16.0 MiB"),
        ("a List of 100,000 items", one("apps/list.yaml", one_long_list()), "apps/list.yaml:90912:", "more than 1000000 YAML nodes in one file"),
        ("100,000 objects in 100 files", many_files(), "apps/many/f020.yaml:2:1", "more than 20000 objects"),
        ("70 MB in five files", big_files(), "apps/big/f4.yaml: the revision holds more than 64.0 MiB", "refused whole"),
        (
            "a value 10,000 levels deep",
            one("apps/deep.yaml", config_map("deep", &format!("x: {}{}\n", "[".repeat(10_000), "]".repeat(10_000)))),
            "apps/deep.yaml:7:",
            "nested more than 128 levels",
        ),
        ("a key written twice", one("apps/twice.yaml", config_map("twice", "  a: c\n")), "apps/twice.yaml:6:3", "duplicate entry with key \"a\""),
    ];
    let mut previous: Vec<String> = Vec::new();
    for (what, files, place, message) in &bombs {
        // Each bomb alone: the files of the one before are emptied in the
        // same commit.
        let mut writes: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
        writes.extend(previous.iter().filter(|p| !files.iter().any(|(f, _)| f == *p)).map(|p| (p.as_str(), "")));
        let started = Instant::now();
        cluster.commit(&writes, &format!("bomb: {what}"));
        let status = cluster.wait_for(&format!("the refusal of {what}"), Duration::from_secs(60), || {
            let out = cluster.cli_ok(&["status"]);
            out.contains(&format!("bomb: {what}")).then_some(out)
        });
        eprintln!("{what}: refused within {:.2} s of committing; daemon peak RSS {} MiB", started.elapsed().as_secs_f64(), cluster.daemon_peak_kib() / 1024);
        assert!(status.contains("Refused:"), "{what}: {status}");
        assert!(status.contains(place) && status.contains(message), "{what}: the refusal names the file, line and bound: {status}");
        assert!(status.contains("Running:") && status.contains("\"initial\""), "{what}: the last good revision still runs: {status}");
        previous = files.iter().map(|(p, _)| p.clone()).collect();
    }
    // Nothing of any bomb was applied, and the pod never restarted.
    let now: Vec<String> = cluster.pods().iter().map(name).collect();
    assert_eq!(now, before);
    assert!(cluster.try_get("/api/v1/namespaces/default/configmaps/twice").is_err());
    let ledger = cluster.git(&["log", "--format=%s", "refs/driftless/applied"]);
    assert_eq!(ledger.lines().filter(|l| l.starts_with("refused")).count(), bombs.len(), "each refusal is recorded once: {ledger}");
    // Memory stayed bounded: the 200 MB file was never read, the long
    // List never parsed whole, and no more than 20,000 objects held.
    let peak = cluster.daemon_peak_kib() / 1024;
    assert!(peak < 240, "the daemon's peak RSS was {peak} MiB");

    // The repository fixed, the revision applies.
    let emptied: Vec<(&str, &str)> = previous.iter().map(|p| (p.as_str(), "")).collect();
    cluster.commit(&emptied, "no more bombs");
    cluster.wait_for("the fix to apply", Duration::from_secs(60), || {
        let out = cluster.cli_ok(&["status"]);
        (!out.contains("Refused:") && out.contains("no more bombs")).then_some(())
    });
}
