//! Benchmark: container create→running latency through `driftless-shim`,
//! side by side with `runc` and `crun` creating and starting the same
//! bundles, plus the helpers' memory while their containers idle.
//!
//! Run as root: `cargo run --release -p driftless-runtime --example start_latency [N]`
//! (see docs/benchmarks.md). Needs /bin/busybox, runc and crun (Debian).
//! Everything it creates lives in a temporary folder and a cgroup parent of
//! its own, removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftless_runtime::{ContainerConfig, Layout, Status, bundle};
use nix::sys::signal::Signal;

const PARENT: &str = "driftless-bench";

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().expect("temp dir");
    let rootfs = make_rootfs(dir.path());
    let shim = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("driftless-shim");
    assert!(shim.exists(), "build the helper first: cargo build --release -p driftless-runtime");
    let layout = Layout::new(dir.path().join("node"), &shim);
    let config = |id: String| ContainerConfig {
        rootfs: rootfs.clone(),
        args: vec!["/bin/sleep".into(), "600".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        cgroups_path: PathBuf::from(format!("/{PARENT}/{id}")),
        id,
        ..Default::default()
    };

    // Sequential: one container at a time, start until the helper reports it running.
    let mut sequential = Vec::with_capacity(n);
    for i in 0..n {
        let c = config(format!("seq-{i}"));
        let started = Instant::now();
        let status = layout.start(&c, Duration::from_secs(30)).expect("start");
        sequential.push(started.elapsed());
        assert!(matches!(status, Status::Running { .. }));
        stop(&layout, &c.id);
    }
    report("driftless (helper + libcontainer), sequential", &mut sequential);

    // Concurrent: n containers started at once from n threads.
    let started = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (layout, c) = (layout.clone(), config(format!("par-{i}")));
            std::thread::spawn(move || {
                let t = Instant::now();
                layout.start(&c, Duration::from_secs(60)).expect("start");
                t.elapsed()
            })
        })
        .collect();
    let mut concurrent: Vec<Duration> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wall = started.elapsed();
    report("driftless, all started concurrently", &mut concurrent);
    println!("  wall time for {n} concurrent starts: {:.1} ms", wall.as_secs_f64() * 1e3);

    // Memory of the idle helpers (their containers run `sleep`). By then
    // each helper has become the small reaper; give the exec a moment.
    std::thread::sleep(Duration::from_millis(500));
    let pids: Vec<i32> = (0..n)
        .filter_map(|i| match layout.status(&format!("par-{i}")) {
            Ok(Some(Status::Running { shim_pid, .. })) => Some(shim_pid),
            _ => None,
        })
        .collect();
    for (label, field) in [("RSS", "Rss:"), ("PSS", "Pss:"), ("private", "Private_Dirty:")] {
        let mut values: Vec<u64> = pids
            .iter()
            .filter_map(|pid| {
                let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
                let kib = |name: &str| {
                    rollup.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
                };
                // Private memory is clean plus dirty pages no one else maps.
                if field == "Private_Dirty:" { Some(kib("Private_Dirty:")? + kib("Private_Clean:")?) } else { kib(field) }
            })
            .collect();
        values.sort_unstable();
        if let (Some(median), Some(max)) = (values.get(values.len() / 2), values.last()) {
            println!("  helper {label} while idle: median {median} KiB, max {max} KiB over {} helpers", values.len());
        }
    }
    for i in 0..n {
        stop(&layout, &format!("par-{i}"));
    }

    // The references, on identical bundles.
    let bundles: Vec<PathBuf> = (0..n)
        .map(|i| {
            let b = dir.path().join(format!("bundles/ref-{i}"));
            bundle::write(&b, &config(format!("ref-{i}"))).expect("bundle");
            b
        })
        .collect();
    let mut runc = reference("runc", &bundles, dir.path());
    report("runc create + start", &mut runc);

    // Clean up now: once the unified hierarchy is hidden below, its
    // folders can no longer be seen from this process.
    remove_cgroup_parent();

    // crun needs the unified cgroup2 mount hidden on this hybrid host:
    // do that in a private mount namespace of this process only.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount namespace");
    nix::mount::mount(None::<&str>, "/", None::<&str>, nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE, None::<&str>)
        .expect("make mounts private");
    let _ = nix::mount::umount("/sys/fs/cgroup/unified");
    let mut crun = reference("crun", &bundles, dir.path());
    report("crun create + start", &mut crun);

    remove_cgroup_parent();
}

/// Creates and starts each bundle with `tool`, timing both, then deletes it.
fn reference(tool: &str, bundles: &[PathBuf], dir: &Path) -> Vec<Duration> {
    let root = dir.join(format!("{tool}-state"));
    let run = |args: &[&str]| {
        let status = Command::new(tool)
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect(tool);
        assert!(status.success(), "{tool} {args:?} failed");
    };
    bundles
        .iter()
        .enumerate()
        .map(|(i, bundle)| {
            let id = format!("{tool}-{i}");
            let started = Instant::now();
            run(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
            run(&["start", &id]);
            let elapsed = started.elapsed();
            run(&["delete", "--force", &id]);
            elapsed
        })
        .collect()
}

fn stop(layout: &Layout, id: &str) {
    let _ = layout.kill(id, Signal::SIGKILL);
    let _ = layout.wait(id, Duration::from_secs(30));
    let _ = layout.remove(id);
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    println!("{what}: n={} p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms", samples.len(), pick(0.5), pick(0.9), pick(0.99), pick(1.0));
}

fn make_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("/bin/busybox (busybox-static)");
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    root
}

fn remove_cgroup_parent() {
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let parent = hierarchy.path().join(PARENT);
        if let Ok(children) = std::fs::read_dir(&parent) {
            for child in children.flatten().filter(|c| c.path().is_dir()) {
                let _ = std::fs::remove_dir(child.path());
            }
        }
        let _ = std::fs::remove_dir(&parent);
    }
}
