//! Names of the chains and sets a service port gets: stable across
//! applies (so unchanged ports are left alone and affinity sets keep their
//! clients), unique (a hash of the port's name and protocol), and readable
//! in `nft list` (the name itself, as kube-proxy's nftables mode does).

use std::net::SocketAddrV4;

use crate::table::CheckedPort;

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
fn fnv(parts: &[&str]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The characters `nft` accepts in an unquoted name; others become `_`.
fn readable(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "/_.-".contains(c) { c } else { '/' }).collect();
    // Keep names well under the kernel's 256 bytes.
    cleaned.chars().take(100).collect()
}

fn port_hash(port: &CheckedPort) -> u64 {
    fnv(&[&port.name, port.protocol.as_str()])
}

/// `svc-<hash>-<ns/svc/port>/<protocol>`: the chain that picks a backend.
pub(crate) fn service_chain(port: &CheckedPort) -> String {
    format!("svc-{:012x}-{}/{}", port_hash(port) >> 16, readable(&port.name), port.protocol)
}

/// `ep-<hash>-<ip>/<port>`: the chain that sends to one backend.
pub(crate) fn endpoint_chain(port: &CheckedPort, backend: SocketAddrV4) -> String {
    format!("ep-{:012x}-{}/{}", port_hash(port) >> 16, backend.ip(), backend.port())
}

/// `aff-<hash>-<ip>/<port>`: the clients that stick to one backend. The
/// timeout is part of the hash: a set's timeout cannot be changed, so a new
/// timeout makes new sets and the old ones are deleted.
pub(crate) fn affinity_set(port: &CheckedPort, backend: SocketAddrV4, secs: u32) -> String {
    let hash = fnv(&[&port.name, port.protocol.as_str(), &secs.to_string()]);
    format!("aff-{:012x}-{}/{}", hash >> 16, backend.ip(), backend.port())
}

/// An nftables comment: at most 128 bytes, cut at a character boundary,
/// with no double quote or control character (`nft`'s text syntax quotes
/// a comment and has no escape).
pub(crate) fn comment(text: &str) -> String {
    let mut end = text.len().min(128);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut comment = text[..end].to_owned();
    // Rare (names are Kubernetes names): only then rewrite.
    if comment.contains(|c: char| c == '"' || c.is_control()) {
        comment = comment.chars().map(|c| if c == '"' || c.is_control() { '\'' } else { c }).collect();
    }
    comment
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Protocol;

    fn port(name: &str, protocol: Protocol) -> CheckedPort {
        CheckedPort { name: name.into(), protocol, frontends: vec![], backends: vec![], affinity_secs: None }
    }

    #[test]
    fn names_are_stable_readable_and_distinct() {
        let tcp = port("default/web:http", Protocol::Tcp);
        let udp = port("default/web:http", Protocol::Udp);
        assert_eq!(service_chain(&tcp), service_chain(&tcp.clone()));
        assert!(service_chain(&tcp).starts_with("svc-") && service_chain(&tcp).ends_with("-default/web/http/tcp"), "{}", service_chain(&tcp));
        assert_ne!(service_chain(&tcp), service_chain(&udp));
        let backend: SocketAddrV4 = "10.245.0.2:8080".parse().unwrap();
        assert!(endpoint_chain(&tcp, backend).ends_with("-10.245.0.2/8080"));
        assert_ne!(affinity_set(&tcp, backend, 10), affinity_set(&tcp, backend, 11));
        assert!(service_chain(&port(&"x".repeat(400), Protocol::Tcp)).len() < 130);
        assert_eq!(comment(&"é".repeat(100)).len(), 128);
        assert_eq!(comment("a\"b\nc"), "a'b'c");
    }
}
