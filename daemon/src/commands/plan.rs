//! `driftless plan`: what changing from one revision to another does.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use driftless_diff::{Revision, render};
use driftless_manifest::{CommitInfo, GitRepo, RawFile};
use driftless_model::{Object, ObjectRef};
use driftless_validate::{Diagnostic, Report};
use serde_json::json;

use crate::cli::{Color, PlanArgs, PlanFormat};
use crate::{CommandError, EXIT_INVALID};

/// Validates both revisions and prints the plan; exit 1 when the target is
/// invalid (the daemon would refuse it whole).
pub fn run(args: &PlanArgs) -> Result<ExitCode, CommandError> {
    // The two revisions are independent: judge them side by side, one
    // repository handle each (libgit2 handles are not shared across threads).
    let ((from_commit, from), (to_commit, to)) = std::thread::scope(|scope| {
        let from = scope.spawn(|| load_and_validate(&args.repo, &args.from, &args.path));
        let to = load_and_validate(&args.repo, &args.to, &args.path);
        let from = from.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok::<_, CommandError>((from?, to?))
    })?;
    let heading = Heading { path: &args.path, from: &from_commit, to: &to_commit };

    if !to.is_valid() {
        let why =
            format!("{} ({}) is invalid: the daemon would refuse it whole and keep running the last good revision", heading.to.short_id(), heading.to.summary);
        print_refusal(args.output, &heading, &why, &to.diagnostics, Some(&to));
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    if !from.is_valid() {
        eprintln!("driftless: note: {} ({}) has {} error(s); planning from its valid objects only", args.from, from_commit.short_id(), from.summary.errors);
    }
    let plan = driftless_diff::plan(objects(&to), &Revision::new(objects(&from)));
    if !plan.is_applicable() {
        let diagnostics: Vec<Diagnostic> = plan.refused.iter().map(|r| to.error_at(&r.object, &r.pointer, &r.message)).collect();
        let why = format!(
            "{} ({}) changes fields Kubernetes cannot change in place: the daemon would refuse it whole and keep running {}",
            heading.to.short_id(),
            heading.to.summary,
            heading.from.short_id()
        );
        print_refusal(args.output, &heading, &why, &diagnostics, None);
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    match args.output {
        PlanFormat::Text => {
            let color = match args.color {
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
            value["from"] = commit_json(&from_commit);
            value["to"] = commit_json(&to_commit);
            println!("{value:#}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One revision's report; its files are dropped as soon as it is judged.
fn load_and_validate(repo: &Path, rev: &str, path: &str) -> Result<(CommitInfo, Report), CommandError> {
    let (commit, files) = GitRepo::open(repo)?.load(rev, path)?;
    Ok((commit, driftless_validate::validate(files.into_iter().map(RawFile::parse))))
}

fn objects(report: &Report) -> impl Iterator<Item = (&ObjectRef, &Object)> {
    report.objects.iter().map(|(object_ref, entry)| (object_ref, &entry.object))
}

struct Heading<'a> {
    path: &'a str,
    from: &'a CommitInfo,
    to: &'a CommitInfo,
}

impl Heading<'_> {
    fn path(&self) -> &str {
        if self.path.is_empty() { "/" } else { self.path }
    }

    fn text(&self) -> String {
        format!("Planning {} from {} \"{}\" to {} \"{}\"", self.path(), self.from.short_id(), self.from.summary, self.to.short_id(), self.to.summary)
    }

    fn markdown(&self) -> String {
        format!("Path `{}`: `{}` → `{}` ({})", self.path(), self.from.short_id(), self.to.short_id(), self.to.summary.replace('|', "\\|"))
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
            value["from"] = commit_json(heading.from);
            value["to"] = commit_json(heading.to);
            println!("{value:#}");
        }
    }
}
