//! The server side of exec's WebSocket ([`crate::channel`]): the upgrade
//! (subprotocol and key), and the relay between the socket and a command.
//!
//! Must not touch: the container (the caller's command runs there) or the
//! store.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use driftless_nodeapi::EXEC_RESIZE_FD;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::ApiError;
use crate::channel::{CLOSE, RESIZE, STATUS, STDERR, STDIN, STDOUT, message, status};

/// A WebSocket upgrade accepted: the subprotocol chosen and the key's
/// answer.
pub(crate) struct Accepted {
    pub(crate) protocol: &'static str,
    accept: String,
}

impl Accepted {
    /// The 101 answer.
    pub(crate) fn response(&self) -> Response {
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [(header::CONNECTION, "Upgrade"), (header::UPGRADE, "websocket")],
            [(header::SEC_WEBSOCKET_ACCEPT, self.accept.as_str()), (header::SEC_WEBSOCKET_PROTOCOL, self.protocol)],
        )
            .into_response()
    }
}

/// Checks a WebSocket upgrade request and picks the first of `served`
/// the client offers.
pub(crate) fn accept(request: &Request, served: &[&'static str]) -> Result<Accepted, ApiError> {
    let headers = request.headers();
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or_else(|| ApiError::BadRequest("a WebSocket upgrade without Sec-WebSocket-Key".into()))?;
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
        .collect();
    let protocol = served
        .iter()
        .copied()
        .find(|p| offered.iter().any(|o| o == p))
        .ok_or_else(|| ApiError::BadRequest(format!("none of the offered subprotocols {offered:?} is served ({})", served.join(", "))))?;
    Ok(Accepted { protocol, accept: tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()) })
}

/// The WebSocket after the upgrade.
pub(crate) struct Socket {
    ws: WebSocketStream<TokioIo<Upgraded>>,
    v5: bool,
}

impl Socket {
    pub(crate) async fn new(io: TokioIo<Upgraded>, protocol: &str) -> Socket {
        Socket { ws: WebSocketStream::from_raw_socket(io, Role::Server, None).await, v5: protocol.starts_with("v5.") }
    }
}

/// Runs `command`, relaying its streams over the socket, then sends its
/// status and closes. On a terminal (`tty`), the client's resize messages
/// go to the command's resize descriptor ([`EXEC_RESIZE_FD`]).
pub(crate) async fn relay(socket: Socket, mut command: std::process::Command, tty: bool) -> std::io::Result<()> {
    let v5 = socket.v5;
    let (mut sink, mut incoming) = socket.ws.split();
    let io = |e: tokio_tungstenite::tungstenite::Error| std::io::Error::other(e.to_string());
    let mut resizes = if tty { Some(resize_pipe(&mut command)?) } else { None };
    let mut command = tokio::process::Command::from(command);
    command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let failure = json!({"metadata": {}, "status": "Failure", "message": error.to_string(), "reason": "InternalError"});
            sink.send(message(STATUS, failure.to_string().as_bytes())).await.map_err(io)?;
            return close(&mut sink).await.map_err(io);
        }
    };
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
    let mut stderr = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr"))?;
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    let (mut out_open, mut err_open, mut in_open) = (true, true, true);
    while out_open || err_open {
        tokio::select! {
            n = stdout.read(&mut out_buf), if out_open => match n? {
                0 => out_open = false,
                n => sink.send(message(STDOUT, &out_buf[..n])).await.map_err(io)?,
            },
            n = stderr.read(&mut err_buf), if err_open => match n? {
                0 => err_open = false,
                n => sink.send(message(STDERR, &err_buf[..n])).await.map_err(io)?,
            },
            next = incoming.next(), if in_open => match next {
                Some(Ok(Message::Binary(data))) => match (data.first(), data.get(1)) {
                    (Some(&STDIN), _) => {
                        if let Some(pipe) = stdin.as_mut() {
                            // The command may have stopped reading; that
                            // is not the stream's failure.
                            if pipe.write_all(&data[1..]).await.is_err() {
                                drop(stdin.take());
                            }
                        }
                    }
                    (Some(&CLOSE), Some(&STDIN)) if v5 => drop(stdin.take()),
                    (Some(&RESIZE), _) => {
                        if let (Some(pipe), Some((columns, rows))) = (resizes.as_mut(), terminal_size(&data[1..])) {
                            use std::io::Write;
                            // A command that stopped reading sizes does not
                            // stop the stream (the descriptor never blocks).
                            let _ = writeln!(pipe, "{columns} {rows}");
                        }
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client went away: stop the command.
                    in_open = false;
                    drop(stdin.take());
                    let _ = child.start_kill();
                }
                Some(Ok(_)) => {}
            },
        }
    }
    let exit = child.wait().await?;
    let code = exit.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + exit.signal().unwrap_or(0)
    });
    sink.send(message(STATUS, status(code).to_string().as_bytes())).await.map_err(io)?;
    close(&mut sink).await.map_err(io)
}

/// What an attached container sends: its output on a stream, or its end.
pub(crate) enum Output {
    /// Bytes on [`STDOUT`] or [`STDERR`].
    Data(u8, bytes::Bytes),
    /// It exited with this code: the last message.
    Exit(i32),
}

/// Relays a container's output (`attach`) over the socket until it exits
/// (its status is sent last) or the client goes.
pub(crate) async fn relay_output(socket: Socket, mut output: tokio::sync::mpsc::Receiver<Output>) -> std::io::Result<()> {
    let (mut sink, mut incoming) = socket.ws.split();
    let io = |e: tokio_tungstenite::tungstenite::Error| std::io::Error::other(e.to_string());
    loop {
        tokio::select! {
            next = output.recv() => match next {
                Some(Output::Data(stream, data)) => sink.send(message(stream, &data)).await.map_err(io)?,
                Some(Output::Exit(code)) => {
                    sink.send(message(STATUS, status(code).to_string().as_bytes())).await.map_err(io)?;
                    return close(&mut sink).await.map_err(io);
                }
                None => return close(&mut sink).await.map_err(io),
            },
            next = incoming.next() => match next {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Opens the pipe a terminal's sizes travel on: its reading end becomes
/// the command's [`EXEC_RESIZE_FD`], the writing end (never blocking) is
/// returned.
fn resize_pipe(command: &mut std::process::Command) -> std::io::Result<std::fs::File> {
    use command_fds::{CommandFdExt, FdMapping};
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(std::io::Error::from)?;
    rustix::io::ioctl_fionbio(&write, true).map_err(std::io::Error::from)?;
    command.fd_mappings(vec![FdMapping { parent_fd: read, child_fd: EXEC_RESIZE_FD }]).map_err(|e| std::io::Error::other(e.to_string()))?;
    command.env(driftless_nodeapi::EXEC_RESIZE_ENV, EXEC_RESIZE_FD.to_string());
    Ok(std::fs::File::from(write))
}

/// The size in a resize message: `{"Width": COLUMNS, "Height": ROWS}`.
fn terminal_size(message: &[u8]) -> Option<(u16, u16)> {
    let size: serde_json::Value = serde_json::from_slice(message).ok()?;
    let number = |field: &str| size.get(field).and_then(serde_json::Value::as_u64).and_then(|n| u16::try_from(n).ok());
    Some((number("Width")?, number("Height")?))
}

/// Closes with 1000 (normal closure), which kubectl reads as the streams'
/// end; a close without a code is an error to it.
async fn close<S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin>(
    sink: &mut S,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    sink.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))).await?;
    sink.flush().await
}
