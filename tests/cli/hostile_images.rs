//! Images that attack the node, refused by `driftless image import` and
//! `driftless image pull` with the reason, and nothing written outside the
//! image store (nor left in its staging folder).
//!
//! The layers are made by Python's tarfile (tests/support/hostile_image.py),
//! not by our code; the registry is tests/support/hostile_registry.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::hostile_registry::{Fault, HostileRegistry};
use crate::support::{Repo, driftless_in};

/// Writes the hostile layout `kind` into `dir/kind`, escaping (if it can)
/// to `escape`.
fn hostile_layout(dir: &Path, kind: &str, escape: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/hostile_image.py");
    let layout = dir.join(kind);
    let out = Command::new("python3").arg(&script).arg(kind).arg(&layout).arg(escape).output().expect("python3");
    assert!(out.status.success(), "hostile_image.py {kind}: {}", String::from_utf8_lossy(&out.stderr));
    layout
}

/// What the store's staging folder holds: nothing, after any refusal.
fn staged(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("images/tmp")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

fn listed(work: &Repo, data: &str) -> Vec<String> {
    driftless_in(work.path(), &["image", "ls", "--data-dir", data]).lines().into_iter().skip(1).map(|l| l.split(' ').next().unwrap_or("").to_owned()).collect()
}

#[test]
fn layers_that_climb_out_of_the_store_are_refused_with_the_entry_named() {
    let work = Repo::folder();
    let data = work.join("data");
    let data_arg = data.to_str().unwrap();
    // Where each layer tries to write: outside the data folder.
    let escape = work.join("outside/escaped");
    std::fs::create_dir_all(escape.parent().unwrap()).unwrap();
    let cases = [
        ("traversal", "its path contains `..`"),
        ("absolute", "its path is absolute"),
        ("symlink", "it goes through a symlink that points outside the folder"),
        ("hardlink", "its link target \"../../../../etc/passwd\" is refused"),
    ];
    for (kind, reason) in cases {
        let layout = hostile_layout(work.path(), kind, &escape);
        let run = driftless_in(work.path(), &["image", "import", layout.to_str().unwrap(), "--name", "hostile", "--data-dir", data_arg]);
        assert_eq!(run.code, 2, "{kind}: {run:?}");
        assert!(run.stderr.contains("refusing entry") && run.stderr.contains(reason), "{kind}: the reason reaches the user: {run:?}");
        assert!(run.stderr.contains(layout.to_str().unwrap()), "{kind}: the image is named: {run:?}");
        assert!(!escape.exists(), "{kind} wrote outside the store");
        assert!(staged(&data).is_empty(), "{kind} left {:?}", staged(&data));
    }
    assert!(listed(&work, data_arg).is_empty(), "nothing was imported");

    // Device nodes and set-uid files are kept, as containerd keeps them: the
    // device cgroup and no_new_privs neutralise them (tests/runtime/defaults.rs).
    let layout = hostile_layout(work.path(), "devices", &escape);
    let run = driftless_in(work.path(), &["image", "import", layout.to_str().unwrap(), "--name", "hostile", "--data-dir", data_arg]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// A small tmpfs for a data folder, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: PathBuf, size: &str) -> SmallDisk {
        assert!(nix::unistd::geteuid().is_root(), "mounting a tmpfs needs root (CI runs as root)");
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&path).status().unwrap();
        assert!(status.success(), "mount tmpfs");
        SmallDisk(path)
    }

    fn available(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(&self.0).unwrap();
        stat.blocks_available() * stat.fragment_size()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_decompression_bomb_is_refused_at_the_disks_reserve_and_leaves_the_disk_as_it_was() {
    let work = Repo::folder();
    let disk = SmallDisk::mount(work.join("disk"), "64m");
    let data = disk.0.join("data");
    let data_arg = data.to_str().unwrap();
    let busybox = crate::images::busybox_layout();
    let run = driftless_in(work.path(), &["image", "import", busybox.to_str().unwrap(), "--name", "busybox", "--data-dir", data_arg]);
    assert_eq!(run.code, 0, "{run:?}");
    let before = disk.available();

    // About 1 MiB of gzip that unpacks to 1 GiB.
    let bomb = hostile_layout(work.path(), "bomb", &work.join("unused"));
    let started = Instant::now();
    let run = driftless_in(work.path(), &["image", "import", bomb.to_str().unwrap(), "--name", "bomb", "--data-dir", data_arg]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("refusing to unpack layer sha256:") && run.stderr.contains("kept free for running pods"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "refused in bounded time: {:?}", started.elapsed());
    assert!(staged(&data).is_empty(), "the partial layer is gone: {:?}", staged(&data));
    // The layer's blob (1 MiB) may stay, unreferenced, until the next
    // removal collects it; the unpacked gigabyte does not.
    assert!(disk.available() + (2 << 20) >= before, "the disk has its space back: {} then {}", before, disk.available());
    assert_eq!(listed(&work, data_arg), ["docker.io/library/busybox:1.35"]);
}

#[test]
fn a_hostile_registry_is_refused_with_the_reason_and_nothing_is_stored() {
    let busybox = crate::images::busybox_layout();
    let registry = HostileRegistry::start(&[
        ("good/busybox", &busybox, Fault::None),
        ("corrupt/busybox", &busybox, Fault::CorruptLayer),
        ("endless/busybox", &busybox, Fault::EndlessLayer),
        ("endless-manifest/busybox", &busybox, Fault::EndlessManifest),
        ("lying/busybox", &busybox, Fault::WrongDigestHeader),
        ("traversal/busybox", &busybox, Fault::TraversalDigest),
    ]);
    let host = registry.host();
    let work = Repo::folder();
    let data = work.join("data");
    let data_arg = data.to_str().unwrap();
    let pull = |repository: &str| {
        let reference = format!("{host}/{repository}:1.35");
        let started = Instant::now();
        let run = driftless_in(work.path(), &["image", "pull", &reference, "--insecure-registry", &host, "--data-dir", data_arg]);
        (run, started.elapsed())
    };

    // The registry itself works: the same image without a fault pulls.
    let (run, _) = pull("good/busybox");
    assert_eq!(run.code, 0, "{run:?}");

    let cases = [
        ("corrupt/busybox", "Invalid digest. Expected sha256:"),
        ("endless/busybox", "the registry sent more than the"),
        ("endless-manifest/busybox", "the manifest is larger than 4194304 bytes"),
        ("lying/busybox", "does not match"),
        ("traversal/busybox", "sha256:../../../../tmp/driftless-registry-escape"),
    ];
    for (repository, reason) in cases {
        let (run, took) = pull(repository);
        eprintln!("{repository}: {} ({took:?})", run.stderr.lines().last().unwrap_or_default());
        assert_eq!(run.code, 2, "{repository}: {run:?}");
        assert!(run.stderr.contains(reason), "{repository}: the reason reaches the user: {run:?}");
        assert!(took < Duration::from_secs(30), "{repository}: refused in bounded time, took {took:?}");
        assert!(staged(&data).is_empty(), "{repository} left {:?}", staged(&data));
        // Pulls stage in a folder of the store's own, removed on failure.
        let strays: Vec<_> =
            std::fs::read_dir(data.join("images")).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with(".tmp")).collect();
        assert!(strays.is_empty(), "{repository} left {strays:?}");
    }
    assert!(!Path::new("/tmp/driftless-registry-escape").exists());
    assert_eq!(listed(&work, data_arg), [format!("{host}/good/busybox:1.35")]);
}
