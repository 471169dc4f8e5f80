//! Kubernetes' port-forward protocol (`portforward.k8s.io`, version 1)
//! over a SPDY session ([`crate::spdy`]), both ends: kubectl and
//! `driftless port-forward` open two streams per forwarded connection, an
//! error stream and a data stream, whose headers name the pod port and a
//! request id that pairs them. The server connects to the port, relays the
//! data stream, and writes any failure to the error stream before closing
//! it, as kubelet does.
//!
//! Must not touch: how the pod's port is reached (the server's caller
//! passes the connector) or HTTP (the upgrade happens before this).

use std::collections::HashMap;
use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::spdy::session::{Ending, Role, Session, Stream, relay};

/// The protocol name, in `X-Stream-Protocol-Version`.
pub const PROTOCOL_V1: &str = "portforward.k8s.io";
/// The WebSocket subprotocol that tunnels the SPDY session (kubectl 1.30+
/// tries it first).
pub const WEBSOCKET_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The upgrade token of the plain SPDY form.
pub const SPDY_UPGRADE: &str = "SPDY/3.1";

/// The stream header naming the stream's role.
const STREAM_TYPE: &str = "streamtype";
/// The stream header naming the pod port.
const PORT: &str = "port";
/// The stream header pairing a connection's two streams.
const REQUEST_ID: &str = "requestid";
/// Requests waiting for their second stream, at most.
const MAX_WAITING: usize = 256;

/// Serves one port-forward session until the client leaves: each request
/// is connected with `connect(port)`, whose error (a message) goes to the
/// request's error stream.
pub async fn serve<IO, C, F>(io: IO, connect: C)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
    C: Fn(u16) -> F + Send + Sync + Clone + 'static,
    F: Future<Output = Result<tokio::net::TcpStream, String>> + Send + 'static,
{
    let (session, mut streams) = Session::start(io, Role::Server);
    #[derive(Default)]
    struct Pair {
        error: Option<Stream>,
        data: Option<Stream>,
    }
    let mut waiting: HashMap<String, Pair> = HashMap::new();
    loop {
        let stream = tokio::select! {
            stream = streams.recv() => match stream { Some(stream) => stream, None => break },
            _ = session.closed() => break,
        };
        // Clients older than version 1's request id pair by stream id.
        let request = stream.header(REQUEST_ID).map(str::to_owned).unwrap_or_else(|| (stream.id.saturating_sub(stream.id % 4)).to_string());
        let kind = stream.header(STREAM_TYPE).unwrap_or_default().to_owned();
        if waiting.len() >= MAX_WAITING && !waiting.contains_key(&request) {
            stream.split().1.reset().await;
            continue;
        }
        let pair = waiting.entry(request.clone()).or_default();
        match kind.as_str() {
            "error" => pair.error = Some(stream),
            "data" => pair.data = Some(stream),
            _ => {
                stream.split().1.reset().await;
                continue;
            }
        }
        if pair.error.is_some() && pair.data.is_some() {
            let Some(Pair { error: Some(error), data: Some(data) }) = waiting.remove(&request) else { continue };
            let connect = connect.clone();
            tokio::spawn(forward(error, data, connect));
        }
    }
    session.close();
}

/// Forwards one request: connects, relays, reports.
async fn forward<C, F>(error: Stream, data: Stream, connect: C)
where
    C: Fn(u16) -> F,
    F: Future<Output = Result<tokio::net::TcpStream, String>>,
{
    let (_, report) = error.split();
    let port = data.header(PORT).and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
    let outcome = match port {
        None => Err(format!("invalid port {:?}", data.header(PORT).unwrap_or_default())),
        Some(port) => connect(port).await,
    };
    match outcome {
        Ok(socket) => relay(data, socket, Ending::BothFinished).await,
        Err(message) => {
            let _ = report.write(message.as_bytes()).await;
            data.split().1.reset().await;
        }
    }
    let _ = report.finish().await;
}

/// The client end: one session, any number of forwarded connections.
#[derive(Clone)]
pub struct Forwarder {
    session: Session,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Forwarder {
    /// Starts the session over an upgraded connection.
    pub fn new<IO>(io: IO) -> Forwarder
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (session, _) = Session::start(io, Role::Client);
        Forwarder { session, requests: Default::default() }
    }

    /// Carries `socket` to the pod's `port` until both sides finish; the
    /// server's message if it could not.
    pub async fn forward(&self, port: u16, socket: tokio::net::TcpStream) -> Result<(), String> {
        let request = self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
        let headers =
            |kind: &str| vec![(STREAM_TYPE.to_owned(), kind.to_owned()), (PORT.to_owned(), port.to_string()), (REQUEST_ID.to_owned(), request.clone())];
        let error = self.session.open(headers("error")).await.map_err(|e| e.to_string())?;
        let (mut failure, ours) = error.split();
        // Nothing is ever written to the error stream from this side.
        ours.finish().await.map_err(|e| e.to_string())?;
        let data = self.session.open(headers("data")).await.map_err(|e| e.to_string())?;
        let report = async move {
            let mut message = Vec::new();
            while let Some(Ok(chunk)) = failure.read().await {
                message.extend_from_slice(&chunk);
            }
            String::from_utf8_lossy(&message).into_owned()
        };
        let ((), message) = tokio::join!(relay(data, socket, Ending::PeerFinished), report);
        if message.is_empty() { Ok(()) } else { Err(message) }
    }

    /// Resolves when the session to the server has ended.
    pub async fn closed(&self) {
        self.session.closed().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_connection_reaches_the_port_and_a_refused_one_reports_why() {
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve(server_io, move |port| async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("error forwarding port {port}: {e}"))
        }));
        let forwarder = Forwarder::new(client_io);

        let local = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = local.local_addr().unwrap();
        let user = tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
            socket.write_all(b"hello through SPDY").await.unwrap();
            socket.shutdown().await.unwrap();
            let mut back = String::new();
            socket.read_to_string(&mut back).await.unwrap();
            back
        });
        let (socket, _) = local.accept().await.unwrap();
        forwarder.forward(port, socket).await.unwrap();
        assert_eq!(user.await.unwrap(), "hello through SPDY");

        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = closed.local_addr().unwrap().port();
        drop(closed);
        let user = tokio::spawn(async move { tokio::net::TcpStream::connect(address).await.unwrap() });
        let (socket, _) = local.accept().await.unwrap();
        let failure = forwarder.forward(dead, socket).await.unwrap_err();
        assert!(failure.contains(&format!("error forwarding port {dead}")), "{failure}");
        drop(user);
    }
}
