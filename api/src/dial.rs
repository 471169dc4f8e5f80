//! How the client's connection pool reaches the daemon: its Unix socket,
//! or TCP and then TLS trusting one CA. The pool (hyper-util's) keeps what
//! this dials open and reuses it, so an agent's hundreds of status writes
//! do not each pay for a TCP and TLS handshake.
//!
//! Must not touch: requests, tokens or answers (`client.rs`).

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

/// Where to dial; the request's URI is ignored (one client, one daemon).
#[derive(Clone, Debug)]
pub(crate) enum Dialer {
    /// The daemon's Unix socket.
    Unix(PathBuf),
    /// `host:port`, over TLS trusting the CA in the PEM file `ca`.
    Tls {
        /// `host:port`.
        address: String,
        /// The CA's PEM file, read at each dial (a dial is rare).
        ca: PathBuf,
    },
}

/// A dialled connection.
pub(crate) enum Socket {
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Dialer {
    async fn dial(self) -> io::Result<TokioIo<Socket>> {
        match self {
            Dialer::Unix(path) => Ok(TokioIo::new(Socket::Unix(UnixStream::connect(path).await?))),
            Dialer::Tls { address, ca } => {
                let pem = std::fs::read(&ca).map_err(|e| io::Error::new(e.kind(), format!("reading the CA {}: {e}", ca.display())))?;
                let config = crate::tls::client_config(&pem).map_err(|e| io::Error::other(format!("{}: {e}", ca.display())))?;
                let host = address.rsplit_once(':').map_or(address.as_str(), |(host, _)| host).trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| io::Error::other(format!("{host}: {e}")))?;
                let stream = TcpStream::connect(&address).await?;
                // Small requests answered at once: do not wait to fill a
                // segment (Nagle) before sending one.
                stream.set_nodelay(true)?;
                let stream = tokio_rustls::TlsConnector::from(config).connect(name, stream).await?;
                Ok(TokioIo::new(Socket::Tls(Box::new(stream))))
            }
        }
    }
}

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<Socket>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Socket>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        Box::pin(self.clone().dial())
    }
}

impl Connection for Socket {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
