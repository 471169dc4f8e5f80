//! `driftless image`: the node's image store, from the command line.
//!
//! While a daemon runs on the data folder, these go through its API (the
//! daemon owns the store then); otherwise they work on the store directly.

use std::process::ExitCode;

use driftless_image::{ImageStore, PullOptions};

use crate::CommandError;
use crate::cli::ImageCommand;

/// The daemon on `data_dir`, if one answers there.
fn daemon(data_dir: &std::path::Path) -> Option<driftless_api::Client> {
    let socket = data_dir.join(driftless_api::SOCKET);
    if !socket.exists() {
        return None;
    }
    let client = driftless_api::Client::new(driftless_api::client::Endpoint::Unix(socket));
    let probe = client.clone();
    crate::connect::block_on(async move { Ok(probe.get_text("/healthz").await.is_ok()) }).ok().filter(|up| *up).map(|_| client)
}

fn via_daemon(client: driftless_api::Client, path: &str, body: serde_json::Value) -> Result<serde_json::Value, CommandError> {
    crate::connect::block_on(async move {
        let result = if body.is_null() { client.get(path).await } else { client.post(path, &body).await };
        result.map_err(super::get::client_error)
    })
}

/// Runs one image subcommand.
pub fn run(command: &ImageCommand) -> Result<ExitCode, CommandError> {
    let data_dir = match command {
        ImageCommand::Import { data, .. } | ImageCommand::Pull { data, .. } | ImageCommand::Ls { data } | ImageCommand::Rm { data, .. } => &data.data_dir,
    };
    if let Some(client) = daemon(data_dir) {
        return run_via_daemon(command, client);
    }
    match command {
        ImageCommand::Import { path, name, data } => {
            let store = ImageStore::open(&data.data_dir)?;
            for reference in store.import(path, name.as_deref())? {
                println!("imported {reference}");
            }
        }
        ImageCommand::Pull { reference, insecure_registries, username, password_stdin, data } => {
            let credentials = read_password(username, *password_stdin)?;
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

fn read_password(username: &Option<String>, password_stdin: bool) -> Result<Option<(String, String)>, CommandError> {
    Ok(match (username, password_stdin) {
        (Some(user), true) => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).map_err(|source| CommandError::Io { path: "<stdin>".into(), source })?;
            Some((user.clone(), password.trim_end_matches(['\n', '\r']).to_owned()))
        }
        (Some(user), false) => Some((user.clone(), String::new())),
        (None, _) => None,
    })
}

fn run_via_daemon(command: &ImageCommand, client: driftless_api::Client) -> Result<ExitCode, CommandError> {
    use serde_json::{Value, json};
    match command {
        ImageCommand::Import { path, name, .. } => {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let out = via_daemon(client, "/driftless/v1/images/import", json!({"path": path, "name": name}))?;
            for reference in out["imported"].as_array().into_iter().flatten() {
                println!("imported {}", reference.as_str().unwrap_or(""));
            }
        }
        ImageCommand::Pull { reference, insecure_registries, username, password_stdin, .. } => {
            let credentials = read_password(username, *password_stdin)?;
            eprintln!("pulling {reference} (through the daemon)...");
            let body = json!({
                "reference": reference, "insecure_registries": insecure_registries,
                "username": credentials.as_ref().map(|c| &c.0), "password": credentials.as_ref().map(|c| &c.1),
            });
            let out = via_daemon(client, "/driftless/v1/images/pull", body)?;
            println!("pulled {}", out["pulled"].as_str().unwrap_or(""));
        }
        ImageCommand::Ls { .. } => {
            let out = via_daemon(client, "/driftless/v1/images", Value::Null)?;
            let images = out["images"].as_array().cloned().unwrap_or_default();
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            let width = images.iter().map(|i| s(&i["reference"]).len()).max().unwrap_or(0).max("REFERENCE".len());
            println!("{:<width$}  {:<19}  {:>9}  CREATED", "REFERENCE", "DIGEST", "SIZE");
            for image in images {
                let digest = s(&image["digest"]);
                let digest = digest.strip_prefix("sha256:").unwrap_or(&digest).to_owned();
                let created = s(&image["created"]);
                println!(
                    "{:<width$}  sha256:{:<12}  {:>9}  {}",
                    s(&image["reference"]),
                    &digest[..digest.len().min(12)],
                    human_size(image["size"].as_u64().unwrap_or(0)),
                    if created.is_empty() { "-".to_owned() } else { created },
                );
            }
        }
        ImageCommand::Rm { reference, .. } => {
            via_daemon(client, "/driftless/v1/images/remove", json!({"reference": reference}))?;
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
