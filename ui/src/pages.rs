//! The dashboard's pages, one module each.

pub(crate) mod file;
pub(crate) mod history;
pub(crate) mod login;
pub(crate) mod object;
pub(crate) mod overview;
pub(crate) mod plan;
pub(crate) mod workloads;

/// A path segment or query value with everything but the unreserved
/// characters (RFC 3986) percent-encoded: what a link may carry of a name.
pub(crate) fn encode(value: &str) -> String {
    value.bytes().fold(String::with_capacity(value.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        out
    })
}
