//! The helpers' mount namespace: the node's mounts without any pod's, plus
//! the few a helper's own container needs.
//!
//! Why: libcontainer reads the whole of `/proc/self/mountinfo` about twenty
//! times per container start, in the helper's mount namespace (libcgroups
//! looks up each cgroup v1 controller's mount point by reading the table
//! again; the controllers this kernel lacks read it to the end). Every pod
//! adds four mounts to the host's table (three namespace files and an
//! overlay root), so on a node running 100 pods each start read 400 more
//! lines twenty times (docs/benchmarks.md has the cost). So the fork server
//! leaves the host's namespace for a private copy when it starts, without
//! the pods' mounts ([`enter_for_server`]); each helper makes its own copy
//! of that and attaches the mounts of its own container alone, handed over
//! by the daemon ([`handover`], [`attach`]): the root as a detached mount
//! tree (`open_tree(2)`, `move_mount(2)`), the namespace files as open
//! files, which bind from any namespace.
//!
//! A process entering a running container (`exec`) joins its helper's
//! namespace for the same reason ([`join_helper_of`]).
//!
//! Must not touch: the host's mounts. Everything here unmounts or mounts in
//! a copy of a namespace, made private first so that nothing propagates
//! back; the daemon's side only clones.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags};
use rustix::mount::{MoveMountFlags, OpenTreeFlags};

/// The most mounts a helper is handed: its root and three namespace files.
pub(crate) const MOST: usize = 4;

/// The daemon's side: each of the container's mounts the helper's
/// namespace lacks, with the path it goes on. The root file system when it
/// is a mount (an image's overlay; a plain folder is there anyway), as a
/// detached copy; the pod's namespace files (bind mounts in the host's
/// namespace) opened, which costs the kernel no mount namespace of their
/// own as a detached copy would.
pub(crate) fn handover(rootfs: &Path, sandbox: Option<&Path>) -> std::io::Result<Vec<(PathBuf, OwnedFd)>> {
    let mut handed = Vec::with_capacity(MOST);
    if is_mount_root(rootfs)? {
        let tree = rustix::mount::open_tree(CWD, rootfs, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)?;
        handed.push((rootfs.to_path_buf(), tree));
    }
    for path in sandbox.into_iter().flat_map(|dir| crate::sandbox::SHARED.iter().map(move |ns| dir.join(ns))) {
        if is_mount_root(&path)? {
            handed.push((path.clone(), std::fs::File::open(&path)?.into()));
        }
    }
    Ok(handed)
}

/// Whether `path` is the root of a mount (`statx`'s own answer, without
/// following a last symbolic link or triggering an automount). A path that
/// is not there is not: libcontainer then says which one it missed.
pub(crate) fn is_mount_root(path: &Path) -> std::io::Result<bool> {
    match rustix::fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT, StatxFlags::empty()) {
        Ok(found) => Ok(found.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)),
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// The helper's side, in a helper that has just been forked (one thread):
/// a mount namespace of its own, copied from the server's, with what was
/// handed over attached where it goes: a namespace file bound from its
/// descriptor, anything else moved in as the detached tree it is. Nothing
/// handed over, nothing to do: the server's namespace serves as it is.
pub(crate) fn attach(handed: Vec<(PathBuf, OwnedFd)>) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    if handed.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    for (target, fd) in handed {
        if nix::sys::statfs::fstatfs(&fd)?.filesystem_type() == nix::sys::statfs::NSFS_MAGIC {
            let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
            nix::mount::mount(Some(source.as_str()), &target, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)?;
        } else {
            rustix::mount::move_mount(&fd, "", CWD, &target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH).map_err(|e| Errno::from_raw(e.raw_os_error()))?;
        }
    }
    Ok(())
}

/// For a process about to enter a running container (`kubectl exec`, exec
/// probes), which the daemon spawns in the host's namespace: joins the
/// mount namespace of the container's helper, where the table
/// libcontainer reads holds this pod's mounts alone. The helper is the
/// parent of the container's first process (it reaps it, as a subreaper).
/// Whether it joined: a parent that is gone, or whose namespace lacks the
/// container's state (`state`), leaves this process where it was, slower
/// but right. One thread only, as for any mount namespace change.
pub(crate) fn join_helper_of(init_pid: i32, state: &Path) -> bool {
    use nix::sched::{CloneFlags, setns};
    let parent = std::fs::read_to_string(format!("/proc/{init_pid}/status"))
        .ok()
        .and_then(|status| status.lines().find_map(|line| line.strip_prefix("PPid:")).and_then(|v| v.trim().parse::<i32>().ok()));
    let Some(parent) = parent.filter(|p| *p > 1) else { return false };
    let (Ok(own), Ok(helpers)) = (std::fs::File::open("/proc/self/ns/mnt"), std::fs::File::open(format!("/proc/{parent}/ns/mnt"))) else { return false };
    if setns(&helpers, CloneFlags::CLONE_NEWNS).is_err() {
        return false;
    }
    if state.exists() {
        return true;
    }
    // Not a helper of this node's: back to where it was.
    let _ = setns(&own, CloneFlags::CLONE_NEWNS);
    false
}

/// The server's side, once, as it starts (one thread): leaves the host's
/// mount namespace for a private copy and unmounts from that copy every
/// pod's mount it holds, the namespace files (`nsfs`) and the overlays
/// below `containers`, which a daemon restarted beside running pods finds.
/// The server's helpers copy what is left. Returns how many it unmounted.
pub(crate) fn enter_for_server(containers: &Path) -> Result<usize, Errno> {
    use nix::mount::{MntFlags, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    // Private first: an unmount below must not reach the host's table.
    nix::mount::mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    let pods: Vec<PathBuf> = mounts(&table).filter(|(_, point, fstype)| is_pods(point, fstype, containers)).map(|(_, point, _)| point).collect();
    // Deepest (latest) first: a mount on top goes before the one beneath.
    let mut unmounted = 0;
    for point in pods.iter().rev() {
        match nix::mount::umount2(point, MntFlags::MNT_DETACH) {
            Ok(()) => unmounted += 1,
            // Gone with one unmounted before it.
            Err(Errno::EINVAL | Errno::ENOENT) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(unmounted)
}

/// Whether a mount at `point` of type `fstype` is a pod's: a namespace
/// file, or a container's root below the node's containers folder (the
/// folder itself, when it is a mount, stays: helpers read their bundles
/// there).
fn is_pods(point: &Path, fstype: &str, containers: &Path) -> bool {
    fstype == "nsfs" || (point != containers && point.starts_with(containers))
}

/// The host's own mounts in a `mountinfo` table, by mount id: every mount
/// but the pods' of any node on the machine (namespace files, overlay
/// roots, whatever is below this node's containers). What a fork server's
/// namespace was copied with, to tell when the host has mounted or
/// unmounted something of its own since.
pub(crate) fn host_mounts(table: &str, containers: &Path) -> Vec<String> {
    mounts(table).filter(|(_, point, fstype)| *fstype != "overlay" && !is_pods(point, fstype, containers)).map(|(id, _, _)| id.to_owned()).collect()
}

/// Each mount's id, mount point and file system type, from a `mountinfo`
/// table (proc(5): the first field; the fifth, octal-escaped; the first
/// after the ` - `).
fn mounts(table: &str) -> impl Iterator<Item = (&str, PathBuf, &str)> {
    table.lines().filter_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let mut fields = before.split(' ');
        let id = fields.next()?;
        let point = fields.nth(3)?;
        let fstype = after.split(' ').next()?;
        Some((id, PathBuf::from(unescape(point)), fstype))
    })
}

/// Undoes mountinfo's escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(digits) => {
                out.push(digits.iter().fold(0u8, |n, d| n.wrapping_mul(8).wrapping_add(d - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/cpu rw shared:9 - cgroup cgroup rw,cpu
41 22 0:4 net:[4026532301] /var/lib/driftless/run/pods/a\\040b/ns/net rw shared:1 - nsfs nsfs rw
42 22 0:50 / /var/lib/driftless/containers/a-main-0/rootfs rw shared:1 - overlay overlay rw,lowerdir=/x
43 22 0:51 / /var/lib/driftless/containers rw shared:1 - tmpfs tmpfs rw
44 22 0:52 / /var/lib/driftless/containers-old/x rw shared:1 - overlay overlay rw";

    #[test]
    fn only_mounts_are_handed_over_and_a_missing_path_is_left_to_libcontainer() {
        let dir = tempfile::tempdir().unwrap();
        let (root, sandbox) = (dir.path().join("rootfs"), dir.path().join("ns"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&sandbox).unwrap();
        // A plain folder as the root, no namespace files: nothing to hand over.
        assert!(handover(&root, Some(&sandbox)).unwrap().is_empty());
        // A namespace file bind-mounted, as a sandbox has them.
        std::fs::write(sandbox.join("uts"), "").unwrap();
        nix::mount::mount(Some("/proc/self/ns/uts"), &sandbox.join("uts"), None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).unwrap();
        let handed = handover(&root, Some(&sandbox));
        nix::mount::umount2(&sandbox.join("uts"), nix::mount::MntFlags::MNT_DETACH).unwrap();
        let handed: Vec<PathBuf> = handed.unwrap().into_iter().map(|(path, _)| path).collect();
        assert_eq!(handed, [sandbox.join("uts")]);
    }

    #[test]
    fn a_table_reads_as_mount_points_and_types() {
        let read: Vec<(&str, PathBuf, &str)> = mounts(TABLE).collect();
        assert_eq!(read.len(), 6);
        assert_eq!(read[2], ("41", PathBuf::from("/var/lib/driftless/run/pods/a b/ns/net"), "nsfs"));
        assert_eq!(read[1], ("30", PathBuf::from("/sys/fs/cgroup/cpu"), "cgroup"));
        assert_eq!(unescape("a\\011b\\134c\\012"), "a\tb\\c\n");
        assert_eq!(unescape("trailing\\04"), "trailing\\04", "a cut escape stays as it is");
    }

    #[test]
    fn only_the_pods_mounts_are_taken_from_the_server() {
        let containers = Path::new("/var/lib/driftless/containers");
        let pods: Vec<PathBuf> = mounts(TABLE).filter(|(_, p, t)| is_pods(p, t, containers)).map(|(_, p, _)| p).collect();
        assert_eq!(
            pods,
            [PathBuf::from("/var/lib/driftless/run/pods/a b/ns/net"), PathBuf::from("/var/lib/driftless/containers/a-main-0/rootfs")],
            "the namespace file and the container's root; not the node's own mounts, the containers folder itself, or a neighbour sharing its prefix"
        );
        assert_eq!(host_mounts(TABLE, containers), ["22", "30", "43"], "the host's own, by id: no other node's overlay root either");
    }
}
