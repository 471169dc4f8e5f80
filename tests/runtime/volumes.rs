//! Volumes: a shared emptyDir, a configMap-style volume updated under a
//! running container, and a size-limited memory emptyDir.

use std::time::{Duration, Instant};

use driftless_runtime::volumes::{File, write_atomically};
use driftless_runtime::{MountSource, Status, VolumeMount};

use crate::{DEADLINE, Node};

fn bind(source: &std::path::Path, destination: &str, read_only: bool) -> VolumeMount {
    VolumeMount { destination: destination.into(), source: MountSource::Bind(source.to_path_buf()), read_only }
}

fn exited_with(node: &Node, id: &str) -> (i32, String) {
    let status = node.layout.wait(id, DEADLINE).unwrap();
    let Status::Exited { exit, .. } = status else { panic!("{status:?}") };
    (exit.code, node.log(id))
}

#[test]
fn containers_share_an_empty_dir() {
    let node = Node::new("emptydir");
    let cache = node.dir.path().join("pods/v/volumes/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mut writer = node.config("c-writer", "echo shared-data > /cache/x");
    writer.mounts = vec![bind(&cache, "/cache", false)];
    node.start(&writer);
    assert_eq!(exited_with(&node, "c-writer").0, 0);
    let mut reader = node.config("c-reader", "cat /cache/x");
    reader.mounts = vec![bind(&cache, "/cache", true)];
    node.start(&reader);
    let (code, log) = exited_with(&node, "c-reader");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains(" stdout F shared-data"), "{log}");
}

#[test]
fn a_config_volume_is_read_only_and_updates_atomically_under_a_running_container() {
    let node = Node::new("config");
    let volume = node.dir.path().join("pods/v/volumes/config");
    write_atomically(&volume, &[File { path: "app.conf".into(), data: b"mode=v1\n".to_vec(), mode: 0o644 }]).unwrap();
    let script = "cat /etc/app/app.conf; \
        if echo x > /etc/app/new 2>/dev/null; then echo writable; exit 9; fi; \
        for i in $(seq 1 400); do grep -q v2 /etc/app/app.conf && { echo saw v2; exit 0; }; sleep 0.05; done; exit 1";
    let mut config = node.config("c-config", script);
    config.mounts = vec![bind(&volume, "/etc/app", true)];
    node.start(&config);

    let deadline = Instant::now() + DEADLINE;
    while !node.log("c-config").contains("mode=v1") {
        assert!(Instant::now() < deadline, "never read v1: {}", node.log("c-config"));
        std::thread::sleep(Duration::from_millis(10));
    }
    write_atomically(&volume, &[File { path: "app.conf".into(), data: b"mode=v2\n".to_vec(), mode: 0o644 }]).unwrap();
    let (code, log) = exited_with(&node, "c-config");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains(" stdout F saw v2"), "{log}");
    assert!(!log.contains("writable"), "{log}");
}

#[test]
fn a_memory_empty_dir_is_a_size_limited_tmpfs() {
    let node = Node::new("tmpfs");
    let mut config = node.config("c-tmpfs", "head -c 2000000 /dev/zero > /mem/f; echo rc=$?; grep ' /mem ' /proc/mounts");
    config.mounts = vec![VolumeMount { destination: "/mem".into(), source: MountSource::Tmpfs { size: Some(1 << 20) }, read_only: false }];
    node.start(&config);
    let (_, log) = exited_with(&node, "c-tmpfs");
    assert!(log.contains(" stdout F rc=1"), "writing 2 MB into a 1 MiB tmpfs must fail: {log}");
    assert!(log.contains("tmpfs /mem tmpfs"), "{log}");
}

/// Unmounts a folder when dropped, the test failing or not.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_host_path_mounted_after_the_fork_server_started_is_seen_by_the_next_container() {
    let node = Node::new("hostmount");
    let disk = node.dir.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    // A first container starts the node's fork server, which copies the
    // host's mounts as they are; a long one, started just before the
    // change, keeps its start.
    node.start(&node.config("c-first", "true"));
    assert_eq!(exited_with(&node, "c-first").0, 0);
    // Then the host mounts a disk where a hostPath volume points.
    nix::mount::mount(Some("tmpfs"), &disk, Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=1m")).unwrap();
    let _mounted = Mounted(disk.clone());
    std::fs::write(disk.join("on-the-disk"), "mounted later\n").unwrap();
    // Starts side by side across the change of server: each one runs.
    let readers: Vec<String> = (0..4).map(|i| format!("c-reader-{i}")).collect();
    let configs: Vec<_> = readers
        .iter()
        .map(|id| {
            node.started.borrow_mut().push(id.clone());
            let mut reader = node.config(id, "cat /data/on-the-disk");
            reader.mounts = vec![bind(&disk, "/data", true)];
            reader
        })
        .collect();
    std::thread::scope(|scope| {
        for config in &configs {
            let layout = &node.layout;
            scope.spawn(move || layout.start(config, DEADLINE).unwrap_or_else(|e| panic!("{e}")));
        }
    });
    for id in &readers {
        let (code, log) = exited_with(&node, id);
        assert_eq!(code, 0, "{id}: {log}");
        assert!(log.contains(" stdout F mounted later"), "{id} sees the disk, not the folder beneath: {log}");
    }
}
