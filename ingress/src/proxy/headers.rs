//! Header rewriting between client and backend: hop-by-hop headers
//! removed both ways (RFC 9110 §7.6.1, plus those the `Connection` header
//! names), `Upgrade` kept for an upgrade, and the `X-Forwarded-*` headers
//! a backend needs to know what the client asked for.
//!
//! The request's fields are written out as the backend gets them
//! ([`write_outbound`]); the response's are removed from hyper's map
//! ([`remove_hop_by_hop`]), since hyper writes the client's response.

use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::http::request;

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
    /// The port the client connected to.
    pub(crate) port: &'a HeaderValue,
    /// `http` or `https`.
    pub(crate) proto: &'static str,
}

/// Writes a request's header fields as the backend gets them, in one pass
/// and without touching the client's map: `Host` first (the client's, or
/// HTTP/2's `:authority`, port included), hop-by-hop fields
/// and `Expect` left out (with `upgrade`, `Upgrade` kept and `Connection:
/// upgrade` said), and the `X-Forwarded-*` fields a backend needs.
/// `X-Forwarded-For` appends the client to any the client sent (joined
/// into one field); `-Proto`, `-Host` and `-Port` replace the client's,
/// which it could otherwise forge.
///
/// Written rather than set in the map: adding four fields to hyper's map
/// grew it twice per request, four allocations.
pub(crate) fn write_outbound(out: &mut Vec<u8>, request: &request::Parts, forwarded: Forwarded<'_>, upgrade: bool) {
    let headers = &request.headers;
    let host = match request.uri.authority() {
        Some(authority) => Some(authority.as_str().as_bytes()),
        None => headers.get(header::HOST).map(HeaderValue::as_bytes),
    };
    // Fields the client's `Connection` names are hop-by-hop too; most
    // requests have no `Connection` field, and nothing is collected.
    let named: Vec<String> = if headers.contains_key(header::CONNECTION) { connection_names(headers).collect() } else { Vec::new() };
    if let Some(host) = host {
        field(out, b"host", host);
    }
    for (name, value) in headers {
        let skip = *name == header::HOST
            // We answer `Expect: 100-continue` ourselves (hyper does, when
            // the body is first read); the backend gets the body at once.
            || *name == header::EXPECT
            // The framing is written from the body hyper read (exchange.rs).
            || *name == header::CONTENT_LENGTH
            || *name == X_FORWARDED_FOR
            || *name == X_FORWARDED_PROTO
            || *name == X_FORWARDED_HOST
            || *name == X_FORWARDED_PORT
            || (HOP_BY_HOP.contains(name) && !(upgrade && *name == header::UPGRADE))
            || (!named.is_empty() && named.iter().any(|named| named == name.as_str()) && !(upgrade && *name == header::UPGRADE));
        if !skip {
            field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for earlier in headers.get_all(&X_FORWARDED_FOR) {
        for address in earlier.as_bytes().split(|b| *b == b',').map(<[u8]>::trim_ascii).filter(|address| !address.is_empty()) {
            out.extend_from_slice(address);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(forwarded.peer.as_bytes());
    out.extend_from_slice(b"\r\n");
    field(out, b"x-forwarded-proto", forwarded.proto.as_bytes());
    if let Some(host) = host {
        field(out, b"x-forwarded-host", host);
    }
    field(out, b"x-forwarded-port", forwarded.port.as_bytes());
    if upgrade {
        field(out, b"connection", b"upgrade");
    }
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
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

    fn written(map: &HeaderMap, forwarded: Forwarded<'_>, upgrade: bool) -> Vec<String> {
        written_for("/", map, forwarded, upgrade)
    }

    fn written_for(uri: &str, map: &HeaderMap, forwarded: Forwarded<'_>, upgrade: bool) -> Vec<String> {
        let (mut parts, ()) = hyper::Request::get(uri).body(()).unwrap().into_parts();
        parts.headers = map.clone();
        let mut out = Vec::new();
        write_outbound(&mut out, &parts, forwarded, upgrade);
        String::from_utf8(out).unwrap().split_terminator("\r\n").map(str::to_owned).collect()
    }

    #[test]
    fn forwarded_headers_append_and_replace() {
        let map = headers(&[
            ("host", "a.example.com:8080"),
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-for", "192.0.2.2, 192.0.2.3"),
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-host", "forged.test"),
            ("x-forwarded-port", "1"),
            ("accept", "*/*"),
        ]);
        let peer = HeaderValue::from_static("127.0.0.9");
        let port = HeaderValue::from(8080u16);
        let forwarded = Forwarded { peer: &peer, port: &port, proto: "https" };
        assert_eq!(
            written(&map, forwarded, false),
            [
                "host: a.example.com:8080",
                "accept: */*",
                "x-forwarded-for: 192.0.2.1, 192.0.2.2, 192.0.2.3, 127.0.0.9",
                "x-forwarded-proto: https",
                "x-forwarded-host: a.example.com:8080",
                "x-forwarded-port: 8080",
            ]
        );
        // HTTP/2's `:authority` is the Host.
        let lines = written_for("http://h2.test/x", &HeaderMap::new(), forwarded, false);
        assert_eq!(lines[0], "host: h2.test");
        assert!(lines.contains(&"x-forwarded-host: h2.test".to_owned()), "{lines:?}");
    }

    #[test]
    fn written_requests_drop_hop_by_hop_fields_and_expect() {
        let map = headers(&[
            ("connection", "keep-alive, X-Custom"),
            ("keep-alive", "timeout=5"),
            ("x-custom", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("expect", "100-continue"),
            ("upgrade", "websocket"),
            ("accept", "*/*"),
        ]);
        let peer = HeaderValue::from_static("127.0.0.9");
        let port = HeaderValue::from(80u16);
        let forwarded = Forwarded { peer: &peer, port: &port, proto: "http" };
        assert_eq!(written(&map, forwarded, false), ["accept: */*", "x-forwarded-for: 127.0.0.9", "x-forwarded-proto: http", "x-forwarded-port: 80"]);
        let upgrade = headers(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "k")]);
        assert_eq!(
            written(&upgrade, forwarded, true),
            [
                "upgrade: websocket",
                "sec-websocket-key: k",
                "x-forwarded-for: 127.0.0.9",
                "x-forwarded-proto: http",
                "x-forwarded-port: 80",
                "connection: upgrade"
            ]
        );
    }
}
