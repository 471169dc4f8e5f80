//! Plan: pick two revisions of the synced repository, or a revision
//! against what runs now, and see the plan as its pull-request comment
//! renders (the markdown of `driftless plan -o markdown`, with the raw
//! text to copy), or why the daemon would refuse the revision, each error
//! at its file and line.
//!
//! Owns: the form (a GET, so a plan is a link to share and needs no CSRF
//! token), checking what is typed into it, and turning the plan's markdown
//! into HTML with every piece of raw HTML in it escaped.
//!
//! Must not touch: git refs, the store or the ledger. It reads commits and
//! the store's live objects; what a change does is decided by
//! `driftless_sync::revisions`, as for `driftless plan`.

use std::path::PathBuf;

use driftless_store::Store;
use driftless_sync::revisions::{self, Choices, Loaded, Verdict};
use driftless_sync::{StoreLive, SyncStatus, Syncer};
use maud::{Markup, PreEscaped, html};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

/// What `from` says to plan against what runs now.
const LIVE: &str = "live";

/// The longest revision accepted: more is no revision anyone types.
const MAX_REVISION: usize = 200;

/// How many commits of the watched branch the form suggests.
const RECENT: usize = 20;

/// How many branches the form suggests: a repository with thousands would
/// make every page heavy, and a branch not listed can still be typed.
const BRANCHES: usize = 100;

/// The repository the daemon syncs, as the page reads it.
#[derive(Clone, Debug)]
pub struct Repo {
    /// The repository read from: the user's, or the daemon's mirror of a
    /// remote one.
    pub path: PathBuf,
    /// The watched branch.
    pub branch: String,
    /// The folder (or file) inside the repository holding the manifests.
    pub manifests: String,
    /// The age identities SOPS files are opened with, as the sync loop has
    /// them.
    pub age_keys: Option<PathBuf>,
}

/// The page's content: the form, then the plan of `to` against `from`
/// (the applied commit and the watched branch when not given). Reads git
/// and the store: call it off the async workers.
pub(crate) fn render(store: &dyn Store, repo: Option<&Repo>, from: Option<&str>, to: Option<&str>) -> Markup {
    let Some(repo) = repo else {
        return html! {
            h1 { "Plan" }
            p.muted { "This daemon syncs no repository: there is nothing to plan." }
        };
    };
    let choices = revisions::choices(&repo.path, &repo.branch, RECENT).unwrap_or_else(|error| {
        // The form still works without suggestions; planning reports the
        // same failure where it matters.
        tracing::warn!(%error, repo = %repo.path.display(), "could not list the repository's revisions");
        Choices { watched: repo.branch.clone(), ..Choices::default() }
    });
    let status = Syncer::status(store);
    // An empty field (cleared by the user) means its default too.
    let given = |value: Option<&str>| value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let from = given(from).unwrap_or_else(|| status.applied.as_ref().map_or_else(|| LIVE.to_owned(), |applied| applied.id.clone()));
    let to = given(to).unwrap_or_else(|| choices.watched.clone());
    html! {
        h1 { "Plan" }
        (form(&choices, &from, &to))
        @match check("From", &from).and_then(|()| check_to(&to)) {
            Err(message) => p.error role="alert" { (message) },
            Ok(()) => (plan(store, repo, &status, &from, &to)),
        }
    }
}

/// The form, filled with what is planned.
fn form(choices: &Choices, from: &str, to: &str) -> Markup {
    let options = html! {
        @for branch in choices.branches.iter().take(BRANCHES) { option value=(branch) {} }
        @for commit in &choices.recent { option value=(commit.id) { (commit.short_id()) " " (commit.summary) } }
    };
    html! {
        form.plan method="get" action="/ui/plan" {
            p {
                label for="plan-from" { "From" } " "
                input #plan-from type="text" name="from" value=(from) list="plan-from-revisions" maxlength=(MAX_REVISION)
                    autocomplete="off" spellcheck="false" aria-describedby="plan-hint";
            }
            p {
                label for="plan-to" { "To" } " "
                input #plan-to type="text" name="to" value=(to) list="plan-revisions" maxlength=(MAX_REVISION)
                    autocomplete="off" spellcheck="false" aria-describedby="plan-hint";
            }
            p #plan-hint .muted {
                "A branch, tag or commit. From " code { (LIVE) } " plans against what runs now, drift included."
            }
            datalist #plan-from-revisions { option value=(LIVE) { "what runs now" } (options) }
            datalist #plan-revisions { (options) }
            button type="submit" { "Plan" }
        }
    }
}

/// Why `value`, typed into `field`, is not a revision to hand to git: too
/// long, or with characters no branch, tag, commit id or revision suffix
/// (`~2`, `^`, `@{1}`) has.
fn check(field: &str, value: &str) -> Result<(), String> {
    let length = value.chars().count();
    if length > MAX_REVISION {
        return Err(format!("{field} is {length} characters long: a revision has at most {MAX_REVISION}."));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./~^@{}+".contains(c);
    if value.starts_with('-') || !value.chars().all(allowed) {
        return Err(format!("{field} {value:?} is not a revision: use a branch, tag or commit (letters, digits and - _ . / ~ ^ @ {{ }} +)."));
    }
    Ok(())
}

fn check_to(to: &str) -> Result<(), String> {
    check("To", to)?;
    if to == LIVE {
        return Err(format!("To must be a revision: {LIVE:?} is only something to plan from."));
    }
    Ok(())
}

/// The plan of `to` against `from` (a revision, or what runs), or why it
/// cannot be made.
fn plan(store: &dyn Store, repo: &Repo, status: &SyncStatus, from: &str, to: &str) -> Markup {
    let keyring = match revisions::keyring(repo.age_keys.as_deref()) {
        Ok(keyring) => keyring,
        Err(error) => return html! { p.error role="alert" { "Cannot plan: " (error) } },
    };
    let planned = if from == LIVE {
        revisions::load(&repo.path, to, &repo.manifests, &keyring).map(|to| {
            let verdict = revisions::judge(&to.report, &StoreLive::new(store));
            (None, to, verdict)
        })
    } else {
        revisions::plan(&repo.path, &repo.manifests, from, to, &keyring).map(|planned| (Some(planned.from), planned.to, planned.verdict))
    };
    let (base, to, verdict) = match planned {
        Ok(planned) => planned,
        Err(error) => return html! { p.error role="alert" { "Cannot plan: " (error) } },
    };
    html! {
        h2.plan-heading {
            @match &base {
                Some(base) => { code { (base.commit.short_id()) } " " (base.commit.summary) }
                None => {
                    "what runs now"
                    @if let Some(applied) = &status.applied {
                        " (at " code { (&applied.id[..applied.id.len().min(7)]) } " " (applied.subject) ", drift included)"
                    } @else {
                        " (no revision applied yet)"
                    }
                }
            }
            " → " code { (to.commit.short_id()) } " " (to.commit.summary)
        }
        p.muted { "Manifests under " code { (if repo.manifests.is_empty() { "/" } else { &repo.manifests }) } " of " code { (repo.path.display().to_string()) } "." }
        @if let Some(base) = base.as_ref().filter(|base| !base.report.is_valid()) {
            p.muted {
                code { (from) } " (" (base.commit.short_id()) ") has " (base.report.summary.errors)
                " error(s): planned from its valid objects only."
            }
        }
        (verdict_markup(&to, verdict))
    }
}

/// The plan as its pull-request comment, or the refusal with each error at
/// its file and line.
fn verdict_markup(to: &Loaded, verdict: Verdict) -> Markup {
    match verdict {
        Verdict::Apply(plan) => {
            let markdown = driftless_diff::render::markdown(&plan);
            html! {
                div.plan { (PreEscaped(markdown_html(&markdown))) }
                details {
                    summary { "Markdown, to paste in a pull request" }
                    textarea readonly rows="16" cols="100" aria-label="The plan as markdown" { (markdown) }
                }
            }
        }
        Verdict::Invalid => html! {
            div.refused role="alert" {
                p { strong { "Refused: " } code { (to.commit.short_id()) } " is invalid: the daemon would refuse it whole and keep running the last good revision." }
                ul.errors { @for diagnostic in &to.report.diagnostics { li { code { (diagnostic.to_string()) } } } }
                p.muted { (to.report.summary.to_string()) }
            }
        },
        Verdict::NotApplicable { diagnostics, .. } => html! {
            div.refused role="alert" {
                p { strong { "Refused: " } code { (to.commit.short_id()) } " changes fields Kubernetes cannot change in place: the daemon would refuse it whole." }
                ul.errors { @for diagnostic in &diagnostics { li { code { (diagnostic.to_string()) } } } }
            }
        },
    }
}

/// The plan's markdown as HTML. The markdown holds names and values from
/// git, so no HTML in it is trusted: each piece is shown as text, except
/// the `<details><summary>…</summary>` and `</details>` lines the
/// renderer writes around each object's diff, which are rebuilt here with
/// their text escaped. Links and images keep their text only.
fn markdown_html(markdown: &str) -> String {
    let mut events = Vec::new();
    let mut block: Option<String> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::HtmlBlock) => block = Some(String::new()),
            Event::End(TagEnd::HtmlBlock) => events.extend(html_block(&block.take().unwrap_or_default())),
            Event::Html(text) if block.is_some() => block.get_or_insert_default().push_str(&text),
            Event::Html(text) | Event::InlineHtml(text) => events.push(Event::Text(text)),
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) | Event::End(TagEnd::Link | TagEnd::Image) => {}
            other => events.push(other),
        }
    }
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events.into_iter());
    out
}

/// One HTML block of the markdown: the collapsible frame around a diff,
/// or else a paragraph of its text.
fn html_block(text: &str) -> Vec<Event<'static>> {
    let line = text.trim_end_matches('\n');
    if line == "</details>" {
        return vec![Event::Html(CowStr::from("</details>\n"))];
    }
    if let Some(summary) = line.strip_prefix("<details><summary>").and_then(|rest| rest.strip_suffix("</summary>")) {
        return vec![Event::Html(CowStr::from("<details><summary>")), Event::Text(CowStr::from(summary.to_owned())), Event::Html(CowStr::from("</summary>\n"))];
    }
    vec![Event::Start(Tag::Paragraph), Event::Text(CowStr::from(line.to_owned())), Event::End(TagEnd::Paragraph)]
}

#[cfg(test)]
mod tests;
