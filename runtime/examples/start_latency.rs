//! Benchmark: container create→running latency through `driftless-shim`,
//! side by side with `runc` and `crun` creating and starting the same
//! bundles, plus the helpers' memory while their containers idle.
//!
//! Run as root: `cargo run --release -p driftless-runtime --example start_latency [N]`
//! (see docs/benchmarks.md). Needs /bin/busybox and crun (Debian; runc
//! too for its line, left out without it), and the busybox image
//! (`scripts/build-images.sh`) for the pod starts.
//! Everything it creates lives in a temporary folder (with a tmpfs in it
//! for the state, as the node's volatile folder) and a cgroup parent of
//! its own, removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftless_runtime::{ContainerConfig, Layout, Status, bundle};
use nix::sys::signal::Signal;

const PARENT: &str = "driftless-bench";

fn main() {
    if std::env::args().nth(1).as_deref() == Some(CRUN_WORKER) {
        return crun_worker();
    }
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    // The references are looked for before anything is created: a run
    // that stopped halfway left its pods' cgroups behind. crun is the
    // row's reference and required; runc, when missing, is left out.
    let installed = |tool: &str| Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !installed("crun") {
        eprintln!("start_latency compares with crun, which is not installed: apt-get install crun");
        std::process::exit(2);
    }
    let with_runc = installed("runc");
    let dir = tempfile::tempdir().expect("temp dir");
    let rootfs = make_rootfs(dir.path());
    let shim = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("driftless-shim");
    assert!(shim.exists(), "build the helper first: cargo build --release -p driftless-runtime");
    // The node's layout (`Node::new`): libcontainer's state and the pods'
    // namespace files in the volatile folder, a tmpfs, and the bundles,
    // logs and writable layers on disk. crun keeps its state on the same
    // tmpfs, as its default `/run/crun` is on a systemd host.
    let run = Volatile::mount(dir.path().join("run"));
    let layout = Layout::new(dir.path().join("node"), &shim).with_state_root(run.0.join("state"));
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
                let kib =
                    |name: &str| rollup.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok());
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

    // Whole pods: sandbox, veth and address, overlay root filesystem from
    // the busybox image, then the container, until it runs.
    let mut pods = pod_starts(n, 0, dir.path(), &run.0, &layout, |_| {});
    report("driftless pod (sandbox + network + overlay rootfs + container)", &mut pods);

    // The same beside a node's worth of running pods, whose mounts (three
    // namespace files and a root each) are in the host's mount table.
    let beside = std::env::var("START_LATENCY_BESIDE").ok().and_then(|b| b.parse().ok()).unwrap_or(100);
    let mut pods_beside = pod_starts(n, beside, dir.path(), &run.0, &layout, |_| {});
    report(&format!("driftless pod beside {beside} running pods"), &mut pods_beside);

    // The references, on identical bundles.
    let bundles_named = |prefix: &str| -> Vec<PathBuf> {
        (0..n)
            .map(|i| {
                let b = dir.path().join(format!("bundles/{prefix}-{i}"));
                bundle::write(&b, &config(format!("{prefix}-{i}"))).expect("bundle");
                b
            })
            .collect()
    };

    // Pods and crun taken in turns, one of each at a time, so that whatever
    // the machine does during the run falls on both alike; the blocks above
    // and below each have the machine to themselves for a while.
    let alternate = bundles_named("alt");
    let mut worker = CrunWorker::spawn(&run.0.join("crun-alt-state"));
    let mut crun_between = Vec::with_capacity(n);
    let mut pods_between = pod_starts(n, 0, dir.path(), &run.0, &layout, |i| crun_between.push(worker.run(&alternate[i], &format!("alt-{i}"))));
    drop(worker);
    report("  in turns: driftless pod", &mut pods_between);
    report("  in turns: crun create + start", &mut crun_between);

    let bundles = bundles_named("ref");
    if with_runc {
        let mut runc = reference("runc", &bundles, &run.0);
        report("runc create + start", &mut runc);
    } else {
        println!("runc create + start: left out, runc is not installed (apt-get install runc)");
    }

    // crun in a worker of its own, which hides the unified cgroup2 mount
    // as crun needs on this hybrid host.
    let mut worker = CrunWorker::spawn(&run.0.join("crun-state"));
    let mut crun: Vec<Duration> = bundles.iter().enumerate().map(|(i, bundle)| worker.run(bundle, &format!("crun-{i}"))).collect();
    drop(worker);
    report("crun create + start", &mut crun);

    remove_cgroup_parent();
}

/// The benchmark's volatile folder, mounted as the node mounts its own and
/// unmounted when dropped, also when the benchmark panics.
struct Volatile(PathBuf);

impl Volatile {
    fn mount(dir: PathBuf) -> Volatile {
        driftless_runtime::volatile::mount(&dir).expect("a tmpfs for the volatile folder");
        Volatile(dir)
    }
}

impl Drop for Volatile {
    fn drop(&mut self) {
        let _ = driftless_runtime::volatile::unmount(&self.0);
    }
}

/// Starts `n` single-container pods one after another on a bridge of the
/// benchmark's own, timing each, and tears each down again; with `beside`
/// more pods started first (not timed) and running throughout.
fn pod_starts(n: usize, beside: usize, dir: &Path, run: &Path, layout: &Layout, mut after_each: impl FnMut(usize)) -> Vec<Duration> {
    use driftless_runtime::network::{Bridge, Ipam, PodInterface, route_exists};
    let layout_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/images/busybox-1.35");
    assert!(layout_dir.join("index.json").exists(), "run scripts/build-images.sh first");
    let store = driftless_image::ImageStore::open(dir.join("images")).expect("image store");
    store.import(&layout_dir, Some("busybox")).expect("import busybox");
    let layers = store.resolve("busybox:1.35").expect("busybox").layers;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let handle = runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection().unwrap();
        tokio::spawn(connection);
        handle
    });
    let bridge_name = "dlbench0";
    let cidr: ipnet::Ipv4Net = "10.244.249.0/24".parse().unwrap();
    let ipam = Ipam::new(dir.join("ipam"), cidr);
    let bridge = runtime.block_on(Bridge::ensure(&handle, bridge_name, cidr, ipam.gateway())).expect("bridge");
    assert!(route_exists(cidr, bridge_name).unwrap(), "pod CIDR must be routed to the bridge before use");

    let mut samples = Vec::with_capacity(n);
    let mut phases: Vec<[Duration; 4]> = Vec::with_capacity(n);
    let start = |uid: &str| {
        let id = format!("{uid}-main-0");
        let sandbox_dir = run.join("pods").join(uid);
        let started = Instant::now();
        let sandbox = driftless_runtime::Sandbox::create(&sandbox_dir, uid).expect("sandbox");
        let t_sandbox = started.elapsed();
        let ip = ipam.allocate(uid).expect("address");
        let interface = runtime.block_on(PodInterface::attach(&bridge, &sandbox.namespace("net"), uid, ip)).expect("veth");
        let t_network = started.elapsed();
        let rootfs = layout.mount_rootfs(&id, &layers).expect("rootfs");
        let t_rootfs = started.elapsed();
        let config = ContainerConfig {
            id: id.clone(),
            rootfs,
            args: vec!["sleep".into(), "600".into()],
            env: vec!["PATH=/bin:/usr/bin".into()],
            cwd: "/".into(),
            cgroups_path: PathBuf::from(format!("/{PARENT}/{uid}/{id}")),
            sandbox: Some(sandbox_dir.clone()),
            ..Default::default()
        };
        let status = layout.start(&config, Duration::from_secs(30)).expect("start");
        let total = started.elapsed();
        assert!(matches!(status, Status::Running { .. }));
        (total, [t_sandbox, t_network - t_sandbox, t_rootfs - t_network, total - t_rootfs], (uid.to_owned(), id, sandbox, interface))
    };
    // Torn down as the node does (`Node::stop`): the namespaces first,
    // then the pair, which the kernel deletes with the namespace.
    let teardown = |(uid, id, sandbox, interface): (String, String, driftless_runtime::Sandbox, PodInterface)| {
        stop(layout, &id);
        let _ = sandbox.remove();
        let _ = runtime.block_on(PodInterface::detach_after_namespace(&handle, &interface.host_veth, Duration::from_secs(2)));
        let _ = ipam.release(&uid);
    };
    let running: Vec<_> = (0..beside).map(|j| start(&format!("beside-{j}")).2).collect();
    // `kubectl exec` and exec probes on such a node: a command that does
    // nothing, run in one of the pods, from the spawn until it has exited.
    if let Some((_, id, _, _)) = running.first() {
        let mut execs: Vec<Duration> = (0..50)
            .map(|_| {
                let started = Instant::now();
                let status = layout.exec(id, &["true".to_owned()]).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("exec");
                assert!(status.success(), "exec of true: {status}");
                started.elapsed()
            })
            .collect();
        report(&format!("  exec of `true` in a pod beside {beside} running pods"), &mut execs);
    }
    for i in 0..n {
        let (total, phase, pod) = start(&format!("pod-{i}"));
        samples.push(total);
        phases.push(phase);
        teardown(pod);
        after_each(i);
    }
    running.into_iter().for_each(teardown);
    let _ = runtime.block_on(Bridge::delete(&handle, bridge_name));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = |phase: usize| phases.iter().map(|p| ms(p[phase])).sum::<f64>() / n.max(1) as f64;
    println!("  pod start phases (mean): sandbox {:.1} ms, network {:.1} ms, rootfs {:.1} ms, container {:.1} ms", mean(0), mean(1), mean(2), mean(3));
    // Where the tail comes from: the slowest three, phase by phase.
    let mut slowest: Vec<usize> = (0..n).collect();
    slowest.sort_unstable_by_key(|&i| std::cmp::Reverse(samples[i]));
    for &i in slowest.iter().take(3) {
        let [sandbox, network, rootfs, container] = phases[i].map(ms);
        println!("  slow pod {i}: {:.1} ms = sandbox {sandbox:.1}, network {network:.1}, rootfs {rootfs:.1}, container {container:.1}", ms(samples[i]));
    }
    samples
}

/// The argument that makes this program the crun worker.
const CRUN_WORKER: &str = "--crun-worker";

/// crun run by a copy of this program in a mount namespace of its own, with
/// the unified cgroup2 mount hidden as crun needs on this hybrid host, so
/// that this process keeps it for the pods. It times each create + start
/// itself, as [`reference`] does.
struct CrunWorker {
    child: std::process::Child,
    to: std::process::ChildStdin,
    from: std::io::BufReader<std::process::ChildStdout>,
}

impl CrunWorker {
    /// A worker keeping crun's state in `root`.
    fn spawn(root: &Path) -> CrunWorker {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg(CRUN_WORKER)
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("crun worker");
        let (to, from) = (child.stdin.take().unwrap(), std::io::BufReader::new(child.stdout.take().unwrap()));
        CrunWorker { child, to, from }
    }

    /// Creates and starts `bundle` as `id`, then deletes it; the time to
    /// running.
    fn run(&mut self, bundle: &Path, id: &str) -> Duration {
        use std::io::{BufRead, Write};
        writeln!(self.to, "{id} {}", bundle.display()).expect("to the crun worker");
        let mut line = String::new();
        self.from.read_line(&mut line).expect("from the crun worker");
        Duration::from_nanos(line.trim().parse().expect("nanoseconds from the crun worker"))
    }
}

impl Drop for CrunWorker {
    fn drop(&mut self) {
        // Its input closes with it: the worker ends at end of input.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The worker's side: `ID BUNDLE` per line in, nanoseconds per line out.
fn crun_worker() {
    use std::io::{BufRead, Write};
    let root = PathBuf::from(std::env::args().nth(2).expect("state folder"));
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount namespace");
    nix::mount::mount(None::<&str>, "/", None::<&str>, nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE, None::<&str>)
        .expect("make mounts private");
    let _ = nix::mount::umount("/sys/fs/cgroup/unified");
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("a line");
        let (id, bundle) = line.split_once(' ').expect("ID BUNDLE");
        let elapsed = create_and_start("crun", &root, Path::new(bundle), id);
        writeln!(out, "{}", elapsed.as_nanos()).expect("stdout");
        out.flush().expect("stdout");
    }
}

/// Creates and starts each bundle with `tool`, timing both, then deletes it.
fn reference(tool: &str, bundles: &[PathBuf], dir: &Path) -> Vec<Duration> {
    let root = dir.join(format!("{tool}-state"));
    bundles.iter().enumerate().map(|(i, bundle)| create_and_start(tool, &root, bundle, &format!("{tool}-{i}"))).collect()
}

/// `tool create` + `tool start` of `bundle` as `id`, timed, then `tool
/// delete --force` (not timed).
fn create_and_start(tool: &str, root: &Path, bundle: &Path, id: &str) -> Duration {
    let run = |args: &[&str]| {
        let status =
            Command::new(tool).arg("--root").arg(root).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).status().expect(tool);
        assert!(status.success(), "{tool} {args:?} failed");
    };
    let started = Instant::now();
    run(&["create", "--bundle", bundle.to_str().unwrap(), id]);
    run(&["start", id]);
    let elapsed = started.elapsed();
    run(&["delete", "--force", id]);
    elapsed
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

/// Removes a cgroup folder and the empty ones below it, deepest first.
fn remove_tree(dir: &Path) {
    for child in std::fs::read_dir(dir).into_iter().flatten().flatten().filter(|c| c.path().is_dir()) {
        remove_tree(&child.path());
    }
    let _ = std::fs::remove_dir(dir);
}

fn remove_cgroup_parent() {
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let parent = hierarchy.path().join(PARENT);
        remove_tree(&parent);
    }
}
