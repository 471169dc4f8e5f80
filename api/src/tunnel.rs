//! A byte stream carried in a WebSocket's binary messages, as Kubernetes
//! tunnels SPDY in WebSocket (`SPDY/3.1+portforward.k8s.io`): each
//! message is the next bytes, with no framing of its own; a normal close
//! is the end of the stream.
//!
//! Must not touch: what the bytes are.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How many bytes sit between the socket and the stream's user.
const BUFFER: usize = 64 * 1024;

/// The WebSocket as a byte stream: what is written to the returned end
/// goes out as binary messages, and messages that come in are read from
/// it. A task pumps both ways until either side ends.
pub fn bytes<S>(socket: WebSocketStream<S>) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(BUFFER);
    tokio::spawn(async move {
        let (mut sink, mut messages) = socket.split();
        let (mut read, mut write) = tokio::io::split(ours);
        let mut buffer = vec![0u8; BUFFER];
        let (mut reading, mut writing) = (true, true);
        while reading || writing {
            tokio::select! {
                message = messages.next(), if reading => match message {
                    Some(Ok(Message::Binary(data))) => {
                        if write.write_all(&data).await.is_err() { break }
                    }
                    // The automatic pong goes out with the next write.
                    Some(Ok(Message::Ping(_))) => { let _ = sink.flush().await; }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        reading = false;
                        let _ = write.shutdown().await;
                    }
                    Some(Ok(_)) => {}
                },
                n = read.read(&mut buffer), if writing => match n {
                    Ok(0) | Err(_) => {
                        writing = false;
                        let close = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                        let _ = sink.send(Message::Close(Some(close))).await;
                        // Both halves are done once this side has closed:
                        // the peer answers the close, and nothing else.
                        reading = false;
                    }
                    Ok(n) => if sink.send(Message::Binary(bytes::Bytes::copy_from_slice(&buffer[..n]))).await.is_err() { break },
                },
            }
        }
    });
    theirs
}
