//! Volume content on the node: files for configMap, secret and downwardAPI
//! volumes, written so that a running container never sees half an update.
//!
//! The layout is kubelet's atomic writer: the files live in a timestamped
//! folder, `..data` is a symlink to the current one, and each key is a
//! symlink through `..data`. An update writes a new folder and replaces
//! `..data` with one `rename(2)`, then removes the old folder.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// One file of a projected volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// The path inside the volume (`app.properties`, `conf/a.yaml`).
    pub path: String,
    /// The content.
    pub data: Vec<u8>,
    /// The file mode (`defaultMode` or the item's `mode`).
    pub mode: u32,
}

/// Why volume content could not be written.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A path would leave the volume.
    #[error("{0:?}: volume paths must be relative and must not contain '..'")]
    Path(String),
    /// A file or link could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io { path: path.to_path_buf(), source }
}

/// Makes `dir` hold exactly `files`, atomically replacing what it held.
pub fn write_atomically(dir: &Path, files: &[File]) -> Result<(), VolumeError> {
    for file in files {
        if file.path.starts_with('/') || file.path.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(VolumeError::Path(file.path.clone()));
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    if holds(dir, files) {
        // Unchanged: nothing to swap (a periodic refresh costs no writes).
        return Ok(());
    }
    let stamp = format!("..{}", crate::status::now().replace([':', '.'], "_"));
    let fresh = dir.join(&stamp);
    for file in files {
        let target = fresh.join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&target, &file.data).map_err(io(&target))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode)).map_err(io(&target))?;
    }
    // Swap `..data` in one rename; readers see the old folder or the new.
    let previous = std::fs::read_link(dir.join("..data")).ok();
    let link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&link);
    symlink(&stamp, &link).map_err(io(&link))?;
    std::fs::rename(&link, dir.join("..data")).map_err(io(dir))?;

    // Top-level names point through `..data`; names no longer present go.
    let wanted: std::collections::BTreeSet<&str> = files.iter().filter_map(|f| f.path.split('/').next()).collect();
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !wanted.contains(name.as_str()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for name in wanted {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_err() {
            symlink(format!("..data/{name}"), &path).map_err(io(&path))?;
        }
    }
    if let Some(old) = previous.filter(|old| *old != Path::new(&stamp)) {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

/// Whether `dir`'s current `..data` holds exactly `files`.
fn holds(dir: &Path, files: &[File]) -> bool {
    let current = dir.join("..data");
    if std::fs::read_link(&current).is_err() {
        return false;
    }
    let mut count = 0;
    let mut stack = vec![current.clone()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else { return false };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    count == files.len()
        && files.iter().all(|f| {
            let path = current.join(&f.path);
            let same_mode = std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o7777 == f.mode & 0o7777);
            same_mode && std::fs::read(&path).is_ok_and(|data| data == f.data)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &str) -> File {
        File { path: path.into(), data: data.into(), mode: 0o644 }
    }

    #[test]
    fn writes_and_swaps_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        write_atomically(&vol, &[file("a", "1"), file("conf/b", "2")]).unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(vol.join("conf/b")).unwrap(), "2");
        let first = std::fs::read_link(vol.join("..data")).unwrap();

        let before = std::fs::read_link(vol.join("..data")).unwrap();
        write_atomically(&vol, &[file("a", "1"), file("conf/b", "2")]).unwrap();
        assert_eq!(std::fs::read_link(vol.join("..data")).unwrap(), before, "the same content is not written again");
        write_atomically(&vol, &[file("a", "changed")]).unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "changed");
        assert!(!vol.join("conf").exists(), "keys that went away are removed");
        assert!(!vol.join(&first).exists(), "the old generation is removed");
        assert_eq!(std::fs::read_link(vol.join("a")).unwrap(), Path::new("..data/a"));
    }

    #[test]
    fn refuses_paths_that_leave_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "/etc/passwd", "a//b"] {
            assert!(matches!(write_atomically(dir.path(), &[file(bad, "")]), Err(VolumeError::Path(_))), "{bad}");
        }
    }
}
