//! Container root filesystems: an overlayfs of the image's layers (read
//! only, shared by every container of the image) with a writable layer of
//! the container's own.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// Why a root filesystem could not be mounted or unmounted.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The image has no layers.
    #[error("image has no layers to mount")]
    NoLayers,
    /// A folder could not be made.
    #[error("{}: {source}", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused the mount.
    #[error("overlay mount on {}: {source}", target.display())]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

/// Mounts `layers` (lowest first, as the image store lists them) as an
/// overlay at `dir/rootfs`, with `dir/upper` and `dir/work` as the
/// container's writable layer. Returns the mount point.
pub fn mount(dir: &Path, layers: &[PathBuf]) -> Result<PathBuf, RootfsError> {
    if layers.is_empty() {
        return Err(RootfsError::NoLayers);
    }
    let (target, upper, work) = (dir.join("rootfs"), dir.join("upper"), dir.join("work"));
    for path in [&target, &upper, &work] {
        std::fs::create_dir_all(path).map_err(|source| RootfsError::Io { path: path.clone(), source })?;
    }
    // overlayfs lists lower layers top first.
    let lower: Vec<String> = layers.iter().rev().map(|l| l.display().to_string()).collect();
    let options = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), upper.display(), work.display());
    nix::mount::mount(Some("overlay"), &target, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .map_err(|source| RootfsError::Mount { target: target.clone(), source })?;
    Ok(target)
}

/// Unmounts the root filesystem under `dir`, if it is mounted.
pub fn unmount(dir: &Path) -> Result<(), RootfsError> {
    let target = dir.join("rootfs");
    match nix::mount::umount2(&target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(RootfsError::Mount { target, source }),
    }
}
