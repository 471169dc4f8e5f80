//! A throwaway cluster: a git repository, a data folder with the busybox
//! image, and a `driftless up` over them; with helpers to commit, to
//! query the daemon, and to wait for what it should do (polling with a
//! deadline, never a bare sleep).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use driftless_api::Client;
use driftless_api::client::Endpoint;
use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) struct Cluster {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) repo: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) bridge: String,
    pub(crate) pod_cidr: String,
    pub(crate) service_cidr: String,
    pub(crate) cgroup_root: String,
    /// The one LoadBalancer address this cluster may hand out.
    pub(crate) lb_address: String,
    /// The Ingress's HTTP and HTTPS listeners, on loopback.
    pub(crate) ingress_http: String,
    /// See `ingress_http`.
    pub(crate) ingress_https: String,
    daemon: Option<Child>,
    runtime: tokio::runtime::Runtime,
    /// The data folder whose daemon the API calls go to.
    api: PathBuf,
    /// The store's etcd, when the tests run on that backend
    /// (`DRIFTLESS_TEST_STORE=etcd`); it outlives daemon restarts.
    etcd: Option<crate::etcd::Etcd>,
    /// The daemon's log filter, when a test needs more than the default.
    log_filter: Option<String>,
    /// The data folder is a tmpfs of this cluster's own (`on_small_disk`).
    small_disk: bool,
}

/// Whether this run's daemons keep their store on etcd.
pub(crate) fn on_etcd() -> bool {
    std::env::var("DRIFTLESS_TEST_STORE").is_ok_and(|s| s == "etcd")
}

pub(crate) fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_driftless"))
}

impl Cluster {
    /// A repository with `files` committed, and a data folder with the
    /// busybox image; no daemon yet.
    pub(crate) fn new(files: &[(&str, &str)]) -> Cluster {
        Cluster::new_with(files, None)
    }

    /// [`Cluster::new`] with the data folder on a tmpfs of `size` (`96m`),
    /// for tests of a full disk; unmounted when dropped.
    pub(crate) fn on_small_disk(files: &[(&str, &str)], size: &str) -> Cluster {
        Cluster::new_with(files, Some(size))
    }

    fn new_with(files: &[(&str, &str)], disk: Option<&str>) -> Cluster {
        let shim = binary().with_file_name("driftless-shim");
        assert!(shim.exists(), "{} is missing: build the workspace (cargo test --workspace builds it)", shim.display());
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = (std::process::id() % 200) as u32 * 8 + n;
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&repo).unwrap();
        let cluster = Cluster {
            repo,
            api: data.clone(),
            data,
            bridge: format!("dle{id}"),
            pod_cidr: format!("10.246.{}.0/24", id % 250),
            service_cidr: format!("10.99.{}.0/24", id % 250),
            cgroup_root: format!("/driftless-e2e-{}-{n}", std::process::id()),
            lb_address: format!("127.0.0.{}", 100 + id % 150),
            ingress_http: free_port(),
            ingress_https: free_port(),
            daemon: None,
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            etcd: on_etcd().then(crate::etcd::Etcd::start),
            log_filter: None,
            small_disk: disk.is_some(),
            dir,
        };
        if let Some(size) = disk {
            std::fs::create_dir_all(&cluster.data).unwrap();
            let status = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&cluster.data).status().unwrap();
            assert!(status.success(), "mount a tmpfs on the data folder");
        }
        cluster.remove_leftovers();
        cluster.git(&["init", "-q", "-b", "main"]);
        for (path, text) in files {
            cluster.write(path, text);
        }
        cluster.git(&["add", "-A"]);
        cluster.git(&["commit", "-q", "-m", "initial"]);
        let layout = crate::images::busybox_layout();
        let out = cluster.cli(&["image", "import", layout.to_str().unwrap(), "--name", "busybox"]);
        assert!(out.status.success(), "image import: {}", String::from_utf8_lossy(&out.stderr));
        cluster
    }

    /// A run killed before its Drop (SIGKILL, a CI timeout) leaves its
    /// bridge, table and routes; a later run that draws the same id
    /// removes them instead of inheriting their routes.
    fn remove_leftovers(&self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new(args[0]).args(&args[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        };
        if Command::new("ip").args(["link", "show", &self.bridge]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            eprintln!("removing {} left by an earlier, killed run", self.bridge);
            quiet(&["ip", "link", "del", &self.bridge]);
        }
        quiet(&["nft", "delete", "table", "ip", &format!("driftless_{}", self.bridge)]);
        quiet(&["ip", "route", "del", "table", "local", "local", &self.service_cidr, "dev", "lo"]);
    }

    pub(crate) fn write(&self, path: &str, text: &str) {
        let target = self.repo.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.repo)
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test Author")
            .env("GIT_COMMITTER_EMAIL", "author@example.invalid")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes `files` and commits them; returns the commit id.
    pub(crate) fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, text) in files {
            self.write(path, text);
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// The running daemon's peak resident memory (`VmHWM`), in KiB.
    pub(crate) fn daemon_peak_kib(&self) -> u64 {
        let pid = self.daemon.as_ref().expect("the daemon runs").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap()
    }

    /// Runs the CLI against this cluster's data folder.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[])
    }

    /// Runs the CLI with more environment (an `EDITOR`, say).
    pub(crate) fn cli_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(binary()).args(args).env("DRIFTLESS_DATA_DIR", &self.data).envs(env.iter().copied()).output().unwrap()
    }

    /// Runs the CLI against the daemon of another data folder (a standby
    /// control-plane instance); its standard output.
    pub(crate) fn cli_on(data: &std::path::Path, args: &[&str]) -> String {
        let out = Command::new(binary()).args(args).env("DRIFTLESS_DATA_DIR", data).output().unwrap();
        assert!(out.status.success(), "driftless {args:?} on {}: {}", data.display(), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the CLI and returns its standard output; panics on failure.
    pub(crate) fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "driftless {args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// The whole of the daemon's log, across its restarts.
    pub(crate) fn full_daemon_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// The daemon's log so far (for failure messages).
    pub(crate) fn daemon_log(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// What a failing test prints: the pods and their containers' states,
    /// and the daemon's log.
    pub(crate) fn diagnose(&self) -> String {
        let table = String::from_utf8_lossy(&self.cli(&["get", "pods", "-o", "wide"]).stdout).into_owned();
        let states: Vec<String> = self
            .try_get("/api/v1/namespaces/default/pods")
            .map(|l| l["items"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
            .iter()
            .map(|p| format!("{} {} {}", name(p), p["metadata"]["uid"], p["status"]["containerStatuses"]))
            .collect();
        format!("--- pods ---\n{table}{}\n--- helpers ---\n{}\n--- daemon log ---\n{}", states.join("\n"), self.helpers().join("\n"), self.daemon_log())
    }

    /// Starts `driftless up` and waits until its API answers.
    pub(crate) fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Starts `driftless up` with extra flags.
    pub(crate) fn start_with(&mut self, extra: &[&str]) {
        let repo = self.repo.to_string_lossy().into_owned();
        self.start_from(&repo, extra);
    }

    /// Starts `driftless up` on `repo` (a URL, say) with extra flags.
    pub(crate) fn start_from(&mut self, repo: &str, extra: &[&str]) {
        assert!(self.daemon.is_none());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).unwrap();
        let mut command = self.up_command(repo, &self.data.clone(), extra);
        let child = command.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        self.daemon = Some(child);
        self.wait_for("the daemon's API", Duration::from_secs(30), || self.try_get("/healthz").map(|_| ()).ok());
        if self.etcd.is_some() {
            assert!(!self.data.join("store.db").exists(), "the store is on etcd, not in the data folder");
        }
        if extra.contains(&"--no-local-node") {
            return;
        }
        // The pod CIDR is routed to the bridge before any pod exists.
        let routes = String::from_utf8(Command::new("ip").args(["route", "show", &self.pod_cidr]).output().unwrap().stdout).unwrap();
        assert!(routes.contains(&self.bridge), "{} is not routed to {}: {routes}", self.pod_cidr, self.bridge);
        // And service addresses are the host's own, before any is used.
        let local = String::from_utf8(Command::new("ip").args(["route", "show", "table", "local", &self.service_cidr]).output().unwrap().stdout).unwrap();
        assert!(local.contains("local") && local.contains("dev lo"), "{} is not routed local on lo: {local}", self.service_cidr);
    }

    /// `driftless up` of this cluster's node on `repo`, its data in
    /// `data` (another control-plane instance of the same node has a data
    /// folder of its own), with extra flags.
    pub(crate) fn up_command(&self, repo: &str, data: &std::path::Path, extra: &[&str]) -> Command {
        let dns = self.service_cidr.replace(".0/24", ".10");
        let mut command = Command::new(binary());
        command
            .args(["up", "--repo", repo])
            .args(["--path", "apps"])
            .args(if extra.contains(&"--interval") { &[][..] } else { &["--interval", "1s"][..] })
            .arg("--data-dir")
            .arg(data)
            .args(["--bridge", &self.bridge, "--pod-cidr", &self.pod_cidr, "--service-cidr", &self.service_cidr])
            .args(["--cluster-dns", &dns, "--cgroup-root", &self.cgroup_root, "--node-name", "node-1"])
            // Tests never send DNS off the machine.
            .args(["--dns-upstream", "none", "--lb-pool", &self.lb_address])
            .args(["--ingress-http", &self.ingress_http, "--ingress-https", &self.ingress_https])
            .args(self.etcd.iter().flat_map(|etcd| ["--store".to_owned(), etcd.url.clone()]))
            .args(extra)
            // DRIFTLESS_TEST_LOG overrides, to chase a failure with debug logs.
            .env(
                "DRIFTLESS_LOG",
                std::env::var("DRIFTLESS_TEST_LOG")
                    .ok()
                    .or_else(|| self.log_filter.clone())
                    .unwrap_or_else(|| "info,libcgroups=error,libcontainer=error".to_owned()),
            )
            .stdin(Stdio::null());
        command
    }

    /// The daemon's log filter from its next start on (`DRIFTLESS_LOG`).
    pub(crate) fn log_filter(&mut self, filter: &str) {
        self.log_filter = Some(filter.to_owned());
    }

    /// Reads the API of the daemon whose data folder is `data` from now on
    /// (the instance leading after a failover).
    pub(crate) fn use_api_of(&mut self, data: &std::path::Path) {
        self.api = data.to_path_buf();
    }

    /// The cluster DNS address.
    pub(crate) fn dns(&self) -> String {
        self.service_cidr.replace(".0/24", ".10")
    }

    /// Stops the daemon with SIGTERM, as a service manager does; how it
    /// exited (killed if it is still running after 30 s).
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("the daemon runs");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().unwrap()
    }

    /// Kills the daemon with SIGKILL (as a crash would).
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn client(&self) -> Client {
        Client::new(Endpoint::Unix(self.api.join(driftless_api::SOCKET)))
    }

    pub(crate) fn try_get(&self, path: &str) -> Result<Value, driftless_api::ClientError> {
        let client = self.client();
        if path == "/healthz" {
            return self.runtime.block_on(client.get_text(path)).map(Value::from);
        }
        self.runtime.block_on(client.get(path))
    }

    /// GETs an API path that answers with text (`/metrics`).
    pub(crate) fn get_text(&self, path: &str) -> String {
        self.runtime.block_on(self.client().get_text(path)).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.daemon_log()))
    }

    /// GETs an API path.
    pub(crate) fn get(&self, path: &str) -> Value {
        self.try_get(path).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.daemon_log()))
    }

    /// The items of a list.
    pub(crate) fn list(&self, path: &str) -> Vec<Value> {
        self.get(path)["items"].as_array().cloned().unwrap_or_default()
    }

    /// The pods in the default namespace.
    pub(crate) fn pods(&self) -> Vec<Value> {
        self.list("/api/v1/namespaces/default/pods")
    }

    /// Polls `check` until it gives a value or `timeout` passes (then
    /// fails with the daemon's log).
    pub(crate) fn wait_for<T>(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}\n{}", self.diagnose());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for `n` running, ready pods whose names start with `prefix`.
    pub(crate) fn wait_ready(&self, prefix: &str, n: usize, timeout: Duration) -> Vec<Value> {
        self.wait_for(&format!("{n} ready pods {prefix}*"), timeout, || {
            let pods: Vec<Value> = self.pods().into_iter().filter(|p| name(p).starts_with(prefix)).collect();
            let ready: Vec<Value> = pods.iter().filter(|p| is_ready(p)).cloned().collect();
            (pods.len() == n && ready.len() == n).then_some(ready)
        })
    }

    /// Runs `f` against a watch of `path`, one event at a time, until it
    /// returns `Some` or `timeout` passes.
    pub(crate) fn watch<T>(&self, path: &str, timeout: Duration, mut f: impl FnMut(&str, &Value) -> Option<T>) -> T {
        use futures_util::StreamExt;
        let client = self.client();
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}watch=1");
        let result = self.runtime.block_on(async {
            let mut stream = client.stream(&path).await.unwrap();
            let mut buffer = String::new();
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let chunk = tokio::select! {
                    chunk = stream.next() => chunk,
                    _ = tokio::time::sleep_until(deadline) => return None,
                };
                buffer.push_str(&String::from_utf8_lossy(&chunk?.ok()?));
                while let Some(end) = buffer.find('\n') {
                    let line: String = buffer.drain(..=end).collect();
                    let event: Value = serde_json::from_str(&line).unwrap();
                    if let Some(value) = f(event["type"].as_str().unwrap_or(""), &event["object"]) {
                        return Some(value);
                    }
                }
            }
        });
        result.unwrap_or_else(|| panic!("watch of {path} ended or timed out after {timeout:?}\n--- daemon log ---\n{}", self.daemon_log()))
    }

    /// The processes running containers of this cluster (the helpers,
    /// which are reapers while their container runs).
    pub(crate) fn helpers(&self) -> Vec<String> {
        let needle = self.data.join("node").display().to_string();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) && cmdline.contains("--log") {
                found.push(cmdline);
            }
        }
        found
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill9();
        let out = Command::new(binary()).args(["reset", "--purge", "--data-dir"]).arg(&self.data).output();
        if let Ok(out) = &out
            && !out.status.success()
        {
            eprintln!("driftless reset: {}", String::from_utf8_lossy(&out.stderr));
        }
        if self.small_disk {
            let _ = Command::new("umount").arg(&self.data).status();
        }
        if !std::thread::panicking() {
            assert!(self.helpers().is_empty(), "containers left running: {:?}", self.helpers());
            let link = Command::new("ip").args(["link", "show", &self.bridge]).output().unwrap();
            assert!(!link.status.success(), "bridge {} left behind", self.bridge);
            let left: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
                .map(|h| h.path().join(self.cgroup_root.trim_start_matches('/')))
                .filter(|p| p.exists())
                .collect();
            assert!(left.is_empty(), "cgroups left behind: {left:?}");
            let tables = String::from_utf8_lossy(&Command::new("nft").args(["list", "tables"]).output().unwrap().stdout).into_owned();
            // The line exactly: another test's bridge may be this one's name
            // plus a digit.
            let ours = format!("driftless_{}", self.bridge);
            assert!(!tables.lines().any(|l| l.split_whitespace().last() == Some(ours.as_str())), "nftables table left behind: {tables}");
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
            let ours = self.dir.path().display().to_string();
            assert!(!mounts.contains(&ours), "mounts left behind under {ours}");
        }
    }
}

/// A loopback address with a port nothing listens on now.
fn free_port() -> String {
    format!("127.0.0.1:{}", crate::ports::free_port())
}

pub(crate) fn name(pod: &Value) -> String {
    pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned()
}

pub(crate) fn is_ready(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

pub(crate) fn pod_ip(pod: &Value) -> String {
    pod.pointer("/status/podIP").and_then(Value::as_str).unwrap_or("").to_owned()
}

/// GETs `/` from a pod's address with a plain TCP connection; the body.
pub(crate) fn http_get(ip: &str, port: u16, path: &str) -> Option<String> {
    try_http_get(ip, port, path).ok()
}

/// [`http_get`], saying what went wrong (refused, reset, timed out...),
/// for tests that count failures.
pub(crate) fn try_http_get(ip: &str, port: u16, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let address: std::net::SocketAddr = format!("{ip}:{port}").parse().map_err(|e| format!("{e}"))?;
    let started = Instant::now();
    let failed = |step: &str, e: std::io::Error| format!("{step} after {:?}: {e}", started.elapsed());
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|e| failed("connect", e))?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| failed("set timeout", e))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").map_err(|e| failed("write", e))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| failed("read", e))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP answer: {response:?}"))?;
    if head.starts_with("HTTP/1.") { Ok(body.to_owned()) } else { Err(format!("not HTTP: {head:?}")) }
}

/// A Deployment of busybox httpd serving `/www/index.html` (its text from
/// the template's VERSION), with a readiness probe.
pub(crate) fn web(replicas: u32, version: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  progressDeadlineSeconds: 8
  selector:
    matchLabels: {{app: web}}
  strategy: {strategy}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:1.35
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'mkdir -p /tmp/www && echo version {version} > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www']
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /, port: http}}
          periodSeconds: 1
"
    )
}

/// The versions the web pods (`web`) serve, one per Ready pod not being
/// deleted, sorted.
pub(crate) fn versions(cluster: &Cluster) -> Vec<String> {
    let mut out: Vec<String> = cluster
        .pods()
        .iter()
        .filter(|p| name(p).starts_with("web-") && is_ready(p) && p.pointer("/metadata/deletionTimestamp").is_none())
        .filter_map(|p| http_get(&pod_ip(p), 8080, "/"))
        .map(|body| body.trim().to_owned())
        .collect();
    out.sort();
    out
}
