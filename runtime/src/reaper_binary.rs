//! Where the helper finds the `driftless-reaper` binary it hands over to.
//!
//! The build links the reaper statically and embeds it in the helper
//! (runtime/build.rs). An idle pod's only process is its reaper, and a
//! dynamically linked one maps about 1.3 MiB of libc and loader pages on
//! top of its own; static, it stays near 1 MiB resident. At the first
//! hand-over on a node the helper writes the embedded binary into the state
//! root under a name derived from its content, so every reaper on the node
//! runs (and shares the pages of) the same file, and a new build never
//! overwrites a binary that running reapers still execute.
//!
//! A build without the static reaper (its build failed and
//! `DRIFTLESS_ALLOW_DYNAMIC_REAPER` was set) falls back to the
//! `driftless-reaper` next to the helper's own executable.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[cfg(driftless_static_reaper)]
const EMBEDDED: Option<(&[u8], &str)> = Some((include_bytes!(env!("DRIFTLESS_STATIC_REAPER")), env!("DRIFTLESS_STATIC_REAPER_HASH")));
#[cfg(not(driftless_static_reaper))]
const EMBEDDED: Option<(&[u8], &str)> = None;

/// Whether this build carries the statically linked reaper.
pub fn embedded() -> bool {
    EMBEDDED.is_some()
}

/// The reaper to `exec`: the embedded one, written under `state_root` if
/// it is not there yet, or else the one beside `helper`.
pub fn install(state_root: &Path, helper: &Path) -> std::io::Result<PathBuf> {
    let Some((bytes, hash)) = EMBEDDED else {
        return Ok(helper.with_file_name("driftless-reaper"));
    };
    let path = state_root.join(format!("driftless-reaper-{hash}"));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(state_root)?;
    // Written under a private name and renamed: concurrent helpers each
    // write their own copy, and the one `exec`ed is never open for writing
    // (which `exec` refuses with ETXTBSY).
    let tmp = state_root.join(format!(".driftless-reaper-{hash}.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o755).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_once_under_a_content_name() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("bin/driftless-shim");
        let first = install(dir.path(), &helper).unwrap();
        let second = install(dir.path(), &helper).unwrap();
        assert_eq!(first, second);
        if embedded() {
            let mode = std::fs::metadata(&first).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
            let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names.len(), 1, "no temporary file is left behind: {names:?}");
        } else {
            assert_eq!(first, dir.path().join("bin/driftless-reaper"));
        }
    }
}
