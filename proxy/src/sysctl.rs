//! The few kernel settings the proxy needs, read and written under
//! `/proc/sys`, with what they were so they can be put back.

use std::path::{Path, PathBuf};

/// Why a setting could not be read or written, or is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The setting's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A setting the proxy needs but does not own has the wrong value.
    #[error("{} is {found:?}, the proxy needs {needed:?}: {why}", path.display())]
    Needed {
        /// The setting's file.
        path: PathBuf,
        /// Its value.
        found: String,
        /// The value needed.
        needed: &'static str,
        /// What breaks without it.
        why: &'static str,
    },
}

fn path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key)
}

fn read(path: &Path) -> Result<String, SysctlError> {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).map_err(|source| SysctlError::Io { path: path.to_path_buf(), source })
}

/// Fails unless `key` (`net/bridge/...`) is `value`.
pub(crate) fn require(key: &str, value: &'static str, why: &'static str) -> Result<(), SysctlError> {
    let path = path(key);
    let found = read(&path)?;
    if found == value { Ok(()) } else { Err(SysctlError::Needed { path, found, needed: value, why }) }
}

/// A setting the proxy changed, and its value before.
#[derive(Debug)]
pub(crate) struct Changed {
    path: PathBuf,
    previous: String,
}

/// Sets `key` to `value`; returns what to restore, or `None` if it
/// already had that value (then it is left as found on shutdown too).
pub(crate) fn set(key: &str, value: &str) -> Result<Option<Changed>, SysctlError> {
    let path = path(key);
    let previous = read(&path)?;
    if previous == value {
        return Ok(None);
    }
    std::fs::write(&path, value).map_err(|source| SysctlError::Io { path: path.clone(), source })?;
    tracing::debug!(setting = %path.display(), %previous, %value, "sysctl set");
    Ok(Some(Changed { path, previous }))
}

impl Changed {
    /// Puts the old value back. A setting whose interface is gone is fine.
    pub(crate) fn restore(&self) -> Result<(), SysctlError> {
        match std::fs::write(&self.path, &self.previous) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            result => result.map_err(|source| SysctlError::Io { path: self.path.clone(), source }),
        }
    }
}
