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
use crate::cli::{
    ApplyArgs, AutoscaleArgs, CreateCommand, CreateDataArgs, DeleteArgs, MetadataArgs, RollbackArgs, ScaleArgs, SetCommand, UndoArgs, WriteOptions, WriteTarget,
};
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

/// Sends one request about one object and prints the outcome; `done` is
/// kubectl's past participle (`scaled`).
fn send(resource: &str, name: Option<&str>, options: &WriteOptions, change: WireChange, done: &str) -> Result<ExitCode, CommandError> {
    let (kind, name) = target(resource, name)?;
    send_about(Some((kind, name)), vec![], options, change, done)
}

/// `--dry-run`'s strategies, all meaning "commit nothing" but `none`.
fn dry_run(options: &WriteOptions) -> Result<bool, CommandError> {
    match options.dry_run.as_deref() {
        None | Some("none") => Ok(false),
        Some("client" | "server") => Ok(true),
        Some(other) => Err(CommandError::Usage(format!("--dry-run must be \"none\", \"server\", or \"client\", not {other:?}"))),
    }
}

/// A request about `one` object (or the objects in `change`).
fn request(one: Option<(Kind, String)>, options: &WriteOptions, change: WireChange) -> Result<WireRequest, CommandError> {
    let (kind, name) = one.map(|(k, n)| (k.name().to_owned(), n)).unwrap_or_default();
    Ok(WireRequest {
        kind,
        namespace: Some(options.namespace.clone()),
        name,
        change,
        author: author(options.author.as_deref())?,
        message: options.message.clone(),
        dry_run: dry_run(options)?,
        branch: options.branch.clone(),
    })
}

/// Posts a request; the inner `Err` is the daemon's refusal, in its words.
fn post(options: &WriteOptions, request: &WireRequest) -> Result<Result<Value, String>, CommandError> {
    let body = serde_json::to_value(request).map_err(|e| CommandError::Usage(e.to_string()))?;
    let reply = block_on(async { Ok::<_, CommandError>(client(&options.connect).post("/driftless/v1/write", &body).await) })?;
    match reply {
        Ok(reply) => Ok(Ok(reply)),
        Err(driftless_api::ClientError::Status { message, .. }) => Ok(Err(message)),
        Err(error) => Err(super::get::client_error(error)),
    }
}

/// Sends a request (about one object, or `objects` already named for
/// printing) and prints the outcome.
fn send_about(one: Option<(Kind, String)>, objects: Vec<String>, options: &WriteOptions, change: WireChange, done: &str) -> Result<ExitCode, CommandError> {
    let objects = match &one {
        Some((kind, name)) => vec![printed(*kind, name)],
        None => objects,
    };
    let request = request(one, options, change)?;
    match post(options, &request)? {
        Ok(reply) => Ok(report(&reply, &objects.join(&format!(" {done}\n")), done, options, request.dry_run)),
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// Prints what a write did, as kubectl words it plus the commit.
fn report(reply: &Value, object: &str, done: &str, options: &WriteOptions, dry_run: bool) -> ExitCode {
    let subject = reply["message"].as_str().and_then(|m| m.lines().next()).unwrap_or_default();
    if dry_run {
        println!("{object} {done} (dry run: nothing committed)");
        print!("{}", reply["diff"].as_str().unwrap_or_default());
        print!("{}", reply["plan"].as_str().unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let commit = reply["commit"].as_str().unwrap_or_default();
    let short = &commit[..commit.len().min(7)];
    let branch = reply["branch"].as_str().unwrap_or_default();
    if options.branch.is_some() {
        println!("{object} {done} on branch {branch} (commit {short} \"{subject}\"); the watched branch is unchanged");
        println!();
        print!("{}", reply["plan_markdown"].as_str().unwrap_or_default());
        return ExitCode::SUCCESS;
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
    ExitCode::SUCCESS
}

/// The line that ends `edit`'s header: everything below it is the
/// document, comments and all.
const EDIT_MARKER: &str = "# ---- everything below this line is the document; your comments in it are kept ----";

/// `driftless edit`: the document as git holds it, in `$KUBE_EDITOR`,
/// `$EDITOR` or `vi`; saved, it is one commit. A refused edit reopens with
/// the reason on top, as kubectl's does; saving it unchanged gives up.
pub fn edit(args: &WriteTarget) -> Result<ExitCode, CommandError> {
    let (kind, name) = target(&args.target, args.name.as_deref())?;
    let options = &args.options;
    let open = request(Some((kind, name.clone())), options, WireChange::Open)?;
    let opened: driftless_write::Opened = match post(options, &open)? {
        Ok(reply) => serde_json::from_value(reply).map_err(|e| CommandError::Usage(format!("the daemon's reply: {e}")))?,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let editor = std::env::var("KUBE_EDITOR").or_else(|_| std::env::var("EDITOR")).unwrap_or_else(|_| "vi".into());
    let file = tempfile::Builder::new().prefix("driftless-edit-").suffix(".yaml").tempfile().map_err(|e| CommandError::Usage(e.to_string()))?;
    let path = file.path().to_owned();
    let header = format!(
        "# Edit {} as {}:{} declares it at {}. Saving commits it to the watched\n# branch; an empty file, or the text unchanged, cancels.\n",
        printed(kind, &name),
        opened.file,
        opened.line,
        &opened.commit[..opened.commit.len().min(7)]
    );
    let mut shown = opened.text.clone();
    let mut refusal: Option<String> = None;
    loop {
        let mut top = header.clone();
        if let Some(why) = &refusal {
            top.push_str("#\n# The edit was refused; fix it and save again, or save unchanged to give up:\n");
            top.extend(why.lines().map(|l| format!("# {l}\n")));
        }
        std::fs::write(&path, format!("{top}{EDIT_MARKER}\n{shown}")).map_err(|e| CommandError::Usage(e.to_string()))?;
        let status = Command::new("sh").arg("-c").arg(format!("{editor} \"$1\"")).arg("sh").arg(&path).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("error: the editor ({editor}) failed; nothing was committed");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        let saved = std::fs::read_to_string(&path).map_err(|e| CommandError::Usage(e.to_string()))?;
        let edited = match saved.split_once(&format!("{EDIT_MARKER}\n")) {
            Some((_, document)) => document.to_owned(),
            None => saved.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect(),
        };
        if edited.trim().is_empty() || edited == opened.text {
            println!("Edit cancelled, no changes made.");
            return Ok(ExitCode::SUCCESS);
        }
        if refusal.is_some() && edited == shown {
            let kept = path.with_extension("kept.yaml");
            let _ = std::fs::write(&kept, &edited);
            eprintln!("error: {}", refusal.unwrap_or_default());
            eprintln!("A copy of your changes has been stored to {:?}", kept);
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        let change = WireChange::Edit { opened: opened.text.clone(), edited: edited.clone() };
        let request = request(Some((kind, name.clone())), options, change)?;
        match post(options, &request)? {
            Ok(reply) => return Ok(report(&reply, &printed(kind, &name), "edited", options, request.dry_run)),
            Err(message) => {
                refusal = Some(message);
                shown = edited;
            }
        }
    }
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
    // kubectl's two forms: `label pod/web k=v` and `label pod web k=v`.
    let (name, pairs) = match args.pairs.split_first() {
        Some((name, rest)) if !args.target.contains('/') && !name.contains('=') && !name.ends_with('-') => (Some(name.as_str()), rest),
        _ => (None, &args.pairs[..]),
    };
    let what = if annotations { "an annotation" } else { "a label" };
    if pairs.is_empty() {
        return Err(CommandError::Usage(format!("no change given: name {what} as KEY=VALUE, or KEY- to remove it")));
    }
    let (set, unset) = split_pairs(pairs, what)?;
    let overwrite = args.overwrite;
    let (verb, done) = if annotations { (Verb::Annotate { set, unset, overwrite }, "annotated") } else { (Verb::Label { set, unset, overwrite }, "labeled") };
    send(&args.target, name, &args.options, WireChange::Verb(verb), done)
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

/// `driftless rollback REV`: the manifests as commit REV declared them.
pub fn rollback(args: &RollbackArgs) -> Result<ExitCode, CommandError> {
    let change = WireChange::Restore { commit: args.commit.clone() };
    send_about(None, vec![format!("manifests at {}", args.commit)], &args.options, change, "rolled back")
}

/// `driftless rollout undo`.
pub fn undo(args: &UndoArgs) -> Result<ExitCode, CommandError> {
    let t = &args.target;
    let to_revision = (args.to_revision != 0).then_some(args.to_revision);
    send(&t.target, t.name.as_deref(), &t.options, WireChange::Undo { to_revision }, "rolled back")
}

fn printed_value(value: &Value) -> String {
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    match driftless_model::kind_of(value) {
        Ok(kind) => printed(kind, name),
        Err(_) => name.to_owned(),
    }
}

/// `driftless apply -f`.
pub fn apply(args: &ApplyArgs) -> Result<ExitCode, CommandError> {
    let files = driftless_manifest::load_paths(&args.files)?;
    let mut documents = Vec::new();
    for file in files {
        if driftless_secrets::is_encrypted(&file.bytes) {
            // Its documents would be written back re-rendered, which breaks
            // SOPS's MAC (or, decrypted, would commit the plaintext).
            return Err(CommandError::Usage(format!("{} is SOPS-encrypted: commit the file itself to the repository", file.path)));
        }
        let parsed = file.parse();
        let docs = parsed.outcome.map_err(|e| CommandError::Usage(format!("{}:{}: {}", parsed.path, e.pos, e.message)))?;
        documents.extend(docs.into_iter().map(|d| d.value));
    }
    if documents.is_empty() {
        return Err(CommandError::Usage("no objects passed to apply".into()));
    }
    let objects = documents.iter().map(printed_value).collect();
    send_about(None, objects, &args.options, WireChange::Apply { verb: "apply".into(), documents }, "configured")
}

/// `--from-literal` and `--from-file` as a ConfigMap's or Secret's data.
fn data(args: &CreateDataArgs) -> Result<Vec<(String, Vec<u8>)>, CommandError> {
    let mut out = Vec::new();
    for literal in &args.from_literal {
        let (k, v) = literal.split_once('=').ok_or_else(|| CommandError::Usage(format!("--from-literal must be KEY=VALUE, not {literal:?}")))?;
        out.push((k.to_owned(), v.as_bytes().to_vec()));
    }
    for spec in &args.from_file {
        let (key, path) = match spec.split_once('=') {
            Some((k, p)) => (k.to_owned(), std::path::PathBuf::from(p)),
            None => {
                let path = std::path::PathBuf::from(spec);
                (path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), path)
            }
        };
        let bytes = std::fs::read(&path).map_err(|source| CommandError::Io { path: path.clone(), source })?;
        out.push((key, bytes));
    }
    Ok(out)
}

/// `driftless create configmap|secret generic`.
pub fn create(command: &CreateCommand) -> Result<ExitCode, CommandError> {
    use base64::Engine;
    let (args, secret) = match command {
        CreateCommand::Configmap(args) => (args, false),
        CreateCommand::Secret { args, .. } => (args, true),
    };
    let mut entries = serde_json::Map::new();
    for (key, bytes) in data(args)? {
        let value = if secret {
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        } else {
            String::from_utf8(bytes).map_err(|_| CommandError::Usage(format!("{key}: binary data needs a Secret")))?
        };
        entries.insert(key, Value::String(value));
    }
    let mut object = serde_json::json!({
        "apiVersion": "v1",
        "kind": if secret { "Secret" } else { "ConfigMap" },
        "metadata": {"name": args.name, "namespace": args.options.namespace},
        "data": entries,
    });
    if secret {
        object["type"] = "Opaque".into();
    }
    let objects = vec![printed_value(&object)];
    send_about(None, objects, &args.options, WireChange::Apply { verb: "create".into(), documents: vec![object] }, "created")
}

/// `driftless autoscale`.
pub fn autoscale(args: &AutoscaleArgs) -> Result<ExitCode, CommandError> {
    let (kind, name) = target(&args.target, None)?;
    if args.max < args.min.max(1) {
        return Err(CommandError::Usage("--max must be at least --min (and 1)".into()));
    }
    let mut hpa = serde_json::json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": args.name.clone().unwrap_or_else(|| name.clone()), "namespace": args.options.namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": kind.api_version(), "kind": kind.name(), "name": name},
            "minReplicas": args.min,
            "maxReplicas": args.max,
        },
    });
    if let Some(percent) = args.cpu_percent {
        hpa["spec"]["metrics"] =
            serde_json::json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}}]);
    }
    let objects = vec![printed(kind, &name)];
    send_about(None, objects, &args.options, WireChange::Apply { verb: "autoscale".into(), documents: vec![hpa] }, "autoscaled")
}

/// `driftless delete`: declared objects by a commit; a pod or node git
/// does not declare directly, as before (a pod's owner makes another; a
/// node's pods are removed with it).
pub fn delete(args: &DeleteArgs) -> Result<ExitCode, CommandError> {
    let mut objects: Vec<(Kind, String, String)> = Vec::new();
    if let Some(resource) = &args.resource {
        let (kind, name) = target(resource, args.name.as_deref())?;
        if matches!(kind, Kind::Pod | Kind::Node) && args.files.is_empty() {
            let path = kind.object_path(&args.options.namespace, &name);
            let object = block_on(async { client(&args.options.connect).get(&path).await.map_err(super::get::client_error) })?;
            let declared = object.pointer("/metadata/annotations").and_then(|a| a.get(driftless_model::annotations::SOURCE_COMMIT)).is_some();
            if !declared {
                block_on(async { client(&args.options.connect).delete(&path).await.map_err(super::get::client_error) })?;
                println!("{} {name:?} deleted", kind.name().to_ascii_lowercase());
                return Ok(ExitCode::SUCCESS);
            }
        }
        objects.push((kind, args.options.namespace.clone(), name));
    }
    for file in driftless_manifest::load_paths(&args.files)? {
        let parsed = file.parse();
        let docs = parsed.outcome.map_err(|e| CommandError::Usage(format!("{}:{}: {}", parsed.path, e.pos, e.message)))?;
        for doc in docs {
            let kind = driftless_model::kind_of(&doc.value).map_err(|e| CommandError::Usage(format!("{}: {e}", parsed.path)))?;
            let namespace = doc.value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(&args.options.namespace).to_owned();
            objects.push((kind, namespace, doc.name().unwrap_or_default().to_owned()));
        }
    }
    if objects.is_empty() {
        return Err(CommandError::Usage("name an object (KIND/NAME) or give -f FILE".into()));
    }
    let printed_objects = objects.iter().map(|(k, _, n)| printed(*k, n)).collect();
    let wire = objects.into_iter().map(|(k, ns, n)| (k.name().to_owned(), ns, n)).collect();
    send_about(None, printed_objects, &args.options, WireChange::Delete { objects: wire }, "deleted")
}
