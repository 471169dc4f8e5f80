//! `driftless validate`: judge manifests from disk or a git revision.

use std::process::ExitCode;

use driftless_manifest::{GitRepo, load_paths};

use crate::cli::{ValidateArgs, ValidateFormat};
use crate::{CommandError, EXIT_INVALID};

/// Loads, validates and prints; exit 1 when anything is invalid.
pub fn run(args: &ValidateArgs) -> Result<ExitCode, CommandError> {
    let files = match &args.repo {
        Some(repo) => GitRepo::open(repo)?.load(&args.rev, &args.path)?.1,
        None if args.paths.is_empty() => {
            return Err(CommandError::Usage("nothing to validate: name manifest files or folders, or a repository with --repo".into()));
        }
        None => load_paths(&args.paths)?,
    };
    let keyring = super::secrets::keyring(&args.data_dir)?;
    let report = driftless_validate::validate_files(files, &|file| driftless_secrets::open(file, &keyring));
    match args.output {
        ValidateFormat::Text => {
            for diagnostic in &report.diagnostics {
                println!("{diagnostic}");
            }
            println!("{}", report.summary);
        }
        ValidateFormat::Json => println!("{:#}", report.to_json()),
    }
    Ok(if report.is_valid() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_INVALID) })
}
