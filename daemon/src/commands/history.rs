//! `driftless history`: the ledger, newest first: when each sync ran, what
//! commit it took, whose it was, whether it was applied or refused, and
//! what it changed.

use std::process::ExitCode;

use serde_json::Value;

use super::get::client_error;
use crate::CommandError;
use crate::cli::{GetFormat, HistoryArgs};
use crate::connect::{block_on, client};
use crate::print::table;

fn when(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// Runs `history`.
pub fn run(args: &HistoryArgs) -> Result<ExitCode, CommandError> {
    block_on(async {
        let client = client(&args.connect);
        let history = client.get(&format!("/driftless/v1/history?limit={}", args.limit)).await.map_err(client_error)?;
        let entries = history["entries"].as_array().cloned().unwrap_or_default();
        match args.output {
            Some(GetFormat::Json) => {
                println!("{:#}", history);
                return Ok(ExitCode::SUCCESS);
            }
            Some(GetFormat::Yaml) => {
                print!("{}", serde_yaml_ng::to_string(&history).unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            }
            _ => {}
        }
        if entries.is_empty() {
            eprintln!("No syncs yet.");
            return Ok(ExitCode::SUCCESS);
        }
        let header: Vec<String> = ["SYNCED (UTC)", "RESULT", "COMMIT", "AUTHOR", "CHANGES", "SUBJECT"].map(String::from).to_vec();
        let mut rows = Vec::new();
        let mut details = Vec::new();
        for e in &entries {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let actions = e["actions"].as_array().cloned().unwrap_or_default();
            let errors = e["errors"].as_array().cloned().unwrap_or_default();
            let changes = serde_json::from_value::<driftless_sync::LedgerEntry>(e.clone()).map(|entry| entry.changes()).unwrap_or_default();
            let source = s("source");
            rows.push(vec![
                when(e["synced_at"].as_i64().unwrap_or(0)),
                s("result"),
                source[..source.len().min(7)].to_owned(),
                s("author"),
                changes,
                s("subject"),
            ]);
            let mut lines: Vec<String> = actions
                .iter()
                .map(|a| {
                    let effect = a["effect"].as_str().filter(|e| !e.is_empty()).map(|e| format!(" ({e})")).unwrap_or_default();
                    format!("    {} {}{effect}", a["change"].as_str().unwrap_or(""), a["object"].as_str().unwrap_or(""))
                })
                .collect();
            lines.extend(errors.iter().map(|e| format!("    {}", e.as_str().unwrap_or(""))));
            lines.extend(e["trailers"].as_array().into_iter().flatten().filter_map(Value::as_str).map(|t| format!("    {t}")));
            details.push(lines);
        }
        if args.verbose {
            let widths = table::widths(&header, &rows);
            println!("{}", table::line(&header, &widths));
            for (row, lines) in rows.iter().zip(details) {
                println!("{}", table::line(row, &widths));
                for line in lines {
                    println!("{line}");
                }
            }
        } else {
            print!("{}", table::render(&header, &rows));
        }
        let finished = history["finished_jobs"].as_array().cloned().unwrap_or_default();
        if !finished.is_empty() {
            println!("\nJobs that ran and were removed after ttlSecondsAfterFinished (the same spec does not run again):");
            for job in &finished {
                let s = |k: &str| job.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                println!("    Job {}: {} ({}) at {}, from {}", s("job"), s("result"), s("reason"), s("finished"), s("commit"));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
