//! `driftless secrets`: the age identity SOPS files are decrypted with, and
//! encrypting a Secret manifest in SOPS's format; and the keyring every
//! command that reads manifests decrypts with.

use std::path::Path;
use std::process::ExitCode;

use driftless_secrets::{KEYS_FILE, Keyring};

use crate::CommandError;
use crate::cli::{SecretsCommand, SecretsEncryptArgs};

/// The age identities for `data_dir` (SOPS's `SOPS_AGE_KEY_FILE` and
/// `SOPS_AGE_KEY` first, as sops reads them).
pub(crate) fn keyring(data_dir: &Path) -> Result<Keyring, CommandError> {
    Keyring::from_env_or(&data_dir.join(KEYS_FILE)).map_err(|e| CommandError::Usage(format!("age identities: {e}")))
}

/// Runs `secrets keygen|encrypt`.
pub fn run(command: &SecretsCommand) -> Result<ExitCode, CommandError> {
    match command {
        SecretsCommand::Keygen(args) => {
            let path = args.data_dir.join(KEYS_FILE);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| CommandError::Io { path: parent.to_owned(), source })?;
            }
            let recipient = driftless_secrets::keygen(&path).map_err(|e| CommandError::Usage(e.to_string()))?;
            eprintln!("driftless: wrote an age identity to {} (keep it secret; back it up)", path.display());
            println!("{recipient}");
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::Encrypt(args) => encrypt(args),
    }
}

fn encrypt(args: &SecretsEncryptArgs) -> Result<ExitCode, CommandError> {
    let recipients = if args.age.is_empty() {
        let keyring = keyring(&args.data_dir)?;
        if keyring.is_empty() {
            return Err(CommandError::Usage(format!(
                "no recipient: pass --age age1... or make this node's identity with `driftless secrets keygen` ({} has none)",
                args.data_dir.join(KEYS_FILE).display()
            )));
        }
        keyring.recipients()
    } else {
        args.age.clone()
    };
    let bytes = std::fs::read(&args.file).map_err(|source| CommandError::Io { path: args.file.clone(), source })?;
    let encrypted = driftless_secrets::encrypt_secret(&bytes, &recipients).map_err(|e| CommandError::Usage(format!("{}: {e}", args.file.display())))?;
    // Written beside and renamed over: a crash never leaves half a file,
    // and the plaintext is gone from the path once this returns.
    let partial = args.file.with_extension("driftless-encrypting");
    std::fs::write(&partial, &encrypted).map_err(|source| CommandError::Io { path: partial.clone(), source })?;
    std::fs::rename(&partial, &args.file).map_err(|source| CommandError::Io { path: args.file.clone(), source })?;
    eprintln!("driftless: encrypted data and stringData of {} for {}", args.file.display(), recipients.join(", "));
    Ok(ExitCode::SUCCESS)
}
