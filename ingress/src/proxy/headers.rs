//! Header rewriting between client and backend: hop-by-hop headers
//! removed both ways (RFC 9110 §7.6.1, plus those the `Connection` header
//! names), `Upgrade` kept for an upgrade, and the `X-Forwarded-*` headers
//! a backend needs to know what the client asked for.

use std::net::SocketAddr;

use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};

/// `X-Forwarded-For`: the client addresses, the nearest last.
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`: `http` or `https`, as the client connected.
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the Host the client asked for.
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Port`: the port the client connected to.
pub(crate) static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// Headers that describe one connection, not the message.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether a request asks to switch protocols (a WebSocket, say): HTTP/1.1
/// with `Connection: upgrade` and an `Upgrade` header.
pub(crate) fn is_upgrade(version: hyper::Version, headers: &HeaderMap) -> bool {
    version == hyper::Version::HTTP_11 && headers.contains_key(header::UPGRADE) && connection_names(headers).any(|name| name == "upgrade")
}

/// The tokens of every `Connection` header, lowercased.
fn connection_names(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
}

/// Removes the hop-by-hop headers. With `upgrade`, keeps `Upgrade` and
/// says `Connection: upgrade`, so the next hop upgrades too.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most messages carry none: one look at the names they have is
    // cheaper than removing each of nine by hash (twice per request).
    if !upgrade && !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<String> = connection_names(headers).collect();
    for name in named {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes())
            && !(upgrade && name == header::UPGRADE)
        {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        if !(upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// What the backend is told about the client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Forwarded<'a> {
    /// The client's address (its IP, as a header value).
    pub(crate) peer: &'a HeaderValue,
    /// The address the client connected to.
    pub(crate) local: SocketAddr,
    /// `http` or `https`.
    pub(crate) proto: &'static str,
    /// The Host the client asked for, as sent (port included).
    pub(crate) host: Option<&'a HeaderValue>,
}

/// Sets the `X-Forwarded-*` headers: appends the client to
/// `X-Forwarded-For` (joining any the client sent into one header), and
/// replaces `X-Forwarded-Proto`, `-Host` and `-Port`, which a client could
/// otherwise forge.
pub(crate) fn set_forwarded(headers: &mut HeaderMap, forwarded: Forwarded<'_>) {
    let earlier: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).map(str::trim).collect();
    if earlier.is_empty() {
        headers.insert(X_FORWARDED_FOR.clone(), forwarded.peer.clone());
    } else {
        let client = forwarded.peer.to_str().unwrap_or_default();
        if let Ok(value) = HeaderValue::from_str(&format!("{}, {client}", earlier.join(", "))) {
            headers.insert(X_FORWARDED_FOR.clone(), value);
        }
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(forwarded.proto));
    match forwarded.host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host.clone()),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    headers.insert(X_FORWARDED_PORT.clone(), HeaderValue::from(forwarded.local.port()));
}

#[cfg(test)]
mod tests {
    //! Hop-by-hop removal and the forwarded headers.

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut map = headers(&[
            ("connection", "keep-alive, X-Custom"),
            ("keep-alive", "timeout=5"),
            ("x-custom", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut map, false);
        assert_eq!(map.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
    }

    #[test]
    fn upgrades_keep_upgrade() {
        let mut map = headers(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "k")]);
        assert!(is_upgrade(hyper::Version::HTTP_11, &map));
        assert!(!is_upgrade(hyper::Version::HTTP_10, &map));
        remove_hop_by_hop(&mut map, true);
        assert_eq!(map["upgrade"], "websocket");
        assert_eq!(map["connection"], "upgrade");
        assert_eq!(map["sec-websocket-key"], "k");
        assert!(!is_upgrade(hyper::Version::HTTP_11, &headers(&[("upgrade", "websocket")])));
    }

    #[test]
    fn forwarded_headers_append_and_replace() {
        let mut map = headers(&[
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-for", "192.0.2.2, 192.0.2.3"),
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-host", "forged.test"),
        ]);
        let host = HeaderValue::from_static("a.example.com:8080");
        let peer = HeaderValue::from_static("127.0.0.9");
        let forwarded = Forwarded { peer: &peer, local: "127.0.0.1:8080".parse().unwrap(), proto: "https", host: Some(&host) };
        set_forwarded(&mut map, forwarded);
        assert_eq!(map["x-forwarded-for"], "192.0.2.1, 192.0.2.2, 192.0.2.3, 127.0.0.9");
        assert_eq!(map.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(map["x-forwarded-proto"], "https");
        assert_eq!(map["x-forwarded-host"], "a.example.com:8080");
        assert_eq!(map["x-forwarded-port"], "8080");
        set_forwarded(&mut map, Forwarded { host: None, ..forwarded });
        assert!(map.get("x-forwarded-host").is_none());
    }
}
