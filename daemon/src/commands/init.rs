//! `driftless init`: a new GitOps repository, ready to validate and run.

use std::path::Path;
use std::process::ExitCode;

use git2::{IndexAddOption, Repository, RepositoryInitOptions, Signature};

use crate::CommandError;
use crate::cli::InitArgs;

/// Copies the template into the folder and commits it on `main`.
pub fn run(args: &InitArgs) -> Result<ExitCode, CommandError> {
    let dir = &args.dir;
    let io = |source| CommandError::Io { path: dir.clone(), source };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io)?;
        if entries.next().is_some() {
            return Err(CommandError::Usage(format!("{}: folder is not empty", dir.display())));
        }
    }
    for (path, contents) in crate::template::files() {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CommandError::Io { path: parent.to_path_buf(), source })?;
        }
        std::fs::write(&target, contents).map_err(|source| CommandError::Io { path: target.clone(), source })?;
    }
    let commit = commit_all(dir)?;
    println!("Initialized a Driftless GitOps repository in {} (commit {commit})", dir.display());
    println!("Next:\n  driftless validate {}/apps\n  git -C {} log --oneline", dir.display(), dir.display());
    Ok(ExitCode::SUCCESS)
}

fn commit_all(dir: &Path) -> Result<String, CommandError> {
    let mut options = RepositoryInitOptions::new();
    options.initial_head("main");
    let repo = Repository::init_opts(dir, &options)?;
    let mut index = repo.index()?;
    index.add_all(["*"], IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    // The user's git identity when configured, as `git commit` would use.
    let signature = repo.signature().or_else(|_| Signature::now("Driftless", "driftless@localhost"))?;
    let id = repo.commit(Some("HEAD"), &signature, &signature, "Initial commit from driftless init", &tree, &[])?;
    Ok(id.to_string()[..7].to_owned())
}
