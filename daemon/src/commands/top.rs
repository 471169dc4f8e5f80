//! `driftless top pods|nodes`: the node's metrics (`metrics.k8s.io`) in
//! kubectl top's columns.

use std::process::ExitCode;

use driftless_printers::top;
use serde_json::Value;

use super::get::{client_error, form_query};
use crate::CommandError;
use crate::cli::{TopCommand, TopNodesArgs, TopPodsArgs};
use crate::connect::{block_on, client};
use crate::print::table;

const METRICS: &str = "/apis/metrics.k8s.io/v1beta1";

/// Runs `top`.
pub fn run(command: &TopCommand) -> Result<ExitCode, CommandError> {
    match command {
        TopCommand::Pods(args) => pods(args),
        TopCommand::Nodes(args) => nodes(args),
    }
}

fn items(list: &Value) -> Vec<Value> {
    list.get("items").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn name_of(object: &Value) -> String {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn pods(args: &TopPodsArgs) -> Result<ExitCode, CommandError> {
    let query = form_query(&[("labelSelector", args.selector.as_deref())]);
    let path = match (&args.name, args.all_namespaces) {
        (Some(name), _) => format!("{METRICS}/namespaces/{}/pods/{name}", args.namespace),
        (None, true) => format!("{METRICS}/pods{query}"),
        (None, false) => format!("{METRICS}/namespaces/{}/pods{query}", args.namespace),
    };
    let listed = block_on(async { client(&args.connect).get(&path).await.map_err(client_error) })?;
    let mut metrics = if args.name.is_some() { vec![listed] } else { items(&listed) };
    if metrics.is_empty() {
        // kubectl's words when the node has no window for any pod yet.
        let scope = if args.all_namespaces { String::new() } else { format!(" in {} namespace", args.namespace) };
        return Err(CommandError::Usage(format!("metrics not available yet{scope}")));
    }
    metrics.sort_by_key(|m| (m.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_owned(), name_of(m)));
    let mut header: Vec<String> = Vec::new();
    if args.all_namespaces {
        header.push("NAMESPACE".into());
    }
    header.push(if args.containers { "POD" } else { "NAME" }.into());
    if args.containers {
        header.push("NAME".into());
    }
    header.extend(["CPU(cores)".into(), "MEMORY(bytes)".into()]);
    let mut rows = Vec::new();
    for pod in &metrics {
        let lead = |row: &mut Vec<String>| {
            if args.all_namespaces {
                row.push(pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_owned());
            }
            row.push(name_of(pod));
        };
        if args.containers {
            for container in pod.get("containers").and_then(Value::as_array).into_iter().flatten() {
                let mut row = Vec::new();
                lead(&mut row);
                let usage = container.get("usage").cloned().unwrap_or_default();
                row.extend([container.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(), top::cpu(&usage), top::memory(&usage)]);
                rows.push(row);
            }
        } else {
            let mut row = Vec::new();
            lead(&mut row);
            let usage = top::pod_usage(pod);
            row.extend([top::cpu(&usage), top::memory(&usage)]);
            rows.push(row);
        }
    }
    print!("{}", table::render(&header, &rows));
    Ok(ExitCode::SUCCESS)
}

fn nodes(args: &TopNodesArgs) -> Result<ExitCode, CommandError> {
    let client = client(&args.connect);
    let query = form_query(&[("labelSelector", args.selector.as_deref())]);
    let (metrics, nodes) = block_on(async {
        let metrics = match &args.name {
            Some(name) => vec![client.get(&format!("{METRICS}/nodes/{name}")).await.map_err(client_error)?],
            None => items(&client.get(&format!("{METRICS}/nodes{query}")).await.map_err(client_error)?),
        };
        Ok((metrics, items(&client.get("/api/v1/nodes").await.map_err(client_error)?)))
    })?;
    if metrics.is_empty() {
        return Err(CommandError::Usage("metrics not available yet".into()));
    }
    let header: Vec<String> = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"].map(str::to_owned).to_vec();
    let rows: Vec<Vec<String>> = metrics
        .iter()
        .map(|m| {
            let usage = m.get("usage").cloned().unwrap_or_default();
            let allocatable = nodes.iter().find(|n| name_of(n) == name_of(m)).and_then(|n| n.pointer("/status/allocatable"));
            vec![name_of(m), top::cpu(&usage), top::percent(&usage, allocatable, "cpu"), top::memory(&usage), top::percent(&usage, allocatable, "memory")]
        })
        .collect();
    print!("{}", table::render(&header, &rows));
    Ok(ExitCode::SUCCESS)
}
