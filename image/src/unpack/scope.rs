//! Resolving an archive entry's path inside the folder it unpacks into,
//! following the symlinks earlier entries made, without ever leaving it.
//!
//! Owns: the path checks that keep unpacking inside its folder: entry names
//! must be relative and free of `..`, and a symlink may be written through
//! only if it stays inside (relative, never climbing above the top).
//! Must not touch: the files themselves; it only looks (`lstat`,
//! `readlink`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed for one path, as Linux's `ELOOP` limit.
const MAX_SYMLINKS: u32 = 40;

/// Checks an entry name and returns its components: it must be relative
/// and must not contain `..`. `./` components are dropped, so the archive
/// root itself comes back as no components at all.
pub(crate) fn entry_components(name: &Path) -> Result<Vec<OsString>, &'static str> {
    let mut parts = Vec::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err("its path contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("its path is absolute"),
        }
    }
    Ok(parts)
}

/// Resolves checked components under `root`. Every symlink met on the way
/// is followed (the last component's only if `follow_last`), and must stay
/// inside `root`: an absolute target, or a relative one that climbs above
/// `root`, is refused. Parts that do not exist yet are taken as they are.
pub(crate) fn resolve(root: &Path, parts: &[OsString], follow_last: bool) -> Result<PathBuf, &'static str> {
    let mut pending: VecDeque<OsString> = parts.iter().cloned().collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut followed = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            // Only symlink targets bring `..` here; entry names cannot.
            if resolved.pop().is_none() {
                return Err("it goes through a symlink that points outside the folder");
            }
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let candidate = path_of(root, &resolved).join(&part);
        let is_last = pending.is_empty();
        let is_symlink = std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink());
        if !is_symlink || (is_last && !follow_last) {
            resolved.push(part);
            continue;
        }
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err("it goes through too many levels of symlinks");
        }
        let target = std::fs::read_link(&candidate).map_err(|_| "a symlink on its path cannot be read")?;
        if target.is_absolute() {
            return Err("it goes through a symlink that points outside the folder");
        }
        for component in target.components().rev() {
            pending.push_front(component.as_os_str().to_os_string());
        }
    }
    Ok(path_of(root, &resolved))
}

fn path_of(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(parts);
    path
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn parts(name: &str) -> Vec<OsString> {
        entry_components(Path::new(name)).unwrap()
    }

    #[test]
    fn checks_entry_names() {
        assert_eq!(parts("./bin/sh"), ["bin", "sh"]);
        assert!(parts("./").is_empty());
        assert_eq!(entry_components(Path::new("/etc/passwd")), Err("its path is absolute"));
        assert_eq!(entry_components(Path::new("a/../../b")), Err("its path contains `..`"));
    }

    #[test]
    fn follows_symlinks_that_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("../lib", root.join("usr/up")).unwrap();
        assert_eq!(resolve(root, &parts("lib/x.so"), false).unwrap(), root.join("usr/lib/x.so"));
        assert_eq!(resolve(root, &parts("usr/up/x"), false).unwrap(), root.join("usr/lib/x"));
        // The last component is the entry itself, replaced rather than followed.
        assert_eq!(resolve(root, &parts("lib"), false).unwrap(), root.join("lib"));
        assert_eq!(resolve(root, &parts("lib"), true).unwrap(), root.join("usr/lib"));
    }

    #[test]
    fn refuses_symlinks_that_lead_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../..", root.join("up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let outside = Err("it goes through a symlink that points outside the folder");
        assert_eq!(resolve(root, &parts("abs/passwd"), false), outside);
        assert_eq!(resolve(root, &parts("up/etc/passwd"), false), outside);
        assert_eq!(resolve(root, &parts("abs"), true), outside);
        assert_eq!(resolve(root, &parts("loop/x"), false), Err("it goes through too many levels of symlinks"));
    }
}
