//! Real containers through `driftless-shim` on youki's libcontainer.
//!
//! Needs root (namespaces, cgroups, mounts); CI runs as root. Each test
//! builds a busybox root filesystem from Debian's `busybox-static` in a
//! temporary folder and removes every container, cgroup and folder it made,
//! even when it fails (see `Node`'s `Drop`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use driftless_runtime::seccomp::Seccomp;
use driftless_runtime::{ContainerConfig, Layout, Status};
use nix::sys::signal::Signal;

mod defaults;
mod image;
#[path = "../support/images.rs"]
mod images;
mod node;
mod pod;
#[path = "../support/ports.rs"]
mod ports;
#[path = "../support/registry.rs"]
mod registry;
mod volumes;
mod worker;

const DEADLINE: Duration = Duration::from_secs(20);

/// A throwaway node: a runtime layout in a temp folder and a cgroup parent
/// of its own.
struct Node {
    dir: tempfile::TempDir,
    layout: Layout,
    cgroup_parent: String,
    started: std::cell::RefCell<Vec<String>>,
    /// Held for the test's life: runtime tests share the kernel's cgroups,
    /// links and PIDs, and run one at a time. (One CI run saw a container
    /// end early while other tests ran beside it; until that is explained,
    /// the tests do not overlap.)
    _exclusive: std::sync::MutexGuard<'static, ()>,
}

static EXCLUSIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Node {
    fn new(name: &str) -> Node {
        assert!(nix::unistd::geteuid().is_root(), "runtime tests need root (CI runs as root)");
        // A test that failed (and so poisoned the lock) has cleaned up.
        let exclusive = EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("node"), env!("CARGO_BIN_EXE_driftless-shim"));
        let cgroup_parent = format!("driftless-test-{}-{name}", std::process::id());
        Node { dir, layout, cgroup_parent, started: Default::default(), _exclusive: exclusive }
    }

    /// A busybox root filesystem (one per container: it is writable).
    fn rootfs(&self, id: &str) -> PathBuf {
        let root = self.dir.path().join("rootfs").join(id);
        let busybox = Path::new("/bin/busybox");
        assert!(busybox.exists(), "/bin/busybox missing: run scripts/setup.sh (installs busybox-static)");
        for sub in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for applet in ["sh", "echo", "sleep", "cat", "hostname", "id", "httpd", "wget", "seq", "head", "tr", "grep"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::write(root.join("www/index.html"), format!("hello from {id}\n")).unwrap();
        root
    }

    fn config(&self, id: &str, script: &str) -> ContainerConfig {
        ContainerConfig {
            id: id.to_owned(),
            rootfs: self.rootfs(id),
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            hostname: Some(id.to_owned()),
            cgroups_path: PathBuf::from(format!("/{}/{id}", self.cgroup_parent)),
            ..Default::default()
        }
    }

    fn start(&self, config: &ContainerConfig) -> Status {
        self.started.borrow_mut().push(config.id.clone());
        self.layout.start(config, DEADLINE).unwrap_or_else(|e| panic!("{e}"))
    }

    fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.layout.log_path(id)).unwrap_or_default()
    }

    /// This node's cgroup parent under every mounted hierarchy (controllers
    /// are mounted differently from machine to machine: `cpu,cpuacct` or
    /// `cpu` and `cpuacct`, with or without a unified hierarchy).
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else { return vec![] };
        hierarchies.flatten().map(|h| h.path().join(&self.cgroup_parent)).filter(|p| p.exists()).collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for id in self.started.borrow().iter() {
            if let Ok(Some(Status::Running { .. })) = self.layout.status(id) {
                // Wait only if the kill reached something: a dead helper
                // never reports the exit.
                if self.layout.kill(id, Signal::SIGKILL).is_ok() {
                    let _ = self.layout.wait(id, DEADLINE);
                }
            }
        }
        // The helper removes each container's cgroup; the folders above them
        // (the node's parent, a pod's level) are ours, deepest first.
        driftless_runtime::cgroups::remove(&self.cgroup_parent);
        // A leak must fail the test that caused it (but never panic while
        // a failing test unwinds: that would abort and skip all cleanup).
        if !std::thread::panicking() {
            let left = self.cgroup_dirs();
            assert!(left.is_empty(), "cgroups left behind: {left:?}");
        }
    }
}

fn exit_of(status: &Status) -> &driftless_runtime::Exit {
    match status {
        Status::Exited { exit, .. } => exit,
        other => panic!("expected an exited container, got {other:?}"),
    }
}

#[test]
fn runs_a_container_and_records_exit_code_and_logs() {
    let node = Node::new("exit");
    let config = node.config("c-exit", "echo hello from $(hostname); echo oops >&2; exit 3");
    node.start(&config);
    let status = node.layout.wait("c-exit", DEADLINE).unwrap();
    assert_eq!(exit_of(&status).code, 3, "{status:?}");
    assert_eq!(exit_of(&status).signal, None);
    assert_eq!(exit_of(&status).reason(), "Error");

    // containerd's default capabilities, as Kubernetes users know them.
    let config = node.config("c-caps", "grep CapEff /proc/self/status");
    node.start(&config);
    node.layout.wait("c-caps", DEADLINE).unwrap();
    assert!(node.log("c-caps").contains("CapEff:\t00000000a80425fb"), "{}", node.log("c-caps"));

    // containerd's default seccomp refusals: no new namespaces, not even
    // a user namespace, which needs no capability.
    let config = node.config("c-seccomp", "grep Seccomp: /proc/self/status; unshare -U true && echo unshared || echo refused");
    node.start(&config);
    node.layout.wait("c-seccomp", DEADLINE).unwrap();
    let log = node.log("c-seccomp");
    assert!(log.contains("Seccomp:\t2") && log.contains(" refused"), "{log}");
    let config = ContainerConfig { seccomp: Seccomp::Unconfined, ..node.config("c-unconfined", "unshare -U true && echo unshared || echo refused") };
    node.start(&config);
    node.layout.wait("c-unconfined", DEADLINE).unwrap();
    assert!(node.log("c-unconfined").contains(" unshared"), "{}", node.log("c-unconfined"));

    let log = node.log("c-exit");
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.iter().any(|l| l.ends_with(" stdout F hello from c-exit")), "{log}");
    assert!(lines.iter().any(|l| l.ends_with(" stderr F oops")), "{log}");
    // Every record starts with an RFC 3339 timestamp.
    assert!(lines.iter().all(|l| l.split(' ').next().is_some_and(|t| t.ends_with('Z') && t.contains('T'))), "{log}");

    // The helper deleted the container: its cgroups are gone.
    for dir in node.cgroup_dirs() {
        assert!(!dir.join("c-exit").exists(), "{} still exists", dir.join("c-exit").display());
    }
}

/// This test process's children that are fork servers of `node`.
fn fork_servers(node: &Node) -> Vec<u32> {
    let state_root = node.layout.state_root();
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let parent = stat.rsplit(')').next().and_then(|s| s.split_whitespace().nth(1)).and_then(|s| s.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let has = |needle: &[u8]| cmdline.windows(needle.len()).any(|w| w == needle);
            parent == Some(me) && has(b"\0serve\0") && has(state_root.as_os_str().as_encoded_bytes())
        })
        .collect()
}

#[test]
fn one_fork_server_starts_every_helper_and_ends_with_its_layout() {
    let mut node = Node::new("forks");
    assert!(fork_servers(&node).is_empty(), "a server before the first start");
    let first = node.config("c-fork-1", "exec sleep 600");
    let second = node.config("c-fork-2", "exec sleep 600");
    assert!(matches!(node.start(&first), Status::Running { .. }));
    let servers = fork_servers(&node);
    assert_eq!(servers.len(), 1, "{servers:?}");
    let Status::Running { pid, .. } = node.start(&second) else { panic!("not running") };
    assert_eq!(fork_servers(&node), servers, "the second start used the same server");

    // A server that is gone (killed) is replaced at the next start.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(servers[0] as i32), Signal::SIGKILL).unwrap();
    let third = node.config("c-fork-3", "exec sleep 600");
    assert!(matches!(node.start(&third), Status::Running { .. }));
    let replaced = fork_servers(&node);
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_ne!(replaced, servers);

    // The daemon's end of the socket closing (its death, or here the
    // layout's end) ends the server; the containers go on.
    let server = replaced[0];
    let fresh = Layout::new(node.dir.path().join("node"), env!("CARGO_BIN_EXE_driftless-shim"));
    drop(std::mem::replace(&mut node.layout, fresh));
    assert!(!std::path::Path::new(&format!("/proc/{server}")).exists(), "the server outlived its layout");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "a container ended with the server");
}

/// `driftless-shim serve` ends by itself when the daemon's end closes,
/// as it does when the daemon is killed.
#[test]
fn the_fork_server_ends_when_the_daemon_is_gone() {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_driftless-shim"))
        .args(["serve", "--state-root", "/nonexistent/state", "--containers", "/nonexistent/containers"])
        .stdin(theirs)
        .spawn()
        .unwrap();
    drop(ours);
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the server is still there");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn the_helper_outlives_the_daemon_and_kill_stops_the_container() {
    let node = Node::new("kill");
    let config = node.config("c-kill", "echo started; sleep 601 & exec sleep 600");
    let Status::Running { pid, shim_pid, .. } = node.start(&config) else { panic!("not running") };

    // The helper leads its own session: a dying daemon does not take it along.
    let shim = nix::unistd::Pid::from_raw(shim_pid);
    assert_eq!(nix::unistd::getsid(Some(shim)).unwrap(), shim);
    assert_ne!(nix::unistd::getsid(None).unwrap(), shim);
    // and it is neither our child nor the fork server's: it was handed to
    // init, which reaps it.
    let stat = std::fs::read_to_string(format!("/proc/{shim_pid}/stat")).unwrap();
    let ppid: u32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_ne!(ppid, std::process::id());
    assert!(!fork_servers(&node).contains(&ppid), "the helper is the fork server's child");
    // Once the container runs, the helper has become the small reaper: the
    // same process (still the parent of the container's init), another image.
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let exe = std::fs::read_link(format!("/proc/{shim_pid}/exe")).unwrap();
        // The reaper is installed under a content-derived name
        // (`driftless-reaper-<hash>`, see runtime/src/reaper_binary.rs).
        if exe.file_name().is_some_and(|n| n.to_string_lossy().starts_with("driftless-reaper")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "helper is still {}", exe.display());
        std::thread::sleep(Duration::from_millis(5));
    }
    // Statically linked: no shared libc or loader mapped in each idle pod.
    let maps = std::fs::read_to_string(format!("/proc/{shim_pid}/maps")).unwrap();
    assert!(!maps.contains("libc.so"), "the reaper maps libc:\n{maps}");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let init_parent: i32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(init_parent, shim_pid, "the reaper is the container init's parent");
    // The container's process runs, in its own PID namespace.
    let ns = |p: i32, kind: &str| std::fs::read_link(format!("/proc/{p}/ns/{kind}")).unwrap();
    assert_ne!(ns(pid, "pid"), ns(std::process::id() as i32, "pid"));
    assert_ne!(ns(pid, "net"), ns(std::process::id() as i32, "net"));

    // Exec joins the running container: its hostname, its files, and the
    // command's exit status comes back.
    let out = node.layout.exec("c-kill", &["hostname".into()]).output().unwrap();
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim()), (Some(0), "c-kill"), "{out:?}");
    let out = node.layout.exec("c-kill", &["sh".into(), "-c".into(), "cat /www/index.html; exit 7".into()]).output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from c-kill\n");
    let out = node.layout.exec("no-such-container", &["true".into()]).output().unwrap();
    assert_eq!(out.status.code(), Some(126), "{out:?}");

    // With a TTY (`exec -t`): the command sits on a terminal of its own,
    // and what is typed reaches it through the relay.
    let sh = |script: &str| vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
    let out = node.layout.exec_tty("c-kill", &sh("tty; test -t 0 && echo on-a-tty; exit 5")).stdin(std::process::Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(text.contains("/dev/pts/") && text.contains("on-a-tty"), "{text:?}");
    let mut child = node.layout.exec_tty("c-kill", &["sh".into()]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"echo $((6 * 7))\nexit 3\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "42"), "{out:?}");

    // The container's processes: its first, the `sleep 601` it left in
    // the background, and one an exec leaves there (in the container's PID
    // namespace).
    let out = node.layout.exec("c-kill", &sh("sleep 602 </dev/null >/dev/null 2>&1 &")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let container_ns = ns(pid, "pid");
    let in_container = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&p| std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == container_ns))
            .filter_map(|p| Some(std::fs::read_to_string(format!("/proc/{p}/cmdline")).ok()?.replace('\0', " ").trim().to_owned()))
            .collect()
    };
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut seen = in_container();
    seen.sort();
    assert_eq!(seen, ["sleep 600", "sleep 601", "sleep 602"]);
    // The exec'd process is inside the container's cgroups, as the first
    // one is: its memory and CPU count against the container's limits.
    let pid_of = |cmdline: &str| -> i32 {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|&p| {
                std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == container_ns)
                    && std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.replace('\0', " ").trim() == cmdline)
            })
            .unwrap()
    };
    let cgroups = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert!(cgroups(pid).contains("/c-kill"), "{}", cgroups(pid));
    assert_eq!(cgroups(pid_of("sleep 602")), cgroups(pid));
    // SIGTERM reaches every process in the container's cgroup: the
    // background one and the exec'd one end; the first ignores it, as a namespace's init
    // without a handler does.
    node.layout.kill("c-kill", Signal::SIGTERM).unwrap();
    while in_container().iter().any(|c| c == "sleep 601" || c == "sleep 602") {
        assert!(std::time::Instant::now() < deadline, "after SIGTERM: {:?}", in_container());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(in_container().iter().any(|c| c == "sleep 600"), "{:?}", in_container());

    // What a pod worker waits on: its helper's pidfd, readable once the
    // container has ended and its exit is recorded.
    let ended = node.layout.exit_watch("c-kill").expect("a running container's helper can be watched");
    if let Err(error) = node.layout.kill("c-kill", Signal::SIGKILL) {
        // How it had ended, if it had: the helper writes that last.
        panic!("{error}\nstatus: {:?}\nthen: {:?}\nlog:\n{}", node.layout.status("c-kill"), node.layout.wait("c-kill", DEADLINE), node.log("c-kill"));
    }
    let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&ended), nix::poll::PollFlags::POLLIN)];
    let timeout = nix::poll::PollTimeout::try_from(DEADLINE.as_millis() as i32).unwrap();
    assert_eq!(nix::poll::poll(&mut fds, timeout).unwrap(), 1, "the helper ended");
    assert!(matches!(node.layout.status("c-kill"), Ok(Some(Status::Exited { .. }))), "recorded before: {:?}", node.layout.status("c-kill"));
    assert!(node.layout.exit_watch("c-kill").is_none(), "an ended container has no helper to watch");
    let status = node.layout.wait("c-kill", DEADLINE).unwrap();
    assert_eq!(exit_of(&status).signal, Some(9), "{status:?}");
    assert_eq!(exit_of(&status).code, 137);
    assert!(node.log("c-kill").contains(" stdout F started"));
    let deadline = std::time::Instant::now() + DEADLINE;
    while !in_container().is_empty() {
        assert!(std::time::Instant::now() < deadline, "left in the container's namespace: {:?}", in_container());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_memory_limit_kills_with_oomkilled_and_a_clean_exit_is_completed() {
    let node = Node::new("oom");
    let mut config = node.config("c-oom", "big=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived");
    config.memory_limit = Some(16 << 20);
    node.start(&config);
    let status = node.layout.wait("c-oom", DEADLINE).unwrap();
    let exit = exit_of(&status);
    assert!(exit.oom_killed, "{status:?}\n{}", node.log("c-oom"));
    assert_eq!(exit.reason(), "OOMKilled");
    assert!(!node.log("c-oom").contains("survived"));

    let config = node.config("c-ok", "true");
    node.start(&config);
    let status = node.layout.wait("c-ok", DEADLINE).unwrap();
    assert_eq!(exit_of(&status).reason(), "Completed", "{status:?}");
}

#[test]
fn a_restarted_daemon_finds_running_containers_instead_of_starting_duplicates() {
    let node = Node::new("adopt");
    node.start(&node.config("c-running", "exec sleep 600"));
    node.start(&node.config("c-done", "exit 4"));
    node.layout.wait("c-done", DEADLINE).unwrap();

    // A new daemon knows nothing but the node's folder.
    let restarted = Layout::new(node.dir.path().join("node"), env!("CARGO_BIN_EXE_driftless-shim"));
    let found = restarted.list().unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[1], ("c-running".to_owned(), driftless_runtime::Observed::Running));
    assert!(matches!(&found[0], (id, driftless_runtime::Observed::Finished(Status::Exited { exit, .. })) if id == "c-done" && exit.code == 4), "{found:?}");

    // Stopping what has ended is no error: a stop can cross the helper
    // deleting the container's state.
    restarted.kill("c-done", Signal::SIGTERM).unwrap();
    restarted.kill("c-done", Signal::SIGKILL).unwrap();

    // And it can still stop what it adopted.
    restarted.kill("c-running", Signal::SIGKILL).unwrap();
    let status = restarted.wait("c-running", DEADLINE).unwrap();
    assert_eq!(exit_of(&status).signal, Some(9));
}

#[test]
fn a_container_whose_helper_died_is_lost_not_running() {
    let node = Node::new("lost");
    let Status::Running { shim_pid, pid, .. } = node.start(&node.config("c-lost", "exec sleep 600")) else { panic!() };
    // Kill the helper and the container behind the runtime's back.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim_pid), Signal::SIGKILL);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let found = node.layout.list().unwrap();
        if found == [("c-lost".to_owned(), driftless_runtime::Observed::Lost)] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{found:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Nothing deleted its cgroup: the node's cleanup (Drop) does, and checks.
    if let Ok(mut container) = libcontainer::container::Container::load(node.layout.state_root().join("c-lost")) {
        let _ = container.delete(true);
    }
}

#[test]
fn a_missing_command_is_reported_not_hung() {
    let node = Node::new("bad");
    let mut config = node.config("c-bad", "true");
    config.args = vec!["/bin/no-such-program".into()];
    let outcome = node.layout.start(&config, DEADLINE);
    node.started.borrow_mut().push("c-bad".into());
    match outcome {
        Err(e) => assert!(e.to_string().contains("c-bad"), "{e}"),
        Ok(status) => {
            // libcontainer may report the exec failure as an exit instead.
            let status = match status {
                Status::Running { .. } => node.layout.wait("c-bad", DEADLINE).unwrap(),
                other => other,
            };
            assert!(matches!(status, Status::Exited { ref exit, .. } if exit.code != 0) || matches!(status, Status::Failed { .. }), "{status:?}");
        }
    }
}
