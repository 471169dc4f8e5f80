//! A backend's response body as the client's response streams it: framed
//! by length, by chunks (decoded; hyper frames it again for the client)
//! or by the connection's end, each piece handed on as it is read.
//!
//! When the body ends where its framing says, and the backend said the
//! connection stays open, the connection goes back to its pool; a body
//! dropped halfway, a malformed one or one read to the close takes its
//! connection with it.
//!
//! Owns: reading one body off a backend connection. Must not touch:
//! headers (the head is read in `exchange.rs`), the pool's bookkeeping.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use hyper::StatusCode;
use hyper::header::{self, HeaderMap};

use super::exchange::{Conn, READ_SIZE};
use super::pool::Pool;

/// The longest chunk-size line, or trailer section, a chunked body may
/// have.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// How a response's body ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body: a HEAD request's answer, 1xx, 204, 304.
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Neither: the body is what comes until the backend closes.
    UntilClose,
}

impl Framing {
    pub(crate) fn of_response(status: StatusCode, headers: &HeaderMap, head_request: bool) -> Result<Framing, String> {
        if head_request || status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            return Ok(Framing::Empty);
        }
        if let Some(codings) = headers.get_all(header::TRANSFER_ENCODING).iter().next_back() {
            let last = codings.as_bytes().rsplit(|b| *b == b',').next().unwrap_or_default().trim_ascii();
            // Any other coding last: only the close ends the body.
            return Ok(if last.eq_ignore_ascii_case(b"chunked") { Framing::Chunked } else { Framing::UntilClose });
        }
        let mut length = None;
        for value in headers.get_all(header::CONTENT_LENGTH) {
            for item in value.as_bytes().split(|b| *b == b',') {
                let parsed = std::str::from_utf8(item.trim_ascii()).ok().filter(|s| s.bytes().all(|b| b.is_ascii_digit())).and_then(|s| s.parse::<u64>().ok());
                match (parsed, length) {
                    (None, _) => return Err(format!("Content-Length {:?}", String::from_utf8_lossy(value.as_bytes()))),
                    (Some(n), Some(earlier)) if n != earlier => return Err(format!("two Content-Lengths, {earlier} and {n}")),
                    (Some(n), _) => length = Some(n),
                }
            }
        }
        Ok(length.map_or(Framing::UntilClose, Framing::Length))
    }

    /// Whether the body's end is known without the connection closing.
    pub(crate) fn ends_by_itself(self) -> bool {
        self != Framing::UntilClose
    }
}

/// Where a body being read stands.
#[derive(Debug)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers(usize),
    UntilClose,
    Done,
}

/// Where a connection goes when its body is over.
#[derive(Debug)]
pub(crate) struct GiveBack {
    pub(crate) pool: Pool,
    pub(crate) endpoint: SocketAddr,
}

/// A backend's response body, read as the client's side asks for it.
#[derive(Debug)]
pub(crate) struct BackendBody {
    conn: Option<Conn>,
    state: State,
    give_back: Option<GiveBack>,
}

impl BackendBody {
    /// The body of a response read on `conn`; `give_back` is where the
    /// connection goes once the body is over, if it may carry another
    /// request.
    pub(crate) fn new(conn: Conn, framing: Framing, give_back: Option<GiveBack>) -> BackendBody {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = BackendBody { conn: Some(conn), state, give_back };
        if matches!(body.state, State::Done) {
            body.finish();
        }
        body
    }

    /// The connection of a 101 answer, with whatever the backend sent
    /// after its head: the start of the upgraded protocol.
    pub(crate) fn into_upgraded(mut self) -> Option<Conn> {
        self.give_back = None;
        self.conn.take()
    }

    /// The body is over: its connection goes back to the pool if the
    /// backend keeps it open and sent nothing beyond the body. Otherwise
    /// it stays until the body is dropped (for a 101, until the tunnel
    /// takes it).
    fn finish(&mut self) {
        self.state = State::Done;
        let reusable = self.conn.as_ref().is_some_and(|conn| conn.read.is_empty());
        if reusable
            && let Some(give_back) = self.give_back.take()
            && let Some(conn) = self.conn.take()
        {
            give_back.pool.put(give_back.endpoint, conn);
        }
    }

    /// The body cannot go on: its connection is closed.
    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.state = State::Done;
        self.conn = None;
        self.give_back = None;
        Poll::Ready(Some(Err(error)))
    }
}

/// Reads more from the backend into the connection's buffer: the number
/// of bytes, 0 at the end of the stream.
fn fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    if conn.read.capacity() - conn.read.len() < READ_SIZE / 4 {
        conn.read.reserve(READ_SIZE);
    }
    loop {
        ready!(conn.stream.poll_read_ready(cx))?;
        match conn.stream.try_read_buf(&mut conn.read) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Body for BackendBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            if matches!(this.state, State::Done) {
                return Poll::Ready(None);
            }
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            // What the buffer holds decides the next step; an empty or
            // partial piece reads more first.
            let need_more = match this.state {
                State::Length(left) | State::ChunkData(left) if !conn.read.is_empty() => {
                    let take = conn.read.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let data = conn.read.split_to(take).freeze();
                    let left = left - take as u64;
                    match this.state {
                        State::Length(_) if left == 0 => this.finish(),
                        State::Length(_) => this.state = State::Length(left),
                        _ if left == 0 => this.state = State::ChunkEnd,
                        _ => this.state = State::ChunkData(left),
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose if !conn.read.is_empty() => {
                    let data = conn.read.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::ChunkSize => match httparse::parse_chunk_size(&conn.read) {
                    Ok(httparse::Status::Complete((used, 0))) => {
                        conn.read.advance(used);
                        this.state = State::Trailers(0);
                        false
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        conn.read.advance(used);
                        this.state = State::ChunkData(size);
                        false
                    }
                    Ok(httparse::Status::Partial) if conn.read.len() > MAX_CHUNK_LINE => return this.fail(invalid("a chunk-size line too long".into())),
                    Ok(httparse::Status::Partial) => true,
                    Err(_) => return this.fail(invalid("an invalid chunk size".into())),
                },
                State::ChunkEnd if conn.read.len() >= 2 => {
                    if &conn.read[..2] != b"\r\n" {
                        return this.fail(invalid("a chunk not ended by CRLF".into()));
                    }
                    conn.read.advance(2);
                    this.state = State::ChunkSize;
                    false
                }
                State::Trailers(seen) => match conn.read.windows(2).position(|pair| pair == b"\r\n") {
                    // An empty line ends the trailer section (trailers are
                    // dropped: they are announced by `Trailer`, a
                    // hop-by-hop header).
                    Some(0) => {
                        conn.read.advance(2);
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Some(line) if seen + line + 2 <= MAX_TRAILERS => {
                        conn.read.advance(line + 2);
                        this.state = State::Trailers(seen + line + 2);
                        false
                    }
                    None if seen + conn.read.len() <= MAX_TRAILERS => true,
                    _ => return this.fail(invalid("trailers over 16 KiB".into())),
                },
                _ => true,
            };
            if !need_more {
                continue;
            }
            match ready!(fill(conn, cx)) {
                Ok(0) if matches!(this.state, State::UntilClose) => {
                    this.state = State::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(error) => return this.fail(error),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(left) => SizeHint::with_exact(left),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// The body of every response the proxy sends: a backend's, or a short
/// one of our own. An enum rather than a boxed body: no allocation and no
/// dynamic call per response.
#[derive(Debug)]
pub(crate) enum ProxyBody {
    Backend(BackendBody),
    Own(Option<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut *self {
            ProxyBody::Backend(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Own(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Backend(body) => body.is_end_stream(),
            ProxyBody::Own(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Backend(body) => body.size_hint(),
            ProxyBody::Own(data) => SizeHint::with_exact(data.as_ref().map_or(0, |data| data.len() as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Framing by the response's status and headers.

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (header::HeaderName::from_static(name), header::HeaderValue::from_static(value))).collect()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let ok = StatusCode::OK;
        assert_eq!(Framing::of_response(ok, &headers(&[("content-length", "5")]), true), Ok(Framing::Empty));
        assert_eq!(Framing::of_response(StatusCode::NO_CONTENT, &headers(&[("content-length", "5")]), false), Ok(Framing::Empty));
        assert_eq!(Framing::of_response(StatusCode::NOT_MODIFIED, &HeaderMap::new(), false), Ok(Framing::Empty));
        assert_eq!(Framing::of_response(ok, &headers(&[("content-length", "5")]), false), Ok(Framing::Length(5)));
        assert_eq!(Framing::of_response(ok, &headers(&[("content-length", "5, 5")]), false), Ok(Framing::Length(5)));
        assert_eq!(Framing::of_response(ok, &headers(&[("transfer-encoding", "gzip, Chunked"), ("content-length", "5")]), false), Ok(Framing::Chunked));
        assert_eq!(Framing::of_response(ok, &headers(&[("transfer-encoding", "gzip")]), false), Ok(Framing::UntilClose));
        assert_eq!(Framing::of_response(ok, &HeaderMap::new(), false), Ok(Framing::UntilClose));
        assert!(Framing::of_response(ok, &headers(&[("content-length", "+5")]), false).is_err());
        assert!(Framing::of_response(ok, &headers(&[("content-length", "5, 6")]), false).is_err());
    }
}
