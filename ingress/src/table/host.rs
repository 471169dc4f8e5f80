//! Host names: normalizing a request's Host header or SNI name, parsing an
//! Ingress rule's host, and the one-label wildcard rule of the Ingress
//! specification (`*.example.com` matches `a.example.com`, not
//! `a.b.example.com` nor `example.com`).

use std::borrow::Cow;

/// What an Ingress rule's `host` (or a `tls[].hosts` entry) says.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) enum HostPattern {
    /// No host, or an empty one: every request.
    Any,
    /// An exact name, lowercased.
    Exact(String),
    /// `*.suffix`: any single label followed by `suffix` (lowercased).
    Wildcard(String),
}

/// Parses a rule's host. `Err` says why it is unusable; the API server
/// would have refused it, but the table is built from whatever it gets.
pub(super) fn parse_pattern(host: Option<&str>) -> Result<HostPattern, String> {
    let Some(host) = host.map(str::trim).filter(|host| !host.is_empty()) else {
        return Ok(HostPattern::Any);
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(suffix) => (true, suffix),
        None => (false, host.as_str()),
    };
    if name.is_empty() || name.contains('*') {
        return Err(format!("host {host:?} is not a DNS name or a wildcard of the form *.example.com"));
    }
    if name.split('.').any(|label| label.is_empty() || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')) {
        return Err(format!("host {host:?} is not a valid DNS name"));
    }
    Ok(if wildcard { HostPattern::Wildcard(name.to_owned()) } else { HostPattern::Exact(name.to_owned()) })
}

/// The host part of a Host header, `:authority` or SNI name: the port
/// stripped (`[v6]:port` too), a trailing dot removed, lowercased.
/// Borrowed when it is already so (the usual Host header): no allocation
/// per request.
pub(crate) fn normalize_request_host(raw: &str) -> Cow<'_, str> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        rest.split(']').next().unwrap_or(rest)
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        }
    };
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(host.to_ascii_lowercase()) } else { Cow::Borrowed(host) }
}

/// The suffix a wildcard rule would need to match `host`: everything after
/// its first label, when that label is not empty.
pub(super) fn wildcard_suffix(host: &str) -> Option<&str> {
    match host.split_once('.') {
        Some((label, suffix)) if !label.is_empty() && !suffix.is_empty() => Some(suffix),
        _ => None,
    }
}
