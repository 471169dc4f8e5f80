//! Debian's `docker-registry` for tests of real pulls, shared by the test
//! binaries. It listens on 127.0.0.1 only, with its own config (the
//! package's default listens on every interface).

use crate::ports::free_port;

/// Debian's docker-registry on a free loopback port with htpasswd auth,
/// stopped when dropped. Only 127.0.0.1 is ever contacted.
pub(crate) struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts it on a free port.
    #[allow(dead_code, reason = "each test binary uses its part of this file")]
    pub(crate) fn start(user: &str, password: &str) -> Registry {
        Registry::start_on(free_port(), user, password)
    }

    /// Starts it on `port`, for a test that first needs nothing there.
    pub(crate) fn start_on(port: u16, user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = std::process::Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (apache2-utils)");
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
        let config = format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {root}}}}}\nhttp: {{addr: '127.0.0.1:{port}'}}\nauth: {{htpasswd: {{realm: driftless-test, path: {root}/htpasswd}}}}\n",
            root = dir.path().display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry)");
        let registry = Registry { child, port, _dir: dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "registry did not listen on 127.0.0.1:{port}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        registry
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes the project's busybox image as `library/busybox:1.35`.
    pub(crate) fn push_busybox(&self, user: &str, password: &str) {
        let pushed = std::process::Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", &format!("{user}:{password}")])
            .arg(format!("oci:{}:1.35", crate::images::busybox_layout().display()))
            .arg(format!("docker://{}/library/busybox:1.35", self.host()))
            .status()
            .expect("skopeo");
        assert!(pushed.success(), "skopeo could not push to the test registry");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
