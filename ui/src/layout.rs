//! The page shell every page shares: the document head, the navigation
//! (with the current page marked for screen readers), who is logged in and
//! the log-out form.
//!
//! Must not touch: any page's content. Every value interpolated here goes
//! through maud, which escapes it.

use maud::{DOCTYPE, Markup, html};

use crate::session::Session;

/// The pages in the navigation, by path under `/ui/`.
const PAGES: &[(&str, &str)] = &[("", "Overview"), ("workloads", "Workloads"), ("history", "History"), ("plan", "Plan")];

/// A whole page: `title`, the page `current` is (its path under `/ui/`),
/// and its body.
pub(crate) fn page(title: &str, current: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Driftless" }
                link rel="stylesheet" href="/ui/assets/style.css";
                @if session.is_some() { script src="/ui/assets/live.js" defer {} }
            }
            body {
                header.top {
                    a.brand href="/ui/" { "Driftless" }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            ul {
                                @for (path, name) in PAGES {
                                    li {
                                        @if *path == current {
                                            a href={ "/ui/" (path) } aria-current="page" { (name) }
                                        } @else {
                                            a href={ "/ui/" (path) } { (name) }
                                        }
                                    }
                                }
                            }
                        }
                        form.who method="post" action="/ui/logout" {
                            span { "Signed in as " strong { (session.caller.user) } " " }
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}
