//! What every control-plane benchmark sets up: a git repository with the
//! manifests, the busybox image imported, and the real `driftless up` on
//! its own bridge, CIDRs and cgroup root, answering on its socket; and
//! what it leaves behind (nothing: `driftless reset --purge` at the end,
//! even when the benchmark panics).

// Each benchmark program includes this module and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftless_api::Client;
use driftless_api::client::Endpoint;

/// The benchmarks' workload: a Deployment `bench` of `replicas` busybox
/// pods that sleep, stopped at once when scaled down.
pub(crate) fn sleep_deployment(replicas: usize) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: bench}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: bench}}}}
  template:
    metadata: {{labels: {{app: bench}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: busybox:1.35
        imagePullPolicy: Never
        command: [sleep, '3600']
"
    )
}

/// Runs `git` in `repo` as the benchmark's own identity.
pub(crate) fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .current_dir(repo)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// The node's network and cgroup names, distinct per benchmark.
pub(crate) struct Network {
    pub(crate) bridge: &'static str,
    pub(crate) pod_cidr: &'static str,
    pub(crate) service_cidr: &'static str,
    pub(crate) cluster_dns: &'static str,
    pub(crate) cgroup_root: &'static str,
}

/// A running daemon over a repository of its own.
pub(crate) struct Bench {
    /// The repository (a work tree, branch `main`, manifests in `apps/`).
    pub(crate) repo: PathBuf,
    /// The bare repository the daemon fetches from, when it syncs a remote.
    pub(crate) remote: Option<PathBuf>,
    /// The daemon's data folder.
    pub(crate) data: PathBuf,
    /// The `driftless` binary.
    pub(crate) bin: PathBuf,
    /// The daemon.
    pub(crate) daemon: Child,
    /// A client of its socket.
    pub(crate) client: Client,
    /// The runtime the client runs on.
    pub(crate) runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// Commits `manifests` as `apps/bench.yaml`, imports busybox and
    /// starts `driftless up` (release build beside this example).
    pub(crate) fn start(manifests: &str, network: &Network) -> Bench {
        Bench::start_with(manifests, network, &[])
    }

    /// As [`Bench::start`], with more `driftless up` flags.
    pub(crate) fn start_with(manifests: &str, network: &Network, extra: &[&str]) -> Bench {
        Bench::start_from(manifests, network, extra, false)
    }

    /// As [`Bench::start_with`]; with `remote`, the daemon syncs a bare
    /// clone of the repository (`file://`), as it would a forge's, and
    /// [`Bench::remote`] is where to push.
    pub(crate) fn start_from(manifests: &str, network: &Network, extra: &[&str], remote: bool) -> Bench {
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().and_then(Path::parent).unwrap().join("driftless");
        assert!(bin.exists(), "build the binary first: cargo build --release -p driftless -p driftless-runtime");
        let layout = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/images/busybox-1.35");
        assert!(layout.exists(), "run scripts/build-images.sh first");
        let dir = tempfile::tempdir().unwrap();
        let (repo, data) = (dir.path().join("repo"), dir.path().join("data"));
        std::fs::create_dir_all(repo.join("apps")).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("apps/bench.yaml"), manifests).unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "bench"]);
        let imported = Command::new(&bin)
            .args(["image", "import"])
            .arg(&layout)
            .args(["--name", "busybox", "--data-dir"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(imported.success());
        let remote_dir = dir.path().join("remote.git");
        let watched = if remote {
            let cloned = Command::new("git").args(["clone", "-q", "--bare"]).arg(&repo).arg(&remote_dir).status().unwrap();
            assert!(cloned.success());
            format!("file://{}", remote_dir.display())
        } else {
            repo.display().to_string()
        };
        let daemon = Command::new(&bin)
            .args(["up", "--repo", &watched])
            .args(["--path", "apps", "--data-dir"])
            .arg(&data)
            .args(["--bridge", network.bridge, "--pod-cidr", network.pod_cidr, "--service-cidr", network.service_cidr])
            .args(["--cluster-dns", network.cluster_dns, "--cgroup-root", network.cgroup_root, "--dns-upstream", "none"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = Client::new(Endpoint::Unix(data.join(driftless_api::SOCKET)));
        let bench = Bench { repo, remote: remote.then_some(remote_dir), data, bin, daemon, client, runtime, _dir: dir };
        bench.runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            while bench.client.get_text("/healthz").await.is_err() {
                assert!(Instant::now() < deadline, "the daemon did not come up");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        bench
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let status = Command::new(&self.bin).args(["reset", "--purge", "--data-dir"]).arg(&self.data).stderr(Stdio::null()).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("driftless reset failed: clean up {} by hand", self.data.display());
        }
    }
}
