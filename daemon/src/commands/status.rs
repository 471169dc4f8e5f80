//! `driftless status` and `driftless sync`: what the daemon syncs, the
//! revision running, the last refusal; and a sync on demand.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::get::client_error;
use crate::cli::ConnectArgs;
use crate::connect::{block_on, client};
use crate::print::age;
use crate::{CommandError, EXIT_INVALID};

fn short(id: &str) -> &str {
    &id[..id.len().min(7)]
}

/// Runs `status`.
pub fn run(args: &ConnectArgs) -> Result<ExitCode, CommandError> {
    block_on(async {
        let status = client(args).get("/driftless/v1/status").await.map_err(client_error)?;
        let sync = &status["sync"];
        let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let now = jiff::Timestamp::now();
        let path = if s(&sync["path"]).is_empty() { "/".to_owned() } else { s(&sync["path"]) };
        println!("Repository:  {} (branch {}, path {path})", s(&sync["repo"]), s(&sync["branch"]));
        match sync.get("applied").filter(|a| !a.is_null()) {
            Some(a) => println!("Running:     {} {:?} by {}", short(&s(&a["id"])), s(&a["subject"]), s(&a["author"])),
            None => println!("Running:     nothing yet"),
        }
        if let Some(t) = sync["synced_at"].as_i64().filter(|t| *t > 0) {
            println!("Last sync:   {} ago", age::human(now.as_second() - t));
        }
        if let Some(refused) = sync.get("refused").and_then(Value::as_array) {
            let commit = &refused[0];
            let errors = refused.get(1).and_then(Value::as_array).cloned().unwrap_or_default();
            let count = if errors.len() == 1 { "1 error".to_owned() } else { format!("{} errors", errors.len()) };
            println!("Refused:     {} {:?} by {} ({count}):", short(&s(&commit["id"])), s(&commit["subject"]), s(&commit["author"]));
            for e in errors {
                println!("               {}", e.as_str().unwrap_or(""));
            }
        }
        if let Some(error) = sync.get("error").and_then(Value::as_str) {
            println!("Error:       {error}");
        }
        if let Some(error) = status["storeError"].as_str() {
            println!("Store:       cannot write: {error} (nothing is applied until it can)");
        }
        let mut rollbacks: Vec<&Value> = status["rollbacks"].as_array().into_iter().flatten().collect();
        rollbacks.sort_by_key(|r| std::cmp::Reverse(r["at"].as_i64()));
        for (i, r) in rollbacks.iter().take(5).enumerate() {
            let label = if i == 0 { "Rollbacks:" } else { "" };
            let when = r["at"].as_i64().map(|t| format!(", {} ago", age::human(now.as_second() - t))).unwrap_or_default();
            let what = match r["outcome"].as_str() {
                Some("rolled back") => format!("rolled back by {} on {}", short(&s(&r["commit"])), s(&r["branch"])),
                _ => format!("not rolled back: {}", s(&r["why"])),
            };
            println!("{label:<13}{} {} failed ({}); {what}{when}", s(&r["object"]), s(&r["failed"]), s(&r["reason"]));
        }
        println!("Pods:        {} running of {}", status["pods"]["running"], status["pods"]["total"]);
        let nodes: Vec<String> = status["nodes"].as_array().into_iter().flatten().map(s).collect();
        println!("Nodes:       {}", nodes.join(", "));
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `sync`.
pub fn sync(args: &ConnectArgs) -> Result<ExitCode, CommandError> {
    block_on(async {
        let outcome = client(args).post("/driftless/v1/sync", &json!({})).await.map_err(client_error)?;
        let commit = outcome["commit"].as_str().unwrap_or("");
        match outcome["result"].as_str() {
            Some("applied") => {
                let actions = outcome["actions"].as_array().cloned().unwrap_or_default();
                println!("applied {} ({} changes)", short(commit), actions.len());
                for a in actions {
                    println!("  {} {}", a["change"].as_str().unwrap_or(""), a["object"].as_str().unwrap_or(""));
                }
                Ok(ExitCode::SUCCESS)
            }
            Some("refused") => {
                println!("refused {}:", short(commit));
                for e in outcome["errors"].as_array().into_iter().flatten() {
                    println!("  {}", e.as_str().unwrap_or(""));
                }
                Ok(ExitCode::from(EXIT_INVALID))
            }
            _ => {
                println!("up to date at {}", short(commit));
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
