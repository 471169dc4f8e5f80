//! Keeping the node's disk from filling up: writing into the store stops
//! while its file system still has a reserve, so a decompression bomb (a
//! small gzip that expands to terabytes), a tar of millions of empty files
//! or an image larger than the disk is refused instead of leaving running
//! pods, their logs and the daemon's own store without space.
//!
//! Owns: the reserve and the check, against what the file system reports
//! ([`FileSystem`], `statvfs` in production, a fake in tests). Must not
//! touch: the files themselves; callers report what they write.
//!
//! The reserve is 5% of the file system's size (kubelet's own hard eviction
//! threshold for `nodefs.available` is 10%), at most 1 GiB, in bytes and in
//! inodes alike (a file system that reports no inode count is not checked
//! for inodes).

use std::io;
use std::path::{Path, PathBuf};

/// Bytes written between two looks at the file system, at most: on a
/// small file system a quarter of the reserve, so a look comes before the
/// reserve is gone.
const CHECK_EVERY_BYTES: u64 = 4 << 20;
/// Entries created between two looks at the file system.
const CHECK_EVERY_ENTRIES: u64 = 256;
/// The reserve's cap in bytes; inodes are capped at this many too.
const RESERVE_CAP: u64 = 1 << 30;
const INODE_RESERVE_CAP: u64 = 100_000;

/// What a file system reports about its space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Its size in bytes.
    pub size: u64,
    /// Bytes an unprivileged writer may still use.
    pub available: u64,
    /// Its inode count (0 when it does not count inodes).
    pub inodes: u64,
    /// Inodes still free.
    pub inodes_available: u64,
}

/// The OS boundary: how full the file system holding a path is.
pub trait FileSystem: Send + Sync + std::fmt::Debug {
    /// The usage of the file system `path` is on.
    fn usage(&self, path: &Path) -> io::Result<Usage>;
}

/// The real file systems, through `statvfs(2)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Statvfs;

impl FileSystem for Statvfs {
    fn usage(&self, path: &Path) -> io::Result<Usage> {
        let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
        let block = stat.fragment_size();
        Ok(Usage {
            size: stat.blocks().saturating_mul(block),
            available: stat.blocks_available().saturating_mul(block),
            inodes: stat.files(),
            inodes_available: stat.files_available(),
        })
    }
}

/// Why writing stopped.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} has {} left on its file system, under the {} kept free for running pods (5% of the file system, at most 1 GiB or 100000 inodes)",
    path.display(), left(*available, *inodes), left(*reserve, *inode_reserve)
)]
pub struct SpaceError {
    /// Where the store was writing.
    pub path: PathBuf,
    /// Bytes left.
    pub available: u64,
    /// The byte reserve.
    pub reserve: u64,
    /// Inodes left, when inodes are what ran short.
    pub inodes: Option<u64>,
    /// The inode reserve, when inodes are what ran short.
    pub inode_reserve: Option<u64>,
}

fn left(bytes: u64, inodes: Option<u64>) -> String {
    match inodes {
        Some(inodes) => format!("{inodes} inodes"),
        None => human(bytes),
    }
}

/// `1.50 GiB`, `3.19 MiB`, `512 B`: two decimals, so a figure just under
/// the reserve does not print as the reserve.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// Watches one folder being written: call [`Guard::wrote`] and
/// [`Guard::created`] as content lands, and stop on the first error.
#[derive(Debug)]
pub(crate) struct Guard<'a> {
    fs: &'a dyn FileSystem,
    path: PathBuf,
    reserve: u64,
    inode_reserve: u64,
    check_every: u64,
    bytes: u64,
    entries: u64,
}

impl<'a> Guard<'a> {
    /// A guard for writes under `path`, checked once at once, so a disk
    /// that is already past its reserve refuses before anything is written.
    pub(crate) fn new(fs: &'a dyn FileSystem, path: &Path) -> Result<Self, GuardError> {
        let usage = fs.usage(path).map_err(|e| GuardError::Io(path.to_path_buf(), e))?;
        let reserve = (usage.size / 20).min(RESERVE_CAP);
        let guard = Guard {
            fs,
            path: path.to_path_buf(),
            reserve,
            inode_reserve: (usage.inodes / 20).min(INODE_RESERVE_CAP),
            check_every: (reserve / 4).clamp(64 << 10, CHECK_EVERY_BYTES),
            bytes: 0,
            entries: 0,
        };
        guard.check(usage)?;
        Ok(guard)
    }

    /// Reports `n` more bytes written.
    pub(crate) fn wrote(&mut self, n: u64) -> Result<(), GuardError> {
        self.bytes += n;
        if self.bytes >= self.check_every {
            self.look()?;
        }
        Ok(())
    }

    /// Reports one more file, folder or link created.
    pub(crate) fn created(&mut self) -> Result<(), GuardError> {
        self.entries += 1;
        if self.entries >= CHECK_EVERY_ENTRIES {
            self.look()?;
        }
        Ok(())
    }

    /// Refuses `bytes` more, known ahead (a blob of a known size), when
    /// they would leave the file system under its reserve.
    pub(crate) fn fits(&mut self, bytes: u64) -> Result<(), GuardError> {
        let usage = self.fs.usage(&self.path).map_err(|e| GuardError::Io(self.path.clone(), e))?;
        self.check(Usage { available: usage.available.saturating_sub(bytes), ..usage })
    }

    fn look(&mut self) -> Result<(), GuardError> {
        self.bytes = 0;
        self.entries = 0;
        let usage = self.fs.usage(&self.path).map_err(|e| GuardError::Io(self.path.clone(), e))?;
        self.check(usage)
    }

    fn check(&self, usage: Usage) -> Result<(), GuardError> {
        let short = |inodes: Option<u64>, inode_reserve: Option<u64>| {
            GuardError::Full(SpaceError { path: self.path.clone(), available: usage.available, reserve: self.reserve, inodes, inode_reserve })
        };
        if usage.available < self.reserve {
            return Err(short(None, None));
        }
        if usage.inodes > 0 && usage.inodes_available < self.inode_reserve {
            return Err(short(Some(usage.inodes_available), Some(self.inode_reserve)));
        }
        Ok(())
    }
}

/// A guard's failure: the reserve reached, or the file system unreadable.
#[derive(Debug)]
pub(crate) enum GuardError {
    Full(SpaceError),
    Io(PathBuf, io::Error),
}

/// The store's error for a guard's failure while doing `what`.
pub(crate) fn guard_error(error: GuardError, what: &str) -> crate::ImageError {
    match error {
        GuardError::Full(source) => crate::ImageError::NoSpace { what: what.to_owned(), source },
        GuardError::Io(path, source) => crate::ImageError::Io { path, source },
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A file system of a fixed size whose use is what is under one folder.

    use super::*;

    /// `size` bytes and `inodes` inodes, used by whatever is under `root`
    /// (measured on every call, as `statvfs` would see it).
    #[derive(Debug)]
    pub(crate) struct Small {
        pub(crate) root: PathBuf,
        pub(crate) size: u64,
        pub(crate) inodes: u64,
    }

    impl FileSystem for Small {
        fn usage(&self, _path: &Path) -> io::Result<Usage> {
            let (mut bytes, mut count) = (0u64, 0u64);
            let mut pending = vec![self.root.clone()];
            while let Some(dir) = pending.pop() {
                for entry in std::fs::read_dir(&dir)? {
                    let entry = entry?;
                    let meta = entry.metadata()?;
                    count += 1;
                    bytes += meta.len();
                    if meta.is_dir() {
                        pending.push(entry.path());
                    }
                }
            }
            Ok(Usage { size: self.size, available: self.size.saturating_sub(bytes), inodes: self.inodes, inodes_available: self.inodes.saturating_sub(count) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_under_the_reserve_in_bytes_and_in_inodes() {
        let dir = tempfile::tempdir().unwrap();
        let fs = fake::Small { root: dir.path().to_path_buf(), size: 100 << 20, inodes: 10_000 };
        let mut guard = Guard::new(&fs, dir.path()).unwrap();
        std::fs::write(dir.path().join("big"), vec![0u8; 96 << 20]).unwrap();
        let GuardError::Full(error) = guard.wrote(96 << 20).unwrap_err() else { panic!("not a space error") };
        assert_eq!((error.reserve, error.available, guard.check_every), (5 << 20, 4 << 20, 1280 << 10));
        assert!(
            error.to_string().ends_with(
                "has 4.00 MiB left on its file system, under the 5.00 MiB kept free for running pods (5% of the file system, at most 1 GiB or 100000 inodes)"
            ),
            "{error}"
        );

        let dir = tempfile::tempdir().unwrap();
        let fs = fake::Small { root: dir.path().to_path_buf(), size: 100 << 20, inodes: 260 };
        let mut guard = Guard::new(&fs, dir.path()).unwrap();
        let mut stopped = None;
        for i in 0..260 {
            std::fs::write(dir.path().join(i.to_string()), b"").unwrap();
            if let Err(GuardError::Full(error)) = guard.created() {
                stopped = Some((i, error));
                break;
            }
        }
        let (at, error) = stopped.expect("the inode reserve stops it");
        assert_eq!(at, 255, "checked every 256 entries");
        assert!(error.to_string().contains("has 4 inodes left on its file system, under the 13 inodes kept free"), "{error}");
    }

    #[test]
    fn a_disk_already_past_its_reserve_refuses_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("full"), vec![0u8; 1 << 20]).unwrap();
        let fs = fake::Small { root: dir.path().to_path_buf(), size: 1 << 20, inodes: 0 };
        assert!(matches!(Guard::new(&fs, dir.path()), Err(GuardError::Full(_))));
    }

    #[test]
    fn the_reserve_is_capped_at_one_gib() {
        let dir = tempfile::tempdir().unwrap();
        let fs = fake::Small { root: dir.path().to_path_buf(), size: 1 << 40, inodes: 1 << 30 };
        let guard = Guard::new(&fs, dir.path()).unwrap();
        assert_eq!((guard.reserve, guard.inode_reserve), (1 << 30, 100_000));
    }
}
