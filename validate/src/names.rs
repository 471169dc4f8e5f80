//! The name and value formats the API server enforces, with its messages.
//!
//! Each check returns `Err(message)` phrased as the API server phrases it, so
//! users who know Kubernetes recognise the error.

use std::net::IpAddr;

const LABEL_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn label_shape(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty() && is_alnum_lower(bytes[0]) && is_alnum_lower(bytes[bytes.len() - 1]) && bytes.iter().all(|&b| is_alnum_lower(b) || b == b'-')
}

/// RFC 1123 label: namespaces, container and volume names, StatefulSets.
pub(crate) fn dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > LABEL_MAX {
        return Err(format!("{s:?}: must be no more than {LABEL_MAX} characters"));
    }
    if !label_shape(s) {
        return Err(format!(
            "{s:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// RFC 1123 subdomain: most object names.
pub(crate) fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > SUBDOMAIN_MAX {
        return Err(format!("{s:?}: must be no more than {SUBDOMAIN_MAX} characters"));
    }
    if s.is_empty() || !s.split('.').all(label_shape) {
        return Err(format!(
            "{s:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// RFC 1035 label: Service names (they become DNS names and env vars).
pub(crate) fn dns1035_label(s: &str) -> Result<(), String> {
    if s.len() > LABEL_MAX {
        return Err(format!("{s:?}: must be no more than {LABEL_MAX} characters"));
    }
    if !label_shape(s) || !s.as_bytes()[0].is_ascii_lowercase() {
        return Err(format!(
            "{s:?}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// IANA service name: named ports.
pub(crate) fn iana_svc_name(s: &str) -> Result<(), String> {
    if s.len() > 15 {
        return Err(format!("{s:?}: must be no more than 15 characters"));
    }
    if !label_shape(s) {
        return Err(format!("{s:?}: must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), and may not start or end with a hyphen"));
    }
    if s.contains("--") {
        return Err(format!("{s:?}: must not contain consecutive hyphens"));
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!("{s:?}: must contain at least one letter (a-z)"));
    }
    Ok(())
}

fn qualified_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= LABEL_MAX
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Qualified name: label and annotation keys (`[prefix/]name`).
pub(crate) fn qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if let Some(prefix) = prefix {
        dns1123_subdomain(prefix).map_err(|_| format!("{s:?}: prefix part must be a lowercase RFC 1123 subdomain"))?;
    }
    if !qualified_part(name) {
        return Err(format!(
            "{s:?}: name part must consist of alphanumeric characters, '-', '_' or '.', must start and end with an alphanumeric character, and be at most 63 characters"
        ));
    }
    Ok(())
}

/// Label value: empty, or a qualified name part.
pub(crate) fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() || qualified_part(s) {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)"
        ))
    }
}

/// ConfigMap and Secret keys.
pub(crate) fn config_key(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > SUBDOMAIN_MAX {
        return Err(format!("{s:?}: must be between 1 and {SUBDOMAIN_MAX} characters"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return Err(format!("{s:?}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
    }
    if s == "." || s == ".." || s.starts_with("..") {
        return Err(format!("{s:?}: must not be '.' or '..' or start with '..'"));
    }
    Ok(())
}

/// Environment variable names: any printable ASCII but `=` (Kubernetes'
/// relaxed rule, on by default since 1.32).
pub(crate) fn env_var_name(s: &str) -> Result<(), String> {
    if s.is_empty() || !s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'=') {
        return Err(format!("{s:?}: a valid environment variable name must consist only of printable ASCII characters other than '='"));
    }
    Ok(())
}

/// A relative path inside a volume: no `..` element, not absolute.
pub(crate) fn relative_path(s: &str) -> Result<(), String> {
    if s.starts_with('/') {
        return Err(format!("{s:?}: must be a relative path"));
    }
    if s.split('/').any(|part| part == "..") {
        return Err(format!("{s:?}: must not contain '..'"));
    }
    Ok(())
}

/// An IP address, v4 or v6, in canonical form.
pub(crate) fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>().map_err(|_| format!("{s:?}: must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(dns1123_label("web-1").is_ok());
        assert!(dns1123_label("Web").is_err());
        assert!(dns1123_label("-web").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_subdomain("web.example").is_ok());
        assert!(dns1123_subdomain("web..example").is_err());
        assert!(dns1035_label("1web").is_err());
        assert!(dns1035_label("web1").is_ok());
    }

    #[test]
    fn port_names() {
        assert!(iana_svc_name("http").is_ok());
        assert!(iana_svc_name("http-alt").is_ok());
        assert!(iana_svc_name("8080").is_err());
        assert!(iana_svc_name("a--b").is_err());
        assert!(iana_svc_name("a-very-long-port-name").is_err());
    }

    #[test]
    fn qualified_names_and_values() {
        assert!(qualified_name("app.kubernetes.io/name").is_ok());
        assert!(qualified_name("app").is_ok());
        assert!(qualified_name("Bad Prefix/x").is_err());
        assert!(qualified_name("x/").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        assert!(label_value("-bad").is_err());
    }

    #[test]
    fn keys_and_paths() {
        assert!(config_key("app.properties").is_ok());
        assert!(config_key("..data").is_err());
        assert!(config_key("a/b").is_err());
        assert!(env_var_name("MY_VAR").is_ok());
        assert!(env_var_name("A=B").is_err());
        assert!(relative_path("a/b").is_ok());
        assert!(relative_path("../etc").is_err());
        assert!(ip("10.96.0.10").is_ok());
        assert!(ip("10.96.0").is_err());
    }
}
