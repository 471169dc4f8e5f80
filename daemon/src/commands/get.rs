//! `driftless get`: objects as kubectl lists them.

use std::process::ExitCode;

use driftless_model::Kind;
use futures_util::StreamExt;
use serde_json::Value;

use crate::cli::{GetArgs, GetFormat, GetOutput};
use crate::connect::{block_on, client};
use crate::print::jsonpath::{self, Template};
use crate::print::{columns, table};
use crate::{CommandError, EXIT_INVALID};

/// The resources `all` stands for, in kubectl's order (kubectl 1.32's
/// `all` category, less the kinds Driftless does not have).
const ALL: [&str; 10] =
    ["pods", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets", "statefulsets", "horizontalpodautoscalers", "cronjobs", "jobs"];

/// Resolves a comma-separated list of kinds.
pub(crate) fn kinds(text: &str) -> Result<Vec<Kind>, CommandError> {
    let mut out = Vec::new();
    for name in text.split(',').filter(|n| !n.is_empty()) {
        if name == "all" {
            out.extend(ALL.iter().filter_map(|n| Kind::from_cli_name(n)));
            continue;
        }
        let resource = Kind::from_cli_name(name).ok_or_else(|| CommandError::Usage(format!("the server doesn't have a resource type {name:?}")))?;
        out.push(resource);
    }
    Ok(out)
}

fn query(args: &GetArgs, watch: Option<&str>) -> String {
    let mut q = form_query(&[("labelSelector", args.selector.as_deref())]);
    if let Some(rv) = watch {
        q.push_str(if q.is_empty() { "?" } else { "&" });
        q.push_str(&format!("watch=1&resourceVersion={rv}"));
    }
    q
}

pub(crate) fn form_query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            serializer.append_pair(k, v);
        }
    }
    let q = serializer.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

/// What to list: each kind with the names asked for (none: every object).
/// `get svc/web deploy/api` names kinds and objects together, as kubectl
/// takes them; otherwise the first word is the kinds and the rest names.
fn targets(args: &GetArgs) -> Result<Vec<(Kind, Vec<String>)>, CommandError> {
    if !args.resource.contains('/') {
        return Ok(kinds(&args.resource)?.into_iter().map(|k| (k, args.names.clone())).collect());
    }
    let mut out: Vec<(Kind, Vec<String>)> = Vec::new();
    for word in std::iter::once(&args.resource).chain(&args.names) {
        let (kind, name) = word.split_once('/').ok_or_else(|| {
            CommandError::Usage(format!("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'driftless get resource/<resource_name>' instead of 'driftless get resource resource/<resource_name>'): {word:?}"))
        })?;
        let kind = Kind::from_cli_name(kind).ok_or_else(|| CommandError::Usage(format!("the server doesn't have a resource type {kind:?}")))?;
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, names)) => names.push(name.to_owned()),
            None => out.push((kind, vec![name.to_owned()])),
        }
    }
    Ok(out)
}

/// Runs `get`.
pub fn run(args: &GetArgs) -> Result<ExitCode, CommandError> {
    let targets = targets(args)?;
    let kinds: Vec<Kind> = targets.iter().map(|(k, _)| *k).collect();
    let names_given: usize = targets.iter().map(|(_, n)| n.len()).sum();
    let sort_by = args.sort_by.as_deref().map(Template::parse).transpose().map_err(CommandError::Usage)?;
    let template = match &args.output {
        Some(GetOutput::JsonPath(text)) => Some(Template::parse(text).map_err(CommandError::Usage)?),
        _ => None,
    };
    let custom: Option<Vec<(String, Template)>> = match &args.output {
        Some(GetOutput::CustomColumns(columns)) => Some(
            columns.iter().map(|(header, expr)| Ok((header.clone(), Template::parse(expr)?))).collect::<Result<_, String>>().map_err(CommandError::Usage)?,
        ),
        _ => None,
    };
    // Formats that print every kind's objects at once, at the end.
    let whole = matches!(&args.output, Some(GetOutput::Format(GetFormat::Json | GetFormat::Yaml) | GetOutput::JsonPath(_) | GetOutput::CustomColumns(_)));
    block_on(async {
        let client = client(&args.connect);
        let namespace = if args.all_namespaces { None } else { Some(args.namespace.as_str()) };
        let wide = args.output == Some(GetOutput::Format(GetFormat::Wide));
        let prefix = kinds.len() > 1;
        let mut printed_any = false;
        let mut missing = Vec::new();
        let mut everything: Vec<Value> = Vec::new();
        let mut last_rv = String::new();
        for (i, (resource, names)) in targets.iter().enumerate() {
            let resource = *resource;
            let list = client.get(&format!("{}{}", resource.list_path(namespace), query(args, None))).await.map_err(client_error)?;
            last_rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0").to_owned();
            let mut items: Vec<Value> = list.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            if !names.is_empty() {
                for name in names {
                    if !items.iter().any(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)) {
                        missing.push(format!("{} {name:?} not found", resource.plural()));
                    }
                }
                // In the order asked for, as kubectl prints them.
                let mut picked = Vec::new();
                for name in names {
                    picked.extend(items.iter().filter(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)).cloned());
                }
                items = picked;
            }
            if resource == Kind::Event {
                items.sort_by(|a, b| a["lastTimestamp"].as_str().cmp(&b["lastTimestamp"].as_str()));
            }
            if let Some(key) = &sort_by {
                sort(&mut items, key);
            }
            if whole {
                everything.extend(items);
                continue;
            }
            match args.output {
                Some(GetOutput::Format(GetFormat::Name)) => {
                    for item in &items {
                        println!("{}/{}", kind_name(resource), item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""));
                    }
                }
                _ => {
                    if items.is_empty() {
                        continue;
                    }
                    if printed_any && i > 0 {
                        println!();
                    }
                    print!("{}", render(resource, &items, &Columns { wide, all_namespaces: args.all_namespaces, prefix, labels: args.show_labels }));
                    printed_any = true;
                }
            }
        }
        let single = names_given == 1 && kinds.len() == 1;
        if let Some(key) = &sort_by {
            sort(&mut everything, key);
        }
        match &args.output {
            Some(GetOutput::Format(GetFormat::Json)) => println!("{:#}", as_list(everything, single)),
            Some(GetOutput::Format(GetFormat::Yaml)) => print!("{}", serde_yaml_ng::to_string(&as_list(everything, single)).unwrap_or_default()),
            Some(GetOutput::Format(GetFormat::Name)) => {}
            // kubectl prints the template's text with no newline added.
            Some(GetOutput::JsonPath(_)) => print!("{}", template.as_ref().map(|t| t.render(&as_list(everything, single))).unwrap_or_default()),
            Some(GetOutput::CustomColumns(_)) if !everything.is_empty() => {
                let columns = custom.as_deref().unwrap_or_default();
                let header: Vec<String> = columns.iter().map(|(h, _)| h.clone()).collect();
                let rows: Vec<Vec<String>> = everything
                    .iter()
                    .map(|item| {
                        columns
                            .iter()
                            .map(|(_, expr)| {
                                let values = expr.values(item);
                                // kubectl joins a column's several values with commas.
                                if values.is_empty() { "<none>".to_owned() } else { jsonpath::join(&values).replace(' ', ",") }
                            })
                            .collect()
                    })
                    .collect();
                print!("{}", table::render(&header, &rows));
            }
            _ if !printed_any && everything.is_empty() && missing.is_empty() && !args.watch => match namespace {
                Some(ns) if kinds.iter().any(|k| k.namespaced()) => eprintln!("No resources found in {ns} namespace."),
                _ => eprintln!("No resources found"),
            },
            _ => {}
        }
        for m in &missing {
            eprintln!("Error from server (NotFound): {m}");
        }
        if args.watch
            && let [(resource, names)] = targets.as_slice()
        {
            watch(&client, *resource, names, namespace, args, &last_rv, wide).await?;
        }
        Ok(if missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_INVALID) })
    })
}

/// Sorts objects by the first value of `key`, as `--sort-by` does:
/// numbers by value, anything else by its text; objects without one first.
fn sort(items: &mut [Value], key: &Template) {
    let order = |v: Option<&Value>| -> (u8, f64, String) {
        match v {
            None => (0, 0.0, String::new()),
            Some(Value::Number(n)) => (1, n.as_f64().unwrap_or(0.0), String::new()),
            Some(Value::String(s)) => (2, 0.0, s.clone()),
            Some(other) => (2, 0.0, other.to_string()),
        }
    };
    items.sort_by(|a, b| {
        let (x, y) = (order(key.values(a).first().copied()), order(key.values(b).first().copied()));
        x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)).then(x.2.cmp(&y.2))
    });
}

fn kind_name(resource: Kind) -> String {
    let kind = resource.name().to_ascii_lowercase();
    if resource.group().is_empty() { kind } else { format!("{kind}.{}", resource.group()) }
}

fn as_list(items: Vec<Value>, single: bool) -> Value {
    if single && items.len() == 1 {
        return items.into_iter().next().unwrap_or(Value::Null);
    }
    serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

/// Which columns a table has beside the kind's own.
pub(crate) struct Columns {
    /// `-o wide`.
    pub(crate) wide: bool,
    /// A NAMESPACE column first (`-A`).
    pub(crate) all_namespaces: bool,
    /// Names as `kind/name` (several kinds in one listing).
    pub(crate) prefix: bool,
    /// A LABELS column last (`--show-labels`).
    pub(crate) labels: bool,
}

/// The table of `items`.
pub(crate) fn render(resource: Kind, items: &[Value], columns: &Columns) -> String {
    let now = jiff::Timestamp::now();
    let (header, rows) = rows(resource, items, columns, now);
    table::render(&header, &rows)
}

fn rows(resource: Kind, items: &[Value], extra: &Columns, now: jiff::Timestamp) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = columns::header(resource, extra.wide);
    let namespaced = extra.all_namespaces && resource.namespaced();
    if namespaced {
        header.insert(0, "NAMESPACE".into());
    }
    if extra.labels {
        header.push("LABELS".into());
    }
    let rows = items
        .iter()
        .map(|item| {
            let mut row = columns::row(resource, item, extra.wide, now);
            if extra.prefix && resource != Kind::Event {
                row[0] = format!("{}/{}", kind_name(resource), row[0]);
            }
            if namespaced {
                row.insert(0, item.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_owned());
            }
            if extra.labels {
                row.push(columns::labels(item));
            }
            row
        })
        .collect();
    (header, rows)
}

async fn watch(
    client: &driftless_api::Client,
    resource: Kind,
    names: &[String],
    namespace: Option<&str>,
    args: &GetArgs,
    rv: &str,
    wide: bool,
) -> Result<(), CommandError> {
    let path = format!("{}{}", resource.list_path(namespace), query(args, Some(rv)));
    let mut stream = client.stream(&path).await.map_err(client_error)?;
    let mut buffer = String::new();
    let mut widths: Option<Vec<usize>> = None;
    while let Some(chunk) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.map_err(client_error)?));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
            let object = event["object"].clone();
            if !names.is_empty() && !names.iter().any(|n| object.pointer("/metadata/name").and_then(Value::as_str) == Some(n)) {
                continue;
            }
            let extra = Columns { wide, all_namespaces: args.all_namespaces, prefix: false, labels: args.show_labels };
            let (header, rows) = rows(resource, std::slice::from_ref(&object), &extra, jiff::Timestamp::now());
            let w = widths.get_or_insert_with(|| table::widths(&header, &rows).into_iter().map(|w| w.max(12)).collect());
            for row in rows {
                println!("{}", table::line(&row, w));
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
    }
    Ok(())
}

/// A client failure as a command error.
pub(crate) fn client_error(error: driftless_api::ClientError) -> CommandError {
    CommandError::Usage(match &error {
        driftless_api::ClientError::Status { code: 404, message } => format!("(NotFound) {message}"),
        _ => error.to_string(),
    })
}
