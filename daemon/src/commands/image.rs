//! `driftless image`: the node's image store, from the command line.
//!
//! Works on the store directly for now; once the daemon runs, these go
//! through its API so that an image in use cannot be removed under it.

use std::process::ExitCode;

use driftless_image::{ImageStore, PullOptions};

use crate::CommandError;
use crate::cli::ImageCommand;

/// Runs one image subcommand.
pub fn run(command: &ImageCommand) -> Result<ExitCode, CommandError> {
    match command {
        ImageCommand::Import { path, name, data } => {
            let store = ImageStore::open(&data.data_dir)?;
            for reference in store.import(path, name.as_deref())? {
                println!("imported {reference}");
            }
        }
        ImageCommand::Pull { reference, insecure_registries, username, password_stdin, data } => {
            let credentials = match (username, password_stdin) {
                (Some(user), true) => {
                    let mut password = String::new();
                    std::io::stdin()
                        .read_line(&mut password)
                        .map_err(|source| CommandError::Io { path: "<stdin>".into(), source })?;
                    Some((user.clone(), password.trim_end_matches(['\n', '\r']).to_owned()))
                }
                (Some(user), false) => Some((user.clone(), String::new())),
                (None, _) => None,
            };
            let options = PullOptions { insecure_registries: insecure_registries.clone(), credentials };
            let store = ImageStore::open(&data.data_dir)?;
            eprintln!("pulling {reference}...");
            let pulled = store.pull_with_progress(reference, &options, &mut progress_printer())?;
            println!("pulled {pulled}");
        }
        ImageCommand::Ls { data } => {
            let store = ImageStore::open(&data.data_dir)?;
            let images = store.list()?;
            let width = images.iter().map(|i| i.reference.len()).max().unwrap_or(0).max("REFERENCE".len());
            println!("{:<width$}  {:<19}  {:>9}  CREATED", "REFERENCE", "DIGEST", "SIZE");
            for image in images {
                let digest = image.manifest_digest.strip_prefix("sha256:").unwrap_or(&image.manifest_digest);
                println!(
                    "{:<width$}  sha256:{:<12}  {:>9}  {}",
                    image.reference,
                    &digest[..digest.len().min(12)],
                    human_size(image.size),
                    image.created.as_deref().unwrap_or("-"),
                );
            }
        }
        ImageCommand::Rm { reference, data } => {
            let store = ImageStore::open(&data.data_dir)?;
            store.remove(reference)?;
            println!("removed {reference}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Sizes as `docker images` shows them: 1000-based units, one decimal.
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes}B") } else { format!("{value:.1}{}", units[unit]) }
}

/// Shows a pull's progress on stderr: one line redrawn in place on a
/// terminal, else a line per finished blob (so logs stay readable).
fn progress_printer() -> impl FnMut(&driftless_image::Progress) {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let mut last_drawn = std::time::Instant::now();
    move |p: &driftless_image::Progress| {
        let short = p.digest.strip_prefix("sha256:").map_or(&p.digest[..], |h| &h[..h.len().min(12)]);
        let line = format!("  blob {}/{} {short}: {} / {}", p.blob, p.blobs, human_bytes(p.done), human_bytes(p.total));
        let finished = p.done >= p.total;
        if terminal {
            if finished || last_drawn.elapsed() > std::time::Duration::from_millis(100) {
                eprint!("\r\x1b[2K{line}");
                if finished {
                    eprintln!();
                }
                last_drawn = std::time::Instant::now();
            }
        } else if finished {
            eprintln!("{line}");
        }
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
