//! `driftless exec`: a command in a running container, its streams relayed
//! over a WebSocket in Kubernetes' channel protocol (the one kubectl
//! speaks, `driftless_api::channel`); the exit status is the command's.

use std::process::ExitCode;

use driftless_api::channel;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::get::{client_error, form_query};
use crate::CommandError;
use crate::cli::ExecArgs;
use crate::connect::{block_on, client};

/// Puts the terminal in raw mode while alive, so keys reach the command.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else { return RawTerminal(None) };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
        RawTerminal(Some(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Runs `exec`.
pub fn run(args: &ExecArgs) -> Result<ExitCode, CommandError> {
    block_on(async {
        let client = client(&args.connect);
        let container = super::container::pick(&client, &args.namespace, &args.pod, args.container.as_deref()).await?;
        let mut pairs: Vec<(&str, Option<&str>)> = vec![
            ("container", container.as_deref()),
            ("tty", args.tty.then_some("true")),
            ("stdin", args.stdin.then_some("true")),
            ("stdout", Some("true")),
            ("stderr", (!args.tty).then_some("true")),
        ];
        pairs.extend(args.command.iter().map(|c| ("command", Some(c.as_str()))));
        let path = format!("/api/v1/namespaces/{}/pods/{}/exec{}", args.namespace, args.pod, form_query(&pairs));
        let (socket, protocol) = client.websocket(&path, &channel::PROTOCOLS).await.map_err(client_error)?;
        let v5 = protocol.starts_with("v5.");
        let (mut sink, mut incoming) = socket.split();
        use std::io::IsTerminal;
        let _raw = (args.tty && std::io::stdin().is_terminal()).then(RawTerminal::enter);
        let ws = |e: tokio_tungstenite::tungstenite::Error| CommandError::Usage(format!("the exec stream: {e}"));
        let mut stdin_open = args.stdin;
        if !stdin_open && v5 {
            sink.send(channel::message(channel::CLOSE, &[channel::STDIN])).await.map_err(ws)?;
        }
        // A terminal's size goes first and again on every SIGWINCH, as
        // kubectl sends it.
        let terminal = args.tty && std::io::stdout().is_terminal();
        let mut resized = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).map_err(io_error)?;
        if terminal && let Some(size) = terminal_size() {
            sink.send(channel::message(channel::RESIZE, size.as_bytes())).await.map_err(ws)?;
        }
        let mut stdin = tokio::io::stdin();
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        let mut buf = [0u8; 8192];
        loop {
            tokio::select! {
                n = stdin.read(&mut buf), if stdin_open => {
                    match n.map_err(io_error)? {
                        0 => {
                            stdin_open = false;
                            if v5 {
                                sink.send(channel::message(channel::CLOSE, &[channel::STDIN])).await.map_err(ws)?;
                            }
                        }
                        n => sink.send(channel::message(channel::STDIN, &buf[..n])).await.map_err(ws)?,
                    }
                }
                _ = resized.recv(), if terminal => {
                    if let Some(size) = terminal_size() {
                        sink.send(channel::message(channel::RESIZE, size.as_bytes())).await.map_err(ws)?;
                    }
                }
                next = incoming.next() => match next {
                    Some(Ok(Message::Binary(data))) if !data.is_empty() => match data[0] {
                        channel::STDOUT => {
                            stdout.write_all(&data[1..]).await.map_err(io_error)?;
                            stdout.flush().await.map_err(io_error)?;
                        }
                        channel::STDERR => {
                            stderr.write_all(&data[1..]).await.map_err(io_error)?;
                            stderr.flush().await.map_err(io_error)?;
                        }
                        channel::STATUS => {
                            let status: serde_json::Value = serde_json::from_slice(&data[1..]).unwrap_or_default();
                            let code = channel::exit_code(&status).map_err(CommandError::Usage)?;
                            return Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)));
                        }
                        _ => {}
                    },
                    Some(Ok(Message::Close(_))) | None => return Err(CommandError::Usage("the daemon closed the exec stream without a status".into())),
                    Some(Err(error)) => return Err(ws(error)),
                    Some(Ok(_)) => {}
                },
            }
        }
    })
}

/// This terminal's size as a resize message's body.
fn terminal_size() -> Option<String> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    Some(serde_json::json!({"Width": size.ws_col, "Height": size.ws_row}).to_string())
}

fn io_error(source: std::io::Error) -> CommandError {
    CommandError::Io { path: "exec stream".into(), source }
}
