//! SPDY/3.1 framing, as far as Kubernetes' streaming protocols use it:
//! the eight control frames and data frames of the draft-3 wire format
//! (3.1 only adds WINDOW_UPDATE's session scope), with header blocks
//! compressed by one zlib stream per direction that starts from the
//! protocol's dictionary.
//!
//! kubectl port-forward speaks SPDY to the API server, either after an
//! `Upgrade: SPDY/3.1` or tunnelled inside a WebSocket
//! (`SPDY/3.1+portforward.k8s.io`). No maintained Rust crate speaks SPDY
//! (HTTP/2 replaced it in 2015), so this module is the codec; the session
//! that multiplexes streams over it is [`session`]. Flow control is not
//! enforced, as Kubernetes' own implementation (moby/spdystream) does not:
//! each side's buffers are bounded instead.
//!
//! Must not touch: sockets; this turns bytes into frames and back.

pub mod session;

use bytes::{Buf, BufMut, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio_util::codec::{Decoder, Encoder};

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// The flag that ends the sender's half of a stream.
pub const FLAG_FIN: u8 = 0x01;
/// RST_STREAM's status for a stream the receiver refuses.
pub const REFUSED_STREAM: u32 = 3;
/// RST_STREAM's status for a stream given up.
pub const CANCEL: u32 = 5;

/// The largest control frame read: header blocks here are a handful of
/// short headers.
const MAX_CONTROL: usize = 64 * 1024;
/// The largest header block once inflated.
const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// The most headers one block may name.
const MAX_HEADERS: u32 = 256;

/// A stream's headers, names lower-case, in the order sent.
pub type Headers = Vec<(String, String)>;

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Opens a stream.
    SynStream {
        /// The new stream (odd from the client, even from the server).
        stream: u32,
        /// [`FLAG_FIN`]: the opener sends nothing more.
        flags: u8,
        /// Its headers.
        headers: Headers,
    },
    /// Accepts a stream.
    SynReply {
        /// The stream.
        stream: u32,
        /// [`FLAG_FIN`]: the accepter sends nothing.
        flags: u8,
        /// Its headers.
        headers: Headers,
    },
    /// Ends a stream abnormally.
    RstStream {
        /// The stream.
        stream: u32,
        /// Why ([`REFUSED_STREAM`], [`CANCEL`], ...).
        status: u32,
    },
    /// Settings; none of them matter to port-forward.
    Settings,
    /// A liveness check, answered by sending it back.
    Ping {
        /// Odd from the client, even from the server.
        id: u32,
    },
    /// The session ends.
    GoAway {
        /// The last stream the sender handled.
        last: u32,
        /// Why.
        status: u32,
    },
    /// More headers for a stream.
    Headers {
        /// The stream.
        stream: u32,
        /// [`FLAG_FIN`].
        flags: u8,
        /// The headers.
        headers: Headers,
    },
    /// Flow control credit, not enforced here.
    WindowUpdate {
        /// The stream, or 0 for the session.
        stream: u32,
        /// The credit.
        delta: u32,
    },
    /// A control frame of a type this codec does not know; SPDY says to
    /// ignore it.
    Unknown(u16),
    /// Bytes on a stream.
    Data {
        /// The stream.
        stream: u32,
        /// [`FLAG_FIN`]: the sender's last bytes on it.
        flags: u8,
        /// The bytes.
        data: bytes::Bytes,
    },
}

/// Why bytes are not SPDY.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// A control frame of another SPDY version.
    #[error("SPDY version {0} is not spoken (3 is)")]
    Version(u16),
    /// A frame longer than allowed.
    #[error("a control frame of {0} bytes is over the limit of {MAX_CONTROL}")]
    TooLarge(usize),
    /// A frame whose body does not fit its type.
    #[error("a malformed {0} frame")]
    Malformed(&'static str),
    /// A header block that does not inflate or parse.
    #[error("a bad header block: {0}")]
    Headers(String),
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads frames; holds the inflating half of the header compression.
pub struct FrameReader {
    inflate: Decompress,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader { inflate: Decompress::new(true) }
    }
}

/// Writes frames; holds the deflating half of the header compression.
pub struct FrameWriter {
    deflate: Compress,
}

impl Default for FrameWriter {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // The dictionary is part of the protocol: readers expect it.
        deflate.set_dictionary(DICTIONARY).expect("a fresh compressor takes a dictionary");
        FrameWriter { deflate }
    }
}

impl Decoder for FrameReader {
    type Item = Frame;
    type Error = SpdyError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if src.len() < 8 {
            return Ok(None);
        }
        let first = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let second = u32::from_be_bytes([src[4], src[5], src[6], src[7]]);
        let flags = (second >> 24) as u8;
        let length = (second & 0x00ff_ffff) as usize;
        let control = first & 0x8000_0000 != 0;
        if control && length > MAX_CONTROL {
            return Err(SpdyError::TooLarge(length));
        }
        if src.len() < 8 + length {
            src.reserve(8 + length - src.len());
            return Ok(None);
        }
        src.advance(8);
        let mut body = src.split_to(length);
        if !control {
            return Ok(Some(Frame::Data { stream: first & 0x7fff_ffff, flags, data: body.freeze() }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let need = |body: &BytesMut, n: usize, what: &'static str| if body.len() < n { Err(SpdyError::Malformed(what)) } else { Ok(()) };
        let frame = match (first & 0xffff) as u16 {
            1 => {
                need(&body, 10, "SYN_STREAM")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                body.advance(6); // associated stream, priority, slot
                Frame::SynStream { stream, flags, headers: self.headers(&body)? }
            }
            2 => {
                need(&body, 4, "SYN_REPLY")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                Frame::SynReply { stream, flags, headers: self.headers(&body)? }
            }
            3 => {
                need(&body, 8, "RST_STREAM")?;
                Frame::RstStream { stream: body.get_u32() & 0x7fff_ffff, status: body.get_u32() }
            }
            4 => Frame::Settings,
            6 => {
                need(&body, 4, "PING")?;
                Frame::Ping { id: body.get_u32() }
            }
            7 => {
                need(&body, 8, "GOAWAY")?;
                Frame::GoAway { last: body.get_u32() & 0x7fff_ffff, status: body.get_u32() }
            }
            8 => {
                need(&body, 4, "HEADERS")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                Frame::Headers { stream, flags, headers: self.headers(&body)? }
            }
            9 => {
                need(&body, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate { stream: body.get_u32() & 0x7fff_ffff, delta: body.get_u32() & 0x7fff_ffff }
            }
            other => Frame::Unknown(other),
        };
        Ok(Some(frame))
    }
}

impl FrameReader {
    /// Inflates and parses one header block. Every block continues the
    /// same zlib stream, so blocks must be read in the order they came.
    fn headers(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let bad = |what: String| SpdyError::Headers(what);
        let mut plain = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if plain.len() > MAX_HEADER_BLOCK {
                return Err(bad(format!("over {MAX_HEADER_BLOCK} bytes inflated")));
            }
            plain.reserve(1024);
            let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
            let mut dictionary = false;
            match self.inflate.decompress_vec(input, &mut plain, FlushDecompress::Sync) {
                Ok(_) => {}
                Err(error) if error.needs_dictionary().is_some() => {
                    self.inflate.set_dictionary(DICTIONARY).map_err(|e| bad(e.to_string()))?;
                    dictionary = true;
                }
                Err(error) => return Err(bad(error.to_string())),
            }
            let used = (self.inflate.total_in() - before_in) as usize;
            input = &input[used..];
            let produced = self.inflate.total_out() - before_out;
            if input.is_empty() && plain.len() < plain.capacity() {
                break;
            }
            if used == 0 && produced == 0 && !dictionary {
                return Err(bad("the stream does not advance".into()));
            }
        }
        parse_block(&plain).ok_or_else(|| bad("its lengths do not add up".into()))
    }
}

/// Parses an inflated header block: a count, then length-prefixed names
/// and values (several values of one name joined by NUL).
fn parse_block(mut block: &[u8]) -> Option<Headers> {
    fn take<'a>(block: &mut &'a [u8]) -> Option<&'a [u8]> {
        let length = u32::from_be_bytes(block.get(..4)?.try_into().ok()?) as usize;
        let value = block.get(4..4 + length)?;
        *block = &block[4 + length..];
        Some(value)
    }
    let count = u32::from_be_bytes(block.get(..4)?.try_into().ok()?);
    block = &block[4..];
    if count > MAX_HEADERS {
        return None;
    }
    let mut headers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name = String::from_utf8_lossy(take(&mut block)?).to_ascii_lowercase();
        let values = String::from_utf8_lossy(take(&mut block)?).into_owned();
        for value in values.split('\0') {
            headers.push((name.clone(), value.to_owned()));
        }
    }
    Some(headers)
}

impl Encoder<Frame> for FrameWriter {
    type Error = SpdyError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), SpdyError> {
        let control = |dst: &mut BytesMut, kind: u16, flags: u8, body: &[u8]| {
            dst.put_u32(0x8000_0000 | (u32::from(VERSION) << 16) | u32::from(kind));
            dst.put_u32((u32::from(flags) << 24) | body.len() as u32);
            dst.put_slice(body);
        };
        match frame {
            Frame::SynStream { stream, flags, headers } => {
                let mut body = Vec::new();
                body.extend_from_slice(&stream.to_be_bytes());
                body.extend_from_slice(&[0; 6]);
                body.extend(self.block(&headers)?);
                control(dst, 1, flags, &body);
            }
            Frame::SynReply { stream, flags, headers } => {
                let mut body = stream.to_be_bytes().to_vec();
                body.extend(self.block(&headers)?);
                control(dst, 2, flags, &body);
            }
            Frame::Headers { stream, flags, headers } => {
                let mut body = stream.to_be_bytes().to_vec();
                body.extend(self.block(&headers)?);
                control(dst, 8, flags, &body);
            }
            Frame::RstStream { stream, status } => control(dst, 3, 0, &[stream.to_be_bytes(), status.to_be_bytes()].concat()),
            Frame::Settings => control(dst, 4, 0, &0u32.to_be_bytes()),
            Frame::Ping { id } => control(dst, 6, 0, &id.to_be_bytes()),
            Frame::GoAway { last, status } => control(dst, 7, 0, &[last.to_be_bytes(), status.to_be_bytes()].concat()),
            Frame::WindowUpdate { stream, delta } => control(dst, 9, 0, &[stream.to_be_bytes(), delta.to_be_bytes()].concat()),
            Frame::Unknown(_) => {}
            Frame::Data { stream, flags, data } => {
                // A frame's length has 24 bits: longer data goes in several.
                let mut chunks = data.chunks(0x00ff_ffff).peekable();
                if chunks.peek().is_none() {
                    dst.put_u32(stream & 0x7fff_ffff);
                    dst.put_u32(u32::from(flags) << 24);
                }
                while let Some(chunk) = chunks.next() {
                    let last = chunks.peek().is_none();
                    dst.put_u32(stream & 0x7fff_ffff);
                    dst.put_u32((u32::from(if last { flags } else { 0 }) << 24) | chunk.len() as u32);
                    dst.put_slice(chunk);
                }
            }
        }
        Ok(())
    }
}

impl FrameWriter {
    /// Serializes and deflates a header block, flushed so the reader can
    /// inflate it whole.
    fn block(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let mut grouped: Vec<(String, String)> = Vec::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            match grouped.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => {
                    values.push('\0');
                    values.push_str(value);
                }
                None => grouped.push((name, value.clone())),
            }
        }
        let mut plain = Vec::new();
        plain.extend_from_slice(&(grouped.len() as u32).to_be_bytes());
        for (name, value) in &grouped {
            plain.extend_from_slice(&(name.len() as u32).to_be_bytes());
            plain.extend_from_slice(name.as_bytes());
            plain.extend_from_slice(&(value.len() as u32).to_be_bytes());
            plain.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut input = &plain[..];
        loop {
            out.reserve(256);
            let before = self.deflate.total_in();
            self.deflate.compress_vec(input, &mut out, FlushCompress::Sync).map_err(|e| SpdyError::Headers(e.to_string()))?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The header compression dictionary of SPDY/3 (section 2.6.10.1 of the
/// draft): common header names, each with a 4-byte length, then common
/// values.
pub const DICTIONARY: &[u8] = b"\
\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00\x06delete\
\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00\x0faccept-encoding\
\x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03age\x00\x00\x00\x05allow\
\x00\x00\x00\x0dauthorization\x00\x00\x00\x0dcache-control\x00\x00\x00\x0aconnection\x00\x00\x00\x0ccontent-base\
\x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language\x00\x00\x00\x0econtent-length\
\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md5\x00\x00\x00\x0dcontent-range\x00\x00\x00\x0ccontent-type\
\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires\x00\x00\x00\x04from\
\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\x00\x00\x00\x0dif-none-match\
\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-since\x00\x00\x00\x0dlast-modified\x00\x00\x00\x08location\
\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\
\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\
\x00\x00\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\x0auser-agent\
\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\
\x00\x00\x00\x03get\x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\
\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\x0aset-cookie\x00\x00\x00\x0akeep-alive\x00\x00\x00\x06origin\
100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized\
403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable\
Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,\
text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frames: Vec<Frame>) -> Vec<Frame> {
        let (mut writer, mut reader) = (FrameWriter::default(), FrameReader::default());
        let mut wire = BytesMut::new();
        for frame in frames {
            writer.encode(frame, &mut wire).unwrap();
        }
        let mut read = Vec::new();
        // Byte by byte: a frame split anywhere still decodes.
        let mut buffer = BytesMut::new();
        for byte in wire {
            buffer.put_u8(byte);
            while let Some(frame) = reader.decode(&mut buffer).unwrap() {
                read.push(frame);
            }
        }
        read
    }

    #[test]
    fn frames_survive_the_wire_with_headers_compressed_across_frames() {
        let headers = |kind: &str, id: &str| vec![("streamtype".to_owned(), kind.to_owned()), ("port".into(), "80".into()), ("requestid".into(), id.into())];
        let frames = vec![
            Frame::SynStream { stream: 1, flags: 0, headers: headers("error", "0") },
            Frame::SynStream { stream: 3, flags: FLAG_FIN, headers: headers("data", "0") },
            Frame::SynReply { stream: 1, flags: 0, headers: vec![] },
            Frame::Data { stream: 3, flags: 0, data: bytes::Bytes::from_static(b"GET / HTTP/1.0\r\n\r\n") },
            Frame::Data { stream: 3, flags: FLAG_FIN, data: bytes::Bytes::new() },
            Frame::Ping { id: 7 },
            Frame::RstStream { stream: 3, status: CANCEL },
            Frame::WindowUpdate { stream: 0, delta: 65536 },
            Frame::GoAway { last: 3, status: 0 },
        ];
        assert_eq!(round_trip(frames.clone()), frames);
    }

    #[test]
    fn several_values_of_one_name_travel_joined() {
        let headers = vec![("a".to_owned(), "1".to_owned()), ("a".into(), "2".into())];
        let read = round_trip(vec![Frame::Headers { stream: 1, flags: 0, headers: headers.clone() }]);
        assert_eq!(read, vec![Frame::Headers { stream: 1, flags: 0, headers }]);
    }

    #[test]
    fn the_dictionary_is_the_protocols() {
        // A zlib stream names its dictionary by Adler-32 in its header,
        // so a peer with another dictionary fails at its first header
        // block. The draft's dictionary is 1,423 bytes; its Adler-32 is
        // also what kubectl's streams carry (the end-to-end test talks to
        // the real kubectl).
        assert_eq!(DICTIONARY.len(), 1423);
        let mut deflate = Compress::new(Compression::default(), true);
        let adler = deflate.set_dictionary(DICTIONARY).unwrap();
        assert_eq!(adler, EXPECTED_ADLER, "{adler:#x}");
    }

    const EXPECTED_ADLER: u32 = 0xe3c6_a7c2;

    #[test]
    fn oversized_and_foreign_frames_are_refused() {
        let mut reader = FrameReader::default();
        let mut wire = BytesMut::new();
        wire.put_u32(0x8002_0001);
        wire.put_u32(4);
        wire.put_u32(1);
        assert!(matches!(reader.decode(&mut wire), Err(SpdyError::Version(2))));
        let mut wire = BytesMut::new();
        wire.put_u32(0x8003_0001);
        wire.put_u32(0x00ff_ffff);
        assert!(matches!(reader.decode(&mut wire), Err(SpdyError::TooLarge(_))));
    }
}
