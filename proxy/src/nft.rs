//! Running `nft -f -`: the one way this crate changes the kernel's packet
//! filter. Each call is one atomic transaction.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::rules::Batch;

/// Why `nft` did not apply a batch.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be run at all.
    #[error("cannot run {}: {source}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `nft` refused the batch; nothing of it was applied.
    #[error("nft refused the batch ({status}): {stderr}")]
    Refused {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
}

impl NftError {
    /// Whether `nft` said the object does not exist.
    pub(crate) fn is_missing(&self) -> bool {
        matches!(self, NftError::Refused { stderr, .. } if stderr.contains("No such file or directory"))
    }
}

/// Applies one batch.
pub(crate) fn run(program: &Path, batch: &Batch) -> Result<(), NftError> {
    run_text(program, &batch.text)
}

/// Applies commands in `nft`'s own syntax, one transaction.
pub(crate) fn run_text(program: &Path, commands: &str) -> Result<(), NftError> {
    let input = commands.as_bytes();
    let spawn = |source| NftError::Spawn { program: program.to_path_buf(), source };
    let mut child = Command::new(program).args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(spawn)?;
    // nft reads the whole batch before it says anything, so writing all of
    // it before reading stderr cannot deadlock.
    let written = child.stdin.take().expect("stdin is piped").write_all(input);
    let output = child.wait_with_output().map_err(spawn)?;
    if !output.status.success() {
        return Err(NftError::Refused { status: output.status, stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned() });
    }
    written.map_err(spawn)
}
