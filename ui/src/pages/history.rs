//! History: the ledger, newest first, one row per sync (applied or
//! refused) and per status change (an autoscaler's rescale), each
//! expanding to what the sync did (the objects it created, changed,
//! replaced and deleted) or the errors it was refused for.
//!
//! Each applied sync but the running one offers "Roll back to here",
//! which shows the commit the write path would make before making it
//! (`crate::rollback`).
//!
//! Must not touch: the ledger (it reads `refs/driftless/applied`).

use driftless_sync::LedgerEntry;
use maud::{Markup, html};

/// How many syncs the page shows.
pub(crate) const LIMIT: usize = 200;

/// What the rows depend on beyond the entries.
pub(crate) struct View {
    /// Now, in seconds since the epoch.
    pub(crate) now: i64,
    /// The commit running now: no rollback to it.
    pub(crate) running: Option<String>,
    /// Whether the session may commit (a read-only token may not).
    pub(crate) may_write: bool,
}

/// The page's content for `entries`, newest first.
pub(crate) fn render(entries: &[LedgerEntry], view: &View) -> Markup {
    let now = view.now;
    html! {
        h1 { "History" }
        @if entries.is_empty() {
            p.muted { "No syncs yet." }
        }
        ol.history reversed {
            @for entry in entries {
                li data-commit=(entry.source) data-result=(entry.result) {
                    details id={ "sync-" (entry.synced_at) "-" (&entry.source[..entry.source.len().min(12)]) } {
                        summary {
                            span class={ "result result-" (entry.result) } { (entry.result) } " "
                            code { (&entry.source[..entry.source.len().min(7)]) } " " (entry.subject)
                            span.muted { " · " (entry.author) " · synced " (driftless_printers::age::human(now - entry.synced_at)) " ago · " (entry.changes()) }
                        }
                        @if entry.result == "applied" && view.may_write && view.running.as_deref() != Some(entry.source.as_str()) {
                            p { a.button href={ "/ui/rollback?to=" (entry.source) } { "Roll back to here…" } }
                        }
                        @if !entry.errors.is_empty() {
                            ul.errors { @for error in &entry.errors { li { (super::file::located(error, &entry.source)) } } }
                        }
                        @if !entry.actions.is_empty() {
                            table {
                                thead { tr { th scope="col" { "Change" } th scope="col" { "Object" } th scope="col" { "Effect" } } }
                                tbody {
                                    @for action in &entry.actions {
                                        tr { td { (action.change.as_str()) } td { (action.object) } td { (action.effect) } }
                                    }
                                }
                            }
                        } @else if entry.errors.is_empty() {
                            p.muted { "No changes." }
                        }
                        @if !entry.trailers.is_empty() {
                            ul.muted { @for trailer in &entry.trailers { li { code { (trailer) } } } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use driftless_sync::{Action, Change};

    use super::*;

    #[test]
    fn each_sync_expands_to_its_changes_or_its_errors() {
        let applied = LedgerEntry {
            source: "0123456789abcdef".into(),
            subject: "web v2".into(),
            author: "Grace <grace@example.invalid>".into(),
            result: "applied".into(),
            actions: vec![Action { change: Change::Update, object: "Deployment default/web".into(), effect: "rolls pods".into() }],
            ..LedgerEntry::default()
        };
        let refused = LedgerEntry {
            source: "fedcba9876543210".into(),
            subject: "<img src=x onerror=alert(1)>".into(),
            result: "refused".into(),
            errors: vec!["apps/svc.yaml:9:5: error: Service/web: spec.ports[0].nodePort: may not be used".into()],
            ..LedgerEntry::default()
        };
        let view = View { now: 100, running: None, may_write: true };
        let html = render(&[refused, applied.clone()], &view).into_string();
        assert!(html.contains("data-result=\"refused\"") && html.contains("apps/svc.yaml:9:5</a>: error"), "{html}");
        assert!(html.contains("href=\"/ui/files?rev=fedcba9876543210&amp;path=apps%2Fsvc.yaml#L9\""), "the error links to its line: {html}");
        assert!(html.contains("href=\"/ui/rollback?to=0123456789abcdef\""), "an applied sync offers a rollback: {html}");
        let running = View { now: 100, running: Some("0123456789abcdef".into()), may_write: true };
        assert!(!render(std::slice::from_ref(&applied), &running).into_string().contains("/ui/rollback"), "not to what runs");
        let reader = View { now: 100, running: None, may_write: false };
        assert!(!render(std::slice::from_ref(&applied), &reader).into_string().contains("/ui/rollback"), "not for a read-only token");
        assert!(html.contains("1 error") && html.contains("1 updated"), "{html}");
        assert!(html.contains("<td>update</td><td>Deployment default/web</td><td>rolls pods</td>"), "{html}");
        assert!(!html.contains("<img") && html.contains("&lt;img src=x onerror=alert(1)&gt;"), "escaped: {html}");
        assert!(render(&[], &view).into_string().contains("No syncs yet."));
    }
}
