//! The verbs that change things, each one commit: `scale`, `set
//! image|env|resources`, `label`, `annotate`, `rollout
//! restart|pause|resume|undo`. They ask the daemon (`/driftless/v1/write`),
//! which edits the declaring file, validates, commits as the caller and
//! syncs; this module parses kubectl's argument forms, names the caller
//! and prints what happened as kubectl would, plus the commit.

use std::process::{Command, ExitCode};

use driftless_model::Kind;
use driftless_write::{Identity, Verb};
use serde_json::Value;

use super::describe::target;
use crate::cli::{MetadataArgs, ScaleArgs, SetCommand, UndoArgs, WriteOptions, WriteTarget};
use crate::connect::{block_on, client};
use crate::daemon::writes::{WireChange, WireRequest};
use crate::{CommandError, EXIT_INVALID};

/// `rollout restart|pause|resume`.
pub enum Rollout {
    /// restart.
    Restart,
    /// pause.
    Pause,
    /// resume.
    Resume,
}

/// `git config KEY` as the caller's git sees it (the repository here,
/// then the global and system files).
fn git_config(key: &str) -> Option<String> {
    let out = Command::new("git").args(["config", "--get", key]).output().ok()?;
    let value = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !value.is_empty()).then_some(value)
}

/// Who the commit is by: `--author`, else the caller's git identity (as
/// `git commit` finds it), else the login name on this host.
fn author(option: Option<&str>) -> Result<Identity, CommandError> {
    if let Some(text) = option {
        let (name, email) = text
            .strip_suffix('>')
            .and_then(|t| t.split_once('<'))
            .ok_or_else(|| CommandError::Usage(format!("--author must be \"Name <email>\", not {text:?}")))?;
        return Ok(Identity { name: name.trim().to_owned(), email: email.trim().to_owned() });
    }
    let name = std::env::var("GIT_AUTHOR_NAME").ok().or_else(|| git_config("user.name"));
    let email = std::env::var("GIT_AUTHOR_EMAIL").ok().or_else(|| git_config("user.email"));
    let login = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into());
    Ok(Identity { name: name.unwrap_or_else(|| login.clone()), email: email.unwrap_or_else(|| format!("{login}@{host}")) })
}

/// `KEY=VALUE` pairs to set and `KEY-` keys to remove.
type Pairs = (Vec<(String, String)>, Vec<String>);

fn split_pairs(pairs: &[String], what: &str) -> Result<Pairs, CommandError> {
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for pair in pairs {
        if let Some((k, v)) = pair.split_once('=') {
            set.push((k.to_owned(), v.to_owned()));
        } else if let Some(k) = pair.strip_suffix('-') {
            unset.push(k.to_owned());
        } else {
            return Err(CommandError::Usage(format!("{what} must be KEY=VALUE or KEY-, not {pair:?}")));
        }
    }
    Ok((set, unset))
}

fn list(text: Option<&str>) -> Result<Vec<(String, String)>, CommandError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| CommandError::Usage(format!("expected NAME=QUANTITY, not {p:?}"))))
        .collect()
}

/// `deployment.apps/web`, as kubectl prints an object it changed.
fn printed(kind: Kind, name: &str) -> String {
    let kind_name = kind.name().to_ascii_lowercase();
    if kind.group().is_empty() { format!("{kind_name}/{name}") } else { format!("{kind_name}.{}/{name}", kind.group()) }
}

/// Sends one request and prints the outcome; `done` is kubectl's past
/// participle (`scaled`).
fn send(resource: &str, name: Option<&str>, options: &WriteOptions, change: WireChange, done: &str) -> Result<ExitCode, CommandError> {
    let (kind, name) = target(resource, name)?;
    let dry_run = match options.dry_run.as_deref() {
        None | Some("none") => false,
        Some("client" | "server") => true,
        Some(other) => return Err(CommandError::Usage(format!("--dry-run must be \"none\", \"server\", or \"client\", not {other:?}"))),
    };
    let request = WireRequest {
        kind: kind.name().to_owned(),
        namespace: Some(options.namespace.clone()),
        name: name.clone(),
        change,
        author: author(options.author.as_deref())?,
        message: options.message.clone(),
        dry_run,
        branch: options.branch.clone(),
    };
    let body = serde_json::to_value(&request).map_err(|e| CommandError::Usage(e.to_string()))?;
    let reply = block_on(async { Ok::<_, CommandError>(client(&options.connect).post("/driftless/v1/write", &body).await) })?;
    let reply = match reply {
        Ok(reply) => reply,
        Err(driftless_api::ClientError::Status { message, .. }) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(error) => return Err(super::get::client_error(error)),
    };
    let object = printed(kind, &name);
    let subject = reply["message"].as_str().and_then(|m| m.lines().next()).unwrap_or_default();
    if dry_run {
        println!("{object} {done} (dry run: nothing committed)");
        print!("{}", reply["diff"].as_str().unwrap_or_default());
        print!("{}", reply["plan"].as_str().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let commit = reply["commit"].as_str().unwrap_or_default();
    let short = &commit[..commit.len().min(7)];
    let branch = reply["branch"].as_str().unwrap_or_default();
    if options.branch.is_some() {
        println!("{object} {done} on branch {branch} (commit {short} \"{subject}\"); the watched branch is unchanged");
        println!();
        print!("{}", reply["plan_markdown"].as_str().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{object} {done}");
    let sync = &reply["sync"];
    let result = match sync["result"].as_str() {
        Some("applied") if sync["commit"] == commit => "applied".to_owned(),
        Some("refused") => {
            format!("refused by the daemon: {}", sync["errors"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        }
        _ => "committed; the daemon applies it on its next sync".to_owned(),
    };
    println!("commit {short} on {branch}: {subject} ({result})");
    Ok(ExitCode::SUCCESS)
}

/// `driftless scale`.
pub fn scale(args: &ScaleArgs) -> Result<ExitCode, CommandError> {
    let t = &args.target;
    send(&t.target, t.name.as_deref(), &t.options, WireChange::Verb(Verb::Scale { replicas: args.replicas, current_replicas: args.current_replicas }), "scaled")
}

/// `driftless set image|env|resources`.
pub fn set(command: &SetCommand) -> Result<ExitCode, CommandError> {
    match command {
        SetCommand::Image(args) => {
            let mut images = Vec::new();
            for pair in &args.images {
                let (container, image) = pair.split_once('=').ok_or_else(|| CommandError::Usage(format!("expected CONTAINER=IMAGE, not {pair:?}")))?;
                images.push((container.to_owned(), image.to_owned()));
            }
            send(&args.target, None, &args.options, WireChange::Verb(Verb::SetImage { images }), "image updated")
        }
        SetCommand::Env(args) => {
            let (set, unset) = split_pairs(&args.pairs, "an environment variable")?;
            send(&args.target, None, &args.options, WireChange::Verb(Verb::SetEnv { container: args.container.clone(), set, unset }), "env updated")
        }
        SetCommand::Resources(args) => {
            let (limits, requests) = (list(args.limits.as_deref())?, list(args.requests.as_deref())?);
            if limits.is_empty() && requests.is_empty() {
                return Err(CommandError::Usage("give --limits or --requests".into()));
            }
            let verb = Verb::SetResources { container: args.container.clone(), limits, requests };
            send(&args.target, None, &args.options, WireChange::Verb(verb), "resource requirements updated")
        }
    }
}

/// `driftless label` (`annotations` false) and `annotate`.
pub fn metadata(args: &MetadataArgs, annotations: bool) -> Result<ExitCode, CommandError> {
    let (set, unset) = split_pairs(&args.pairs, if annotations { "an annotation" } else { "a label" })?;
    let overwrite = args.overwrite;
    let (verb, done) = if annotations { (Verb::Annotate { set, unset, overwrite }, "annotated") } else { (Verb::Label { set, unset, overwrite }, "labeled") };
    send(&args.target, None, &args.options, WireChange::Verb(verb), done)
}

/// `driftless rollout restart|pause|resume`.
pub fn rollout(target: &WriteTarget, which: Rollout) -> Result<ExitCode, CommandError> {
    let (verb, done) = match which {
        Rollout::Restart => (Verb::Restart { at: jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string() }, "restarted"),
        Rollout::Pause => (Verb::Pause, "paused"),
        Rollout::Resume => (Verb::Resume, "resumed"),
    };
    send(&target.target, target.name.as_deref(), &target.options, WireChange::Verb(verb), done)
}

/// `driftless rollout undo`.
pub fn undo(args: &UndoArgs) -> Result<ExitCode, CommandError> {
    let t = &args.target;
    let to_revision = (args.to_revision != 0).then_some(args.to_revision);
    send(&t.target, t.name.as_deref(), &t.options, WireChange::Undo { to_revision }, "rolled back")
}
