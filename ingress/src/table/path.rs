//! Path matching, as the Ingress specification defines it: `Exact` is the
//! whole path, case-sensitive; `Prefix` matches element by element on
//! `/`-separated segments, ignoring a trailing slash (`/foo` matches
//! `/foo`, `/foo/` and `/foo/bar`, not `/foobar`).

use super::PathMatch;

/// What a rule's `pathType` says; `ImplementationSpecific` is `Prefix`.
pub(super) fn parse_kind(path_type: &str) -> Option<PathMatch> {
    match path_type {
        "Exact" => Some(PathMatch::Exact),
        "Prefix" | "ImplementationSpecific" => Some(PathMatch::Prefix),
        _ => None,
    }
}

/// A rule's path as stored for matching: as written for `Exact`, without
/// trailing slashes for `Prefix` (so `/` becomes the empty string, which
/// every path starts with).
pub(super) fn normalize(kind: PathMatch, path: &str) -> String {
    match kind {
        PathMatch::Exact => path.to_owned(),
        PathMatch::Prefix => path.trim_end_matches('/').to_owned(),
    }
}

/// Whether a rule (`kind`, `rule` normalized by [`normalize`]) matches the
/// request path `path`.
pub(super) fn matches(kind: PathMatch, rule: &str, path: &str) -> bool {
    match kind {
        PathMatch::Exact => path == rule,
        // `/`, the most common rule, matches every path; a call into
        // libc's memcmp to compare nothing cost 2 % of the proxy's user
        // time (docs/benchmarks.md).
        PathMatch::Prefix if rule.is_empty() => true,
        PathMatch::Prefix => match path.strip_prefix(rule) {
            // `/foo` matches `/foo`, `/foo/` and `/foo/bar`: what follows
            // the prefix is nothing or starts a new element.
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        },
    }
}
