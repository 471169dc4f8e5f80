//! Domain names the zone is made of: labels checked the way Kubernetes names
//! them, dashed IPs (`10-244-0-5`), and reverse names.

use std::net::IpAddr;
use std::sync::LazyLock;

use hickory_proto::rr::{LowerName, Name};

/// `in-addr.arpa.`, the IPv4 reverse tree.
pub(crate) fn in_addr_arpa() -> &'static LowerName {
    static NAME: LazyLock<LowerName> = LazyLock::new(|| LowerName::new(&Name::from_ascii("in-addr.arpa.").expect("a valid name")));
    &NAME
}

/// `ip6.arpa.`, the IPv6 reverse tree.
pub(crate) fn ip6_arpa() -> &'static LowerName {
    static NAME: LazyLock<LowerName> = LazyLock::new(|| LowerName::new(&Name::from_ascii("ip6.arpa.").expect("a valid name")));
    &NAME
}

/// Whether `label` can be one DNS label of a cluster name: 1 to 63 ASCII
/// letters, digits or hyphens (RFC 1123; Kubernetes names, hostnames and
/// port names all fit). Anything else (a dot above all) would change the
/// shape of the name, so such objects get no record.
pub(crate) fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len()) && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `labels` (each checked with [`is_label`] unless it starts with `_`, as
/// SRV labels do) under `domain`, lowercased.
pub(crate) fn under(labels: &[&str], domain: &Name) -> Option<Name> {
    let mut name = Name::new();
    for label in labels {
        let bare = label.strip_prefix('_').unwrap_or(label);
        if !is_label(bare) {
            return None;
        }
        name = name.append_label(label.to_ascii_lowercase()).ok()?;
    }
    name.append_domain(domain).ok()
}

/// The dashed form of an address that names a pod or an endpoint without a
/// hostname, as CoreDNS writes it: `10-244-0-5`, `fd00--5`.
pub(crate) fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// The reverse name of `ip` (`5.0.244.10.in-addr.arpa.`), lowercased.
pub(crate) fn reverse(ip: IpAddr) -> Name {
    Name::from(ip).to_lowercase()
}

/// A name from text that may lack the trailing dot (an ExternalName),
/// made fully qualified and lowercased; `None` if it is not a valid name.
pub(crate) fn absolute(text: &str) -> Option<Name> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut name = Name::from_ascii(text).ok()?;
    name.set_fqdn(true);
    if name.is_root() {
        return None;
    }
    Some(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashed_addresses_match_coredns() {
        assert_eq!(dashed("10.244.0.5".parse().unwrap()), "10-244-0-5");
        assert_eq!(dashed("fd00::5".parse().unwrap()), "fd00--5");
    }

    #[test]
    fn reverse_names() {
        assert_eq!(reverse("10.96.0.1".parse().unwrap()).to_string(), "1.0.96.10.in-addr.arpa.");
        assert!(ip6_arpa().zone_of(&LowerName::new(&reverse("fd00::1".parse().unwrap()))));
    }

    #[test]
    fn labels_with_dots_or_odd_bytes_are_refused() {
        let domain = Name::from_ascii("cluster.local.").unwrap();
        assert!(under(&["a.b", "ns"], &domain).is_none());
        assert!(under(&["", "ns"], &domain).is_none());
        assert!(under(&["web_1"], &domain).is_none());
        assert_eq!(under(&["_HTTP", "_tcp", "Web"], &domain).unwrap().to_string(), "_http._tcp.web.cluster.local.");
    }

    #[test]
    fn external_names_become_absolute() {
        assert_eq!(absolute("Example.COM").unwrap().to_string(), "example.com.");
        assert_eq!(absolute("example.com.").unwrap().to_string(), "example.com.");
        assert!(absolute("").is_none());
        assert!(absolute(".").is_none());
    }
}
