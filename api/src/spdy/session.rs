//! A SPDY session over one byte stream: streams opened by either side,
//! each accepted with a SYN_REPLY, their bytes carried both ways, pings
//! answered. One task writes every frame (so the header compression sees
//! blocks in wire order), one reads and dispatches.
//!
//! Must not touch: what the streams mean (that is [`crate::portforward`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use super::{CANCEL, FLAG_FIN, Frame, FrameReader, FrameWriter, Headers, REFUSED_STREAM};

/// Which end of the session this is: clients open odd streams and ping
/// with odd ids, servers even.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opened the connection.
    Client,
    /// Accepted it.
    Server,
}

/// How many chunks of a stream wait for its reader before the session
/// stops reading (SPDY's flow control is not used, so this bounds memory).
const STREAM_BUFFER: usize = 16;
/// The most bytes one data frame carries.
pub const CHUNK: usize = 32 * 1024;
/// How long a stream opened waits for the peer's SYN_REPLY.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The most streams open at once in one session.
const MAX_STREAMS: usize = 1024;

/// What a stream's reader receives: bytes, or that the peer reset it.
type Chunk = Result<Bytes, Reset>;
type Routes = Arc<Mutex<HashMap<u32, mpsc::Sender<Chunk>>>>;

/// The peer reset the stream: its end is abnormal, both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reset;

/// One session; cheap to clone.
#[derive(Clone)]
pub struct Session {
    out: mpsc::Sender<Frame>,
    routes: Routes,
    replies: Arc<Mutex<HashMap<u32, oneshot::Sender<()>>>>,
    next: Arc<AtomicU32>,
    closed: CancellationToken,
}

/// One stream of a session.
pub struct Stream {
    /// Its id.
    pub id: u32,
    /// The headers it was opened with.
    pub headers: Headers,
    incoming: mpsc::Receiver<Chunk>,
    out: mpsc::Sender<Frame>,
}

/// The sending half of a stream.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Frame>,
}

/// The receiving half of a stream.
pub struct StreamReader {
    incoming: mpsc::Receiver<Chunk>,
}

impl Session {
    /// Starts a session over `io`; streams the peer opens arrive on the
    /// receiver (a client's peer opens none).
    pub fn start<IO>(io: IO, role: Role) -> (Session, mpsc::Receiver<Stream>)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (out, mut frames) = mpsc::channel::<Frame>(64);
        let closed = CancellationToken::new();
        let session = Session {
            out: out.clone(),
            routes: Arc::default(),
            replies: Arc::default(),
            next: Arc::new(AtomicU32::new(if role == Role::Client { 1 } else { 2 })),
            closed: closed.clone(),
        };
        let writer_closed = closed.clone();
        tokio::spawn(async move {
            let mut sink = FramedWrite::new(write, FrameWriter::default());
            loop {
                tokio::select! {
                    frame = frames.recv() => match frame {
                        Some(frame) => if sink.send(frame).await.is_err() { break },
                        None => break,
                    },
                    _ = writer_closed.cancelled() => break,
                }
            }
            // Whatever was queued before the end still goes out.
            while let Ok(frame) = frames.try_recv() {
                if sink.feed(frame).await.is_err() {
                    break;
                }
            }
            let _ = sink.flush().await;
            let _ = sink.close().await;
            writer_closed.cancel();
        });
        let (accepted, streams) = mpsc::channel(16);
        let reader = session.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(read, FrameReader::default());
            loop {
                let frame = tokio::select! {
                    frame = frames.next() => frame,
                    _ = reader.closed.cancelled() => break,
                };
                match frame {
                    Some(Ok(frame)) => {
                        if !reader.dispatch(frame, role, &accepted).await {
                            break;
                        }
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, "SPDY session ends on a bad frame");
                        break;
                    }
                    None => break,
                }
            }
            reader.routes.lock().unwrap_or_else(|e| e.into_inner()).clear();
            reader.replies.lock().unwrap_or_else(|e| e.into_inner()).clear();
            reader.closed.cancel();
        });
        (session, streams)
    }

    /// Handles one frame; false ends the session.
    async fn dispatch(&self, frame: Frame, role: Role, accepted: &mpsc::Sender<Stream>) -> bool {
        match frame {
            Frame::SynStream { stream, flags, headers } => {
                let full = self.routes.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_STREAMS;
                if full || accepted.is_closed() {
                    return self.out.send(Frame::RstStream { stream, status: REFUSED_STREAM }).await.is_ok();
                }
                let (tx, incoming) = mpsc::channel(STREAM_BUFFER);
                if flags & FLAG_FIN == 0 {
                    self.routes.lock().unwrap_or_else(|e| e.into_inner()).insert(stream, tx);
                }
                if self.out.send(Frame::SynReply { stream, flags: 0, headers: Vec::new() }).await.is_err() {
                    return false;
                }
                let stream = Stream { id: stream, headers, incoming, out: self.out.clone() };
                let _ = accepted.send(stream).await;
            }
            Frame::SynReply { stream, .. } => {
                if let Some(reply) = self.replies.lock().unwrap_or_else(|e| e.into_inner()).remove(&stream) {
                    let _ = reply.send(());
                }
            }
            Frame::Data { stream, flags, data } => {
                let route = self.routes.lock().unwrap_or_else(|e| e.into_inner()).get(&stream).cloned();
                if let Some(route) = route {
                    // A reader that went away just drops the bytes.
                    if !data.is_empty() {
                        let _ = route.send(Ok(data)).await;
                    }
                }
                if flags & FLAG_FIN != 0 {
                    self.routes.lock().unwrap_or_else(|e| e.into_inner()).remove(&stream);
                }
            }
            Frame::RstStream { stream, .. } => {
                if let Some(route) = self.routes.lock().unwrap_or_else(|e| e.into_inner()).remove(&stream) {
                    // A full buffer still ends: the reader sees the close.
                    let _ = route.try_send(Err(Reset));
                }
                self.replies.lock().unwrap_or_else(|e| e.into_inner()).remove(&stream);
            }
            Frame::Ping { id } => {
                // A peer's ping comes back to it; an answer to ours ends here.
                let peers = if role == Role::Server { id % 2 == 1 } else { id % 2 == 0 };
                if peers {
                    return self.out.send(Frame::Ping { id }).await.is_ok();
                }
            }
            Frame::GoAway { .. } => return false,
            Frame::Settings | Frame::Headers { .. } | Frame::WindowUpdate { .. } | Frame::Unknown(_) => {}
        }
        true
    }

    /// Opens a stream with `headers` and waits for the peer to accept it.
    pub async fn open(&self, headers: Headers) -> std::io::Result<Stream> {
        let id = self.next.fetch_add(2, Ordering::Relaxed);
        let (tx, incoming) = mpsc::channel(STREAM_BUFFER);
        let (reply, replied) = oneshot::channel();
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        self.replies.lock().unwrap_or_else(|e| e.into_inner()).insert(id, reply);
        let gone = || std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "the SPDY session ended");
        self.out.send(Frame::SynStream { stream: id, flags: 0, headers: headers.clone() }).await.map_err(|_| gone())?;
        match tokio::time::timeout(REPLY_TIMEOUT, replied).await {
            Ok(Ok(())) => Ok(Stream { id, headers, incoming, out: self.out.clone() }),
            Ok(Err(_)) => Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, format!("the peer refused stream {id}"))),
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no reply to stream {id} in {REPLY_TIMEOUT:?}"))),
        }
    }

    /// Resolves when the session has ended.
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// Ends the session.
    pub fn close(&self) {
        self.closed.cancel();
    }
}

impl Stream {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Splits into the halves that read and write.
    pub fn split(self) -> (StreamReader, StreamWriter) {
        (StreamReader { incoming: self.incoming }, StreamWriter { id: self.id, out: self.out })
    }
}

impl StreamReader {
    /// The next bytes the peer sent, `None` once it finished the stream,
    /// or [`Reset`].
    pub async fn read(&mut self) -> Option<Result<Bytes, Reset>> {
        self.incoming.recv().await
    }
}

impl StreamWriter {
    /// Sends bytes, in frames of at most [`CHUNK`].
    pub async fn write(&self, data: &[u8]) -> std::io::Result<()> {
        for chunk in data.chunks(CHUNK) {
            self.send(Frame::Data { stream: self.id, flags: 0, data: Bytes::copy_from_slice(chunk) }).await?;
        }
        Ok(())
    }

    /// Ends this side of the stream.
    pub async fn finish(&self) -> std::io::Result<()> {
        self.send(Frame::Data { stream: self.id, flags: FLAG_FIN, data: Bytes::new() }).await
    }

    /// Abandons the stream, both sides.
    pub async fn reset(&self) {
        let _ = self.send(Frame::RstStream { stream: self.id, status: CANCEL }).await;
    }

    async fn send(&self, frame: Frame) -> std::io::Result<()> {
        self.out.send(frame).await.map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the SPDY session ended"))
    }
}

/// When a relay ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// When both sides have finished: each side's end only shuts the
    /// other's writing half (the server's way, so a client that is done
    /// sending still gets the whole answer).
    BothFinished,
    /// As soon as the peer has finished sending (kubectl's way on the
    /// client side: the remote end closes the local connection).
    PeerFinished,
}

/// Carries a stream and a TCP connection into each other: the stream's
/// bytes to the socket (its end shuts the socket's writing half), the
/// socket's to the stream (its end finishes the stream). A reset, or a
/// socket error, ends both ways at once.
pub async fn relay(stream: Stream, socket: tokio::net::TcpStream, ending: Ending) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut from, to) = stream.split();
    let (mut read, mut write) = socket.into_split();
    let stop = CancellationToken::new();
    let inbound = async {
        loop {
            match from.read().await {
                Some(Ok(data)) => {
                    if write.write_all(&data).await.is_err() {
                        stop.cancel();
                        break;
                    }
                }
                Some(Err(Reset)) => {
                    stop.cancel();
                    break;
                }
                None => {
                    if ending == Ending::PeerFinished {
                        stop.cancel();
                    }
                    break;
                }
            }
        }
        let _ = write.shutdown().await;
    };
    let outbound = async {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = tokio::select! {
                n = read.read(&mut buffer) => n,
                _ = stop.cancelled() => {
                    to.reset().await;
                    break;
                }
            };
            match n {
                Ok(0) => {
                    let _ = to.finish().await;
                    break;
                }
                Ok(n) => {
                    if to.write(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
                Err(_) => {
                    to.reset().await;
                    stop.cancel();
                    break;
                }
            }
        }
    };
    tokio::join!(inbound, outbound);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_carry_bytes_both_ways_and_finish() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let (client, _) = Session::start(client_io, Role::Client);
        let (_server, mut accepted) = Session::start(server_io, Role::Server);
        let echo = tokio::spawn(async move {
            let stream = accepted.recv().await.unwrap();
            assert_eq!(stream.header("kind"), Some("echo"));
            let (mut from, to) = stream.split();
            while let Some(Ok(data)) = from.read().await {
                to.write(&data).await.unwrap();
            }
            to.finish().await.unwrap();
        });
        let stream = client.open(vec![("kind".into(), "echo".into())]).await.unwrap();
        assert_eq!(stream.id, 1);
        let (mut from, to) = stream.split();
        let big = vec![7u8; 100_000];
        to.write(&big).await.unwrap();
        to.finish().await.unwrap();
        let mut back = Vec::new();
        while let Some(Ok(data)) = from.read().await {
            back.extend_from_slice(&data);
        }
        assert_eq!(back, big);
        echo.await.unwrap();
    }

    #[tokio::test]
    async fn a_session_that_ends_fails_what_waits_on_it() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let (client, _) = Session::start(client_io, Role::Client);
        drop(server_io);
        assert!(client.open(vec![]).await.is_err());
        tokio::time::timeout(Duration::from_secs(5), client.closed()).await.unwrap();
    }
}
