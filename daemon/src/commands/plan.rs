//! `driftless plan`: what changing from one revision to another does, or
//! (`--live`, and `driftless diff`) from what runs now to a revision.
//!
//! Loading, validating and judging are `driftless_sync::revisions`' (the
//! dashboard's Plan page asks it too); this module fetches what runs from
//! the daemon and prints the answer.

use std::io::IsTerminal;
use std::process::ExitCode;

use driftless_diff::{Plan, Snapshot, render};
use driftless_manifest::CommitInfo;
use driftless_sync::revisions::{self, RevisionError, Verdict};
use driftless_validate::{Diagnostic, Report};
use serde_json::{Value, json};

use super::get::client_error;
use crate::cli::{Color, ConnectArgs, DiffArgs, PlanArgs, PlanFormat, PlanTarget};
use crate::connect::block_on;
use crate::{CommandError, EXIT_INVALID, EXIT_USAGE};

/// Validates both revisions and prints the plan; exit 1 when the target is
/// invalid (the daemon would refuse it whole).
pub fn run(args: &PlanArgs) -> Result<ExitCode, CommandError> {
    let target = &args.target;
    let output = Output { format: target.output, color: target.color };
    if args.live {
        let planned = live(target, &args.connect, output)?;
        return Ok(if planned.is_some() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_INVALID) });
    }
    let from_rev = args.from.as_deref().unwrap_or("HEAD");
    let keyring = super::secrets::keyring(&args.connect.data_dir)?;
    let path = target.path.as_deref().unwrap_or("");
    let planned = revisions::plan(&target.repo, path, from_rev, &target.to, &keyring).map_err(revision_error)?;
    let (from, to) = (&planned.from, &planned.to);
    let heading = Heading { path, from: Base::Revision(&from.commit), to: &to.commit };
    if !from.report.is_valid() {
        eprintln!("driftless: note: {from_rev} ({}) has {} error(s); planning from its valid objects only", from.commit.short_id(), from.report.summary.errors);
    }
    Ok(match print(&heading, &to.report, planned.verdict, output) {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::from(EXIT_INVALID),
    })
}

/// `driftless diff`: exit 0 when merging `--to` changes nothing that runs,
/// 1 when it does, 2 when it would be refused (as `kubectl diff`: above 1
/// is not an answer).
pub fn diff(args: &DiffArgs) -> Result<ExitCode, CommandError> {
    let output = Output { format: args.target.output, color: args.target.color };
    Ok(match live(&args.target, &args.connect, output)? {
        Some(plan) if plan.is_empty() => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(1),
        None => ExitCode::from(EXIT_USAGE),
    })
}

/// Plans `to` against the daemon's live objects and prints it; `None` when
/// the daemon would refuse `to`.
fn live(target: &PlanTarget, connect: &ConnectArgs, output: Output) -> Result<Option<Plan>, CommandError> {
    let client = crate::connect::client(connect);
    let status = block_on(async { client.get("/driftless/v1/status").await.map_err(client_error) })?;
    let sync = &status["sync"];
    let path = target.path.clone().unwrap_or_else(|| sync["path"].as_str().unwrap_or_default().to_owned());
    let to = revisions::load(&target.repo, &target.to, &path, &super::secrets::keyring(&connect.data_dir)?).map_err(revision_error)?;
    let wanted: Vec<Value> = to.report.objects.keys().map(driftless_diff::ref_json).collect();
    let snapshot = block_on(async { client.post("/driftless/v1/live", &json!({"objects": wanted})).await.map_err(client_error) })?;
    let snapshot =
        Snapshot::from_json(&snapshot).ok_or_else(|| CommandError::Usage("the daemon's live objects came in a form this client does not read".into()))?;
    let heading = Heading { path: &path, from: Base::Live { running: sync.get("applied").filter(|a| !a.is_null()).cloned() }, to: &to.commit };
    Ok(print(&heading, &to.report, revisions::judge(&to.report, &snapshot), output))
}

/// How to print.
#[derive(Clone, Copy)]
struct Output {
    format: PlanFormat,
    color: Color,
}

/// Prints the plan, or the refusal (then `None`): the same words whether
/// the base is a revision or what runs.
fn print(heading: &Heading<'_>, to: &Report, verdict: Verdict, output: Output) -> Option<Plan> {
    let plan = match verdict {
        Verdict::Apply(plan) => plan,
        Verdict::Invalid => {
            let why = format!(
                "{} ({}) is invalid: the daemon would refuse it whole and keep running the last good revision",
                heading.to.short_id(),
                heading.to.summary
            );
            print_refusal(output.format, heading, &why, &to.diagnostics, Some(to));
            return None;
        }
        Verdict::NotApplicable { diagnostics, .. } => {
            let why = format!(
                "{} ({}) changes fields Kubernetes cannot change in place: the daemon would refuse it whole and keep running {}",
                heading.to.short_id(),
                heading.to.summary,
                heading.from.short()
            );
            print_refusal(output.format, heading, &why, &diagnostics, None);
            return None;
        }
    };
    match output.format {
        PlanFormat::Text => {
            let color = match output.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            };
            println!("{}", heading.text());
            print!("{}", render::text(&plan, color));
        }
        PlanFormat::Markdown => {
            println!("{}\n", heading.markdown());
            print!("{}", render::markdown(&plan));
        }
        PlanFormat::Json => {
            let mut value = render::json(&plan);
            value["valid"] = json!(true);
            value["from"] = heading.from.json();
            value["to"] = commit_json(heading.to);
            println!("{value:#}");
        }
    }
    Some(plan)
}

/// A revision that could not be read, as the CLI reports it.
fn revision_error(error: RevisionError) -> CommandError {
    match error {
        RevisionError::Load(error) => CommandError::Load(error),
        RevisionError::Git(error) => CommandError::Git(error),
        other => CommandError::Usage(other.to_string()),
    }
}

/// What a plan starts from.
enum Base<'a> {
    /// A revision's objects.
    Revision(&'a CommitInfo),
    /// The daemon's live objects, with the commit it runs (as its status
    /// reports it).
    Live { running: Option<Value> },
}

impl Base<'_> {
    /// The short form in sentences.
    fn short(&self) -> String {
        match self {
            Base::Revision(commit) => commit.short_id().to_owned(),
            Base::Live { running: Some(applied) } => applied["id"].as_str().unwrap_or_default().chars().take(7).collect(),
            Base::Live { running: None } => "nothing".to_owned(),
        }
    }

    fn text(&self) -> String {
        match self {
            Base::Revision(commit) => format!("{} \"{}\"", commit.short_id(), commit.summary),
            Base::Live { running: Some(applied) } => {
                format!("what runs (at {} \"{}\", drift included)", self.short(), applied["subject"].as_str().unwrap_or_default())
            }
            Base::Live { running: None } => "what runs (no revision applied yet)".to_owned(),
        }
    }

    fn markdown(&self) -> String {
        match self {
            Base::Revision(commit) => format!("`{}`", commit.short_id()),
            Base::Live { .. } => format!("live (`{}`)", self.short()),
        }
    }

    fn json(&self) -> Value {
        match self {
            Base::Revision(commit) => commit_json(commit),
            Base::Live { running } => json!({"live": true, "running": running}),
        }
    }
}

struct Heading<'a> {
    path: &'a str,
    from: Base<'a>,
    to: &'a CommitInfo,
}

impl Heading<'_> {
    fn path(&self) -> &str {
        if self.path.is_empty() { "/" } else { self.path }
    }

    fn text(&self) -> String {
        format!("Planning {} from {} to {} \"{}\"", self.path(), self.from.text(), self.to.short_id(), self.to.summary)
    }

    fn markdown(&self) -> String {
        format!("Path `{}`: {} → `{}` ({})", self.path(), self.from.markdown(), self.to.short_id(), self.to.summary.replace('|', "\\|"))
    }
}

fn commit_json(commit: &CommitInfo) -> serde_json::Value {
    json!({"id": commit.id, "summary": commit.summary, "author": commit.author, "time": commit.time})
}

/// The refusal: why, then each finding; the report's summary when the
/// target is invalid as a whole.
fn print_refusal(format: PlanFormat, heading: &Heading<'_>, why: &str, diagnostics: &[Diagnostic], report: Option<&Report>) {
    match format {
        PlanFormat::Text => {
            println!("{}", heading.text());
            println!("{why}");
            for diagnostic in diagnostics {
                println!("{diagnostic}");
            }
            if let Some(report) = report {
                println!("{}", report.summary);
            }
        }
        PlanFormat::Markdown => {
            println!("{}\n", heading.markdown());
            println!("**Driftless plan:** ❌ {why}.\n\n```");
            for diagnostic in diagnostics {
                println!("{diagnostic}");
            }
            if let Some(report) = report {
                println!("{}", report.summary);
            }
            println!("```");
        }
        PlanFormat::Json => {
            let mut value = match report {
                Some(report) => report.to_json(),
                None => json!({ "diagnostics": diagnostics }),
            };
            value["valid"] = json!(false);
            value["from"] = heading.from.json();
            value["to"] = commit_json(heading.to);
            println!("{value:#}");
        }
    }
}
