//! One HTTP/1.1 exchange with a backend, on a connection of our own: the
//! request's head written in one `write`, its body streamed after it (as
//! the client framed it, or chunked when its length is unknown), then the
//! response's head read and parsed with `httparse`, its body framed as
//! RFC 9112 §6.3 says ([`super::body`]).
//!
//! Everything happens in the task of the client's request. hyper's client
//! gave each backend connection a task of its own, and each request
//! crossed to it through a channel and came back through a oneshot, with
//! the body through another channel: most of the user time the ingress
//! spent above nginx per request (docs/benchmarks.md, "Ingress").
//!
//! Owns: the bytes on one backend connection. Must not touch: which
//! endpoint is asked (`proxy.rs`), which connections are kept
//! (`pool.rs`), what the headers mean (`headers.rs`).

use std::io::{self, Write};

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request;
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::body::Framing;
use super::headers::{self, Forwarded};

/// The most bytes a backend's response head may take, 1xx heads before it
/// included; nginx's default buffer for it is 4–8 KiB.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in one response head.
const MAX_HEADERS: usize = 100;
/// How much room each read from a backend asks for at least.
pub(crate) const READ_SIZE: usize = 16 * 1024;

/// Why an exchange failed after a connection was made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("writing to the backend: {0}")]
    Write(#[source] io::Error),
    #[error("reading the client's request body: {0}")]
    ClientBody(#[source] hyper::Error),
    #[error("reading from the backend: {0}")]
    Read(#[source] io::Error),
    /// Closed before a byte of the response: on a kept-alive connection,
    /// the backend closing it as the request went out.
    #[error("the backend closed the connection without answering")]
    Closed,
    #[error("the backend's response head is malformed: {0}")]
    Malformed(String),
    #[error("the backend's response head is over {MAX_HEAD} bytes")]
    HeadTooLarge,
}

/// How a request's body goes to the backend. Decided by how hyper framed
/// the body it read, never by the client's headers alone: the backend gets
/// a `Content-Length` we write from the length hyper holds the body to,
/// so a client's `Content-Length` beside `Transfer-Encoding: chunked` (a
/// smuggling attempt, RFC 9112 §6.3) can never reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestBody {
    /// No body, and no framing field.
    None,
    /// This many bytes, said in `Content-Length`.
    Length(u64),
    /// Length unknown (a chunked upload, an HTTP/2 stream): chunked.
    Chunked,
}

impl RequestBody {
    pub(crate) fn of(headers: &HeaderMap, body: &Incoming) -> RequestBody {
        match body.size_hint().exact() {
            // A length the client declared (`Content-Length: 0` on a POST
            // included: some backends answer 411 without it).
            Some(length) if headers.contains_key(header::CONTENT_LENGTH) => RequestBody::Length(length),
            _ if body.is_end_stream() => RequestBody::None,
            _ => RequestBody::Chunked,
        }
    }
}

/// A request made ready for any endpoint: its head as every backend gets
/// it, encoded once, and its body.
///
/// Made before anything is awaited, so that the client's parsed head,
/// which shares hyper's read buffer, is dropped at once: held across the
/// exchange, it made hyper allocate a new read buffer for every request.
#[derive(Debug)]
pub(crate) struct Outgoing {
    head: Vec<u8>,
    body: Incoming,
    framing: RequestBody,
    head_request: bool,
    /// No body and an idempotent method (RFC 9110 §9.2.2): it may be sent
    /// again if a kept connection closes under it.
    pub(crate) retryable: bool,
    /// It asks to switch protocols; its connection is never reused.
    pub(crate) upgrade: bool,
}

impl Outgoing {
    /// `forwarded` and `upgrade` as `headers::write_outbound` takes them.
    pub(crate) fn new(request: Request<Incoming>, forwarded: Forwarded<'_>, upgrade: bool) -> Outgoing {
        let (parts, body) = request.into_parts();
        let framing = RequestBody::of(&parts.headers, &body);
        let mut head = Vec::with_capacity(512);
        encode_head(&mut head, &parts, framing, forwarded, upgrade);
        Outgoing {
            head,
            body,
            framing,
            head_request: parts.method == Method::HEAD,
            retryable: framing == RequestBody::None && is_idempotent(&parts.method),
            upgrade,
        }
    }
}

/// Methods a request may be repeated with (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

/// A connection to a backend, with what was read from it and not yet
/// used.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) read: BytesMut,
}

/// A response head read from a backend, and how its body is framed.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) response: Response<()>,
    pub(crate) framing: Framing,
    /// Whether the connection may carry another request after the body.
    pub(crate) keep_alive: bool,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn { stream, read: BytesMut::new() }
    }

    /// Whether a kept connection is still usable: the backend has not
    /// closed it, nor sent anything unasked. Costs a system call only if
    /// the runtime saw the socket become readable.
    pub(crate) fn is_reusable(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends the request (head, then body) and reads the response head.
    pub(crate) async fn exchange(&mut self, request: &mut Outgoing) -> Result<Head, ExchangeError> {
        // A head refused outright reached no one: a kept connection the
        // backend closed, the same to the caller as one closed unanswered.
        self.stream.write_all(&request.head).await.map_err(|error| match error.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ExchangeError::Closed,
            _ => ExchangeError::Write(error),
        })?;
        if request.framing != RequestBody::None {
            self.write_body(&mut request.body, request.framing == RequestBody::Chunked).await?;
        }
        self.read_head(request.head_request).await
    }

    async fn write_body(&mut self, body: &mut Incoming, chunked: bool) -> Result<(), ExchangeError> {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(ExchangeError::ClientBody)?.into_data() else { continue };
            if data.is_empty() {
                continue;
            }
            if chunked {
                let size = format!("{:x}\r\n", data.len());
                self.stream.write_all(size.as_bytes()).await.map_err(ExchangeError::Write)?;
                self.stream.write_all(&data).await.map_err(ExchangeError::Write)?;
                self.stream.write_all(b"\r\n").await.map_err(ExchangeError::Write)?;
            } else {
                self.stream.write_all(&data).await.map_err(ExchangeError::Write)?;
            }
        }
        if chunked {
            // No trailers: `TE` and `Trailer` are hop-by-hop and were removed.
            self.stream.write_all(b"0\r\n\r\n").await.map_err(ExchangeError::Write)?;
        }
        Ok(())
    }

    /// Reads until a final response head is whole, skipping 1xx heads
    /// other than 101.
    async fn read_head(&mut self, head_request: bool) -> Result<Head, ExchangeError> {
        let mut received = false;
        loop {
            if !self.read.is_empty() {
                received = true;
                if let Some(head) = parse_head(&mut self.read, head_request)? {
                    if head.response.status().is_informational() && head.response.status() != StatusCode::SWITCHING_PROTOCOLS {
                        continue;
                    }
                    return Ok(head);
                }
            }
            if self.read.len() >= MAX_HEAD {
                return Err(ExchangeError::HeadTooLarge);
            }
            self.read.reserve(READ_SIZE);
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) if !received => return Err(ExchangeError::Closed),
                Err(error) if !received && error.kind() == io::ErrorKind::ConnectionReset => return Err(ExchangeError::Closed),
                Ok(0) => return Err(ExchangeError::Read(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(error) => return Err(ExchangeError::Read(error)),
            }
        }
    }
}

/// The request head as the backend gets it: origin form, HTTP/1.1, the
/// header fields as `headers::write_outbound` rewrites them, and the
/// framing field.
fn encode_head(out: &mut Vec<u8>, parts: &request::Parts, framing: RequestBody, forwarded: Forwarded<'_>, upgrade: bool) {
    out.clear();
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.uri.path_and_query().map_or("/", |path| path.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    headers::write_outbound(out, parts, forwarded, upgrade);
    match framing {
        RequestBody::None => {}
        RequestBody::Length(length) => {
            // Writing to a Vec cannot fail.
            let _ = write!(out, "content-length: {length}\r\n");
        }
        RequestBody::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses one response head off the front of `read`, if it is whole. The
/// header values share the head's bytes instead of being copied.
fn parse_head(read: &mut BytesMut, head_request: bool) -> Result<Option<Head>, ExchangeError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut fields);
    let length = match parsed.parse(read) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(ExchangeError::Malformed(error.to_string())),
    };
    let code = parsed.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| ExchangeError::Malformed(format!("status {code}")))?;
    let version = if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let reason = parsed.reason.filter(|reason| Some(*reason) != status.canonical_reason()).map(|reason| reason.as_bytes().to_vec());
    // Where each name and value lies in the head, to slice it once frozen.
    let base = read.as_ptr() as usize;
    let at = |bytes: &[u8]| (bytes.as_ptr() as usize - base, bytes.len());
    let mut fields = [((0, 0), (0, 0)); MAX_HEADERS];
    let count = parsed.headers.len();
    for (slot, field) in fields.iter_mut().zip(parsed.headers.iter()) {
        *slot = (at(field.name.as_bytes()), at(field.value));
    }
    let head = read.split_to(length).freeze();

    let mut headers = HeaderMap::with_capacity(count);
    for &((name_at, name_len), (value_at, value_len)) in &fields[..count] {
        let name = HeaderName::from_bytes(&head[name_at..name_at + name_len]).map_err(|error| ExchangeError::Malformed(error.to_string()))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len)).map_err(|error| ExchangeError::Malformed(error.to_string()))?;
        headers.append(name, value);
    }
    let framing = Framing::of_response(status, &headers, head_request).map_err(ExchangeError::Malformed)?;
    let mut keep_alive = keeps_alive(version, &headers) && framing.ends_by_itself();
    // Both framings at once: `Transfer-Encoding` wins, the length is
    // removed before the client sees it, and the connection, whose
    // framing may be faulty, is not used again (RFC 9112 §6.3).
    if headers.contains_key(header::TRANSFER_ENCODING) && headers.remove(header::CONTENT_LENGTH).is_some() {
        keep_alive = false;
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Some(reason) = reason
        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(Bytes::from(reason))
    {
        response.extensions_mut().insert(reason);
    }
    Ok(Some(Head { response, framing, keep_alive }))
}

/// Whether the backend will take another request on the connection: an
/// HTTP/1.1 response without `Connection: close` (we ask in HTTP/1.1 and
/// never send `keep-alive`, so an HTTP/1.0 backend closes).
fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && !headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|value| value.as_bytes().split(|b| *b == b',').any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close")))
}

#[cfg(test)]
mod tests {
    //! Heads as backends write them, byte for byte.

    use super::*;

    fn parse(bytes: &[u8], head_request: bool) -> (Option<Head>, BytesMut) {
        let mut read = BytesMut::from(bytes);
        let head = parse_head(&mut read, head_request).unwrap();
        (head, read)
    }

    #[test]
    fn a_head_is_parsed_and_the_body_left_behind() {
        let (head, rest) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nx-a: 2\r\n\r\nok\n", false);
        let head = head.unwrap();
        assert_eq!(head.response.status(), StatusCode::OK);
        assert_eq!(head.response.headers().get_all("x-a").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(head.framing, Framing::Length(3));
        assert!(head.keep_alive);
        assert_eq!(&rest[..], b"ok\n");
        assert!(head.response.extensions().get::<hyper::ext::ReasonPhrase>().is_none());
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        let (head, rest) = parse(b"HTTP/1.1 200 OK\r\nContent-Le", false);
        assert!(head.is_none());
        assert_eq!(&rest[..], b"HTTP/1.1 200 OK\r\nContent-Le");
    }

    #[test]
    fn close_and_http_1_0_end_the_connection() {
        let (head, _) = parse(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", false);
        assert!(!head.unwrap().keep_alive);
        let (head, _) = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert!(!head.unwrap().keep_alive);
        // Read to the close: nothing can follow on the connection.
        let (head, _) = parse(b"HTTP/1.1 200 OK\r\n\r\n", false);
        let head = head.unwrap();
        assert_eq!(head.framing, Framing::UntilClose);
        assert!(!head.keep_alive);
    }

    #[test]
    fn transfer_encoding_beside_a_length_wins_and_ends_the_connection() {
        let (head, rest) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false);
        let head = head.unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.response.headers().get("content-length").is_none(), "the length never reaches the client");
        assert!(!head.keep_alive);
        assert_eq!(&rest[..], b"2\r\nok\r\n0\r\n\r\n");
    }

    #[test]
    fn an_unusual_reason_is_kept() {
        let (head, _) = parse(b"HTTP/1.1 404 Nothing Here\r\nContent-Length: 0\r\n\r\n", false);
        let head = head.unwrap();
        assert_eq!(head.response.extensions().get::<hyper::ext::ReasonPhrase>().unwrap().as_bytes(), b"Nothing Here");
    }

    #[test]
    fn malformed_heads_are_errors() {
        for bytes in [&b"HTTP/1.1 2000 OK\r\n\r\n"[..], b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", b"SMTP ready\r\n\r\n"] {
            let mut read = BytesMut::from(bytes);
            assert!(matches!(parse_head(&mut read, false), Err(ExchangeError::Malformed(_))), "{}", String::from_utf8_lossy(bytes));
        }
        let mut read = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..]);
        assert!(matches!(parse_head(&mut read, false), Err(ExchangeError::Malformed(_))));
    }

    #[test]
    fn the_request_head_is_origin_form_http_1_1() {
        let request = hyper::Request::post("http://x.test/a?b=1").header("x-b", "2").body(()).unwrap();
        let (parts, ()) = request.into_parts();
        let peer = HeaderValue::from_static("127.0.0.9");
        let port = HeaderValue::from(80u16);
        let forwarded = Forwarded { peer: &peer, port: &port, proto: "http" };
        let fields = "host: x.test\r\nx-b: 2\r\nx-forwarded-for: 127.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: x.test\r\nx-forwarded-port: 80\r\n";
        let mut out = Vec::new();
        encode_head(&mut out, &parts, RequestBody::Chunked, forwarded, false);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), format!("POST /a?b=1 HTTP/1.1\r\n{fields}transfer-encoding: chunked\r\n\r\n"));
        encode_head(&mut out, &parts, RequestBody::None, forwarded, false);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), format!("POST /a?b=1 HTTP/1.1\r\n{fields}\r\n"));
        encode_head(&mut out, &parts, RequestBody::Length(0), forwarded, false);
        assert_eq!(String::from_utf8(out).unwrap(), format!("POST /a?b=1 HTTP/1.1\r\n{fields}content-length: 0\r\n\r\n"));
    }
}
