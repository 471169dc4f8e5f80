//! Writing one tar entry into the folder being unpacked: files, folders,
//! symlinks, hard links, devices and fifos with their owners, modes, times
//! and extended attributes, and OCI whiteouts as overlayfs whiteouts.
//!
//! Must not touch: anything outside the folder; every path goes through
//! [`super::scope`] first.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::scope::{entry_components, resolve};
use crate::space::{Guard, GuardError};

/// The OCI whiteout prefix; `.wh..wh..opq` marks an opaque folder.
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to hide everything below a folder.
const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";

/// Owner, mode and time of an entry, applied after its content is written
/// (for folders, after the whole archive, since adding children changes a
/// folder's mtime and a read-only mode would stop a non-root unpacker).
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub(super) path: PathBuf,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

/// What went wrong with an entry: a reason to refuse it, or an I/O error.
#[derive(Debug)]
pub(super) enum EntryError {
    /// The entry is unsafe or of a kind the store cannot write.
    Refused(String),
    /// Writing it failed.
    Io(PathBuf, io::Error),
    /// The file system reached the reserve kept for running pods.
    Full(GuardError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> EntryError + '_ {
    move |e| EntryError::Io(path.to_path_buf(), e)
}

fn refused(reason: &str) -> EntryError {
    EntryError::Refused(reason.to_owned())
}

/// How entries are written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Turn OCI whiteouts into overlayfs ones (layers); else keep them as
    /// plain files (image archives).
    pub(crate) whiteouts: bool,
    /// Apply owners, modes, times and xattrs (layers); archives only need
    /// the content.
    pub(crate) metadata: bool,
}

/// Writes one entry under `root`. Returns the folder's metadata to apply
/// at the end when the entry is a folder.
pub(super) fn write<R: Read>(root: &Path, entry: &mut tar::Entry<'_, R>, options: Options, guard: &mut Guard<'_>) -> Result<Option<Meta>, EntryError> {
    if entry.header().entry_type() == EntryType::XGlobalHeader {
        return Ok(None); // PAX defaults for the entries after it; tar applies them.
    }
    let name = entry.path().map_err(|e| EntryError::Io(root.to_path_buf(), e))?.into_owned();
    let parts = entry_components(&name).map_err(refused)?;
    let Some(file_name) = parts.last().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(None); // `./`: the layer root itself keeps the store's metadata.
    };
    if options.whiteouts && file_name.starts_with(WHITEOUT_PREFIX) {
        return whiteout(root, &parts, &file_name).map(|()| None);
    }
    let path = resolve(root, &parts, false).map_err(refused)?;
    guard.created().map_err(EntryError::Full)?;
    let header = entry.header();
    let meta = Meta {
        path: path.clone(),
        mode: header.mode().map_err(io_at(&path))? & 0o7777,
        uid: header.uid().map_err(io_at(&path))?,
        gid: header.gid().map_err(io_at(&path))?,
        mtime: header.mtime().map_err(io_at(&path))?,
    };
    let kind = header.entry_type();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_at(parent))?;
    }
    // A later entry replaces an earlier one of the same name, except that a
    // folder stays a folder when the new entry is a folder too.
    let existing = std::fs::symlink_metadata(&path).ok();
    if let Some(existing) = existing.as_ref().filter(|m| !(m.is_dir() && kind == EntryType::Directory)) {
        let removed = if existing.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(io_at(&path))?;
    }
    match kind {
        EntryType::Directory => {
            if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                std::fs::create_dir(&path).map_err(io_at(&path))?;
            }
            if options.metadata {
                set_xattrs(entry, &path)?;
            }
            return Ok(Some(meta));
        }
        EntryType::Regular | EntryType::Continuous => {
            let mut file = File::create_new(&path).map_err(io_at(&path))?;
            copy_guarded(entry, &mut file, guard, &path)?;
        }
        EntryType::Symlink => {
            let target = entry.link_name().map_err(io_at(&path))?.ok_or_else(|| refused("the symlink has no target"))?;
            symlink(&*target, &path).map_err(io_at(&path))?;
        }
        EntryType::Link => {
            let target = entry.link_name().map_err(io_at(&path))?.ok_or_else(|| refused("the hard link has no target"))?;
            let refused_target = |reason| refused(&format!("its link target {:?} is refused: {reason}", target.display()));
            let target_parts = entry_components(&target).map_err(refused_target)?;
            let source = resolve(root, &target_parts, false).map_err(refused_target)?;
            match std::fs::symlink_metadata(&source) {
                Ok(m) if !m.is_dir() => std::fs::hard_link(&source, &path).map_err(io_at(&path))?,
                _ => return Err(refused("it links to a file that is not in the archive before it")),
            }
            // A hard link shares its inode, and so the target's metadata.
            return Ok(None);
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let (flag, dev) = match kind {
                EntryType::Char => (SFlag::S_IFCHR, device(header, &path)?),
                EntryType::Block => (SFlag::S_IFBLK, device(header, &path)?),
                _ => (SFlag::S_IFIFO, 0),
            };
            mknod(&path, flag, Mode::from_bits_truncate(0o600), dev).map_err(|e| EntryError::Io(path.clone(), e.into()))?;
        }
        other => return Err(EntryError::Refused(format!("its type {other:?} is not supported"))),
    }
    if options.metadata {
        apply(&meta, kind == EntryType::Symlink)?;
        set_xattrs(entry, &path)?;
    }
    Ok(None)
}

/// Copies a file's content, reporting every chunk to the guard, so one
/// entry of a decompression bomb is stopped inside, not after, its copy.
fn copy_guarded(from: &mut impl Read, to: &mut File, guard: &mut Guard<'_>, path: &Path) -> Result<(), EntryError> {
    let mut buffer = vec![0u8; 128 << 10];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(EntryError::Io(path.to_path_buf(), e)),
        };
        io::Write::write_all(to, &buffer[..n]).map_err(io_at(path))?;
        guard.wrote(n as u64).map_err(EntryError::Full)?;
    }
}

fn device(header: &tar::Header, path: &Path) -> Result<u64, EntryError> {
    let major = header.device_major().map_err(io_at(path))?.unwrap_or(0);
    let minor = header.device_minor().map_err(io_at(path))?.unwrap_or(0);
    Ok(makedev(major.into(), minor.into()))
}

/// `.wh.NAME` hides NAME of the layers below: overlayfs reads a 0:0
/// character device as that. `.wh..wh..opq` hides everything the layers
/// below have in the folder: overlayfs reads the opaque xattr as that.
fn whiteout(root: &Path, parts: &[OsString], file_name: &str) -> Result<(), EntryError> {
    let parent = resolve(root, &parts[..parts.len() - 1], true).map_err(refused)?;
    std::fs::create_dir_all(&parent).map_err(io_at(&parent))?;
    if file_name == OPAQUE_MARKER {
        return xattr::set(&parent, OVERLAY_OPAQUE, b"y").map_err(io_at(&parent));
    }
    let hidden = &file_name[WHITEOUT_PREFIX.len()..];
    if hidden.starts_with(WHITEOUT_PREFIX) || hidden.is_empty() || hidden == "." || hidden == ".." {
        // Other `.wh..wh.` names are aufs bookkeeping, not whiteouts.
        return Ok(());
    }
    let path = parent.join(hidden);
    if let Ok(existing) = std::fs::symlink_metadata(&path) {
        let removed = if existing.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(io_at(&path))?;
    }
    mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| EntryError::Io(path.clone(), e.into()))
}

/// Applies owner, then mode (a chown clears set-uid bits), then time.
pub(super) fn apply(meta: &Meta, is_symlink: bool) -> Result<(), EntryError> {
    let path = &meta.path;
    let uid = u32::try_from(meta.uid).map_err(|_| refused("its uid is out of range"))?;
    let gid = u32::try_from(meta.gid).map_err(|_| refused("its gid is out of range"))?;
    lchown(path, Some(uid), Some(gid)).map_err(io_at(path))?;
    if !is_symlink {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode)).map_err(io_at(path))?;
    }
    let secs = i64::try_from(meta.mtime).unwrap_or(i64::MAX);
    let time = TimeSpec::new(secs, 0);
    utimensat(None, path, &time, &time, UtimensatFlags::NoFollowSymlink).map_err(|e| EntryError::Io(path.clone(), e.into()))
}

/// Sets the extended attributes a PAX header carries (`SCHILY.xattr.*`,
/// file capabilities among them), after the chown that would clear them.
/// Overlayfs's own `trusted.overlay.*` are never taken from an image.
fn set_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<(), EntryError> {
    let Some(extensions) = entry.pax_extensions().map_err(io_at(path))? else { return Ok(()) };
    for extension in extensions {
        let extension = extension.map_err(io_at(path))?;
        let Some(name) = extension.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) else { continue };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        xattr::set(path, name, extension.value_bytes()).map_err(io_at(path))?;
    }
    Ok(())
}
